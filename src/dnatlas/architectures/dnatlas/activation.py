"""The DNAtlas activation: thresholding (equations 1, 5) followed by SoLU + RMS norm (2, 3).

    y = LeakyReLU_alpha(x) * sigmoid(a * (x - b)),     a > 1, b > 0 per neuron
    z = gamma * (y * e^y) / RMS(y * e^y),              gamma > 0, RMS over the neuron axis

Overflow: ``e^y`` overflows for y > 88 in fp32 (and earlier in bf16/fp16). The factor
``e^m`` with ``m = max_c y_c`` is common to numerator and denominator, so we compute
``u = y * e^(y - m)`` (every factor <= 1) and ``z = gamma * u / sqrt(mean(u^2) + eps)``.
The activation is evaluated in fp32 when the input is fp16 or bf16.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from dnatlas.architectures.dnatlas.rcps import MirroredVector

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


def _gated(g: torch.Tensor, c: torch.Tensor | None, silu: bool) -> torch.Tensor:
    g = F.silu(g) if silu else g
    return g if c is None else g * c


# One function per set of outputs: each has its own torch.compile cache (keyed by code).
def _act_z(g, c, a, b, gamma, slope: float, eps: float, silu: bool):
    y = threshold(_upcast(_gated(g, c, silu)), a, b, slope)
    return (solu_norm(y, gamma, eps),)


def _act_yz(g, c, a, b, gamma, slope: float, eps: float, silu: bool):
    y = threshold(_upcast(_gated(g, c, silu)), a, b, slope)
    return y, solu_norm(y, gamma, eps)


def _act_hyz(g, c, a, b, gamma, slope: float, eps: float, silu: bool):
    h = _gated(g, c, silu)
    y = threshold(_upcast(h), a, b, slope)
    return h, y, solu_norm(y, gamma, eps)


def _folded(ug, vg, uc, vc, a, b, gamma, slope: float, eps: float, silu: bool):
    """The activation on the RC-folded path, half by half (no concatenation): from the
    halves of the gate (g1, g2 = ug + vg, ug - vg) and of the convolution (c1, c2), with
    a and b the mirrored parameters' halves (C/2,). Returns (h1, h2, y1, y2, z1, z2, s, d):
    each site's two halves in the folded order and ``s, d = z1 + z2, z1 - z2``."""
    h1 = _gated(ug + vg, uc + vc, silu)
    h2 = _gated(ug - vg, uc - vc, silu)
    y1 = threshold(_upcast(h1), a, b, slope)
    y2 = threshold(_upcast(h2), a, b, slope)
    m = torch.maximum(y1.detach().amax(-1, keepdim=True), y2.detach().amax(-1, keepdim=True))
    u1, u2 = y1 * torch.exp(y1 - m), y2 * torch.exp(y2 - m)
    ms = (u1.square().sum(-1, keepdim=True) + u2.square().sum(-1, keepdim=True)) / (
        2 * u1.shape[-1])
    scale = gamma * torch.rsqrt(ms + eps)
    z1, z2 = u1 * scale, u2 * scale
    return h1, h2, y1, y2, z1, z2, z1 + z2, z1 - z2


def _folded_z(*args):
    return _folded(*args)[6:]


def _folded_yz(*args):
    return _folded(*args)[2:]


def _folded_hyz(*args):
    return _folded(*args)


_VARIANTS = {"z": _act_z, "yz": _act_yz, "hyz": _act_hyz,
             "folded:z": _folded_z, "folded:yz": _folded_yz, "folded:hyz": _folded_hyz}
#: elements (rows x neurons) the eager activation processes before ``auto`` compiles it:
#: about 1 M positions of the tiny model, so that the one-off compile (~5-20 s) pays back
AUTO_MIN_ELEMENTS = 1 << 28

_log = logging.getLogger(__name__)


