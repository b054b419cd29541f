"""What a user sets about an SAE run, merged with a named preset into the run's settings.

:class:`SAEHyperparameters` is what ``dnatlas sae train`` (or a notebook) gives;
:func:`resolve_hyperparameters` merges it with a preset of :data:`~dnatlas.sae.training_config.PRESETS`
(values given override the preset's), and :meth:`ResolvedHyperparameters.config` builds the
architecture's config for one activation site, where the architecture's own checks run
(``k`` among them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dnatlas.errors import InputError
from dnatlas.sae.config import SAEConfig
from dnatlas.sae.registry import ARCHITECTURES, architecture, make_config
from dnatlas.sae.training_config import SAETrainingConfig, preset

__all__ = ["ResolvedHyperparameters", "SAEHyperparameters", "check_non_negative", "check_positive",
           "resolve_hyperparameters"]


@dataclass
class SAEHyperparameters:
    """What a user may set about an SAE run; None means the preset's value or the default.

    Attributes:
        preset: a named preset of :data:`dnatlas.sae.training_config.PRESETS` (values given
            here override it).
        arch: an architecture of :data:`dnatlas.sae.registry.ARCHITECTURES`.
        expansion: d_sae / d_in (default 16).
        k: active features per row (topk, batchtopk).
        l1, l0: sparsity coefficients (relu; jumprelu).
        steps, batch_size, lr: optimisation (defaults 10,000, 4,096 rows, 4e-4).
        normalize: rescale inputs to E||x||^2 = d_in during training.
        checkpoint_every: steps between checkpoints.
        extra: further config fields of the architecture.
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


@dataclass
class ResolvedHyperparameters:
    """A run's settings: the architecture, expansion, its config fields and optimisation."""

    arch: str
    expansion: float
    sae_kwargs: dict[str, Any]
    train: SAETrainingConfig

    @property
    def data_parallel(self) -> bool:
        """Whether data-parallel ranks can train this architecture."""
        return architecture(self.arch).data_parallel

    def config(self, d_in: int, **fields: Any) -> SAEConfig:
        """The architecture's config for ``d_in`` inputs (``fields``: hook, model, seed...);
        its checks raise :class:`InputError`."""
        try:
            return make_config(self.arch, d_in, expansion=self.expansion, **fields,
                               **self.sae_kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), setting=getattr(exc, "field", None)) from None


def resolve_hyperparameters(hyper: SAEHyperparameters, device: str) -> ResolvedHyperparameters:
    """Merge a preset with the user's values; :class:`InputError` for a missing or unknown
    architecture and out-of-range values (the architecture's config checks its own)."""
    sae_kw, train = preset(hyper.preset) if hyper.preset else ({}, SAETrainingConfig())
    arch = hyper.arch or sae_kw.pop("arch", None)
    sae_kw.pop("arch", None)
    if arch is None:
        raise InputError(f"give an architecture ({', '.join(ARCHITECTURES)}) or a preset")
    try:
        architecture(arch)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    expansion = sae_kw.pop("expansion", 16)
    if hyper.expansion is not None:
        expansion = hyper.expansion
    check_positive("expansion", expansion)
    if hyper.k is not None:
        sae_kw["k"] = hyper.k
    for value, name, key in ((hyper.l1, "l1", "l1_coefficient"),
                             (hyper.l0, "l0", "l0_coefficient")):
        if value is not None:
            check_non_negative(name, value)
            sae_kw[key] = value
    if not hyper.normalize:
        sae_kw["normalize"] = False
    for name in ("steps", "batch_size", "lr"):
        value = getattr(hyper, name)
        if value is not None:
            check_positive(name, value)
            setattr(train, name, value)
    check_positive("checkpoint_every", hyper.checkpoint_every)
    train.device = device
    train.checkpoint_every = hyper.checkpoint_every
    return ResolvedHyperparameters(arch, expansion, {**sae_kw, **hyper.extra}, train)


def check_positive(name: str, value) -> None:
    """:class:`InputError` unless ``value > 0`` (a setting named ``name``)."""
    if not value > 0:
        raise InputError(f"{name} must be positive, got {value}", setting=name)


def check_non_negative(name: str, value) -> None:
    """:class:`InputError` unless ``value >= 0``."""
    if not value >= 0:
        raise InputError(f"{name} must be at least 0, got {value}", setting=name)
