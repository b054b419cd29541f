"""Train one or many SAEs from a single pass over activation batches.

The trainer knows nothing about models: it reads batches, each either a tensor (B, d) (every
SAE reads it) or a dict ``{key: (B, d)}`` (each SAE reads the key it is tagged with, so one
pass can train SAEs on several layers and with several hyperparameters at once).

Per SAE it keeps an Adam optimiser; the learning rate warms up linearly over the first
``lr_warmup_frac`` of the steps, stays constant, and optionally decays linearly to zero
over the last ``lr_decay_frac`` (paper 001: 5 % warm-up, then constant). The first
``norm_batches`` batches estimate each key's input scale (E||x s||^2 = d_in) and are then
trained on like every other batch.

Outputs, under ``out_dir`` (one sub-folder per named SAE, or ``out_dir`` itself for a single
SAE with ``name=None``):

    <sae>/cfg.json, <sae>/sae_weights.safetensors     the final SAE (SAELens folder)
    <sae>/metrics.csv                                 step, lr, loss terms, MSE (activation
                                                      units), L0, FVU, dead fraction
    checkpoint.pt                                     resumable state of all SAEs

The checkpoint (written atomically every ``checkpoint_every`` steps and at the end) holds
each SAE's parameters and buffers (input scale, dead-feature counters, thresholds), its
optimiser state, the step and the partial metric sums, so a resumed run equals an
uninterrupted one given the same batches. A stream with ``state_dict``/``load_state_dict``
(:class:`~dnatlas.sae.activation_store.ActivationStore`) is checkpointed with the run and
restored without recomputing any activation. Otherwise, on resume, ``data`` may be a callable
``start_step -> iterable`` or an object with a ``batches(start_step)`` method (such as
:class:`~dnatlas.sae.activation_store.CachedActivations`) that starts at the right batch; a
plain iterable is advanced by consuming the batches already trained on.

Under ``torchrun`` (:mod:`dnatlas.distributed`) each rank trains on its own rows of every
global batch (e.g. a :class:`~dnatlas.sae.activation_store.StreamGroup`): gradients are
averaged over ranks before each step, fired features and input-scale sums are combined,
logged metrics are those of the global batch, and rank 0 alone writes metrics, checkpoints
(with every rank's stream state) and the SAE folders.
"""

from __future__ import annotations

import collections
import csv
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dnatlas import distributed
from dnatlas.errors import InputError
from dnatlas.files import atomic_path, atomic_write
from dnatlas.progress import progress
from dnatlas.sae.autoencoder import SparseAutoencoder, expected_norm_scale
from dnatlas.sae.config import SAEConfig
from dnatlas.sae.registry import build_sae, saved_record
from dnatlas.sae.saelens_format import save_sae
from dnatlas.sae.training_config import PRESETS, SAETrainingConfig, preset

__all__ = ["PRESETS", "SAESpec", "SAETrainer", "SAETrainingConfig", "preset", "train_saes"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "dnatlas-sae-trainer"
CHECKPOINT_VERSION = 1
#: ``loss``, ``sparsity``, ``aux``: the training objective's terms (on normalised inputs);
#: ``mse``: mean over rows of ||x - x_hat||^2 in the model's own activation units, the same
#: scale as ``dnatlas sae eval``'s ``mse`` (the objective's MSE / input_scale^2).
METRIC_COLUMNS = ("step", "lr", "loss", "mse", "sparsity", "aux", "l0", "fvu", "dead_fraction")

Batch = torch.Tensor | dict[str, torch.Tensor]


@dataclass
class SAESpec:
    """One SAE of a run: its folder name, the activation key it reads, and its config.

    ``name=None`` (only for a single SAE) writes it into ``out_dir`` itself.
    """

    name: str | None
    key: str
    config: SAEConfig


@dataclass
class _Slot:
    """Training state of one SAE."""

    spec: SAESpec
    sae: SparseAutoencoder
    optim: torch.optim.Optimizer
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    n: int = 0
    last_loss: torch.Tensor | None = None  # this step's loss, L0, FVU: the progress bar's
    shown: dict[str, torch.Tensor] = field(default_factory=dict)


def _item(value: torch.Tensor | None) -> float:
    return float("nan") if value is None else float(value)


def _adam(params, cfg: SAETrainingConfig, device: torch.device) -> torch.optim.Optimizer:
    kw = {"lr": cfg.lr, "betas": tuple(cfg.adam_betas)}
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, fused=True, **kw)
        except (RuntimeError, TypeError):  # pragma: no cover - older torch
            pass
    return torch.optim.Adam(params, **kw)


