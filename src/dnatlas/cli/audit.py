"""``dnatlas audit``: trace a feature's windows to the training data, and measure k-mer
leakage between a store's splits (:mod:`dnatlas.pipelines.audit`).

* ``dnatlas audit index (--store STORE | --genome GENOME...) --out DIR``
* ``dnatlas audit search (--windows TABLE | --fasta FASTA) (--index DIR | --store STORE |
  --genome GENOME...) --out DIR``
* ``dnatlas audit leakage STORE --out TSV``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import DeprecatedSpelling, float_in, needs, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit", help="training-data audit: where windows occur, split leakage",
        description="Search a feature's top windows (or any sequences) in a genome store or "
                    "FASTA set, summarise how they spread over genomes, loci and splits, and "
                    "measure k-mer leakage between a store's training and held-out splits.")
    commands = parser.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    _add_index(commands)
    _add_search(commands)
    _add_leakage(commands)


_identity = float_in(0, 1, low_open=True)


def _kmer_k(text: str) -> int:
    value = positive_int(text)
    if value > 32:
        raise argparse.ArgumentTypeError(f"k must be 1..32, got {text}")
    return value


def _sources(p: argparse.ArgumentParser, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--store", type=Path, metavar="STORE",
                       help="genome store (from 'dnatlas data build'): train and val splits")
    group.add_argument("--genome", "-g", dest="genomes", nargs="+", type=Path,
                       metavar="GENOME", help="genome files (FASTA/GenBank, gzip allowed); "
                                              "genome ID = file name")
    group.add_argument("--genomes", dest="genomes", nargs="+", type=Path,
                       action=DeprecatedSpelling, new="--genome", help=argparse.SUPPRESS)


def _index_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=_kmer_k, default=16, metavar="K",
                   help="seed k-mer length, 1..32 (default 16)")
    p.add_argument("--stride", type=positive_int, default=4, metavar="N",
                   help="index every N-th position; exact matches of K+N-1 nt are always "
                        "seeded (default 4)")


def _add_index(commands) -> None:
    p = commands.add_parser(
        "index", help="build and save the k-mer index of a store or FASTA set",
        description="Index the canonical k-mers of a genome store or FASTA files once and save "
                    "them (keys.npy, positions.npy, meta.json keyed by the sequences' "
                    "sha256). An up-to-date index is left as it is.")
    _sources(p, required=True)
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                   help="index folder")
    _index_params(p)
    p.add_argument("--blast", action="store_true",
                   help="also make a BLAST database (needs makeblastdb)")
    p.add_argument("--force", action="store_true", help="replace another index in DIR")
    p.set_defaults(func=run_index)
    needs(p, "analysis", modules=("scipy",))  # the hit summary's connected loci


def _add_search(commands) -> None:
    p = commands.add_parser(
        "search", help="find windows or sequences in a store / FASTA set",
        description="Search each query on both strands (exact k-mer seeds, ungapped "
                    "extension; or blastn) and write hits.tsv (genome, record, 1-based "
                    "position, strand, identity, split), features.tsv and features.json "
                    "(per feature: genomes, loci, copies, train/val sharing).")
    queries = p.add_mutually_exclusive_group(required=True)
    queries.add_argument("--windows", type=Path, metavar="TABLE",
                         help="top windows CSV/TSV: the neuron catalog's top_windows.csv, or "
                              "feature,record,start,end,strand[,sequence] rows")
    queries.add_argument("--fasta", type=Path, metavar="FASTA", help="query sequences")
    p.add_argument("--index", type=Path, metavar="DIR",
                   help="index folder (with --store/--genomes: built there when missing, "
                        "rebuilt when stale)")
    _sources(p, required=False)
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                   help="output folder (hits.tsv, features.tsv, features.json)")
    p.add_argument("--backend", choices=("kmer", "blast"), default="kmer",
                   help="kmer (default) or blast (blastn, when installed)")
    p.add_argument("--min-identity", type=_identity, default=0.9, metavar="F",
                   help="smallest identity (matches / aligned) of a hit (default 0.9)")
    p.add_argument("--min-length", type=positive_int, default=50, metavar="NT",
                   help="smallest aligned length, or the whole query if shorter (default 50)")
    p.add_argument("--max-occurrences", type=positive_int, default=1000, metavar="N",
                   help="k-mers found more often in the index seed nothing (default 1000)")
    p.add_argument("--one-based", action="store_true",
                   help="window start/end are 1-based closed (default: 0-based half-open, "
                        "as dnatlas writes them)")
    _index_params(p)
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run_search)
    needs(p, "analysis", modules=("scipy",))  # the hit summary's connected loci


def _add_leakage(commands) -> None:
    p = commands.add_parser(
        "leakage", help="share of held-out k-mers present in the training split",
        description="Per held-out genome and record: the share of its distinct canonical "
                    "k-mers (N-containing ones skipped) that occur in the store's training "
                    "split, and the share of its k-mer positions.")
    p.add_argument("store", type=Path, metavar="STORE", help="genome store")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="TSV", help="leakage TSV")
    p.add_argument("--k", type=_kmer_k, default=32, metavar="K", help="k-mer length (default 32)")
    p.add_argument("--force", action="store_true", help="replace an existing TSV")
    p.set_defaults(func=run_leakage)
    needs(p, "analysis", modules=("scipy",))  # the hit summary's connected loci


def run_index(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.audit import audit_index

    done = audit_index(args.out, store=args.store, genomes=args.genomes or (), k=args.k,
                       stride=args.stride, blast=args.blast, force=args.force)
    print(f"{done.action}: {args.out} ({done.n_entries:,} {done.k}-mers of "
          f"{done.n_bases:,} nt, stride {done.stride}; {done.seconds:.1f} s)",
          file=sys.stderr)
    return 0


def run_search(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.audit import audit_search

    done = audit_search(args.out, windows=args.windows, fasta=args.fasta, index=args.index,
                        store=args.store, genomes=args.genomes or (), backend=args.backend,
                        k=args.k, stride=args.stride, min_identity=args.min_identity,
                        min_length=args.min_length, max_occurrences=args.max_occurrences,
                        one_based=args.one_based, force=args.force)
    print(f"{done.queries:,} queries, {done.hits:,} hits, {done.features:,} "
          f"features (index {done.index}; search {done.search_seconds:.1f} s); "
          f"wrote {', '.join(done.outputs)}", file=sys.stderr)
    return 0


def run_leakage(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.audit import audit_leakage, genome_totals

    rows = audit_leakage(args.store, args.out, k=args.k, force=args.force)
    for total in genome_totals(rows):
        share = "NA" if total.shared_fraction is None else f"{total.shared_fraction:.4f}"
        print(f"{total.genome}\tshared_fraction={share}\t"
              f"distinct_kmers={total.distinct_kmers:,}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
