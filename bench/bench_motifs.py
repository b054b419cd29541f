"""Motif scanning speed and memory: every JASPAR 2024 vertebrate CORE matrix over human chr20.

    .venv/bin/python bench/bench_motifs.py [--length 5000000] [--pvalue 1e-4]

Scans the first ``--length`` bases of ``../shared/data/genomes/human_grch37_chr20.fa.gz``
(both strands, chunked lightmotif scan, BED6 written) and prints one table row per phase:
wall time, peak resident memory (ru_maxrss) and hits.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENOME = REPO.parent / "shared" / "data" / "genomes" / "human_grch37_chr20.fa.gz"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=5_000_000, help="bases of chr20 (default 5 Mb)")
    parser.add_argument("--pvalue", type=float, default=1e-4)
    parser.add_argument("--genome", type=Path, default=GENOME)
    args = parser.parse_args()
    if not args.genome.exists():
        print(f"missing {args.genome}", file=sys.stderr)
        return 2
    from dnatlas.genome.readers import read_records
    from dnatlas.motifs import jaspar_motifs, scan_genomes

    rows = []
    t0 = time.perf_counter()
    motifs = jaspar_motifs("CORE:vertebrates", release="JASPAR2024")
    rows.append(("load JASPAR2024 CORE vertebrates", time.perf_counter() - t0, _peak_mb(),
                 f"{len(motifs)} matrices"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        record = next(read_records(args.genome))
        seq = record.seq[: args.length]
        fasta = Path(tmp) / "slice.fa"
        from dnatlas.genome.alphabet import DECODE_TABLE

        fasta.write_bytes(b">chr20\n" + DECODE_TABLE[seq].tobytes() + b"\n")
        del record
        rows.append((f"read chr20, write {len(seq):,} nt slice", time.perf_counter() - t0, _peak_mb(), ""))
        t0 = time.perf_counter()
        result = scan_genomes([fasta], motifs, Path(tmp) / "hits.bed", pvalue=args.pvalue)
        wall = time.perf_counter() - t0
        n_acgt = int((seq < 4).sum())
        rows.append((f"scan both strands, p<{args.pvalue:g}", wall, _peak_mb(),
                     f"{result.hits_written:,} hits; {len(motifs) * 2 * len(seq) / wall / 1e9:.2f} "
                     f"G motif-nt/s; {n_acgt:,} non-N nt"))
    print(f"{'phase':<42} {'wall s':>8} {'peak MB':>8}  notes")
    for phase, seconds, peak, notes in rows:
        print(f"{phase:<42} {seconds:>8.2f} {peak:>8.0f}  {notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
