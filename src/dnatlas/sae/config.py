"""Hyperparameters of one sparse autoencoder: the fields every architecture shares.

Each architecture (:mod:`dnatlas.sae.registry`) declares its own config, a dataclass
derived from :class:`SAEConfig` with its own fields and checks;
:func:`dnatlas.sae.registry.make_config` builds the one of an architecture named at run
time. A saved folder's ``cfg.json`` keeps one flat record of all architectures' fields
(:data:`SAVED_FIELDS`; :func:`dnatlas.sae.registry.saved_record`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["SAVED_FIELDS", "FieldError", "SAEConfig", "check_k"]

#: the flat record of ``cfg.json``'s ``metadata.dnatlas.config``, in its order: the shared
#: fields and those of the first four architectures; a later architecture's own fields follow
SAVED_FIELDS = ("arch", "d_in", "d_sae", "k", "l1_coefficient", "l0_coefficient",
                "aux_coefficient", "aux_k", "dead_after", "jumprelu_bandwidth",
                "jumprelu_init_threshold", "threshold_lr", "normalize", "decoder_init_norm",
                "seed", "hook_name", "model_name")


@dataclass
class SAEConfig:
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
        check_numbers(self)
        if self.d_in < 1 or self.d_sae < 1:
            raise ValueError("d_in and d_sae must be positive")
        if self.aux_coefficient is None:
            self.aux_coefficient = self.default_aux_coefficient
        if self.aux_k is None:
            self.aux_k = max(1, self.d_in // 2)
        if self.decoder_init_norm is None:
            self.decoder_init_norm = self.default_decoder_init_norm


class FieldError(ValueError):
    """A config field out of range; ``field`` names it (for a command's flag)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def check_k(cfg: SAEConfig) -> None:
    """The one rule for ``k`` (active features per row, or per row on average):
    ``1 <= k <= d_sae``."""
    if cfg.k is None or not 1 <= cfg.k <= cfg.d_sae:
        raise FieldError(f"{cfg.arch} needs 1 <= k <= d_sae (got k={cfg.k})", "k")


#: the most features an SAE may have (d_sae * d_in float32 weights twice must fit a machine)
MAX_SAE_WEIGHTS = 1 << 33

_INT_FIELDS = ("d_in", "d_sae", "aux_k", "dead_after", "seed")  # k: its own rule, check_k
_FLOAT_FIELDS = ("l1_coefficient", "l0_coefficient", "aux_coefficient", "jumprelu_bandwidth",
                 "jumprelu_init_threshold", "threshold_lr", "decoder_init_norm")


def check_numbers(cfg) -> None:
    """The range checks of every SAE config field present on ``cfg``: integers are integers
    (d_in, d_sae >= 1; k, aux_k, dead_after >= 1; seed >= 0), every float is finite and
    non-negative (bandwidth, threshold rate and decoder norm positive), k <= d_sae, and the
    weights (2 * d_in * d_sae) stay under :data:`MAX_SAE_WEIGHTS`. Raises ValueError naming
    the field."""
    import math

    for name in _INT_FIELDS:
        value = getattr(cfg, name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value < (0 if name == "seed" else 1):
            raise ValueError(f"{name} must be at least {0 if name == 'seed' else 1}, "
                             f"got {value}")
    for name in _FLOAT_FIELDS:
        value = getattr(cfg, name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if value == 0 and name in ("jumprelu_bandwidth", "threshold_lr", "decoder_init_norm"):
            raise ValueError(f"{name} must be positive, got {value!r}")
    if 2 * cfg.d_in * cfg.d_sae > MAX_SAE_WEIGHTS:
        raise ValueError(f"an SAE of {cfg.d_in} x {cfg.d_sae} needs "
                         f"{8 * cfg.d_in * cfg.d_sae / 2**30:.3g} GiB of weights; the most is "
                         f"{MAX_SAE_WEIGHTS * 4 / 2**30:.3g} GiB (d_sae = expansion x d_in)")
