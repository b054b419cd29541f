"""``dnatlas demo``: the main job on the bundled data (see :mod:`dnatlas.pipelines.demo`)."""

from __future__ import annotations

import argparse

from dnatlas.cli._model_input import (
    module_doc,
    needs,
    positive_int,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the main job on the bundled genomes and model",
                              description=module_doc("dnatlas.pipelines.demo"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder [runs/demo]")
    p.add_argument("--train-steps", type=positive_int, default=30,
                   help="steps of the brief training run")
    p.add_argument("--eval-windows", type=positive_int, default=24)
    p.add_argument("--skip-analysis", action="store_true")
    p.add_argument("--skip-atlas", action="store_true",
                   help="stop before the SAE, its atlas and the explorer")
    p.add_argument("--force", action="store_true",
                   help="write into OUT even when it holds files the demo does not write")
    p.set_defaults(func=run)
    needs(p, when=lambda args: () if args.skip_analysis else ("analysis",))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dnatlas.pipelines.demo import run_demo

    results = run_demo(args.out, args.train_steps, args.eval_windows,
                       analysis=not args.skip_analysis, force=args.force,
                       atlas=not args.skip_atlas)
    if "atlas" in results:
        from dnatlas.cli.explore import export_static

        print("\n== 7. the feature explorer of that atlas, as a static site ==", flush=True)
        index = export_static(results["atlas"]["atlas"], [results["atlas"]["sae"]],
                              Path(args.out) / "explorer")
        print(f"open {index} in a browser (or: dnatlas explore --atlas "
              f"{results['atlas']['atlas']} --sae {results['atlas']['sae']} for the live one)")
    return 0
