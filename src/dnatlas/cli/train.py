"""``dnatlas train``: train DNAtlas (or the Transformer baseline) on a genome store."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on a genome store (prefix with torchrun for multi-GPU)",
        description="Train DNAtlas on the train split of a genome store. Multi-GPU / multi-node: "
                    "torchrun --nproc_per_node=N -m dnatlas train ...")
    p.add_argument("--config", default="tiny",
                   help="preset (tiny, small, thin, wide) or a YAML file [tiny]")
    p.add_argument("--data", required=True, help="genome store (dnatlas data build)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, metrics, final model")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set steps=500 --set model_overrides.n_layers=6")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue from the run's last checkpoint")
    mode.add_argument("--force", action="store_true",
                      help="replace an earlier run in --out (removes only the files a run "
                           "writes: model/, checkpoint.pt, metrics.csv, train_config.json, "
                           "TensorBoard events)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.train import TrainSettings, train_model

    settings = TrainSettings(config=args.config, overrides=args.overrides, device=args.device,
                             progress=not args.no_progress)
    result = train_model(args.data, settings, out=args.out, force=args.force,
                         resume=args.resume)
    if result.final_bits_per_nt is not None:
        print(f"step {result.step}: val {result.final_bits_per_nt:.4f} bits/nt")
    print(f"model saved to {result.out / 'model'}")
    return 0
