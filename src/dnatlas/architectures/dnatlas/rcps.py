"""Reverse-complement parameter sharing (RCPS), report section 2.1.1.

Channel convention: channel ``c`` of a width-``C`` axis is paired with channel
``C - 1 - c``. With this pairing the reverse complement of any activation tensor of
shape (B, L, C) is simply ``x.flip(1).flip(2)``: swap within each pair, reverse the
sequence. Every layer below stores half of its parameters and builds the full, mirrored
weight on the fly, so the model is exactly RC-equivariant while the compute is that of an
ordinary layer (the full kernel is built once per call, not the activations twice).

Each layer's free parameters are ``stored_weight`` (and ``stored_bias``): the independent
half with RCPS, from which the full weight is mirrored, and with ``rcps=False`` the
unconstrained full weight itself (for ablations). Checkpoints written before this naming
(``weight_half``/``bias_half``) load unchanged.

Mirror rules (for input/output widths I/O):
- embedding  ``E[comp(t)] = flip(E[t])`` (A<->T, C<->G, N and MASK palindromic);
- linear     ``W[o, i] = W[O-1-o, I-1-i]``;
- conv       ``W[o, i, j] = W[O-1-o, I-1-i, k-1-j]`` (with symmetric padding);
- per-channel vectors (norm gains, thresholds, biases) ``v[c] = v[C-1-c]``;
- triplet head ``W[P(t), i] = W[t, I-1-i]`` with P the reverse-complement permutation of
  the 64 triplets (ATG <-> CAT); no triplet is its own reverse complement, so the 64 rows
  form 32 pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dnatlas.genome.alphabet import COMPLEMENT

#: parameter names of checkpoints written before ``stored_weight``/``stored_bias``
LEGACY_NAMES = {"weight_half": "stored_weight", "bias_half": "stored_bias"}


def _rename_legacy(module, state_dict, prefix, *args) -> None:
    for old, new in LEGACY_NAMES.items():
        if prefix + old in state_dict and prefix + new not in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)


def _accept_legacy_names(module: nn.Module) -> None:
    """Let ``module.load_state_dict`` read the legacy parameter names."""
    module.register_load_state_dict_pre_hook(_rename_legacy)


def rc_channels(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of activations (B, L, C): swap channel pairs, reverse the sequence."""
    return x.flip(1).flip(2)


def triplet_rc_permutation() -> torch.Tensor:
    """P (64,) long: ``P[t]`` is the index of the reverse complement of triplet ``t``.

    Triplet index = 16*first + 4*middle + last (:func:`dnatlas.genome.codons.triplet_rc_permutation`);
    a CPU tensor, also under a meta-device context.
    """
    from dnatlas.genome.codons import triplet_rc_permutation as permutation

    return torch.from_numpy(permutation())


def _mirror_vector(half: torch.Tensor) -> torch.Tensor:
    return torch.cat([half, half.flip(0)])


