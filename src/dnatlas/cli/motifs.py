"""``dnatlas motifs scan --genome GENOME... --jaspar CORE[:TAXON] | --motifs FILE... --out BED``.

Scans genomes for position-weight-matrix hits on both strands (lightmotif) and writes a
sorted BED6 and a per-motif TSV summary (see :mod:`dnatlas.motifs.bed_out`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import (
    add_genome_arg,
    needs,
    non_negative_float,
    positive_float,
    positive_int,
    probability,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("motifs", help="transcription factor motifs: scan genomes",
                                   description="Transcription factor binding motifs.")
    commands = parser.add_subparsers(dest="motifs_command", metavar="COMMAND", required=True)
    scan = commands.add_parser(
        "scan", help="scan genomes for motif hits (both strands) and write BED6",
        description=(
            "Scan genomes on both strands with position weight matrices (lightmotif) at a "
            "p-value threshold and write the hits as sorted BED6 (0-based starts; name = "
            "ID_NAME; score = log2-odds) plus a per-motif TSV summary (hits per Mb per "
            "strand). Matrices come from JASPAR (offline, pyjaspar) or from JASPAR, MEME "
            "and TRANSFAC files."))
    add_genome_arg(scan, required=True, multiple=True, old=(), positional=True,
                   help_text="genome to scan: a FASTA or GenBank file (optionally gzipped) or "
                             "a bundled genome's name")
    source = scan.add_mutually_exclusive_group(required=True)
    source.add_argument("--jaspar", metavar="COLLECTION[:TAXON]",
                        help="JASPAR matrices, e.g. CORE or CORE:vertebrates (latest versions)")
    source.add_argument("--motifs", nargs="+", type=Path, metavar="FILE",
                        help="JASPAR, MEME or TRANSFAC matrix files (format read from content)")
    scan.add_argument("--jaspar-release", default="JASPAR2024", metavar="NAME",
                      help="JASPAR release for --jaspar (default: JASPAR2024)")
    scan.add_argument("--out", "-o", type=Path, required=True, metavar="BED", help="output BED6")
    scan.add_argument("--summary", type=Path, default=None, metavar="TSV",
                      help="per-motif summary (default: BED name with .summary.tsv)")
    scan.add_argument("--pvalue", type=probability, default=1e-4, metavar="P",
                      help="per-window p-value threshold (default: 1e-4)")
    scan.add_argument("--pseudocount", type=non_negative_float, default=1.0, metavar="C",
                      help="total pseudocount per matrix column, spread by the background "
                           "(default: 1)")
    scan.add_argument("--background", type=_background, default="uniform",
                      metavar="uniform|genome|A,C,G,T",
                      help="background frequencies: uniform (default), each genome's own "
                           "composition, or four numbers")
    scan.add_argument("--max-hits-per-kb", type=positive_float, default=None, metavar="F",
                      help="drop motifs with more hits than this per kb (both strands; "
                           "paper 001's frequency filter; default: keep all)")
    scan.add_argument("--chunk-size", type=positive_int, default=1 << 20, metavar="NT",
                      help="bases scanned at a time (bounds memory; default: 1048576)")
    scan.add_argument("--force", action="store_true", help="replace existing outputs")
    scan.set_defaults(func=run_scan)
    needs(scan, "motifs")


def _background(text: str):
    if text in ("uniform", "genome"):
        return text
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"give uniform, genome or 4 numbers A,C,G,T, got {text!r}")
    values = [positive_float(part) for part in parts]
    if abs(sum(values) - 1) > 1e-3:
        raise argparse.ArgumentTypeError(f"4 positive frequencies summing to 1, got {text!r}")
    return tuple(v / sum(values) for v in values)


def run_scan(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.motifs import MotifScanSettings, scan_motifs

    settings = MotifScanSettings(
        jaspar=args.jaspar, motif_files=args.motifs or (), jaspar_release=args.jaspar_release,
        pvalue=args.pvalue, pseudocount=args.pseudocount, background=args.background,
        max_hits_per_kb=args.max_hits_per_kb, chunk_size=args.chunk_size)
    result = scan_motifs(args.genome, settings, out=args.out, force=args.force,
                         summary=args.summary)
    print(f"wrote {result.hits_written:,} hits of {len(result.summaries) - result.dropped:,} "
          f"motifs ({result.dropped:,} dropped) over {result.scanned_nt:,} nt to {result.out}; "
          f"summary {result.summary}", file=sys.stderr)
    return 0
