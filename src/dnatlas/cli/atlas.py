"""``dnatlas atlas``: the feature atlas (``build``: one streaming pass that describes every
feature of the SAEs and neurons of a model on a genome, into one DuckDB folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import add_device_arg, add_model_arg, non_negative_int, positive_int
from dnatlas.cli.concepts import (
    _add_label_args,
    _label_spec,
    _split_list,
    _thresholds,
    add_pass_args,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("atlas", help="the feature atlas: every feature described")
    sub = p.add_subparsers(dest="atlas_command", metavar="COMMAND")
    p.set_defaults(func=lambda args: p.print_help() or 2)
    b = sub.add_parser(
        "build", help="build the atlas of a model's SAE features and neurons on a genome",
        description="One streaming pass of the model over the genome (both strands) "
                    "computes, for every feature of every dictionary: statistics, binned "
                    "maxima along the genome, top and quantile examples, concept counts and "
                    "scores with controls, landmark profiles, motifs, structure and a "
                    "description. With no arguments: the bundled model, SAE and genome, "
                    "into runs/atlas. A killed build resumes; an atlas of other inputs is "
                    "refused unless --force.")
    add_model_arg(b)
    _add_label_args(b)
    add_pass_args(b, neurons_none=True)
    b.add_argument("--top-k", type=non_negative_int, default=20, metavar="N",
                   help="top examples per feature (default 20)")
    b.add_argument("--quantile-k", type=non_negative_int, default=4, metavar="N",
                   help="examples per activation range (default 4)")
    b.add_argument("--tss", metavar="FILE",
                   help="a BED or GFF3 of transcription start sites: adds the 'tss' landmark "
                        "to every feature's landmark profile")
    b.add_argument("--meta-sae", metavar="DIR",
                   help="a 'dnatlas sae meta' folder of the SAE: meta-SAE parents and "
                        "siblings of its features")
    b.add_argument("--landmark-flank", type=positive_int, default=100, metavar="NT",
                   help="nt on each side of a landmark in its profile (default 100)")
    add_device_arg(b)
    b.add_argument("--out", "-o", type=Path, default=Path("runs/atlas"), metavar="DIR",
                   help="the atlas folder (default runs/atlas)")
    b.add_argument("--force", action="store_true", help="replace an atlas of other inputs")
    b.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over instead of resuming an unfinished build in DIR")
    b.set_defaults(func=run_build)


def _annotations(args):
    items = _split_list(args.annotations)
    if items == ["none"]:
        return "none"
    return items or None      # None: the library's default


def run_build(args: argparse.Namespace) -> int:
    from dnatlas.errors import InputError
    from dnatlas.pipelines.atlas import AtlasSettings, build_atlas

    if args.random_init_sae and not args.random_init:
        raise InputError("--random-init-sae needs --random-init")
    neurons = _split_list(args.neurons) if args.neurons is not None else None
    if neurons == ["none"]:
        neurons = []
    saes = args.sae
    if not saes and neurons is None and args.model in (None, "default"):
        saes = ["default"]
    settings = AtlasSettings(
        thresholds=_thresholds(args.thresholds), valid=_split_list(args.valid) or None,
        test=_split_list(args.test) or None, sample_nt=args.sample, edge=args.edge,
        chunk_size=args.chunk_size, batch_size=args.batch_size,
        shuffled=not args.no_shuffled, seed=args.seed, labels=_label_spec(args),
        top_k=args.top_k, top_pool=max(2 * args.top_k, 1), quantile_k=args.quantile_k,
        random_init=args.random_init, tss=args.tss, meta_sae=args.meta_sae,
        landmark_flank=args.landmark_flank)
    result = build_atlas(args.model, args.genome, _annotations(args), saes=saes,
                         neurons=neurons, settings=settings, out=args.out, force=args.force,
                         resume=args.resume, device=args.device,
                         random_init_saes=args.random_init_sae)
    if result.reused:
        print(f"{result.out}: the atlas of these inputs is already built (--force rebuilds)",
              file=sys.stderr)
        return 0
    rows = result.manifest.get("rows", {})
    print(f"atlas: {', '.join(result.manifest.get('dictionaries', []))}; "
          + ", ".join(f"{n} {rows[n]:,}" for n in ("features", "examples", "concept_counts")
                      if n in rows))
    times = result.timings
    print("time: " + ", ".join(f"{k} {times[k]:.1f} s" for k in
                               ("maxima", "forward", "encode", "accumulate", "finish", "write",
                                "total") if k in times))
    print(f"wrote {result.out}", file=sys.stderr)
    return 0
