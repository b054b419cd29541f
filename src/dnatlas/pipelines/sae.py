"""SAE pipelines: train SAEs over layers x hyperparameters, evaluate one, cache activations.

Plain functions with typed arguments; the ``dnatlas sae`` commands call them, and so can a
notebook::

    from dnatlas.pipelines.sae import SAEHyperparameters, train_sae
    train_sae("default", "runs/demo/store", layers=[2], out="runs/sae",
              hyper=SAEHyperparameters(arch="topk", k=16, steps=500))

``train_sae`` runs data-parallel under ``torchrun`` (docs/distributed.md): the global batch
is made of ``streams`` data-parallel streams (default: one per rank), each with its own
windows (draws s, s + S, ... of the seed's window stream) and shuffle buffer, and rank r
trains on streams ``[r S / W, (r + 1) S / W)``. One process given the same ``streams``
sees the same global batches, so its SAEs equal the ranks' (up to float summation order).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter, resolve_model
from dnatlas.pipelines.windows import window_source

ARCHS = ("relu", "topk", "batchtopk", "jumprelu")


@dataclass
class SAEHyperparameters:
    """What a user may set about an SAE run; None means the preset's value or the default.

    Attributes:
        preset: a named preset of :data:`dnatlas.sae.trainer.PRESETS` (flags override it).
        arch: relu, topk, batchtopk or jumprelu.
        expansion: d_sae / d_in (default 16).
        k: active features per row (topk, batchtopk).
        l1, l0: sparsity coefficients (relu; jumprelu).
        steps, batch_size, lr: optimisation (defaults 10,000, 4,096 rows, 4e-4).
        normalize: rescale inputs to E||x||^2 = d_in during training.
        checkpoint_every: steps between checkpoints.
    """

    preset: str | None = None
    arch: str | None = None
    expansion: float | None = None
    k: int | None = None
    l1: float | None = None
    l0: float | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    normalize: bool = True
    checkpoint_every: int = 1000
    extra: dict = field(default_factory=dict)


def resolve_hyperparameters(hyper: SAEHyperparameters, device: str):
    """Merge a preset with the user's values: ``(arch, expansion, sae_kwargs, train_config)``.

    Raises :class:`InputError` for missing or out-of-range values.
    """
    from dnatlas.sae.trainer import SAETrainingConfig, preset

    sae_kw, train = preset(hyper.preset) if hyper.preset else ({}, SAETrainingConfig())
    arch = hyper.arch or sae_kw.pop("arch", None)
    sae_kw.pop("arch", None)
    if arch is None:
        raise InputError(f"give an architecture ({', '.join(ARCHS)}) or a preset")
    if arch not in ARCHS:
        raise InputError(f"unknown SAE architecture {arch!r}; choose from {', '.join(ARCHS)}")
    expansion = sae_kw.pop("expansion", 16)
    if hyper.expansion is not None:
        expansion = hyper.expansion
    _positive("expansion", expansion)
    for value, name, key in ((hyper.k, "k", "k"), (hyper.l1, "l1", "l1_coefficient"),
                             (hyper.l0, "l0", "l0_coefficient")):
        if value is not None:
            (_positive if name == "k" else _non_negative)(name, value)
            sae_kw[key] = value
    if not hyper.normalize:
        sae_kw["normalize"] = False
    if arch in ("topk", "batchtopk") and "k" not in sae_kw:
        raise InputError(f"the {arch} architecture needs k", setting="k")
    for name in ("steps", "batch_size", "lr"):
        value = getattr(hyper, name)
        if value is not None:
            _positive(name, value)
            setattr(train, name, value)
    _positive("checkpoint_every", hyper.checkpoint_every)
    train.device = device
    train.checkpoint_every = hyper.checkpoint_every
    return arch, expansion, {**sae_kw, **hyper.extra}, train


def _positive(name: str, value) -> None:
    if not value > 0:
        raise InputError(f"{name} must be positive, got {value}", setting=name)


def _non_negative(name: str, value) -> None:
    if not value >= 0:
        raise InputError(f"{name} must be at least 0, got {value}", setting=name)


def _device(name: str | None) -> str:
    from dnatlas.devices import resolve_device

    return str(resolve_device(name))


@dataclass
class WindowSettings:
    """How windows of nucleotides are drawn from ``data`` for a model.

    Attributes:
        data: a genome store folder, a FASTA file, or an activation cache folder.
        split: the store split (ignored for FASTA files).
        window: nucleotides per window; windows_per_batch: windows per forward pass.
        keep_n: keep positions whose nucleotide is N.
        seed: seed of windows and shuffles.
        streams: data-parallel streams making up each batch (``sae train`` only; None: one
            per torchrun rank). Each reads its own windows into its own shuffle buffer of
            ``buffer_rows`` rows and gives ``batch_size / streams`` rows of every batch.
    """

    data: str | Path
    split: str = "train"
    window: int = 1024
    windows_per_batch: int = 8
    keep_n: bool = False
    seed: int = 0
    streams: int | None = None


def _is_cache(path: Path) -> bool:
    from dnatlas.sae.activation_store import MANIFEST_NAME

    return (path / MANIFEST_NAME).is_file()


def _check_window(model: ModelAdapter, w: WindowSettings) -> None:
    """Refuse a window the model cannot take, before any data is read."""
    _positive("window", w.window)
    _positive("windows_per_batch", w.windows_per_batch)
    model.check_window(w.window)


def train_sae(model: str | ModelAdapter | None, windows: WindowSettings, layers, out: str | Path,
              hyper: SAEHyperparameters, site: str = "residual", buffer_rows: int = 1 << 17,
              device: str | None = None, resume: bool = False, force: bool = False
              ) -> list[Path]:
    """Train one SAE per layer (:func:`_train_sae`, arguments as it takes them) in the
    output folder ``out``, locked for the run (:mod:`dnatlas.outputs`): an earlier SAE or
    files of the user's there are refused unless ``force`` (which removes the earlier SAE's
    files first); ``resume`` continues the checkpoint there. Marked complete at the end."""
    from dnatlas import distributed

    if distributed.env_world()[0] != 0:  # rank 0 owns the folder
        return _train_sae(model, windows, layers, out, hyper, site, buffer_rows, device,
                          resume, force)
    with _open_sae_out(out, resume, force) as folder:
        folders = _train_sae(model, windows, layers, out, hyper, site, buffer_rows, device,
                             resume, force)
        folder.complete(name for name in sorted(p.name for p in folder.path.iterdir())
                        if _is_sae_output(folder.path, name))
        return folders


#: what ``sae train`` writes into an SAE folder (besides the SAEs' subfolders)
SAE_RUN_FILES = frozenset({"cfg.json", "sae_weights.safetensors", "metrics.csv",
                           "checkpoint.pt"})


def _is_sae_output(out: Path, name: str) -> bool:
    """A file ``sae train`` writes into ``out``, or an SAE subfolder of several layers."""
    return (name in SAE_RUN_FILES or (name.startswith(".") and name.endswith(".tmp"))
            or (out / name / "cfg.json").is_file() or (out / name / "metrics.csv").is_file())


def _open_sae_out(out, resume: bool, force: bool):
    from dnatlas.outputs import output_folder

    out = Path(out)
    return output_folder(out, "sae train", own=lambda name: _is_sae_output(out, name),
                         force=force, what="SAE folder",
                         earlier=(lambda name: False) if resume else None,
                         result=("an SAE run whose checkpoint already exists (resume=True "
                                 "continues it)") if (out / "checkpoint.pt").exists()
                         else "an SAE")


def _train_sae(model: str | ModelAdapter | None, windows: WindowSettings, layers,
               out: str | Path, hyper: SAEHyperparameters, site: str = "residual",
               buffer_rows: int = 1 << 17, device: str | None = None, resume: bool = False,
               force: bool = False) -> list[Path]:
    """Train one SAE per layer from one stream of activations; returns the SAE folders.

    Args:
        model: a ``--model`` spec or an adapter (None: the bundled model).
        windows: where the windows come from (:class:`WindowSettings`).
        layers: layer selection (see :meth:`ModelAdapter.select_keys`).
        out: the SAELens folder of a single SAE, or with several layers one subfolder per
            hook (``OUT/blocks.2.residual``).
        buffer_rows: shuffle buffer rows per layer (of each stream, see
            :class:`WindowSettings`).

    Under torchrun the ranks train data-parallel (module docstring); rank 0 writes.
    """
    from dnatlas import distributed

    with distributed.session(device) as info:
        device = str(info.device) if info.enabled else _device(device)
        arch, expansion, sae_kw, train = resolve_hyperparameters(hyper, device)
        adapter = resolve_model(model, device, seed=windows.seed)
        keys = adapter.select_keys(layers, site)
        if arch == "batchtopk" and info.enabled:
            raise InputError("batchtopk selects the top k * batch activations of the whole "
                             "batch, which data-parallel ranks do not share: train it in one "
                             "process (or use topk)")
        data, data_info = _sae_streams(adapter, windows, keys, train.batch_size, buffer_rows,
                                       device)
        return _train_on(adapter, data, data_info, keys, arch, expansion, sae_kw, train,
                         windows.seed, out, resume, device)


def _sae_streams(adapter, windows: WindowSettings, keys, batch_size: int, buffer_rows: int,
                 device: str):
    """This rank's data-parallel streams (module docstring) and the data's description."""
    from dnatlas import distributed
    from dnatlas.sae.activation_store import (
        ActivationStore,
        CachedActivations,
        StreamGroup,
        stream_seed,
    )

    world, rank = distributed.world_size(), distributed.rank()
    streams = world if windows.streams is None else windows.streams
    _positive("streams", streams)
    if streams % world or batch_size % streams:
        raise InputError(f"{streams} data-parallel streams must be a multiple of the {world} "
                         f"process(es) and divide the batch size {batch_size}")
    mine = range(rank * streams // world, (rank + 1) * streams // world)
    rows = batch_size // streams
    data_path = Path(windows.data)
    if _is_cache(data_path):
        parts = [CachedActivations(data_path, rows, keys=keys, device=device, part=s,
                                   parts=streams, seed=stream_seed(windows.seed, s))
                 for s in mine]
        data_info = {"activation_cache": str(data_path)}
    else:
        _check_window(adapter, windows)
        _positive("buffer_rows", buffer_rows)
        parts = [ActivationStore(adapter, window_source(windows.data, windows.split,
                                                        windows.window, windows.windows_per_batch,
                                                        windows.seed, s, streams),
                                 keys, batch_size=rows, buffer_rows=max(buffer_rows, 2 * rows),
                                 seed=stream_seed(windows.seed, s), drop_n=not windows.keep_n)
                 for s in mine]
        data_info = {"data": str(data_path), "split": windows.split, "window": windows.window}
    if streams > 1:
        data_info["streams"] = streams
    return (parts[0] if len(parts) == 1 else StreamGroup(parts)), data_info


def _train_on(adapter, data, data_info, keys, arch, expansion, sae_kw, train, seed, out,
              resume, device) -> list[Path]:
    """Build one SAE per key and train them all on ``data``; returns their folders."""
    from dnatlas import distributed
    from dnatlas.sae.architectures import SAEConfig
    from dnatlas.sae.trainer import SAESpec, SAETrainer

    specs = []
    for i, key in enumerate(keys):
        try:
            cfg = SAEConfig.from_expansion(arch, adapter.d(key), expansion, hook_name=key,
                                           model_name=adapter.name, seed=seed + i, **sae_kw)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None
        specs.append(SAESpec(None if len(keys) == 1 else key, key, cfg))
    trainer = SAETrainer(specs, train, out, metadata={
        "dnatlas_data": data_info, "model_fingerprint": adapter.fingerprint()})
    if distributed.is_main():
        ranks = f" x {distributed.world_size()} ranks" if distributed.world_size() > 1 else ""
        print(f"training {len(specs)} {arch} SAE(s) on {', '.join(keys)} of {adapter.name} "
              f"({specs[0].config.d_in} -> {specs[0].config.d_sae}) for {train.steps} steps "
              f"of {train.batch_size} rows on {device}{ranks}", file=sys.stderr)
    trainer.fit(data, resume=resume)
    return [trainer.sae_dir(spec) for spec in specs]


def evaluate_sae(sae_dir: str | Path, model: str | ModelAdapter | None, windows: WindowSettings,
                 batches: int = 20, loss_batches: int = 4, dense_threshold: float = 0.1,
                 device: str | None = None) -> tuple[dict, list[float]]:
    """L0, FVU, dead/dense features and MLM loss recovered of an SAE.

    Returns ``(metrics, feature_frequency)``; ``metrics["warnings"]`` lists reasons a number
    should not be trusted (e.g. zero-ablation scoring better than the clean model).
    """
    from dnatlas.pipelines.sae_site import load_sae_for
    from dnatlas.sae.activation_store import CachedActivations, window_rows
    from dnatlas.sae.metrics import evaluate_reconstruction, loss_recovered

    _positive("batches", batches)
    _non_negative("loss batches", loss_batches)
    device = _device(device)
    adapter = resolve_model(model, device, seed=windows.seed)
    sae, sae_dir, key = load_sae_for(sae_dir, adapter, device=device)
    data_path = Path(windows.data)
    if _is_cache(data_path):
        cached = CachedActivations(data_path, 4096, keys=[key], seed=windows.seed, loop=False,
                                   device=device)
        recon = evaluate_reconstruction(sae, cached, key=key, max_batches=batches,
                                        dense_threshold=dense_threshold)
        loss = {}
    else:
        _check_window(adapter, windows)
        source = window_source(windows.data, windows.split, windows.window,
                               windows.windows_per_batch, windows.seed)
        eval_windows = list(itertools.islice(source, batches))
        rows = (window_rows(adapter, w, [key], drop_n=not windows.keep_n, device=device)
                for w in eval_windows)
        recon = evaluate_reconstruction(sae, rows, key=key, dense_threshold=dense_threshold)
        loss = (loss_recovered(adapter, sae, eval_windows[:loss_batches], key=key,
                               seed=windows.seed) if loss_batches > 0 else {})
    warnings = []
    if loss and loss["loss_zero"] <= loss["loss_clean"]:
        warnings.append("zero-ablation scores no worse than the clean model, so 'loss "
                        "recovered' is meaningless at this site")
    import math

    for name in ("loss_clean", "loss_sae", "loss_zero"):  # bits, as every loss people read
        if name in loss:
            loss[name] = loss[name] / math.log(2)
    if loss:
        loss["loss_unit"] = "bits (the model's training loss)"
    metrics = {"sae": str(sae_dir), "model": adapter.name, "key": key, "data": str(windows.data),
               **{k: v for k, v in recon.items() if k != "feature_frequency"}, **loss,
               "warnings": warnings}
    return metrics, recon["feature_frequency"]


def cache_sae_activations(model: str | ModelAdapter | None, windows: WindowSettings, layers,
                          out: str | Path, shards: int, batches_per_shard: int = 16,
                          dtype: str = "float16", site: str = "residual",
                          device: str | None = None) -> Path:
    """Write activations of ``layers`` to safetensors shards (resumable); returns ``out``."""
    import functools

    from dnatlas.sae.activation_store import cache_activations, window_rows

    _positive("shards", shards)
    _positive("batches per shard", batches_per_shard)
    device = _device(device)
    adapter = resolve_model(model, device, seed=windows.seed)
    keys = adapter.select_keys(layers, site)
    _check_window(adapter, windows)
    rows_of = functools.partial(window_rows, adapter, keys=keys, drop_n=not windows.keep_n)
    source = window_source(windows.data, windows.split, windows.window,
                           windows.windows_per_batch, windows.seed)
    from dnatlas.files import check_output_dir
    from dnatlas.outputs import check_free_space, lock_folder

    def own(name: str) -> bool:
        return (name == "manifest.json" or name.startswith("shard_")
                or (name.startswith(".") and name.endswith(".tmp")))

    out = check_output_dir(out, "activation cache folder", own=own)
    rows = shards * batches_per_shard * windows.windows_per_batch * windows.window
    check_free_space(out, rows * sum(adapter.d(k) for k in keys)
                     * (4 if dtype == "float32" else 2), "activation cache")
    info = {"model": adapter.name, "model_fingerprint": adapter.fingerprint(),
            "data": str(windows.data), "split": windows.split, "window": windows.window,
            "windows_per_batch": windows.windows_per_batch, "keys": keys,
            "drop_n": not windows.keep_n}
    with lock_folder(out, "activation cache folder"):
        return cache_activations(rows_of, source, out, n_shards=shards,
                                 batches_per_shard=batches_per_shard, dtype=dtype,
                                 seed=windows.seed, info=info)
