"""``dnatlas figures``: regenerate the report's figure analogues (see
:mod:`dnatlas.pipelines.figures`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dnatlas.cli._model_input import (
    add_model_arg,
    module_doc,
    needs,
    non_negative_int,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("figures", help="regenerate the report's figure analogues",
                              description=module_doc("dnatlas.pipelines.figures"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arg(p)
    p.add_argument("--out", type=Path, default=Path("docs/figures"))
    p.add_argument("--layer", type=non_negative_int, default=None,
                   help="0-based layer for single-layer figures [the report's 8/12 depth]")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch folder for activations (large) [OUT/work]")
    p.add_argument("--quick", action="store_true",
                   help="neuron catalog on the first 400 kb only (minutes instead of ~20)")
    p.add_argument("--force", action="store_true",
                   help="write into OUT even when it holds files this command does not write")
    p.set_defaults(func=run)
    needs(p, "analysis")


def run(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.figures import report_figures

    report_figures(args.model, args.out, args.layer, args.work, args.quick, force=args.force)
    return 0
