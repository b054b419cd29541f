"""``dnatlas sae``: train, evaluate and cache sparse autoencoders on model activations.

``dnatlas sae train --model M --data DATA --layer L --arch A --expansion E --out DIR``
streams activations of model M over windows of DATA through a shuffle buffer and trains an
SAE on ``blocks.L.SITE`` (several comma-separated layers train one SAE each, from one
pass, into DIR/blocks.L.SITE/). ``dnatlas sae eval --sae DIR --model M --data DATA``
reports L0, FVU, dead/dense features and the loss recovered when the SAE is spliced into
the model. ``dnatlas sae cache`` writes activations to disk shards, which ``--data`` then
accepts in place of a genome.

Models (``--model``): ``dnatlas:PATH|default``, ``hyenadna:LOCAL_DIR``, ``nt:LOCAL_DIR``,
and ``KIND:...:random-init`` for a freshly initialised copy (see
:mod:`dnatlas.sae.adapters`). Data (``--data``): a genome store folder (``dnatlas data
build``), a FASTA file (plain or gzip), or an activation cache folder (``sae cache``).
Layers are 0-based (paper 001's "third layer" of HyenaDNA is ``--layer 2``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dnatlas.errors import InputError

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".fa.gz", ".fasta.gz", ".fna.gz", ".fas.gz")


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


def _add_source_args(p: argparse.ArgumentParser, split: str) -> None:
    p.add_argument("--model", required=True, metavar="M",
                   help="dnatlas:PATH|default, hyenadna:DIR, nt:DIR, or KIND:...:random-init")
    p.add_argument("--data", required=True, metavar="DATA",
                   help="genome store folder, FASTA file, or activation cache folder")
    p.add_argument("--split", default=split, help=f"genome store split (default {split})")
    p.add_argument("--window", type=int, default=1024, metavar="L",
                   help="window length in nucleotides (default 1024)")
    p.add_argument("--windows-per-batch", type=int, default=8, metavar="N",
                   help="windows per model forward pass (default 8)")
    p.add_argument("--keep-n", action="store_true", help="keep positions whose nucleotide is N")
    p.add_argument("--seed", type=int, default=0, help="seed of windows and shuffles")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")


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
    p.add_argument("--arch", choices=["relu", "topk", "batchtopk", "jumprelu"], help="architecture")
    p.add_argument("--expansion", type=float, help="d_sae / d_in (default 16)")
    p.add_argument("--k", type=int, help="active features per row (topk, batchtopk)")
    p.add_argument("--l1", type=float, help="L1 coefficient (relu; default 0.1)")
    p.add_argument("--l0", type=float, help="L0 coefficient (jumprelu; default 1)")
    p.add_argument("--steps", type=int, help="training steps (default 10000)")
    p.add_argument("--batch-size", type=int, help="activation rows per step (default 4096)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 4e-4)")
    p.add_argument("--no-normalize", action="store_true",
                   help="do not rescale inputs to E||x||^2 = d_in during training")
    p.add_argument("--buffer-rows", type=int, default=1 << 17, metavar="N",
                   help="shuffle buffer rows per layer (default 131072)")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output: the SAELens folder of the SAE, or with several --layer one "
                        "subfolder per hook (e.g. OUT/blocks.2.residual)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.set_defaults(func=run_train)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained SAE",
                       description="L0, FVU, dead/dense features and MLM loss recovered of an SAE.")
    p.add_argument("--sae", required=True, metavar="DIR", help="SAELens folder")
    _add_source_args(p, "val")
    p.add_argument("--batches", type=int, default=20, metavar="N",
                   help="window batches for the reconstruction metrics (default 20)")
    p.add_argument("--loss-batches", type=int, default=4, metavar="N",
                   help="window batches for the loss recovered (default 4; 0 skips it)")
    p.add_argument("--dense-threshold", type=float, default=0.1, metavar="F",
                   help="firing frequency above which a feature is dense (default 0.1)")
    p.add_argument("--json", metavar="OUT", help="also write all metrics (with per-feature "
                                                 "frequencies) to this JSON file")
    p.set_defaults(func=run_eval)


def _add_cache(sub) -> None:
    p = sub.add_parser("cache", help="write activations to disk shards",
                       description="Cache activations as safetensors shards with a manifest; "
                                   "re-running resumes, skipping written shards.")
    _add_source_args(p, "train")
    _add_key_args(p)
    p.add_argument("--shards", type=int, required=True, metavar="N", help="number of shards")
    p.add_argument("--batches-per-shard", type=int, default=16, metavar="N",
                   help="window batches per shard (default 16)")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=run_cache)


# ---- helpers ----------------------------------------------------------------------------


def _device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def _is_cache(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def window_source(args: argparse.Namespace):
    """Endless window batches (windows_per_batch, window) uint8 from ``--data``."""
    path = Path(args.data)
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    if path.is_file():
        if not path.name.lower().endswith(FASTA_SUFFIXES):
            raise InputError("expected a genome store folder, a FASTA file or an activation cache",
                             path=path)
        from dnatlas.sae.activation_store import fasta_windows

        return fasta_windows(path, args.window, args.windows_per_batch, args.seed)
    from dnatlas.genome.sampler import WindowSampler
    from dnatlas.genome.store import GenomeStore

    store = GenomeStore.open(path)
    return iter(WindowSampler(store, args.split, args.window, args.windows_per_batch, args.seed))


def _probe(adapter, args, keys: list[str]) -> None:
    """Run the model once on a window of the requested length, reporting problems as input errors."""
    import torch

    try:
        adapter.activations(torch.zeros(1, args.window, dtype=torch.long), keys)
    except ValueError as exc:
        raise InputError(f"{adapter.name}: {exc}") from None


def _keys(adapter, args) -> list[str]:
    try:
        layers = [int(x) for x in str(args.layer).split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--layer must be integers, got {args.layer!r}") from None
    try:
        return [adapter.key(layer, args.site) for layer in layers]
    except ValueError as exc:
        raise InputError(str(exc)) from None


# ---- train ------------------------------------------------------------------------------


def run_train(args: argparse.Namespace) -> int:
    from dnatlas.sae.activation_store import ActivationStore, CachedActivations
    from dnatlas.sae.adapters import load_adapter
    from dnatlas.sae.architectures import SAEConfig
    from dnatlas.sae.trainer import SAESpec, SAETrainer, TrainConfig, preset

    sae_kw, train = preset(args.preset) if args.preset else ({}, TrainConfig())
    arch = args.arch or sae_kw.pop("arch", None)
    sae_kw.pop("arch", None)
    if arch is None:
        raise InputError("give --arch (relu, topk, batchtopk or jumprelu) or --preset")
    expansion = args.expansion or sae_kw.pop("expansion", 16)
    sae_kw.pop("expansion", None)
    for flag, name in (("k", "k"), ("l1", "l1_coefficient"), ("l0", "l0_coefficient")):
        if getattr(args, flag) is not None:
            sae_kw[name] = getattr(args, flag)
    if args.no_normalize:
        sae_kw["normalize"] = False
    if arch in ("topk", "batchtopk") and "k" not in sae_kw:
        raise InputError(f"--arch {arch} needs --k")
    for flag in ("steps", "batch_size", "lr"):
        if getattr(args, flag) is not None:
            setattr(train, flag, getattr(args, flag))
    device = _device(args.device)
    train.device = device
    train.checkpoint_every = args.checkpoint_every

    adapter = load_adapter(args.model, device=device, seed=args.seed)
    data_path = Path(args.data)
    keys = _keys(adapter, args)
    if not _is_cache(data_path):
        _probe(adapter, args, keys)
    if _is_cache(data_path):
        data = CachedActivations(data_path, train.batch_size, keys=keys, seed=args.seed,
                                 device=device)
        data_info = {"activation_cache": str(data_path)}
    else:
        data = ActivationStore(adapter, window_source(args), keys, batch_size=train.batch_size,
                               buffer_rows=max(args.buffer_rows, 2 * train.batch_size),
                               seed=args.seed, drop_n=not args.keep_n)
        data_info = {"data": str(data_path), "split": args.split, "window": args.window}
    specs = []
    for i, key in enumerate(keys):
        d_in = adapter.d(key)
        try:
            cfg = SAEConfig.from_expansion(arch, d_in, expansion, hook_name=key,
                                           model_name=args.model, seed=args.seed + i, **sae_kw)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        specs.append(SAESpec(None if len(keys) == 1 else key, key, cfg))
    trainer = SAETrainer(specs, train, args.out, metadata={"dnatlas_data": data_info})
    print(f"training {len(specs)} {arch} SAE(s) on {', '.join(keys)} of {adapter.name} "
          f"({specs[0].config.d_in} -> {specs[0].config.d_sae}) for {train.steps} steps "
          f"of {train.batch_size} rows on {device}", file=sys.stderr)
    trainer.fit(data, resume=args.resume)
    for spec in specs:
        print(f"saved {trainer.sae_dir(spec)}")
    return 0


# ---- eval -------------------------------------------------------------------------------


def run_eval(args: argparse.Namespace) -> int:
    import itertools

    from dnatlas.sae.activation_store import CachedActivations, window_rows
    from dnatlas.sae.adapters import load_adapter
    from dnatlas.sae.metrics import evaluate_reconstruction, loss_recovered
    from dnatlas.sae.saelens_format import load_sae

    device = _device(args.device)
    sae = load_sae(args.sae, device=device)
    key = sae.cfg.hook_name
    if not key:
        raise InputError("the SAE's cfg.json has no hook_name", path=args.sae)
    adapter = load_adapter(args.model, device=device, seed=args.seed)
    try:
        adapter.check_keys([key])
        if adapter.d(key) != sae.d_in:
            raise ValueError(f"{key} has width {adapter.d(key)} but the SAE reads {sae.d_in}")
    except ValueError as exc:
        raise InputError(str(exc), path=args.sae) from None

    data_path = Path(args.data)
    if not _is_cache(data_path):
        _probe(adapter, args, [key])
    if _is_cache(data_path):
        cached = CachedActivations(data_path, 4096, keys=[key], seed=args.seed, loop=False,
                                   device=device)
        recon = evaluate_reconstruction(sae, cached, key=key, max_batches=args.batches,
                                        dense_threshold=args.dense_threshold)
        loss = {}
    else:
        windows = window_source(args)
        eval_windows = list(itertools.islice(windows, args.batches))
        rows = (window_rows(adapter, w, [key], drop_n=not args.keep_n, device=device)
                for w in eval_windows)
        recon = evaluate_reconstruction(sae, rows, key=key, dense_threshold=args.dense_threshold)
        loss = (loss_recovered(adapter, sae, eval_windows[:args.loss_batches], key=key,
                               seed=args.seed) if args.loss_batches > 0 else {})
    result = {"sae": str(args.sae), "model": args.model, "key": key, "data": str(args.data),
              **{k: v for k, v in recon.items() if k != "feature_frequency"}, **loss}
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v:.6g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).write_text(json.dumps({**result, "feature_frequency":
                                               recon["feature_frequency"]}, indent=2) + "\n")
    return 0


# ---- cache ------------------------------------------------------------------------------


def run_cache(args: argparse.Namespace) -> int:
    import functools

    from dnatlas.sae.activation_store import cache_activations, window_rows
    from dnatlas.sae.adapters import load_adapter

    device = _device(args.device)
    adapter = load_adapter(args.model, device=device, seed=args.seed)
    keys = _keys(adapter, args)
    _probe(adapter, args, keys)
    rows_of = functools.partial(window_rows, adapter, keys=keys, drop_n=not args.keep_n)
    out = cache_activations(rows_of, window_source(args), args.out, n_shards=args.shards,
                            batches_per_shard=args.batches_per_shard, dtype=args.dtype,
                            seed=args.seed,
                            info={"model": args.model, "data": str(args.data), "split": args.split,
                                  "window": args.window, "windows_per_batch": args.windows_per_batch,
                                  "keys": keys, "drop_n": not args.keep_n})
    print(f"cached {out}")
    return 0
