"""``dnatlas data select`` and ``dnatlas data fetch``: the report's dataset for real users.

``add_commands`` is called by :mod:`dnatlas.cli.data` with the ``data`` subparsers.

Typical use::

    dnatlas data select --gtdb-metadata bac120_metadata_r220.tsv.gz --out selection.tsv
    dnatlas data fetch selection.tsv --out genomes/
    dnatlas data build --manifest genomes/manifest.tsv ...
"""

from __future__ import annotations

import argparse
import sys

from dnatlas.cli._model_input import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)


def _csv_list(text: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``; ``""`` or ``"any"`` -> ``()`` (no filter)."""
    if text.strip().lower() in ("", "any"):
        return ()
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _warn(message: str) -> None:
    print(f"dnatlas: warning: {message}", file=sys.stderr)


def _run_select(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.data import SelectCriteria, select_gtdb_genomes

    criteria = SelectCriteria(
        taxa=args.taxon,
        max_ambiguous_bases=args.max_ambiguous_bases,
        min_completeness=args.min_completeness,
        max_contamination=args.max_contamination,
        representatives_only=args.representatives_only,
        assembly_levels=args.assembly_levels,
    )
    result = select_gtdb_genomes(args.gtdb_metadata, criteria, out=args.out, force=args.force,
                                 warn=_warn)
    print(result.summary.format_table())
    print(f"wrote {args.out}")
    return 0


def _run_fetch(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.data import FetchSettings, fetch_ncbi_genomes

    settings = FetchSettings(base_url=args.base_url, retries=args.retries, jobs=args.jobs,
                             backoff=args.backoff, timeout=args.timeout,
                             progress=False if args.no_progress else None)
    result = fetch_ncbi_genomes(args.manifest, settings, out=args.out)
    print(f"{len(result.downloaded)} genome(s) downloaded ({result.bytes_downloaded:,} bytes), "
          f"{len(result.skipped)} already present and verified")
    print(f"wrote {result.manifest}")
    return 0


def add_commands(subparsers) -> None:
    """Add ``select`` and ``fetch`` to the ``dnatlas data`` subcommand group."""
    from dnatlas.pipelines.data import DEFAULT_ASSEMBLY_LEVELS

    sel = subparsers.add_parser(
        "select",
        help="select GTDB genomes with the report's criteria (Appendix C)",
        description=(
            "Select genomes from a GTDB bac120_metadata table (.tsv or .tsv.gz) with the "
            "report's criteria (Appendix C, Table 2; every default below is the report's) "
            "and write a manifest TSV for 'dnatlas data fetch'. Prints how many genomes "
            "each criterion removed, in the order listed."),
    )
    sel.add_argument("--gtdb-metadata", required=True, metavar="TSV",
                     help="GTDB bac120_metadata file, e.g. bac120_metadata_r220.tsv.gz")
    sel.add_argument("--out", required=True, metavar="MANIFEST",
                     help="manifest TSV to write")
    sel.add_argument("--taxon", type=_csv_list, default=("Enterobacterales",), metavar="NAMES",
                     help="keep genomes whose GTDB taxonomy has this rank name, e.g. "
                          "Enterobacterales or o__Enterobacterales; comma-separated for "
                          "any of several; 'any' for no filter (default: Enterobacterales)")
    sel.add_argument("--max-ambiguous-bases", type=non_negative_int, default=0, metavar="N",
                     help="keep genomes with at most N ambiguous bases (default: 0)")
    sel.add_argument("--min-completeness", type=float, default=98.0, metavar="PCT",
                     help="keep genomes with CheckM2 completeness strictly above PCT "
                          "(default: 98)")
    sel.add_argument("--max-contamination", type=float, default=1.0, metavar="PCT",
                     help="keep genomes with CheckM2 contamination strictly below PCT "
                          "(default: 1)")
    rep = sel.add_mutually_exclusive_group()
    rep.add_argument("--representatives-only", dest="representatives_only",
                     action="store_true", default=True,
                     help="keep GTDB species representatives only (default)")
    rep.add_argument("--all-genomes", dest="representatives_only", action="store_false",
                     help="keep every genome, representative of its species or not")
    sel.add_argument("--assembly-levels", type=_csv_list, default=DEFAULT_ASSEMBLY_LEVELS,
                     metavar="LEVELS",
                     help="comma-separated NCBI assembly levels to keep; 'any' for all "
                          "(default: \"Complete Genome,Chromosome\")")
    sel.add_argument("--force", action="store_true", help="replace an existing MANIFEST")
    sel.set_defaults(func=_run_select)

    fet = subparsers.add_parser(
        "fetch",
        help="download a manifest's genomes from NCBI (resumable, checksum-verified)",
        description=(
            "Download each manifest genome's *_genomic.fna.gz from NCBI's genomes site, "
            "verify it against md5checksums.txt, and write OUT/manifest.tsv (the input "
            "manifest plus a 'path' column) for 'dnatlas data build --manifest'. Partial "
            "downloads resume; verified files are skipped on a re-run."),
    )
    fet.add_argument("manifest", metavar="MANIFEST",
                     help="manifest TSV with a genome_id column (from 'dnatlas data select')")
    fet.add_argument("--out", required=True, metavar="DIR", help="output directory")
    fet.add_argument("--base-url", default=None, metavar="URL",
                     help="NCBI base URL (default: $DNATLAS_NCBI_BASE_URL or "
                          "https://ftp.ncbi.nlm.nih.gov)")
    fet.add_argument("--retries", type=non_negative_int, default=5, metavar="N",
                     help="retries per request after a connection error, 5xx answer, "
                          "truncated download or checksum mismatch (default: 5)")
    fet.add_argument("--jobs", type=positive_int, default=4, metavar="N",
                     help="parallel downloads (default: 4)")
    fet.add_argument("--backoff", type=non_negative_float, default=1.0, metavar="SECONDS",
                     help="wait before the first retry, doubled after each (default: 1)")
    fet.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                     help="network timeout (default: 60)")
    fet.add_argument("--no-progress", action="store_true", help="hide progress bars")
    fet.set_defaults(func=_run_fetch)
