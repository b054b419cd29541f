"""RC-folded inference: half the multiply-adds of every RC-shared matmul, exactly.

With reverse-complement parameter sharing (:mod:`dnatlas.architectures.dnatlas.rcps`) channel ``c`` of a
width-C axis pairs with ``C - 1 - c``. In the *folded* channel order

    fold(x) = [x[:C/2], flip(x[C/2:])]          (channel C/2 + i holds C - 1 - i)

the two members of pair i sit at i and C/2 + i, and every shared weight becomes
block-symmetric. For an RC-shared linear map with stored top rows ``w = [P | Q]``
(O/2 x I), folded input ``[a; b]`` and folded output ``[y1; y2]``::

    y1 = P a + Q' b,   y2 = Q' a + P b,        Q' = Q with its columns reversed

so, with ``S = (P + Q') / 2`` and ``D = (P - Q') / 2``::

    u = S (a + b),   v = D (a - b),   y1 = u + v,   y2 = u - v

two (O/2 x I/2) products instead of one (O x I): half the multiply-adds, for the gate,
the dilated convolution (its im2col columns pair tap j, channel i with tap k-1-j,
channel C-1-i) and the output projection. Per-channel vectors (norm gains, biases,
thresholds) are mirrored, so their folded form is ``[v_half, v_half]``; the RMS norms
and the SoLU normalisation are sums over channels, unchanged by the order.

The residual stream stays folded from the embedding to the head; only the sites a caller
asks for are unfolded when stored. Under reverse complement the folded halves swap, so
``a + b`` is unchanged and ``a - b`` changes sign exactly. Results equal the plain path's
to rounding (the sums run in another order). Used by
:meth:`dnatlas.architectures.dnatlas.modeling.DNAtlas.forward` for inference (no autograd, no
interventions) of RC-shared models; ``bench/bench_extract.py`` measures it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor

from dnatlas.architectures.dnatlas.activation import folded_activation
from dnatlas.runtime import parallel

#: rows (positions) per tile: one tile's intermediates stay in cache, matmuls stay large
TILE_ROWS = 1024
#: whether RC-shared models use the folded path (see :func:`plain_inference`)
ENABLED = True


@contextlib.contextmanager
def plain_inference():
    """Within this block RC-shared models infer on the plain tiled path (for comparisons:
    ``bench/bench_extract.py --plain`` and the tests)."""
    global ENABLED
    before, ENABLED = ENABLED, False
    try:
        yield
    finally:
        ENABLED = before


def position_tiles(B: int, L: int, rows: int | None = None):
    """``(b0, b1, t0, t1)`` tiles of about ``rows`` (default :data:`TILE_ROWS`) positions
    covering (B, L), each a contiguous range of the flattened (B * L) rows: parts of one
    sequence when L is longer than ``rows``, else whole sequences."""
    rows = TILE_ROWS if rows is None else rows
    if L >= rows:
        for b in range(B):
            for t0 in range(0, L, rows):
                yield b, b + 1, t0, min(L, t0 + rows)
        return
    per = max(1, rows // L)
    for b0 in range(0, B, per):
        yield b0, min(B, b0 + per), 0, L


def padded_norm(x: Tensor, pad: int, norm, tiles: list) -> Tensor:
    """``norm(x)`` (B, L, d), computed tile by tile (:func:`parallel`), inside ``pad`` zero
    positions on either side: the (B, L + 2 pad, d) input of a 'same' convolution."""
    B, L, d = x.shape
    out = x.new_empty(B, L + 2 * pad, d)
    out[:, :pad] = 0
    out[:, pad + L:] = 0

    def one(bounds):
        b0, b1, t0, t1 = bounds
        out[b0:b1, pad + t0:pad + t1] = norm(x[b0:b1, t0:t1])

    parallel(one, tiles)
    return out


def site_buffers(x: Tensor, wanted: list[str], channels: int) -> dict[str, Tensor]:
    """(B * L, channels) buffers of a block's inner sites: ``pre_act`` in x's dtype, the
    neurons and post_act at least fp32 (as the activation returns them)."""
    B, L, _ = x.shape
    act_dtype = torch.promote_types(x.dtype, torch.float32)
    return {site: x.new_empty(B * L, channels, dtype=x.dtype if site == "pre_act" else act_dtype)
            for site in wanted}


def fold(x: Tensor) -> Tensor:
    """(..., C) in the standard channel order -> (..., C) folded (module docstring)."""
    h = x.shape[-1] // 2
    return torch.cat([x[..., :h], x[..., h:].flip(-1)], dim=-1)


def unfold(x: Tensor, out: Tensor | None = None) -> Tensor:
    """Inverse of :func:`fold` (the same permutation: it is an involution)."""
    h = x.shape[-1] // 2
    return torch.cat([x[..., :h], x[..., h:].flip(-1)], dim=-1, out=out)


def _halves(w: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """(S^T, D^T), each (I/2, O/2), from P = ``w`` and Q' = ``q`` (O/2, I/2)."""
    return ((w + q) / 2).t().contiguous(), ((w - q) / 2).t().contiguous()