class SAETrainer:
    """Trains the SAEs of ``specs`` from one pass over batches.

    Args:
        specs: the SAEs; names must be unique (``None`` only for a single SAE).
        cfg: optimisation settings.
        out_dir: output folder (see module docstring).
        metadata: extra metadata saved into each SAE's cfg.json (e.g. the data source).
    """

    def __init__(self, specs: list[SAESpec], cfg: SAETrainingConfig, out_dir: str | Path,
                 metadata: dict[str, Any] | None = None):
        if not specs:
            raise ValueError("no SAE to train")
        names = [s.name for s in specs]
        if None in names and len(specs) > 1:
            raise ValueError("name=None is only allowed for a single SAE")
        if len(set(names)) != len(names):
            raise ValueError(f"SAE names are not unique: {names}")
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.metadata = metadata or {}
        self.device = torch.device(cfg.device)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.step = 0
        self._data = None          # the batches being trained on (for their stream state)
        self._data_state = None    # stream state read from a checkpoint
        self._replay: collections.deque = collections.deque()  # head batches not yet trained
        self.slots: list[_Slot] = []
        for spec in specs:
            if not spec.config.hook_name:
                spec.config.hook_name = spec.key
            sae = build_sae(spec.config).to(self.device)
            self.slots.append(_Slot(spec, sae, _adam(sae.parameters(), cfg, self.device)))

    # ---- paths ---------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def sae_dir(self, spec: SAESpec) -> Path:
        return self.out_dir if spec.name is None else self.out_dir / spec.name

    @property
    def saes(self) -> dict[str | None, SparseAutoencoder]:
        return {slot.spec.name: slot.sae for slot in self.slots}

    # ---- main loop -------------------------------------------------------------------

    def fit(self, data: Iterable[Batch] | Callable[[int], Iterable[Batch]],
            resume: bool = False) -> dict[str | None, SparseAutoencoder]:
        """Train until ``cfg.steps``; returns the SAEs by name (trained, not folded).

        Args:
            data: batches, or a callable ``start_step -> batches`` for efficient resume.
            resume: continue from ``out_dir/checkpoint.pt`` if it exists.

        Raises:
            InputError: a checkpoint exists but ``resume`` is false, it belongs to another
                run, or the data run out before ``cfg.steps``.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:  # weights and Adam's two moments (checkpoint), and the SAEs
            from dnatlas.outputs import check_free_space
            check_free_space(self.out_dir, sum(40 * s.spec.config.d_in * s.spec.config.d_sae
                                               for s in self.slots), "SAEs and checkpoint")
        if self.checkpoint_path.exists():
            if not resume:
                raise InputError("a checkpoint already exists; resume it or choose another "
                                 "output folder", path=self.checkpoint_path)
            self.load_checkpoint(self.checkpoint_path)
        for slot in self.slots if self.rank == 0 else ():
            self._init_metrics_file(slot)

        batches = self._batches(data)
        if self.step == 0:
            batches = self._estimate_scales(batches)

        bar = progress(total=self.cfg.steps, initial=self.step, desc="SAE", unit="step",
                       disable=self.cfg.progress is False or self.rank > 0, dynamic_ncols=True)
        t0, rows = time.perf_counter(), 0
        try:
            while self.step < self.cfg.steps:
                try:
                    batch = next(batches)
                except StopIteration:
                    raise InputError(f"the activation data ran out after {self.step} of "
                                     f"{self.cfg.steps} steps") from None
                log = (self.step + 1) % self.cfg.log_every == 0 or self.step + 1 == self.cfg.steps
                # this step's values on the bar every few steps (a count: ranks agree)
                show = (self.step + 1) % max(1, self.cfg.log_every // 10) == 0
                rows += self._train_step(batch, log or show)
                self.step += 1
                bar.update(1)
                if log:
                    postfix = self._log()
                    elapsed = time.perf_counter() - t0
                    postfix["rows/s"] = f"{rows / max(elapsed, 1e-9):.3g}"
                    bar.set_postfix(postfix, refresh=False)
                elif show:  # this step's values between the metric rows
                    bar.set_postfix(self._current(), refresh=False)
                if self.step % self.cfg.checkpoint_every == 0 and self.step < self.cfg.steps:
                    self.save_checkpoint()
        finally:
            bar.close()
        self.save_checkpoint()
        for slot in self.slots if self.rank == 0 else ():
            save_sae(slot.sae, self.sae_dir(slot.spec), self._metadata(slot))
        distributed.barrier()
        return self.saes

    def _batches(self, data) -> Iterator[Batch]:
        self._data = data
        if callable(data) and not hasattr(data, "__iter__"):
            return iter(data(self.step))
        if callable(getattr(data, "batches", None)):  # e.g. CachedActivations.batches(start)
            return iter(data.batches(self.step))
        if self.step and self._data_state is not None and hasattr(data, "load_state_dict"):
            data.load_state_dict(self._data_state["stream"])  # no activation is recomputed
            self._replay = collections.deque(self._data_state["replay"])
            return self._replaying(iter(data))
        it = iter(data)
        for _ in range(self.step):  # resume on a plain iterable: skip what was trained on
            next(it)
        return it

    def _estimate_scales(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """Estimate each normalising SAE's input scale on the first batches, then replay them."""
        keys = sorted({slot.spec.key for slot in self.slots if slot.spec.config.normalize})
        if not keys or self.cfg.norm_batches < 1:
            return batches
        head = list(itertools.islice(batches, self.cfg.norm_batches))
        sums = dict.fromkeys(keys, 0.0)
        counts = dict.fromkeys(keys, 0)
        for batch in head:
            for key in keys:
                x = self._rows(batch, key).double()
                sums[key] += float(x.pow(2).sum())
                counts[key] += x.shape[0]
        if self.world > 1:  # over every rank's rows
            total = distributed.all_reduce_array(np.array([[sums[k], counts[k]] for k in keys]))
            sums, counts = ({k: total[i, j] for i, k in enumerate(keys)} for j in (0, 1))
        for slot in self.slots:
            if slot.spec.config.normalize:
                key = slot.spec.key
                slot.sae.set_input_scale(expected_norm_scale(sums[key], counts[key], slot.sae.d_in))
        self._replay = collections.deque(head)
        return self._replaying(batches)

    def _replaying(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """The replayed head batches (saved with a checkpoint while pending), then the rest."""
        while self._replay:
            yield self._replay.popleft()
        yield from batches

    def _rows(self, batch: Batch, key: str) -> torch.Tensor:
        x = batch if isinstance(batch, torch.Tensor) else batch[key]
        return torch.as_tensor(x).to(self.device, non_blocking=True)

    def _train_step(self, batch: Batch, metrics: bool) -> int:
        step = self.step
        lr = self.cfg.lr_at(step)
        sparsity_scale = self.cfg.sparsity_scale_at(step)
        n_rows = 0
        for slot in self.slots:
            x = self._rows(batch, slot.spec.key)
            n_rows = max(n_rows, x.shape[0])
            for group in slot.optim.param_groups:
                group["lr"] = lr
            out = slot.sae.forward_train(x, sparsity_scale=sparsity_scale, metrics=metrics)
            slot.optim.zero_grad(set_to_none=True)
            out.loss.backward()
            if self.world > 1:  # the global batch's gradient, and the features it fired
                distributed.average_gradients(slot.sae.parameters())
                out.fired = distributed.all_reduce_(out.fired.to(torch.uint8), "max").bool()
                if metrics:
                    out.fvu = self._global_fvu(slot, x, out.fvu)
            if self.cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(slot.sae.parameters(), self.cfg.grad_clip)
            slot.optim.step()
            slot.sae.after_step()
            slot.sae.update_dead(out.fired)
            self._accumulate(slot, out, metrics)
        return n_rows

    def _global_fvu(self, slot: _Slot, x: torch.Tensor, fvu: torch.Tensor) -> torch.Tensor:
        """FVU of the global batch from each rank's error and centred sums (float64)."""
        x = x.double() * float(slot.sae.input_scale)
        n, s1, s2 = x.shape[0], x.sum(0), x.pow(2).sum()
        local_var = s2 - s1.pow(2).sum() / n
        sums = distributed.all_reduce_(torch.cat([
            torch.stack([fvu.double() * local_var, s2, s2.new_tensor(float(n))]), s1]))
        err, s2, n, s1 = sums[0], sums[1], sums[2], sums[3:]
        return (err / (s2 - s1.pow(2).sum() / n).clamp_min(1e-12)).to(fvu.dtype)

    @staticmethod
    def _accumulate(slot: _Slot, out, metrics: bool) -> None:
        """Add this step's loss terms to the interval sums (device tensors: no host sync)."""
        values = {"loss": out.loss.detach(), **{k: v.detach() for k, v in out.terms.items()}}
        for k, v in values.items():
            slot.sums[k] = slot.sums[k] + v if k in slot.sums else v.clone()
        slot.n += 1
        slot.last_loss = values["loss"]
        if metrics:
            slot.sums["_l0"] = out.l0.detach()
            slot.sums["_fvu"] = out.fvu.detach()
            slot.shown = {"_l0": slot.sums["_l0"], "_fvu": slot.sums["_fvu"]}

    # ---- metrics -----------------------------------------------------------------------

    def _metrics_path(self, slot: _Slot) -> Path:
        return self.sae_dir(slot.spec) / "metrics.csv"

    def _init_metrics_file(self, slot: _Slot) -> None:
        """Fresh run: new file with a header. Resume: drop rows past the checkpoint step."""
        path = self._metrics_path(slot)
        path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[list[str]] = []
        if self.step > 0 and path.exists():
            with path.open(newline="") as fh:
                reader = csv.reader(fh)
                next(reader, None)
                kept = [row for row in reader if row and int(row[0]) <= self.step]
        with atomic_write(path, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(METRIC_COLUMNS)
            writer.writerows(kept)

    def _current(self) -> dict[str, str]:
        """This step's loss, L0 and FVU of each SAE (the progress bar's values)."""
        return {f"{'' if len(self.slots) == 1 else f'{s.spec.name}:'}{k}": f"{_item(v):.4g}"
                for s in self.slots[:3] for k, v in (("loss", s.last_loss), (
                    "L0", s.shown.get("_l0")), ("FVU", s.shown.get("_fvu")))}

    def _log(self) -> dict[str, str]:
        postfix = {}
        lr = self.cfg.lr_at(self.step - 1)
        for slot in self.slots:
            slot.sums = distributed.mean_over_ranks(slot.sums)  # the global batches' means
            n = max(slot.n, 1)
            scale2 = float(slot.sae.input_scale) ** 2
            row = {
                "step": self.step,
                "lr": f"{lr:.6g}",
                **{k: f"{_item(slot.sums.get(k)) / n:.6g}" for k in ("loss", "sparsity", "aux")},
                "mse": f"{_item(slot.sums.get('mse')) / n / scale2:.6g}",
                "l0": f"{_item(slot.sums.get('_l0')):.6g}",
                "fvu": f"{_item(slot.sums.get('_fvu')):.6g}",
                "dead_fraction": f"{float(slot.sae.dead_mask.float().mean()):.6g}",
            }
            if self.rank == 0:
                with self._metrics_path(slot).open("a", newline="") as fh:
                    csv.writer(fh).writerow([row[c] for c in METRIC_COLUMNS])
            slot.sums, slot.n = {}, 0
            if len(postfix) < 9:
                tag = "" if len(self.slots) == 1 else f"{slot.spec.name}:"
                postfix.update({f"{tag}loss": row["loss"], f"{tag}L0": row["l0"],
                                f"{tag}FVU": row["fvu"]})
        return postfix

    # ---- checkpoints -----------------------------------------------------------------

    def _metadata(self, slot: _Slot) -> dict[str, Any]:
        return {**self.metadata, "dnatlas_training": {"steps": self.step,
                                                      "train_config": self.cfg.to_dict()}}

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Write the whole run's state atomically (fsynced tmp file, renamed into place)."""
        path = Path(path) if path is not None else self.checkpoint_path
        data_state = None
        if callable(getattr(self._data, "state_dict", None)):  # a resumable stream
            data_state = {"stream": self._data.state_dict(), "replay": list(self._replay)}
        if self.world > 1:  # every rank's stream, saved by rank 0
            data_state = {"world_size": self.world, "ranks": distributed.gather_object(data_state)}
            if self.rank > 0:
                return path
        state = {
            "data_state": data_state,
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "step": self.step,
            "train_config": self.cfg.to_dict(),
            "saes": [
                {
                    "name": slot.spec.name,
                    "key": slot.spec.key,
                    "config": saved_record(slot.spec.config),
                    "state": slot.sae.state_dict(),
                    "optim": slot.optim.state_dict(),
                    "sums": {k: v.cpu() for k, v in slot.sums.items()},
                    "n": slot.n,
                }
                for slot in self.slots
            ],
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a run saved by :meth:`save_checkpoint` (same SAE names, keys, configs)."""
        path = Path(path)
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user problem
            raise InputError(f"cannot read checkpoint: {exc}", path=path) from None
        if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
            raise InputError("not a dnatlas SAE trainer checkpoint", path=path)
        saved = {entry["name"]: entry for entry in state["saes"]}
        if set(saved) != {slot.spec.name for slot in self.slots}:
            raise InputError(f"checkpoint has SAEs {sorted(map(str, saved))}, this run has "
                             f"{sorted(str(s.spec.name) for s in self.slots)}", path=path)
        for slot in self.slots:
            entry = saved[slot.spec.name]
            ours = saved_record(slot.spec.config)
            if entry["key"] != slot.spec.key or entry["config"] != ours:
                diff = sorted(k for k in ours if entry["config"].get(k) != ours[k])
                raise InputError(f"checkpoint SAE {slot.spec.name!r} was trained with other "
                                 f"settings ({', '.join(diff) or 'key'})", path=path)
            slot.sae.load_state_dict(entry["state"])
            slot.optim.load_state_dict(entry["optim"])
            slot.sums = {k: v.to(self.device) for k, v in entry["sums"].items()}
            slot.n = int(entry["n"])
        self.step = int(state["step"])
        data_state = state.get("data_state")
        saved_world = (data_state or {}).get("world_size", 1)
        if saved_world != self.world:
            raise InputError(f"the checkpoint was written by {saved_world} process(es); resume "
                             f"it with as many (torchrun --nproc_per_node)", path=path)
        self._data_state = data_state["ranks"][self.rank] if self.world > 1 else data_state


def train_saes(specs: list[SAESpec], data, cfg: SAETrainingConfig, out_dir: str | Path,
               resume: bool = False, metadata: dict[str, Any] | None = None
               ) -> dict[str | None, SparseAutoencoder]:
    """Convenience wrapper: ``SAETrainer(specs, cfg, out_dir, metadata).fit(data, resume)``."""
    return SAETrainer(specs, cfg, out_dir, metadata).fit(data, resume=resume)
