"""The DNAtlas activation: thresholding (equations 1, 5) followed by SoLU + RMS norm (2, 3).

    y = LeakyReLU_alpha(x) * sigmoid(a * (x - b)),     a > 1, b > 0 per neuron
    z = gamma * (y * e^y) / RMS(y * e^y),              gamma > 0, RMS over the neuron axis

Overflow: ``e^y`` overflows for y > 88 in fp32 (and earlier in bf16/fp16). The factor
``e^m`` with ``m = max_c y_c`` is common to numerator and denominator, so we compute
``u = y * e^(y - m)`` (every factor <= 1) and ``z = gamma * u / sqrt(mean(u^2) + eps)``.
The activation is evaluated in fp32 when the input is fp16 or bf16.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dnatlas.model.rcps import MirroredVector

MARGIN = 1e-4  # keeps a > 1, b > 0, gamma > 0 strict in floating point


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Half precision -> fp32; fp32 and fp64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def threshold(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, slope: float = 0.01) -> torch.Tensor:
    """Equation (1): ``LeakyReLU(x) * sigmoid(a * (x - b))``; x (..., C), a and b (C,)."""
    return F.leaky_relu(x, slope) * torch.sigmoid(a * (x - b))


def solu_norm(y: torch.Tensor, gamma: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Equations (2)-(3): ``gamma * y e^y / RMS(y e^y)`` over the last axis, overflow-free."""
    m = y.detach().amax(dim=-1, keepdim=True)
    u = y * torch.exp(y - m)
    return gamma * u * torch.rsqrt(u.square().mean(dim=-1, keepdim=True) + eps)


def threshold_solu(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, slope: float,
                   gamma: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both stages at once: ``(y, z)`` from pre-activations x (..., C)."""
    y = threshold(_upcast(x), a, b, slope)
    return y, solu_norm(y, gamma, eps)


_compiled_threshold_solu = None


def compile_activation(enabled: bool = True) -> None:
    """Run the activation as one ``torch.compile``-fused kernel (process-wide).

    On CPU this makes a training step of the ``small`` preset about 1.3x faster (see
    ``bench/bench_model.py --compile-activation``). It needs a working C++ compiler
    (inductor); the first call compiles for ~10 s.
    """
    global _compiled_threshold_solu
    _compiled_threshold_solu = torch.compile(threshold_solu, dynamic=False) if enabled else None


class ThresholdSoLU(nn.Module):
    """The DNAtlas activation over a neuron axis of width C.

    Learnable per-neuron ``a = 1 + m + softplus(a_raw) > 1`` and
    ``b = m + softplus(b_raw) > 0`` (mirrored under RCPS), and a scalar
    ``gamma = m + softplus(gamma_raw) > 0``, with a margin ``m = 1e-4`` so that the
    constraints hold in floating point for any value of the raw parameters.

    ``forward`` returns ``(y, z)``: ``y`` is the "neurons" site (after thresholding,
    before SoLU) and ``z`` the "post_act" site, both (..., C), at least fp32.
    """

    def __init__(self, n: int, threshold_init: float = 0.5, sharpness_init: float = 4.0,
                 slope: float = 0.01, eps: float = 1e-6, rcps: bool = True):
        super().__init__()
        self.slope = slope
        self.eps = eps
        self.a_raw = MirroredVector(n, _inverse_softplus(sharpness_init - 1.0 - MARGIN), rcps)
        self.b_raw = MirroredVector(n, _inverse_softplus(threshold_init - MARGIN), rcps)
        self.gamma_raw = nn.Parameter(torch.tensor(_inverse_softplus(1.0 - MARGIN)))

    @property
    def a(self) -> torch.Tensor:
        return 1.0 + MARGIN + F.softplus(self.a_raw())

    @property
    def b(self) -> torch.Tensor:
        return MARGIN + F.softplus(self.b_raw())

    @property
    def gamma(self) -> torch.Tensor:
        return MARGIN + F.softplus(self.gamma_raw)

    def threshold(self, x: torch.Tensor) -> torch.Tensor:
        """Site "neurons": (..., C) -> (..., C) fp32, equation (1)."""
        return threshold(_upcast(x), self.a, self.b, self.slope)

    def normalize(self, y: torch.Tensor) -> torch.Tensor:
        """Site "post_act": (..., C) -> (..., C) fp32, equation (3)."""
        return solu_norm(_upcast(y), self.gamma, self.eps)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fn = _compiled_threshold_solu or threshold_solu
        return fn(x, self.a, self.b, self.slope, self.gamma, self.eps)
