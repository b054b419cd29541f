"""``dnatlas motifs scan GENOME... --jaspar CORE[:TAXON] | --motifs FILE... --out BED``.

Scans genomes for position-weight-matrix hits on both strands (lightmotif) and writes a
sorted BED6 and a per-motif TSV summary (see :mod:`dnatlas.motifs.bed_out`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    scan.add_argument("genomes", nargs="+", metavar="GENOME",
                      help="FASTA or GenBank files (optionally gzipped) or bundled genome names")
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
    scan.add_argument("--pvalue", type=_probability, default=1e-4, metavar="P",
                      help="per-window p-value threshold (default: 1e-4)")
    scan.add_argument("--pseudocount", type=_non_negative, default=1.0, metavar="C",
                      help="total pseudocount per matrix column, spread by the background "
                           "(default: 1)")
    scan.add_argument("--background", type=_background, default="uniform",
                      metavar="uniform|genome|A,C,G,T",
                      help="background frequencies: uniform (default), each genome's own "
                           "composition, or four numbers")
    scan.add_argument("--max-hits-per-kb", type=_positive, default=None, metavar="F",
                      help="drop motifs with more hits than this per kb (both strands; "
                           "paper 001's frequency filter; default: keep all)")
    scan.add_argument("--chunk-size", type=int, default=1 << 20, metavar="NT",
                      help="bases scanned at a time (bounds memory; default: 1048576)")
    scan.add_argument("--force", action="store_true", help="replace existing outputs")
    scan.set_defaults(func=run_scan)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _probability(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _background(text: str):
    if text in ("uniform", "genome"):
        return text
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"give uniform, genome or 4 numbers A,C,G,T, got {text!r}")
    values = [_number(part) for part in parts]
    if min(values) <= 0 or abs(sum(values) - 1) > 1e-3:
        raise argparse.ArgumentTypeError(f"4 positive frequencies summing to 1, got {text!r}")
    return tuple(v / sum(values) for v in values)


def run_scan(args: argparse.Namespace) -> int:
    from dnatlas.errors import InputError
    from dnatlas.files import check_writable_file
    from dnatlas.genome.sources import resolve_bundled_genome
    from dnatlas.motifs import jaspar_motifs, read_motif_files, scan_genomes
    from dnatlas.motifs.bed_out import default_summary_path

    if args.chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    out = check_writable_file(args.out, "BED output", force=args.force)
    summary = args.summary or default_summary_path(out)
    check_writable_file(summary, "summary output", force=args.force)
    genomes = [resolve_bundled_genome(genome) for genome in args.genomes]
    if args.jaspar:
        motifs = jaspar_motifs(args.jaspar, release=args.jaspar_release)
    else:
        motifs = read_motif_files(args.motifs)
    result = scan_genomes(genomes, motifs, out, summary=summary, pvalue=args.pvalue,
                          pseudocount=args.pseudocount, background=args.background,
                          max_hits_per_kb=args.max_hits_per_kb, chunk_size=args.chunk_size)
    dropped = sum(not s.kept for s in result.summaries)
    print(f"wrote {result.hits_written:,} hits of {len(motifs) - dropped:,} motifs "
          f"({dropped:,} dropped) over {result.scanned_nt:,} nt to {out}; summary {summary}",
          file=sys.stderr)
    return 0
