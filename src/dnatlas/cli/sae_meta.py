"""``dnatlas sae meta``: a meta-SAE on an SAE's decoder rows, with a random-dictionary control.

Registered by :mod:`dnatlas.cli.sae` (``add_meta``); calls
:func:`dnatlas.pipelines.meta_sae.train_meta_sae`.
"""

from __future__ import annotations

import argparse
import sys

from dnatlas.cli._model_input import add_device_arg, positive_int


def add_meta(sub) -> None:
    """Add the ``meta`` subcommand to the ``dnatlas sae`` subparsers."""
    p = sub.add_parser("meta", help="train a meta-SAE on an SAE's decoder",
                       description="Train a meta-SAE on the unit-normalised decoder rows of an "
                                   "SAE and the same meta-SAE on a random dictionary of the "
                                   "same shape; report the decoder variance each explains and "
                                   "write each meta-latent's children (CSV) and a hierarchy "
                                   "(JSON).")
    p.add_argument("--sae", required=True, metavar="DIR",
                   help="base SAE: a SAELens folder, or 'default' (the bundled model's SAE)")
    p.add_argument("--preset", default="saebench", choices=["saebench", "decode-glm"],
                   help="saebench: BatchTopK, width 0.25 x rows, k 4, rows with replacement; "
                        "decode-glm: JumpReLU, 128 meta-latents, matched latents only "
                        "(default saebench)")
    p.add_argument("--latents", metavar="IDS|FILE",
                   help="train on these base latents: '1,5,9' or a file of ids")
    p.add_argument("--concepts", metavar="CSV",
                   help="concept-evaluation table: labels children; selects the matched "
                        "latents for --train-on matched")
    p.add_argument("--dictionary", metavar="NAME",
                   help="the table's dictionary value of this SAE (default: its only SAE)")
    p.add_argument("--concept-split", default="test", metavar="SPLIT",
                   help="split whose rows match latents (default test)")
    p.add_argument("--concept-strand", metavar="STRAND",
                   help="strand rows of the table (+, -, both; default both when present)")
    p.add_argument("--concept-column", default="f1_per_element", metavar="COL",
                   help="score column (default f1_per_element)")
    p.add_argument("--min-score", type=float, default=0.5, metavar="F",
                   help="a latent matches when its best score is above this (default 0.5)")
    p.add_argument("--train-on", choices=["all", "matched"],
                   help="all latents or the matched ones (default: the preset's)")
    p.add_argument("--width", type=positive_int, help="meta-latents (default: the preset's)")
    p.add_argument("--k", type=positive_int, help="active meta-latents per row (batchtopk)")
    p.add_argument("--l0", type=float, help="L0 coefficient (jumprelu)")
    p.add_argument("--steps", type=positive_int, help="training steps (default: the preset's)")
    p.add_argument("--batch-size", type=positive_int, help="rows per step")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--seed", type=int, help="seed of weights, batches and the random dictionary")
    add_device_arg(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--force", action="store_true", help="replace the outputs in a used --out")
    p.set_defaults(func=run_meta)


def run_meta(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.meta_sae import ConceptFilter, MetaSAESettings, train_meta_sae

    settings = MetaSAESettings(preset=args.preset, width=args.width, k=args.k, l0=args.l0,
                               steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                               seed=args.seed, train_on=args.train_on)
    concepts = None if args.concepts is None else ConceptFilter(
        args.concepts, args.dictionary, args.concept_split, args.concept_column, args.min_score,
        strand=args.concept_strand)
    result = train_meta_sae(args.sae, args.out, settings, latents=args.latents,
                            concepts=concepts, device=args.device, force=args.force)
    dec, rnd = result.decoder, result.random
    print(f"{'':<16}{'decoder':>12}{'random':>12}")
    for key in dec:
        print(f"{key:<16}{dec[key]:>12.4g}{rnd[key]:>12.4g}")
    for name, path in result.paths.items():
        print(f"{name:<16}{path}")
    for text in result.warnings:
        print(f"dnatlas: warning: {text}", file=sys.stderr)
    return 0
