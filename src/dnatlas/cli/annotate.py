"""``dnatlas annotate --genome GENOME --out GFF3``: annotate a genome with real tools.

The tools' own modules (pyrodigal, pyaragorn, pybarrnap) are imported only when run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import add_genome_arg, needs
from dnatlas.pipelines.annotate import TOOLS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "annotate",
        help="annotate a genome (CDS, tRNA/tmRNA, rRNA, terminators, CRISPR) as GFF3",
        description=(
            "Annotate a genome with pyrodigal (CDS), pyaragorn (tRNA, tmRNA), pybarrnap "
            "(rRNA), TransTermHP (terminators) and pilercr (CRISPR arrays), and write the "
            "features as GFF3. TransTermHP and pilercr are used when on PATH; a missing "
            "tool is reported and skipped."),
    )
    add_genome_arg(parser, required=True, old=(), positional=True)
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="GFF3",
                        help="output GFF3 file")
    parser.add_argument("--tools", type=_tool_list, default=list(TOOLS), metavar="LIST",
                        help=f"comma-separated tools to run (default: {','.join(TOOLS)})")
    parser.add_argument("--expterm", type=Path, default=None, metavar="PATH",
                        help="TransTermHP's expterm.dat (default: found next to transterm)")
    parser.add_argument("--transterm-min-conf", type=int, default=76, metavar="N",
                        help="TransTermHP's --min-conf: keep terminators of confidence >= N "
                             "(0-100; default 76, TransTermHP's own)")
    parser.add_argument("--force", action="store_true", help="replace an existing GFF3")
    parser.set_defaults(func=run)
    needs(parser, when=_python_tools_extra)


#: the annotate extra's module of each Python tool
TOOL_MODULES = {"prodigal": "pyrodigal", "aragorn": "pyaragorn", "barrnap": "pybarrnap"}


def _python_tools_extra(args: argparse.Namespace) -> tuple[str, ...]:
    """The annotate extra when a tool asked for (by default: all) is one of its modules;
    a missing one is an error, not a skipped track (TransTermHP and pilercr, programs on
    PATH, are still skipped with a note when absent)."""
    from dnatlas import extras

    modules = tuple(TOOL_MODULES[t] for t in args.tools if t in TOOL_MODULES)
    if modules:
        extras.require("annotate", what=f"dnatlas annotate --tools {','.join(args.tools)}",
                       modules=modules)
    return ()


def _tool_list(text: str) -> list[str]:
    tools = [tool.strip() for tool in text.split(",") if tool.strip()]
    unknown = [tool for tool in tools if tool not in TOOLS]
    if unknown or not tools:
        problem = f"unknown tool {unknown[0]!r}" if unknown else "no tool given"
        raise argparse.ArgumentTypeError(f"{problem} (choose from {','.join(TOOLS)})")
    return tools


def run(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.annotate import AnnotateSettings, annotate

    settings = AnnotateSettings(tools=args.tools, expterm=args.expterm,
                                min_terminator_confidence=args.transterm_min_conf)
    result = annotate(args.genome, settings, out=args.out, force=args.force)
    print(f"wrote {len(result.features):,} features to {args.out}", file=sys.stderr)
    return 0
