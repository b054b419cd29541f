"""Optimisation settings of an SAE run, and the named presets of published setups."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dnatlas.errors import InputError

__all__ = ["PRESETS", "RESUMABLE_CHANGES", "SAETrainingConfig", "check_finite_run", "check_resume",
           "preset"]


@dataclass
class SAETrainingConfig:
    """Optimisation settings shared by all SAEs of a run.

    Args:
        steps: optimiser steps (batches).
        batch_size: rows per batch; informational for whoever builds the batches.
        lr: peak learning rate of Adam.
        lr_warmup_frac: fraction of steps of linear warm-up from lr / warmup_steps to lr.
        lr_decay_frac: fraction of final steps of linear decay to 0 (0: constant to the end).
        adam_betas: Adam's betas.
        grad_clip: clip each SAE's gradient norm to this value (None: no clipping).
        sparsity_warmup_frac: fraction of steps over which the sparsity coefficient ramps
            linearly from 0 to its value.
        norm_batches: batches used to estimate the input scale of SAEs that normalise.
        log_every: steps between metric rows (means over the interval; L0/FVU at the row's step).
        checkpoint_every: steps between checkpoints.
        device: where SAEs train.
        progress: False hides progress (default: a bar on a terminal, else a line every 10 s).
    """

    steps: int = 10_000
    batch_size: int = 4096
    lr: float = 4e-4
    lr_warmup_frac: float = 0.05
    lr_decay_frac: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = 1.0
    sparsity_warmup_frac: float = 0.0
    norm_batches: int = 8
    log_every: int = 100
    checkpoint_every: int = 1000
    device: str = "cpu"
    progress: bool | None = None

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Range-check every setting (InputError naming it): integers >= 1, a finite positive
        lr, fractions in [0, 1], Adam betas in [0, 1), a finite positive grad_clip or None.
        The trainer calls it again, since callers may set fields after construction."""
        import math

        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be an integer >= 1, got {value!r}", setting=name)
        if isinstance(self.norm_batches, bool) or not isinstance(self.norm_batches, int) \
                or self.norm_batches < 0:
            raise InputError(f"norm_batches must be an integer >= 0, got {self.norm_batches!r}")

        def number(name, value, low, high=math.inf, low_open=False, high_open=False):
            ok = (not isinstance(value, bool) and isinstance(value, int | float)
                  and math.isfinite(value) and (value > low if low_open else value >= low)
                  and (value < high if high_open else value <= high))
            if not ok:
                span = (f"{'(' if low_open else '['}{low:g}, "
                        f"{high:g}{')' if high_open or high == math.inf else ']'}")
                raise InputError(f"{name} must be a finite number in {span}, got {value!r}",
                                 setting=name)

        number("lr", self.lr, 0, low_open=True)
        for name in ("lr_warmup_frac", "lr_decay_frac", "sparsity_warmup_frac"):
            number(name, getattr(self, name), 0, 1)
        if len(tuple(self.adam_betas)) != 2:
            raise InputError(f"adam_betas must be two numbers, got {self.adam_betas!r}")
        for beta in self.adam_betas:
            number("adam_betas", beta, 0, 1, high_open=True)
        if self.grad_clip is not None:
            number("grad_clip", self.grad_clip, 0, low_open=True)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAETrainingConfig:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        if "adam_betas" in kw:
            kw["adam_betas"] = tuple(kw["adam_betas"])
        return cls(**kw)

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) step ``step``."""
        warm = round(self.steps * self.lr_warmup_frac)
        decay = round(self.steps * self.lr_decay_frac)
        if warm and step < warm:
            return self.lr * (step + 1) / warm
        if decay and step >= self.steps - decay:
            return self.lr * (self.steps - step) / decay
        return self.lr

    def sparsity_scale_at(self, step: int) -> float:
        warm = round(self.steps * self.sparsity_warmup_frac)
        return min(1.0, (step + 1) / warm) if warm else 1.0


#: named presets: (SAEConfig keyword overrides incl. "expansion", SAETrainingConfig overrides)
PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # Paper 001 (SAEs on HyenaDNA-small-32k, layer 3): ReLU + L1 0.1, 32x expansion,
    # lr linearly warmed up over 5 % of the steps then fixed at 1e-6, batch 2048. The paper
    # does not mention input normalisation, so none is applied.
    "hyenadna-001": (
        {"arch": "relu", "expansion": 32, "l1_coefficient": 0.1, "normalize": False},
        {"lr": 1e-6, "lr_warmup_frac": 0.05, "lr_decay_frac": 0.0, "batch_size": 2048},
    ),
}


def preset(name: str) -> tuple[dict[str, Any], SAETrainingConfig]:
    """(SAE keyword overrides, SAETrainingConfig) of a named preset; see :data:`PRESETS`."""
    if name not in PRESETS:
        raise InputError(f"unknown SAE preset {name!r}; choose from {', '.join(PRESETS)}")
    sae_kw, train_kw = PRESETS[name]
    return dict(sae_kw), SAETrainingConfig(**train_kw)


#: settings a resumed run may change: where it runs, how often it reports, and how long it
#: goes on (``steps``: a run is extended or shortened on purpose)
RESUMABLE_CHANGES = ("device", "progress", "log_every", "checkpoint_every", "steps")


def check_resume(state: dict, cfg: SAETrainingConfig, metadata: dict, path) -> None:
    """Refuse (InputError at ``path``) to resume a checkpoint ``state`` whose optimisation
    settings (but :data:`RESUMABLE_CHANGES`) or data and model (the run's metadata: data
    source, split, window, streams, model fingerprint) differ from this run's, naming each
    difference as ``name: saved -> ours``."""
    ours = {k: v for k, v in cfg.to_dict().items() if k not in RESUMABLE_CHANGES}
    saved = {k: v for k, v in (state.get("train_config") or {}).items()
             if k not in RESUMABLE_CHANGES}
    diff = _differences(saved, ours)
    if "metadata" in state:
        diff += _differences(state["metadata"] or {}, metadata)
    if diff:
        raise InputError("the checkpoint was written with other settings; resume with the "
                         f"same ones or start a new run ({'; '.join(diff)})", path=path)


def _differences(saved: dict, ours: dict, prefix: str = "") -> list[str]:
    """``name: saved -> ours`` for every key whose value differs (nested dicts flattened)."""
    out = []
    for key in sorted(set(saved) | set(ours), key=str):
        a, b = saved.get(key), ours.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def check_finite_run(slots, step: int, checkpoint, lr: float) -> None:
    """Stop a run whose loss terms or weights went NaN or infinite, before anything is
    saved: the last checkpoint written (``checkpoint``) stays the last good one. ``slots``:
    the trainer's SAEs (each with ``spec``, the interval's loss ``sums`` and ``sae``)."""
    import torch

    bad = [f"{k} of SAE {s.spec.name or s.spec.key!r}" for s in slots
           for k, v in [*s.sums.items(), *s.sae.named_parameters()]
           if not bool(torch.isfinite(v).all())]
    if bad:
        kept = (f"the last good checkpoint ({checkpoint}) is kept"
                if Path(checkpoint).exists() else "nothing was saved")
        raise InputError(f"training diverged by step {step}: {', '.join(bad)} became NaN or "
                         f"infinite; {kept}; lower the learning rate (lr={lr:g}) or the "
                         "sparsity coefficient")
