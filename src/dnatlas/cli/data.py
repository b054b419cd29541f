"""``dnatlas data``: build and inspect genome stores.

``dnatlas data build INPUT... --out STORE`` packs FASTA/GenBank genomes into a store (see
:mod:`dnatlas.genome.store`); ``dnatlas data info STORE`` summarises one. The ``select`` and
``fetch`` subcommands come from :mod:`dnatlas.cli.data_remote`.
"""

from __future__ import annotations

import argparse
import json

from dnatlas.errors import InputError


def register(subparsers) -> None:
    """Add the ``data`` command group to the top-level ``dnatlas`` subparsers."""
    parser = subparsers.add_parser("data", help="build and inspect genome stores",
                                   description="Build and inspect genome stores.")
    parser.set_defaults(func=lambda args: _print_help(parser))
    data_subparsers = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    _add_build(data_subparsers)
    _add_info(data_subparsers)

    from dnatlas.cli import data_remote

    data_remote.add_commands(data_subparsers)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_build(subparsers) -> None:
    p = subparsers.add_parser(
        "build", help="pack genomes into a store",
        description="Pack FASTA/GenBank genomes (plain, gzip or bgzip) into a genome store: "
                    "tokens.npy, segments.tsv and store.json.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="FASTA or GenBank files, or names of bundled genomes (e.g. "
                        "ecoli_k12_mg1655); the genome ID is the file name without its "
                        "extensions")
    p.add_argument("--out", required=True, metavar="STORE", help="store directory to create")
    p.add_argument("--manifest", metavar="TSV",
                   help="TSV with columns genome_id, path (relative to the TSV), optional "
                        "taxonomy and any others")
    p.add_argument("--val-genomes", default="", metavar="ID,...",
                   help="comma-separated genome IDs held out entirely for validation (an "
                        "unambiguous accession prefix such as GCF_000006945.2 will do)")
    p.add_argument("--val-fraction", type=float, default=0.0, metavar="F",
                   help="fraction of every other record held out as one block (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out block positions")
    p.add_argument("--force", action="store_true",
                   help="replace an existing store (only a folder holding nothing but the "
                        "store's own files)")
    p.set_defaults(func=run_build)


def _add_info(subparsers) -> None:
    p = subparsers.add_parser("info", help="summarise a genome store",
                              description="Genomes, records, lengths, GC, N count and splits "
                                          "of a genome store.")
    p.add_argument("store", metavar="STORE", help="store directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.data import StoreSettings, build_genome_store

    if not args.inputs and not args.manifest:
        raise InputError("give INPUT files, --manifest, or both")
    val_genomes = [g.strip() for g in args.val_genomes.split(",") if g.strip()]
    settings = StoreSettings(val_genomes=val_genomes, val_fraction=args.val_fraction,
                             seed=args.seed)
    result = build_genome_store(args.inputs, settings, out=args.out, force=args.force,
                                manifest=args.manifest)
    print(f"built {result.store.path}")
    print(format_info(result.info))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.data import genome_store_info

    info = genome_store_info(args.store)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def format_info(info: dict) -> str:
    """A readable table of :meth:`GenomeStore.info`: one row per genome, then totals."""
    header = ("genome", "records", "length", "train", "val", "GC %", "N", "taxonomy")
    rows = [(g["id"], g["n_records"], g["length"], g["splits"]["train"], g["splits"]["val"],
             _percent(g["gc"]), g["n_count"], g["taxonomy"]) for g in info["genomes"]]
    rows.append(("total", info["n_records"], info["length"], info["splits"]["train"]["length"],
                 info["splits"]["val"]["length"], _percent(info["gc"]), info["n_count"], ""))
    lines = _table(header, rows, numeric=range(1, 7))
    for split in ("train", "val"):
        s = info["splits"][split]
        lines.append(f"{split}: {s['length']:,} bases in {s['n_segments']:,} segments of "
                     f"{s['n_records']:,} records, GC {_percent(s['gc'])}%, N {s['n_count']:,}")
    return "\n".join(lines)


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}"


def _table(header: tuple, rows: list[tuple], numeric) -> list[str]:
    """Text table lines; integers get thousands separators and numeric columns align right."""
    cells = [[f"{v:,}" if isinstance(v, int) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    numeric = set(numeric)

    def line(values):
        return "  ".join(v.rjust(w) if i in numeric else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in cells[:-1]), rule, line(cells[-1])]