class _Fused:
    """The process-wide choice between the eager and the ``torch.compile``-fused activation.

    ``mode``: ``None`` (auto: compile once this process has run ``AUTO_MIN_ELEMENTS``
    elements eagerly, so short jobs and tests never wait for a compiler), ``True`` (compile
    at the first call) or ``False`` (eager). A compile that fails (no C++ compiler, no
    inductor for the device) is logged once and the eager function is used from then on.
    """

    def __init__(self):
        self.mode: bool | None = None
        self.work = 0
        self.failed = False
        self.compiled: dict = {}

    def enabled(self, elements: int) -> bool:
        if self.mode is False or self.failed:
            return False
        if self.mode is None:
            self.work += elements
            return self.work > AUTO_MIN_ELEMENTS
        return True

    def run(self, want: str, rows: tuple, *params) -> tuple:
        """``_VARIANTS[want](*rows, *params)``; ``rows``: the (..., C) inputs (None allowed)."""
        eager = _VARIANTS[want]
        if not self.enabled(rows[0].numel()):
            return eager(*rows, *params)
        fn = self.compiled.get(want)
        if fn is None:
            fn = self.compiled[want] = torch.compile(eager, dynamic=None)
        if rows[0].ndim == 2 and not torch.compiler.is_compiling():
            for t in rows:
                if t is not None:  # tiles of any row count: one kernel
                    torch._dynamo.maybe_mark_dynamic(t, 0)
        try:
            return fn(*rows, *params)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: run eagerly
            self.failed = True
            _log.warning("torch.compile of the DNAtlas activation failed (%s: %s); using the "
                         "eager activation", type(exc).__name__, str(exc).splitlines()[0][:200])
            return eager(*rows, *params)


FUSED = _Fused()


def fused_activation(g: torch.Tensor, c: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                     gamma: torch.Tensor, slope: float, eps: float, silu: bool,
                     want: str = "z") -> tuple[torch.Tensor, ...]:
    """The gate product and the activation of a block in one pass.

    ``h = f(g) * c`` (f = SiLU or identity; ``c=None``: h = f(g)), ``y = threshold(h)``, ``z = solu_norm(y)``;
    g and c (..., C) (the gate and the convolution), a and b (C,), gamma scalar. ``want``
    names the outputs, in order: ``"z"``, ``"yz"`` or ``"hyz"`` (h in the input dtype, y
    and z at least fp32). Compiled by ``torch.compile`` when :func:`compile_activation`
    allows it (see :class:`_Fused`).
    """
    return FUSED.run(want, (g, c), a, b, gamma, slope, eps, silu)


def folded_activation(ug: torch.Tensor, vg: torch.Tensor, uc: torch.Tensor, vc: torch.Tensor,
                      a: torch.Tensor, b: torch.Tensor, gamma: torch.Tensor, slope: float,
                      eps: float, silu: bool, want: str = "z") -> tuple[torch.Tensor, ...]:
    """:func:`fused_activation` on the RC-folded path (:mod:`dnatlas.architectures.dnatlas.folded`).

    The gate is ``g = [ug + vg, ug - vg]`` and the convolution ``c = [uc + vc, uc - vc]``
    in the folded channel order (each half (rows, C/2)); ``a`` and ``b`` are the halves
    (C/2,) of the mirrored per-neuron parameters. Returns the two folded halves
    (rows, C/2) of each site named by ``want`` (``"z"``: none, ``"yz"``: y then z,
    ``"hyz"``: h, y, z), followed by ``z1 + z2`` and ``z1 - z2`` (rows, C/2), what the
    output projection reads. One fused kernel when compiled (see
    :func:`compile_activation`).
    """
    return FUSED.run("folded:" + want, (ug, vg, uc, vc), a, b, gamma, slope, eps, silu)


def compile_activation(enabled: bool | None = True) -> None:
    """Choose how the activation runs, process-wide: ``True`` one ``torch.compile``-fused
    kernel (gate product, thresholding, SoLU and norm), ``False`` eager PyTorch, ``None``
    auto (the default: compiled once a process has done enough work to pay for it).

    The fused kernel makes the tiny model's forward about 2x and a training step of the
    ``small`` preset about 1.3x faster on CPU (``bench/bench_model.py``). It needs a working
    C++ compiler (inductor); without one the eager path is used and a warning logged.
    """
    FUSED.mode = enabled
    FUSED.failed = False


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
        return fused_activation(x, None, self.a, self.b, self.gamma, self.slope, self.eps,
                                silu=False, want="yz")
