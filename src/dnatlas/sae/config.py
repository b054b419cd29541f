"""Hyperparameters of one sparse autoencoder: :class:`SAEConfig` and the architecture names.

Split from :mod:`dnatlas.sae.architectures`, which re-exports every name here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from types import SimpleNamespace
from typing import Any

ARCHITECTURES = ("relu", "topk", "batchtopk", "jumprelu")

#: default coefficient of the dead-feature auxiliary loss per architecture
DEFAULT_AUX_COEFFICIENT = {"relu": 0.0, "topk": 1 / 32, "batchtopk": 1 / 32, "jumprelu": 0.0}


@dataclass
class SAEConfig:
    """Hyperparameters of one sparse autoencoder.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        d_in: width of the activations read.
        d_sae: number of features (dictionary size).
        k: active features per row (topk) or per row on average (batchtopk).
        l1_coefficient: weight of the norm-weighted L1 penalty (relu).
        l0_coefficient: weight of the L0 penalty (jumprelu).
        aux_coefficient: weight of the dead-feature auxiliary loss; None takes
            :data:`DEFAULT_AUX_COEFFICIENT` for the architecture.
        aux_k: dead features used by AuxK; None means d_in // 2.
        dead_after: a feature is dead after this many training steps without firing.
        jumprelu_bandwidth: width epsilon of the rectangle kernel of the straight-through
            estimator (jumprelu), in normalised units.
        jumprelu_init_threshold: initial threshold (jumprelu).
        threshold_lr: rate of the moving average of the BatchTopK inference threshold.
        normalize: estimate an input scale so that E||x||^2 = d_in during training.
        decoder_init_norm: initial norm of decoder rows; None means 0.1 for relu (free
            norms) and 1 for the projected architectures.
        seed: seed of the weight initialisation.
        hook_name: the activation key the SAE reads (e.g. ``"blocks.2.residual"``).
        model_name: the model the activations come from (free text, saved in cfg.json).
    """

    arch: str
    d_in: int
    d_sae: int
    k: int | None = None
    l1_coefficient: float = 0.1
    l0_coefficient: float = 1.0
    aux_coefficient: float | None = None
    aux_k: int | None = None
    dead_after: int = 1000
    jumprelu_bandwidth: float = 0.001
    jumprelu_init_threshold: float = 0.001
    threshold_lr: float = 0.01
    normalize: bool = True
    decoder_init_norm: float | None = None
    seed: int = 0
    hook_name: str = ""
    model_name: str = ""

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown SAE architecture {self.arch!r}; "
                             f"choose from {', '.join(ARCHITECTURES)}")
        check_numbers(self)
        if self.arch in ("topk", "batchtopk"):
            if self.k is None or not 0 < self.k <= self.d_sae:
                raise ValueError(f"{self.arch} needs 0 < k <= d_sae (got k={self.k})")
        if self.aux_coefficient is None:
            self.aux_coefficient = DEFAULT_AUX_COEFFICIENT[self.arch]
        if self.aux_k is None:
            self.aux_k = max(1, self.d_in // 2)
        if self.decoder_init_norm is None:
            self.decoder_init_norm = 0.1 if self.arch == "relu" else 1.0

    @classmethod
    def from_expansion(cls, arch: str, d_in: int, expansion: int, **kwargs: Any) -> SAEConfig:
        """Config with ``d_sae = expansion * d_in``."""
        import math

        if isinstance(expansion, bool) or not isinstance(expansion, int | float) \
                or not math.isfinite(expansion) or expansion <= 0:
            raise ValueError(f"expansion must be a finite positive number, got {expansion!r}")
        if 2 * d_in * expansion * d_in > MAX_SAE_WEIGHTS:
            check_numbers(SimpleNamespace(d_in=d_in, d_sae=int(expansion * d_in)))
        return cls(arch=arch, d_in=d_in, d_sae=int(expansion * d_in), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


#: the most features an SAE may have (d_sae * d_in float32 weights twice must fit a machine)
MAX_SAE_WEIGHTS = 1 << 33

_INT_FIELDS = ("d_in", "d_sae", "k", "aux_k", "dead_after", "seed")
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
