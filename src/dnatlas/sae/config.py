"""Hyperparameters of one sparse autoencoder: the fields every architecture shares.

Each architecture (:mod:`dnatlas.sae.registry`) declares its own config, a dataclass
derived from :class:`SAEConfig` with its own fields and checks. ``SAEConfig(arch, d_in,
d_sae, **fields)`` builds the config of the registered architecture ``arch``; fields that
belong only to other architectures (``k`` given to a ReLU SAE, say) are ignored there,
as in every saved folder, whose ``cfg.json`` keeps one flat record of all fields
(:meth:`SAEConfig.to_dict`, :data:`SAVED_FIELDS`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

__all__ = ["SAVED_FIELDS", "SAEConfig", "check_k"]

#: the flat record of ``cfg.json``'s ``metadata.dnatlas.config``, in its order: the shared
#: fields and those of the first four architectures; a later architecture's own fields follow
SAVED_FIELDS = ("arch", "d_in", "d_sae", "k", "l1_coefficient", "l0_coefficient",
                "aux_coefficient", "aux_k", "dead_after", "jumprelu_bandwidth",
                "jumprelu_init_threshold", "threshold_lr", "normalize", "decoder_init_norm",
                "seed", "hook_name", "model_name")


class _ByArchitecture(type):
    """``SAEConfig(arch, d_in, d_sae, **fields)`` builds the registered architecture's config;
    an architecture's own class (``TopKConfig(d_in, d_sae, k=...)``) is built directly."""

    def __call__(cls, *args, **kwargs):
        if cls is not SAEConfig:
            return super().__call__(*args, **kwargs)
        return _build(*args, **kwargs)


@dataclass
class SAEConfig(metaclass=_ByArchitecture):
    """Hyperparameters shared by every architecture (its own config adds the rest).

    Args:
        d_in: width of the activations read.
        d_sae: number of features (dictionary size).
        aux_coefficient: weight of the dead-feature auxiliary loss; None takes the
            architecture's :attr:`default_aux_coefficient`.
        aux_k: dead features used by AuxK; None means d_in // 2.
        dead_after: a feature is dead after this many training steps without firing.
        normalize: estimate an input scale so that E||x||^2 = d_in during training.
        decoder_init_norm: initial norm of decoder rows; None takes the architecture's
            :attr:`default_decoder_init_norm` (0.1 for relu's free norms, else 1).
        seed: seed of the weight initialisation.
        hook_name: the activation key the SAE reads (e.g. ``"blocks.2.residual"``).
        model_name: the model the activations come from (free text, saved in cfg.json).
    """

    #: the architecture's registered name
    arch: ClassVar[str] = ""
    default_aux_coefficient: ClassVar[float] = 0.0
    default_decoder_init_norm: ClassVar[float] = 1.0

    d_in: int
    d_sae: int
    aux_coefficient: float | None = None
    aux_k: int | None = None
    dead_after: int = 1000
    normalize: bool = True
    decoder_init_norm: float | None = None
    seed: int = 0
    hook_name: str = ""
    model_name: str = ""

    def __post_init__(self):
        """The checks and defaults of every config; an architecture's config extends it."""
        if self.d_in < 1 or self.d_sae < 1:
            raise ValueError("d_in and d_sae must be positive")
        if self.aux_coefficient is None:
            self.aux_coefficient = self.default_aux_coefficient
        if self.aux_k is None:
            self.aux_k = max(1, self.d_in // 2)
        if self.decoder_init_norm is None:
            self.decoder_init_norm = self.default_decoder_init_norm

    @classmethod
    def from_expansion(cls, arch: str, d_in: int, expansion: float, **kwargs: Any) -> SAEConfig:
        """Config with ``d_sae = expansion * d_in``."""
        return _build(arch, d_in, int(expansion * d_in), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The flat record saved in ``cfg.json``: :data:`SAVED_FIELDS` (a field of another
        architecture at that architecture's default), then this architecture's own others."""
        from dnatlas.sae.registry import saved_defaults

        own = {f.name: getattr(self, f.name) for f in fields(self)}
        record = {"arch": self.arch}
        defaults = saved_defaults()
        for name in SAVED_FIELDS[1:]:
            record[name] = own.pop(name) if name in own else defaults.get(name)
        return {**record, **own}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        """The config of a flat record (:meth:`to_dict`); fields of other architectures and
        unknown names are ignored."""
        kw = dict(data)
        arch = kw.pop("arch")
        own = {f.name for f in fields(_config_class(arch))}
        return _build(arch, **{k: v for k, v in kw.items() if k in own})


def check_k(cfg: SAEConfig) -> None:
    """The one rule for ``k`` (active features per row, or per row on average):
    ``1 <= k <= d_sae``."""
    if cfg.k is None or not 1 <= cfg.k <= cfg.d_sae:
        raise ValueError(f"{cfg.arch} needs 1 <= k <= d_sae (got k={cfg.k})")


def _config_class(arch: str) -> type[SAEConfig]:
    from dnatlas.sae.registry import architecture

    return architecture(arch).config_class


def _build(arch: str, d_in: int, d_sae: int, **kwargs: Any) -> SAEConfig:
    """The config of architecture ``arch``; fields of other architectures are ignored."""
    from dnatlas.sae.registry import saved_defaults

    cls = _config_class(arch)
    own = {f.name for f in fields(cls)}
    known = set(saved_defaults())
    unknown = sorted(k for k in kwargs if k not in own and k not in known)
    if unknown:
        raise TypeError(f"SAEConfig got unexpected keyword argument(s) {', '.join(unknown)}")
    return cls(d_in, d_sae, **{k: v for k, v in kwargs.items() if k in own})
