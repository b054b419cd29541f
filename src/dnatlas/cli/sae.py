"""``dnatlas sae``: train, evaluate and cache sparse autoencoders on model activations.

``dnatlas sae train --model M --data DATA --layer L --arch A --expansion E --out DIR``
streams activations of model M over windows of DATA through a shuffle buffer and trains an
SAE on ``blocks.L.SITE`` (several comma-separated layers train one SAE each, from one
pass, into DIR/blocks.L.SITE/). ``dnatlas sae eval --sae DIR --model M --data DATA``
reports L0, FVU, dead/dense features and the loss recovered when the SAE is spliced into
the model. ``dnatlas sae cache`` writes activations to disk shards, which ``--data`` then
accepts in place of a genome.

Models (``--model``): the one spec of every command (:mod:`dnatlas.models.spec`), default
the bundled model. Data (``--data``): a genome store folder (``dnatlas data
build``), a FASTA file (plain or gzip), or an activation cache folder (``sae cache``).
Layers are 0-based (paper 001's "third layer" of HyenaDNA is ``--layer 2``).
"""

from __future__ import annotations

import argparse
import sys

from dnatlas.cli._model_input import add_device_arg, add_model_arg, positive_int
from dnatlas.cli.sae_meta import add_meta
from dnatlas.pipelines.sae import ARCHITECTURES


def register(subparsers) -> None:
    """Add the ``sae`` command group to the top-level ``dnatlas`` subparsers."""
    parser = subparsers.add_parser("sae", help="train and evaluate sparse autoencoders",
                                   description="Train, evaluate and cache sparse autoencoders "
                                               "on DNA language model activations.")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="sae_command", metavar="SUBCOMMAND")
    _add_train(sub)
    _add_eval(sub)
    _add_cache(sub)
    add_meta(sub)  # dnatlas sae meta (cli/sae_meta.py)


def _add_source_args(p: argparse.ArgumentParser, split: str) -> None:
    add_model_arg(p)
    p.add_argument("--data", required=True, metavar="DATA",
                   help="genome store folder, FASTA file, or activation cache folder")
    p.add_argument("--split", default=split, help=f"genome store split (default {split})")
    p.add_argument("--window", type=positive_int, default=1024, metavar="L",
                   help="window length in nucleotides (default 1024)")
    p.add_argument("--windows-per-batch", type=positive_int, default=8, metavar="N",
                   help="windows per model forward pass (default 8)")
    p.add_argument("--keep-n", action="store_true", help="keep positions whose nucleotide is N")
    p.add_argument("--seed", type=int, default=0, help="seed of windows and shuffles")
    add_device_arg(p)


