"""Training-data audit speed and memory on the six bundled genomes (~31 Mb).

    .venv/bin/python bench/bench_audit.py [--windows 1000] [--length 100] [--no-blast]

Builds a store of ``src/dnatlas/bundled/genomes/*.fa.gz`` (vibrio_cholerae_h1 held out),
then times, in one process: indexing (k = 16, stride 4 and stride 1), saving and loading
the index, searching ``--windows`` windows of ``--length`` nt (80% cut from the store at
random, on a random strand, with 0-3 substitutions; 20% random sequence), the per-feature
summary (10 windows per feature), blastn on the same windows (when installed), and the
k = 32 leakage of the held-out split. Memory is the peak of numpy/Python allocations during
each step (tracemalloc), beside the size of what it keeps; CPU seconds include blastn's.
On a shared machine compare CPU seconds, or ratios within one run.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    """CPU seconds of this process and its finished children (blastn)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn):
    """``(fn(), (wall s, cpu s), peak MiB of traced allocations)``."""
    tracemalloc.start()
    t0, c0 = time.perf_counter(), _cpu()
    out = fn()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, (wall, cpu), peak


def _windows(target, n, length, rng):
    """``n`` windows: 80% from the target (truth kept), 20% random."""
    from dnatlas.genome.alphabet import reverse_complement

    records = [r for r in target.records() if r[3] - r[2] >= 10 * length]
    sizes = np.array([hi - lo for _, _, lo, hi in records], dtype=float)
    seqs, truth = [], []
    for i in range(n):
        if i % 5 == 4:
            seqs.append(rng.integers(0, 4, length).astype(np.uint8))
            truth.append(None)
            continue
        genome, record, lo, hi = records[rng.choice(len(records), p=sizes / sizes.sum())]
        start = int(rng.integers(0, hi - lo - length))
        codes = np.asarray(target.tokens[lo + start:lo + start + length]).copy()
        where = rng.choice(np.arange(10, length - 10), int(rng.integers(0, 4)), replace=False)
        codes[where] = (codes[where] + 1) % 4
        strand = 1 if rng.random() < 0.5 else -1
        seqs.append(codes if strand > 0 else reverse_complement(codes))
        truth.append((genome, record, start, strand))
    return seqs, truth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--no-blast", action="store_true")
    args = parser.parse_args()
    from dnatlas import bundled
    from dnatlas.audit.blast import blast_available, blast_search
    from dnatlas.audit.index import build_index, load_index, save_index
    from dnatlas.audit.leakage import leakage
    from dnatlas.audit.queries import Query
    from dnatlas.audit.search import search
    from dnatlas.audit.summary import summarise
    from dnatlas.audit.target import target_from_store
    from dnatlas.genome.store_build import build_store

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_store(bundled.genome_paths(), Path(tmp) / "store",
                    val_genomes=["vibrio_cholerae_h1"], progress=False)
        target, wall, peak = _timed(lambda: target_from_store(Path(tmp) / "store"))
        n = target.tokens.shape[0]
        print(f"store of {n:,} nt built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        rows.append(("open store + sha256", wall, peak, ""))
        one, wall, peak = _timed(lambda: build_index(target, k=16, stride=1, progress=False))
        rows.append(("index k=16 stride 1", wall, peak,
                     f"{one.keys.shape[0]:,} entries, {one.nbytes / 2**20:.0f} MiB"))
        del one
        index, wall, peak = _timed(lambda: build_index(target, k=16, stride=4, progress=False))
        rows.append(("index k=16 stride 4 (default)", wall, peak,
                     f"{index.keys.shape[0]:,} entries, {index.nbytes / 2**20:.0f} MiB"))
        _, wall, peak = _timed(lambda: save_index(index, Path(tmp) / "idx"))
        rows.append(("save index", wall, peak, ""))
        index, wall, peak = _timed(lambda: load_index(Path(tmp) / "idx"))
        rows.append(("load index (re-hashes the store)", wall, peak, ""))
        rng = np.random.default_rng(0)
        seqs, truth = _windows(target, args.windows, args.length, rng)
        result, wall, peak = _timed(lambda: search(index, seqs, progress=False))
        rows.append((f"search {len(seqs):,} windows of {args.length} nt", wall, peak,
                     _recall(result.hits, truth)))
        queries = [Query(f"q{i}", str(i // 10), s) for i, s in enumerate(seqs)]
        _, wall, peak = _timed(lambda: summarise(queries, result.hits))
        rows.append((f"per-feature summary ({len(seqs) // 10} features)", wall, peak, ""))
        if blast_available() and not args.no_blast:
            blasted, wall, peak = _timed(lambda: blast_search(target, seqs, Path(tmp) / "idx",
                                                              progress=False))
            rows.append(("blastn (makeblastdb + search)", wall, peak,
                         _recall(blasted.hits, truth)))
            blasted, wall, peak = _timed(lambda: blast_search(target, seqs, Path(tmp) / "idx",
                                                              progress=False))
            rows.append(("blastn (search only)", wall, peak, _recall(blasted.hits, truth)))
        leak, wall, peak = _timed(lambda: leakage(target, k=32, progress=False))
        shared = next(r for r in leak if r["record"] == "*")
        rows.append(("leakage k=32 (train 26.9 Mb, val 4.1 Mb)", wall, peak,
                     f"{shared['genome']}: {shared['shared_fraction']:.4f} of "
                     f"{shared['distinct_kmers']:,} distinct 32-mers in train"))
    print("| step | wall s | CPU s | peak MiB | notes |")
    print("|---|---:|---:|---:|---|")
    for step, (wall, cpu), peak, note in rows:
        print(f"| {step} | {wall:.2f} | {cpu:.2f} | {peak:.0f} | {note} |")
    print(f"\nprocess peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def _recall(hits, truth) -> str:
    places = {}
    for h in hits:
        places.setdefault(h.query, set()).add((h.genome, h.record, h.start, h.strand))
    planted = [i for i, t in enumerate(truth) if t is not None]
    found = sum(truth[i] in places.get(i, ()) for i in planted)
    false = sum(i in places for i, t in enumerate(truth) if t is None)
    return (f"{found}/{len(planted)} cut windows found at their place; {false}/"
            f"{len(truth) - len(planted)} random ones hit")


if __name__ == "__main__":
    sys.exit(main())
