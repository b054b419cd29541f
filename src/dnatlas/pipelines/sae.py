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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dnatlas.errors import InputError
from dnatlas.pipelines.windows import window_source
from dnatlas.sae.hyperparameters import (
    SAEHyperparameters,
    check_non_negative,
    check_positive,
    resolve_hyperparameters,
)
from dnatlas.sae.registry import ARCHITECTURES  # the names train_sae takes (--arch)

if TYPE_CHECKING:
    from dnatlas.models import ModelAdapter

__all__ = ["ARCHITECTURES", "SAEEvaluation", "SAEHyperparameters", "WindowSettings",
           "cache_sae_activations", "evaluate_sae", "train_sae"]


def _resolve_model(model, device, seed: int) -> ModelAdapter:
    """The model layer's ``resolve_model``, imported on use (``dnatlas sae --help`` stays
    torch-free)."""
    from dnatlas.models import resolve_model

    return resolve_model(model, device, seed=seed)


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
    check_positive("window", w.window)
    check_positive("windows_per_batch", w.windows_per_batch)
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
    from dnatlas.sae.trainer import SAESpec

    with distributed.session(device) as info:
        device = str(info.device) if info.enabled else _device(device)
        resolved = resolve_hyperparameters(hyper, device)
        adapter = _resolve_model(model, device, windows.seed)
        keys = adapter.select_keys(layers, site)
        if not resolved.data_parallel and info.enabled:
            raise InputError(f"{resolved.arch} selects the top k * batch activations of the "
                             "whole batch, which data-parallel ranks do not share: train it "
                             "in one process (or use topk)")
        specs = [SAESpec(None if len(keys) == 1 else key, key, resolved.config(
                     adapter.d(key), hook_name=key, model_name=adapter.name,
                     seed=windows.seed + i)) for i, key in enumerate(keys)]
        data, data_info = _sae_streams(adapter, windows, keys, resolved.train.batch_size,
                                       buffer_rows, device)
        return _train_on(adapter, data, data_info, specs, resolved, out, resume, device)


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
    check_positive("streams", streams)
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
        check_positive("buffer_rows", buffer_rows)
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


def _train_on(adapter, data, data_info, specs, resolved, out, resume, device) -> list[Path]:
    """Train the SAEs of ``specs`` on ``data``; returns their folders."""
    from dnatlas import distributed
    from dnatlas.sae.trainer import SAETrainer

    train = resolved.train
    trainer = SAETrainer(specs, train, out, metadata={
        "dnatlas_data": data_info, "model_fingerprint": adapter.fingerprint()})
    if distributed.is_main():
        ranks = f" x {distributed.world_size()} ranks" if distributed.world_size() > 1 else ""
        keys = [spec.key for spec in specs]
        print(f"training {len(specs)} {resolved.arch} SAE(s) on {', '.join(keys)} of "
              f"{adapter.name} ({specs[0].config.d_in} -> {specs[0].config.d_sae}) for "
              f"{train.steps} steps of {train.batch_size} rows on {device}{ranks}",
              file=sys.stderr)
    trainer.fit(data, resume=resume)
    return [trainer.sae_dir(spec) for spec in specs]


@dataclass
class SAEEvaluation:
    """What :func:`evaluate_sae` measured.

    Attributes:
        metrics: name -> value, in report order: the SAE, model, key and data, then L0,
            FVU, dead/dense features and (with windows) the MLM loss recovered.
        warnings: reasons a number should not be trusted (e.g. zero-ablation scoring
            better than the clean model).
        feature_frequency: each feature's firing frequency.
    """

    metrics: dict
    warnings: list[str]
    feature_frequency: list[float]

    def to_json(self) -> dict:
        """The ``--json`` record: the metrics, the warnings and the frequencies."""
        return {**self.metrics, "warnings": self.warnings,
                "feature_frequency": self.feature_frequency}


def evaluate_sae(sae_dir: str | Path, model: str | ModelAdapter | None, windows: WindowSettings,
                 batches: int = 20, loss_batches: int = 4, dense_threshold: float = 0.1,
                 device: str | None = None) -> SAEEvaluation:
    """L0, FVU, dead/dense features and MLM loss recovered of an SAE
    (:class:`SAEEvaluation`)."""
    from dnatlas.pipelines.sae_site import load_sae_for
    from dnatlas.sae.activation_store import CachedActivations, window_rows
    from dnatlas.sae.metrics import evaluate_reconstruction, loss_recovered

    check_positive("batches", batches)
    check_non_negative("loss batches", loss_batches)
    device = _device(device)
    adapter = _resolve_model(model, device, windows.seed)
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
               **{k: v for k, v in recon.items() if k != "feature_frequency"}, **loss}
    return SAEEvaluation(metrics, warnings, recon["feature_frequency"])


def cache_sae_activations(model: str | ModelAdapter | None, windows: WindowSettings, layers,
                          out: str | Path, shards: int, batches_per_shard: int = 16,
                          dtype: str = "float16", site: str = "residual",
                          device: str | None = None) -> Path:
    """Write activations of ``layers`` to safetensors shards (resumable); returns ``out``."""
    import functools

    from dnatlas.sae.activation_store import cache_activations, window_rows

    check_positive("shards", shards)
    check_positive("batches per shard", batches_per_shard)
    device = _device(device)
    adapter = _resolve_model(model, device, windows.seed)
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