def linear_halves(stored: Tensor) -> tuple[Tensor, Tensor]:
    """(S^T, D^T) of an RC-shared linear map from its stored rows ``stored`` (O/2, I)."""
    h = stored.shape[1] // 2
    return _halves(stored[:, :h], stored[:, h:].flip(1))


def conv_halves(stored: Tensor) -> tuple[Tensor, Tensor]:
    """(S^T, D^T), each (k * I/2, O/2), of an RC-shared convolution from its stored
    filters (O/2, I, k), for im2col columns ordered (tap j, folded channel i < I/2)."""
    o, i, k = stored.shape
    h = i // 2

    def columns(w):  # (O/2, I/2, k) -> (O/2, k * I/2), column j * I/2 + c
        return w.permute(0, 2, 1).reshape(o, k * h)

    return _halves(columns(stored[:, :h]), columns(stored.flip(1).flip(2)[:, :h]))


def sum_and_difference(a: Tensor, b: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """``(a + b, a - b)`` as contiguous (rows, width) matrices; a and b (..., I/2) may be
    strided views (rows = their element count / width)."""
    s = torch.add(a, b, out=a.new_empty(a.shape)).view(-1, width)
    d = torch.sub(a, b, out=a.new_empty(a.shape)).view(-1, width)
    return s, d


def halves_matmul(s: Tensor, d: Tensor, halves: tuple[Tensor, Tensor],
                  bias: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(u, v) = (s S^T + bias, d D^T)``, each (rows, O/2): the folded output is
    ``[u + v, u - v]``.

    Args:
        s, d: sum and difference of the folded input's halves (rows, I/2).
        halves: (S^T, D^T) from :func:`linear_halves` / :func:`conv_halves`.
        bias: the stored half (O/2,) of the mirrored bias (its folded form is
            ``[bias, bias]``), or None.
    """
    s_t, d_t = halves
    return (s @ s_t if bias is None else torch.addmm(bias, s, s_t)), d @ d_t


@dataclass
class FoldedWeights:
    """One block's weights for the folded path (built per call: they are small)."""

    gain: Tensor            # (d,) folded norm gain
    eps: float
    gate: tuple[Tensor, Tensor]
    gate_bias: Tensor | None
    conv: tuple[Tensor, Tensor]
    conv_bias: Tensor | None
    out: tuple[Tensor, Tensor]
    out_bias: Tensor | None
    a: Tensor               # (N/2,) the mirrored activation sharpness's half
    b: Tensor               # (N/2,) the mirrored activation threshold's half
    gamma: Tensor

    @classmethod
    def of(cls, block) -> FoldedWeights:
        """From a :class:`dnatlas.architectures.dnatlas.modeling.DNAtlasBlock` with RCPS."""
        def bias(layer):
            return None if layer.bias is None else layer.bias.param

        act = block.act
        n = block.conv.stored_weight.shape[0]  # N / 2
        return cls(gain=fold(block.norm.gain()), eps=block.norm.eps,
                   gate=linear_halves(block.gate.stored_weight), gate_bias=bias(block.gate),
                   conv=conv_halves(block.conv.stored_weight), conv_bias=bias(block.conv),
                   out=linear_halves(block.out.stored_weight), out_bias=bias(block.out),
                   a=act.a[:n], b=act.b[:n], gamma=act.gamma)


def folded_block(block, x: Tensor, wanted: list[str], store: dict) -> Tensor:
    """One RC-shared DNAtlas block on a folded residual stream, in tiles of positions.

    Args:
        block: the :class:`~dnatlas.architectures.dnatlas.modeling.DNAtlasBlock` (``cfg.rcps``).
        x: folded residual stream (B, L, d).
        wanted: inner sites to store (subset of pre_act, neurons, post_act).
        store: receives ``{f"{block.name}.{site}": (B, L, N)}`` in the standard order.

    Returns:
        The folded residual stream after the block, (B, L, d).
    """
    B, L, d = x.shape
    w = FoldedWeights.of(block)
    conv, act = block.conv, block.act
    k, dil, pad = conv.stored_weight.shape[2], conv.dilation, conv.padding
    N, h = 2 * conv.stored_weight.shape[0], d // 2
    Lp = L + 2 * pad
    variant = "hyz" if "pre_act" in wanted else "yz" if wanted else "z"
    names = {"hyz": ("pre_act", "neurons", "post_act"), "yz": ("neurons", "post_act"),
             "z": ()}[variant]
    stores = site_buffers(x, wanted, N)
    x_rows = x.reshape(B * L, d)
    out = torch.empty_like(x_rows)
    silu = block.gate_activation is not None
    tiles = list(position_tiles(B, L))
    # the normalised input, folded, with the convolution's zero padding
    npad = padded_norm(x, pad, lambda t: torch.nn.functional.rms_norm(t, (d,), w.gain, w.eps),
                       tiles)

    def tile(bounds):
        b0, b1, t0, t1 = bounds
        r0, r1 = b0 * L + t0, (b1 - 1) * L + t1  # rows of the tile in (B * L)
        shape, strides = (b1 - b0, t1 - t0, k, h), (Lp * d, d, dil * d, 1)
        base = npad.storage_offset() + (b0 * Lp + t0) * d
        first = npad.as_strided(shape, strides, base)       # tap j, channels < d/2
        second = npad.as_strided(shape, strides, base + h).flip(2)  # tap k-1-j, partners
        uc, vc = halves_matmul(*sum_and_difference(first, second, k * h), w.conv, w.conv_bias)
        n = npad[b0:b1, pad + t0:pad + t1]
        ug, vg = halves_matmul(*sum_and_difference(n[..., :h], n[..., h:], h), w.gate,
                               w.gate_bias)
        *sites, sz, dz = folded_activation(ug, vg, uc, vc, w.a, w.b, w.gamma, act.slope,
                                           act.eps, silu, variant)
        uo, vo = halves_matmul(sz.to(x.dtype), dz.to(x.dtype), w.out, w.out_bias)
        res, o = x_rows[r0:r1], out[r0:r1]
        torch.add(res[:, :h], uo, out=o[:, :h]).add_(vo)
        torch.add(res[:, h:], uo, out=o[:, h:]).sub_(vo)
        for site, first_half, second_half in zip(names, sites[::2], sites[1::2]):
            if site in stores:  # unfolded: the second half's channels reversed
                stores[site][r0:r1, :N // 2] = first_half
                stores[site][r0:r1, N // 2:] = second_half.flip(-1)

    parallel(tile, tiles)
    for site in wanted:
        store[f"{block.name}.{site}"] = stores[site].view(B, L, -1)
    return out.view(B, L, d)