class MirroredVector(nn.Module):
    """A per-channel parameter of length C (C even when shared): ``v[c] = v[C-1-c]``."""

    def __init__(self, size: int, init: float, rcps: bool = True):
        super().__init__()
        self.rcps = rcps
        self.param = nn.Parameter(torch.full((size // 2 if rcps else size,), float(init)))

    def forward(self) -> torch.Tensor:
        return _mirror_vector(self.param) if self.rcps else self.param


class RCEmbedding(nn.Module):
    """Token embedding, (B, L) long -> (B, L, d); ``E[comp(t)] = flip(E[t])`` when shared."""

    def __init__(self, vocab_size: int, d: int, rcps: bool = True):
        super().__init__()
        self.rcps = rcps
        width = d // 2 if rcps else d
        self.stored_weight = nn.Parameter(torch.randn(vocab_size, width))
        _accept_legacy_names(self)
        self.register_buffer("complement", torch.as_tensor(COMPLEMENT[:vocab_size].astype("int64"), device="cpu"),
                             persistent=False)

    def full_weight(self) -> torch.Tensor:
        if not self.rcps:
            return self.stored_weight
        return torch.cat([self.stored_weight, self.stored_weight[self.complement].flip(1)], dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.full_weight())


class RCLinear(nn.Module):
    """Pointwise linear map (..., I) -> (..., O) with ``W[o, i] = W[O-1-o, I-1-i]``."""

    def __init__(self, d_in: int, d_out: int, bias: bool = True, rcps: bool = True,
                 init_std: float | None = None):
        super().__init__()
        self.rcps = rcps
        rows = d_out // 2 if rcps else d_out
        std = init_std if init_std is not None else 1.0 / math.sqrt(d_in)
        self.stored_weight = nn.Parameter(torch.randn(rows, d_in) * std)
        _accept_legacy_names(self)
        self.bias = MirroredVector(d_out, 0.0, rcps) if bias else None

    def full_weight(self) -> torch.Tensor:
        w = self.stored_weight
        return torch.cat([w, w.flip(0).flip(1)], dim=0) if self.rcps else w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.full_weight(), None if self.bias is None else self.bias())


class RCConv1d(nn.Module):
    """Dense (not depthwise) dilated 'same' convolution on channels-last input.

    (B, L, I) -> (B, L, O), with ``W[o, i, j] = W[O-1-o, I-1-i, k-1-j]`` when shared.
    Zero padding of ``dilation * (k - 1) / 2`` on both sides keeps it RC-equivariant.
    """

    def __init__(self, d_in: int, d_out: int, kernel_size: int, dilation: int,
                 bias: bool = True, rcps: bool = True):
        super().__init__()
        self.rcps = rcps
        self.dilation = dilation
        self.padding = dilation * (kernel_size - 1) // 2
        rows = d_out // 2 if rcps else d_out
        std = 1.0 / math.sqrt(d_in * kernel_size)
        self.stored_weight = nn.Parameter(torch.randn(rows, d_in, kernel_size) * std)
        _accept_legacy_names(self)
        self.bias = MirroredVector(d_out, 0.0, rcps) if bias else None

    def full_weight(self) -> torch.Tensor:
        w = self.stored_weight
        return torch.cat([w, w.flip(0).flip(1).flip(2)], dim=0) if self.rcps else w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a (1 x k) conv2d on the channels-last view (B, I, 1, L) of x: no transposed copy
        # in, a contiguous (B, L, O) out (the activation reads it 2x faster, backward too)
        B, L, _ = x.shape
        y = F.conv2d(x.unsqueeze(1).permute(0, 3, 1, 2), self.full_weight().unsqueeze(2),
                     None if self.bias is None else self.bias(),
                     padding=(0, self.padding), dilation=(1, self.dilation))
        return y.permute(0, 2, 3, 1).reshape(B, L, -1)


class RCRMSNorm(nn.Module):
    """RMSNorm over the channel axis with a mirrored per-channel gain."""

    def __init__(self, d: int, eps: float = 1e-6, rcps: bool = True):
        super().__init__()
        self.eps = eps
        self.gain = MirroredVector(d, 1.0, rcps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.gain(), self.eps)


class RCTripletHead(nn.Module):
    """Linear map to the 64 triplet logits, (..., d) -> (..., 64), with ``W[P(t)] = flip(W[t])``.

    Stored rows are the 32 triplets ``t < P(t)``; their partners are mirrored copies.
    """

    def __init__(self, d: int, rcps: bool = True):
        super().__init__()
        self.rcps = rcps
        perm = triplet_rc_permutation()
        cpu = "cpu"  # index buffers are built on the CPU even under a meta-device context
        rep = torch.nonzero(torch.arange(64, device=cpu) < perm).squeeze(1)  # 32 representatives
        # full row t = stored row src[t], mirrored when t is not a representative
        src = torch.empty(64, dtype=torch.long, device=cpu)
        src[rep] = torch.arange(32, device=cpu)
        src[perm[rep]] = torch.arange(32, device=cpu)
        self.register_buffer("src", src, persistent=False)
        self.register_buffer("is_mirror", torch.ones(64, dtype=torch.bool, device=cpu)
                             .index_fill_(0, rep, False), persistent=False)
        rows = 32 if rcps else 64
        self.stored_weight = nn.Parameter(torch.randn(rows, d) / math.sqrt(d))
        self.stored_bias = nn.Parameter(torch.zeros(rows))
        _accept_legacy_names(self)

    def full_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.rcps:
            return self.stored_weight, self.stored_bias
        w = self.stored_weight[self.src]
        w = torch.where(self.is_mirror[:, None], w.flip(1), w)
        return w, self.stored_bias[self.src]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.full_weight()
        return F.linear(x, w, b)