def _add_key_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layer", required=True, metavar="L[,L...]",
                   help="0-based layer(s); several train one SAE each from one pass")
    p.add_argument("--site", default="residual",
                   help="activation site (default residual; DNAtlas also pre_act, neurons, post_act)")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train SAE(s) on streamed activations",
                       description="Train sparse autoencoders on activations streamed from a model.")
    _add_source_args(p, "train")
    _add_key_args(p)
    p.add_argument("--preset", help="hyperparameter preset, e.g. hyenadna-001 (flags override it)")
    p.add_argument("--arch", choices=ARCHITECTURES, help="architecture")
    p.add_argument("--expansion", type=float, help="d_sae / d_in (default 16)")
    p.add_argument("--k", type=positive_int, help="active features per row (topk, batchtopk)")
    p.add_argument("--l1", type=float, help="L1 coefficient (relu; default 0.1)")
    p.add_argument("--l0", type=float, help="L0 coefficient (jumprelu; default 1)")
    p.add_argument("--steps", type=positive_int, help="training steps (default 10000)")
    p.add_argument("--batch-size", type=positive_int, help="activation rows per step (default 4096)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 4e-4)")
    p.add_argument("--no-normalize", action="store_true",
                   help="do not rescale inputs to E||x||^2 = d_in during training")
    p.add_argument("--buffer-rows", type=positive_int, default=1 << 17, metavar="N",
                   help="shuffle buffer rows per layer (default 131072)")
    p.add_argument("--checkpoint-every", type=positive_int, default=1000, metavar="N")
    p.add_argument("--streams", type=positive_int, metavar="S",
                   help="data-parallel activation streams per batch (default: one per torchrun "
                        "rank; the same S on any number of processes trains the same SAE)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output: the SAELens folder of the SAE, or with several --layer one "
                        "subfolder per hook (e.g. OUT/blocks.2.residual)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.add_argument("--force", action="store_true",
                   help="replace an SAE (or checkpoint) in DIR, and write beside files this "
                        "command does not write")
    p.set_defaults(func=run_train)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained SAE",
                       description="L0, FVU, dead/dense features and MLM loss recovered of an SAE.")
    p.add_argument("--sae", required=True, metavar="DIR", help="SAELens folder")
    _add_source_args(p, "val")
    p.add_argument("--batches", type=positive_int, default=20, metavar="N",
                   help="window batches for the reconstruction metrics (default 20)")
    p.add_argument("--loss-batches", type=int, default=4, metavar="N",
                   help="window batches for the loss recovered (default 4; 0 skips it)")
    p.add_argument("--dense-threshold", type=float, default=0.1, metavar="F",
                   help="firing frequency above which a feature is dense (default 0.1)")
    p.add_argument("--json", metavar="OUT", help="also write all metrics (with per-feature "
                                                 "frequencies) to this JSON file")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run_eval)


def _add_cache(sub) -> None:
    p = sub.add_parser("cache", help="write activations to disk shards",
                       description="Cache activations as safetensors shards with a manifest; "
                                   "re-running resumes, skipping written shards.")
    _add_source_args(p, "train")
    _add_key_args(p)
    p.add_argument("--shards", type=positive_int, required=True, metavar="N", help="number of shards")
    p.add_argument("--batches-per-shard", type=positive_int, default=16, metavar="N",
                   help="window batches per shard (default 16)")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=run_cache)


# ---- commands ---------------------------------------------------------------------------


def _windows(args: argparse.Namespace):
    from dnatlas.pipelines.sae import WindowSettings

    return WindowSettings(args.data, args.split, args.window, args.windows_per_batch,
                          args.keep_n, args.seed, streams=getattr(args, "streams", None))


def run_train(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.sae import SAEHyperparameters, train_sae

    hyper = SAEHyperparameters(preset=args.preset, arch=args.arch, expansion=args.expansion,
                               k=args.k, l1=args.l1, l0=args.l0, steps=args.steps,
                               batch_size=args.batch_size, lr=args.lr,
                               normalize=not args.no_normalize,
                               checkpoint_every=args.checkpoint_every)
    for folder in train_sae(args.model, _windows(args), args.layer, args.out, hyper,
                            site=args.site, buffer_rows=args.buffer_rows, device=args.device,
                            resume=args.resume, force=args.force):
        print(f"saved {folder}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from dnatlas.files import check_writable_file, write_json
    from dnatlas.pipelines.sae import evaluate_sae

    if args.json:
        check_writable_file(args.json, "--json", force=args.force)
    result = evaluate_sae(args.sae, args.model, _windows(args), args.batches,
                          args.loss_batches, args.dense_threshold, args.device)
    width = max(len(k) for k in result.metrics)
    for k, v in result.metrics.items():
        print(f"{k:<{width}}  {v:.6g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    for text in result.warnings:
        print(f"dnatlas: warning: {text}", file=sys.stderr)
    if args.json:
        write_json(args.json, result.to_json())
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.sae import cache_sae_activations

    out = cache_sae_activations(args.model, _windows(args), args.layer, args.out, args.shards,
                                args.batches_per_shard, args.dtype, args.site, args.device)
    print(f"cached {out}")
    return 0
