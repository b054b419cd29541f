"""Training configuration: a preset or YAML file, plus ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from dnatlas.errors import InputError


@dataclass
class TrainConfig:
    """Everything that defines a training run (with the data store and output folder).

    ``batch_size`` is the *global* batch in windows per optimiser step; each of the W
    data-parallel ranks processes ``batch_size / W`` windows per step in micro-batches of
    at most ``micro_batch_size`` (gradient accumulation).
    """

    model: str = "dnatlas"                 # "dnatlas" or "transformer" (the baseline)
    preset: str = "tiny"                   # model preset (DNAtlasConfig / TransformerConfig)
    model_overrides: dict = field(default_factory=dict)
    window: int = 1024                     # sequence length L in nucleotides
    batch_size: int = 16                   # global windows per step
    micro_batch_size: int = 16             # per rank, per forward/backward
    steps: int = 1000
    lr: float = 2e-3
    min_lr_ratio: float = 0.1              # cosine floor as a fraction of lr
    warmup_steps: int = 100
    schedule: str = "cosine"               # "cosine" or "constant"
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    eligible_fraction: float = 0.7         # Markov masking (report Appendix A.2)
    mask_rate: float = 0.15
    run_length_range: tuple[float, float] = (1.0, 1024.0)
    eval_every: int = 200
    eval_windows: int = 64                 # validation windows per evaluation
    checkpoint_every: int = 200
    log_every: int = 10
    bf16: bool = True                      # autocast on CUDA (ignored on CPU)
    compile: bool = False                  # torch.compile the model
    # torch.compile only the activation (gate product + thresholding + SoLU + norm, one
    # kernel): None (YAML null or "auto") when the whole run does more than ~1 M
    # positions' worth of it (decided from the config: a resumed run decides alike), true,
    # false; without a working compiler the eager activation runs (logged). CPU: tiny
    # 1.2x, small 1.3x per step.
    compile_activation: bool | None = None
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, f.type, getattr(self, f.name)))
        if self.model not in ("dnatlas", "transformer"):
            raise ValueError(f"model must be 'dnatlas' or 'transformer', got {self.model!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        for name in ("window", "batch_size", "micro_batch_size", "steps", "eval_every",
                     "eval_windows", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("seed", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        _check_range("lr", self.lr, low=0.0, low_open=True)
        _check_range("min_lr_ratio", self.min_lr_ratio, low=0.0, high=1.0)
        _check_range("weight_decay", self.weight_decay, low=0.0)
        _check_range("grad_clip", self.grad_clip, low=0.0, low_open=True)
        for beta in self.betas:
            _check_range("betas", beta, low=0.0, high=1.0, high_open=True)
        _check_range("mask_rate", self.mask_rate, low=0.0, high=1.0, low_open=True)
        _check_range("eligible_fraction", self.eligible_fraction, low=0.0, high=1.0,
                     low_open=True, high_open=True)
        if self.mask_rate > self.eligible_fraction:
            raise ValueError(f"mask_rate ({self.mask_rate}) must not exceed eligible_fraction "
                             f"({self.eligible_fraction})")
        low, high = self.run_length_range
        _check_range("run_length_range", low, low=1.0)
        _check_range("run_length_range", high, low=low)
        self._check_model()

    def _check_model(self) -> None:
        """The preset exists and ``model_overrides`` are valid settings of that model."""
        from dnatlas.architectures.dnatlas.config import PRESETS, DNAtlasConfig

        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; presets: {', '.join(PRESETS)}")
        if self.model == "dnatlas":
            try:
                DNAtlasConfig.preset(self.preset, **self.model_overrides)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"model_overrides: {exc}") from None
            return
        from dnatlas.architectures.transformer import TransformerConfig

        known = {f.name for f in dataclasses.fields(TransformerConfig)}
        unknown = sorted(set(self.model_overrides) - known)
        if unknown:
            raise ValueError(f"model_overrides: unknown transformer setting(s) "
                             f"{', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        out["run_length_range"] = list(self.run_length_range)
        return out

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown training setting(s) {unknown}", path=source)
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), path=source) from None


def _check_range(name: str, value: float, low: float | None = None,
                 high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> None:
    """Raise ValueError unless ``value`` is finite and within [low, high] (or open ends)."""
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{left}, {right}" \
                   f"{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value}")


def _number(name: str, value, kind: type):
    """``value`` as ``kind`` (int or float); YAML 1.1 leaves ``3e-3`` a string, so parse it."""
    if isinstance(value, str):
        try:
            value = float(value) if kind is float else int(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a{'n integer' if kind is int else ' number'}, "
                         f"got {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return kind(value)


def _coerce(name: str, annotation: str, value):
    """Check and convert one setting to its declared type (annotations are strings here)."""
    if annotation in ("int", "float"):
        return _number(name, value, int if annotation == "int" else float)
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if annotation == "bool | None":
        if value is None or value == "auto":
            return None
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true, false or auto, got {value!r}")
        return value
    if annotation == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    if annotation == "dict":
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be a mapping, got {value!r}")
        return dict(value)
    if annotation == "tuple[float, float]":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"{name} must be a pair of numbers, got {value!r}")
        return tuple(_number(name, v, float) for v in value)
    raise TypeError(f"no coercion for setting {name}: {annotation}")


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("dnatlas.presets").iterdir()
                  if p.name.endswith(".yaml"))


def load_train_config(spec: str, overrides: list[str] = ()) -> TrainConfig:
    """A preset name (``tiny``, ``small``, ``wide``...) or a YAML file, then ``key=value``
    overrides (values parsed as YAML; ``model_overrides.KEY=V`` sets a model field)."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError("training config not found", path=path)
        source, text = str(path), path.read_text()
    elif spec in preset_names():
        source = f"preset {spec}"
        text = resources.files("dnatlas.presets").joinpath(f"{spec}.yaml").read_text()
    else:
        raise InputError(f"unknown preset {spec!r}; presets: {', '.join(preset_names())}, "
                         "or give a YAML file")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path=source,
                         line=None if line is None else line + 1) from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"overrides expects key=value, got {item!r}", setting="overrides")
        parsed = yaml.safe_load(value)
        if key.startswith("model_overrides."):
            data.setdefault("model_overrides", {})[key.split(".", 1)[1]] = parsed
        else:
            data[key] = parsed
    return TrainConfig.from_dict(data, source)
