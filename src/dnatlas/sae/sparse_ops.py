"""Custom autograd pieces of the sparse SAEs: JumpReLU with straight-through threshold
gradients, gathering the selected pre-activations, decoding from sparse codes, and the
batch-level top-k selection. Used by the architectures of :mod:`dnatlas.sae.archs`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------------------
# autograd building blocks
# --------------------------------------------------------------------------------------


class JumpReLUFunction(torch.autograd.Function):
    """JumpReLU with its L0, and straight-through estimators for the threshold.

    Forward, for pre-activations z (B, S) and threshold theta (S,):

        f  = z * H(z - theta)                (B, S)
        l0 = sum_i H(z_i - theta_i)          (B,)

    Backward (Rajamanoharan et al. 2024, rectangle kernel K of bandwidth eps):

        df/dz        = H(z - theta)
        df/dtheta    = -(theta / eps) * K((z - theta) / eps)
        dl0/dz       = 0
        dl0_i/dtheta = -(1 / eps) * K((z_i - theta_i) / eps)

    These are the exact derivatives of the smoothed objectives in which the jump is spread
    over a window of width eps (see tests); both outputs share one pass over (B, S).
    """

    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float):
        active = pre > threshold
        ctx.save_for_backward(pre, threshold, active)
        ctx.bandwidth = bandwidth
        return pre * active, active.sum(-1, dtype=pre.dtype)

    @staticmethod
    def backward(ctx, grad_f: Tensor, grad_l0: Tensor):
        pre, threshold, active = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad_threshold = None
        if ctx.needs_input_grad[0]:
            grad_pre = grad_f * active
        if ctx.needs_input_grad[1]:
            # K((z - theta) / eps) = 1 exactly where |z - theta| < eps / 2
            window = ((pre - threshold).abs_() < eps / 2).to(grad_f.dtype)
            through_f = (grad_f * window).sum(0)       # sum_b dL/df_bi K_bi
            through_l0 = grad_l0 @ window              # sum_b dL/dl0_b K_bi
            grad_threshold = -(threshold * through_f + through_l0) / eps
        return grad_pre, grad_threshold, None


def _threshold_grad(threshold: Tensor, cols: Tensor, df: Tensor, dl0: Tensor | None,
                    bandwidth: float) -> Tensor:
    """JumpReLU's straight-through threshold gradient (:class:`JumpReLUFunction`) from the
    entries inside the kernel's window: their features ``cols`` (n,), dL/df there ``df``
    (n,) and dL/dl0 of their rows ``dl0`` (n,) or None. Returns (S,)."""
    through_f = torch.zeros_like(threshold).index_add_(0, cols, df)
    through_l0 = torch.zeros_like(threshold)
    if dl0 is not None:
        through_l0.index_add_(0, cols, dl0)
    return -(threshold * through_f + through_l0) / bandwidth


def _encode(x: Tensor, W_enc: Tensor, bias: Tensor, dead: Tensor | None, pre: Tensor | None):
    """pre = x @ W_enc + bias (B, S) and its dead-feature columns pre[:, dead] (B, n_dead).

    ``pre``, when given, is that product already computed (without grad); it is reused.
    """
    pre = torch.addmm(bias, x, W_enc) if pre is None else pre
    pre_dead = pre.index_select(1, dead) if dead is not None else pre.new_zeros(pre.shape[0], 0)
    return pre, pre_dead


def _encoder_grads(ctx, dpre: Tensor, x: Tensor, W_enc: Tensor, grad_dead: Tensor) -> tuple:
    """Gradients of x, W_enc and bias from dpre (B, S), plus pre[:, dead]'s gradient."""
    if ctx.dead is not None and grad_dead is not None:
        dpre.index_add_(1, ctx.dead, grad_dead)
    grad_x = dpre @ W_enc.t() if ctx.needs_input_grad[0] else None
    grad_W = x.t() @ dpre if ctx.needs_input_grad[1] else None
    grad_bias = dpre.sum(0) if ctx.needs_input_grad[2] else None
    return grad_x, grad_W, grad_bias


def _decoder_grads(ctx, grad_x_hat: Tensor, f: Tensor) -> tuple:
    grad_W_dec = f.t() @ grad_x_hat if ctx.needs_input_grad[3] else None
    grad_b_dec = grad_x_hat.sum(0) if ctx.needs_input_grad[4] else None
    return grad_W_dec, grad_b_dec


class ReLUCodes(torch.autograd.Function):
    """The ReLU SAE's encoder and decoder as one autograd node, (B, S) codes updated in place.

    Forward, for x (B, d) (no gradient needed), W_enc (d, S), bias (S,), W_dec (S, d),
    b_dec (d,), the dead features ``dead`` (int64 indices or None) and optionally ``pre``
    (x @ W_enc + bias computed without grad; overwritten with f)::

        pre = x @ W_enc + bias,   f = relu(pre),   x_hat = f @ W_dec + b_dec,   f_sum = f.sum(0)

    returns ``(x_hat (B, d), f_sum (S,), pre[:, dead] (B, n_dead), l0)`` with l0 the mean
    number of active features per row (detached; 0 unless ``metrics``). Backward::

        df = g_x_hat @ W_dec^T + g_f_sum         (one matmul with a broadcast bias)
        dpre = df * (f > 0)  (+ g_pre_dead on the dead columns), in place
        dW_enc = x^T dpre,  dbias = dpre.sum(0),  dW_dec = f^T g_x_hat,  db_dec = g_x_hat.sum(0)

    the same five (B x d x S) matmuls as autograd, without its four extra (B, S) tensors.
    """

    @staticmethod
    def forward(ctx, x, W_enc, bias, W_dec, b_dec, dead, metrics: bool, pre=None):
        pre, pre_dead = _encode(x, W_enc, bias, dead, pre)
        f = pre.relu_()
        x_hat = torch.addmm(b_dec, f, W_dec)
        f_sum = f.sum(0)
        l0 = (torch.count_nonzero(f) / f.shape[0]).to(f.dtype) if metrics else f.new_zeros(())
        ctx.dead = dead
        ctx.save_for_backward(x, W_enc, W_dec, f)
        ctx.mark_non_differentiable(l0)
        return x_hat, f_sum, pre_dead, l0

    @staticmethod
    def backward(ctx, grad_x_hat, grad_f_sum, grad_dead, _grad_l0):
        x, W_enc, W_dec, f = ctx.saved_tensors
        df = torch.addmm(grad_f_sum, grad_x_hat, W_dec.t())
        dpre = torch.ops.aten.threshold_backward.grad_input(df, f, 0, grad_input=df)
        grad_x, grad_W_enc, grad_bias = _encoder_grads(ctx, dpre, x, W_enc, grad_dead)
        return (grad_x, grad_W_enc, grad_bias, *_decoder_grads(ctx, grad_x_hat, f), None, None,
                None)


class JumpReLUCodes(torch.autograd.Function):
    """The JumpReLU SAE's encoder, activation and decoder as one autograd node.

    Forward, with threshold theta (S,) and bandwidth eps (otherwise as :class:`ReLUCodes`,
    ``pre`` included)::

        pre = x @ W_enc + bias,   f = pre * H(pre - theta),   l0_b = sum_i H(pre_bi - theta_i)
        x_hat = f @ W_dec + b_dec

    returns ``(x_hat, l0 (B,), pre[:, dead], fired (S,) bool)``. The gradients are those of
    :class:`JumpReLUFunction` (straight-through estimators for theta, rectangle kernel of
    width eps) followed by the two matmuls; the kernel's window |pre - theta| < eps / 2 is
    kept as a list of entries (it is sparse), gathered from df before df is masked in place.
    """

    @staticmethod
    def forward(ctx, x, W_enc, bias, W_dec, b_dec, threshold, bandwidth: float, dead, pre=None):
        pre, pre_dead = _encode(x, W_enc, bias, dead, pre)
        shifted = torch.sub(pre, threshold)
        # f = pre where pre > theta, else 0 (in place; theta >= 0, so f > 0 exactly there)
        f = torch.ops.aten.threshold_backward.grad_input(pre, shifted, 0, grad_input=pre)
        window = torch.nonzero(shifted.abs_() < bandwidth / 2).t()  # (2, n): rows, cols
        del shifted
        x_hat = torch.addmm(b_dec, f, W_dec)
        l0 = torch.sign(f).sum(-1)
        fired = f.amax(0) > 0
        ctx.dead, ctx.bandwidth = dead, bandwidth
        ctx.save_for_backward(x, W_enc, W_dec, threshold, f, window)
        ctx.mark_non_differentiable(fired)
        return x_hat, l0, pre_dead, fired

    @staticmethod
    def backward(ctx, grad_x_hat, grad_l0, grad_dead, _grad_fired):
        x, W_enc, W_dec, threshold, f, window = ctx.saved_tensors
        df = grad_x_hat @ W_dec.t()
        grad_threshold = None
        if ctx.needs_input_grad[5]:
            rows, cols = window
            grad_threshold = _threshold_grad(threshold, cols, df[rows, cols], grad_l0[rows],
                                             ctx.bandwidth)
        dpre = torch.ops.aten.threshold_backward.grad_input(df, f, 0, grad_input=df)
        grad_x, grad_W_enc, grad_bias = _encoder_grads(ctx, dpre, x, W_enc, grad_dead)
        return (grad_x, grad_W_enc, grad_bias, *_decoder_grads(ctx, grad_x_hat, f),
                grad_threshold, None, None, None)


def active_entries(mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(rows, cols, offsets)`` of the True entries of ``mask`` (B, S), grouped by row.

    rows, cols: int64 (nnz,) in row-major order; offsets: int64 (B,), the start of each row's
    entries (the bags of :func:`sparse_decode`).
    """
    rows, cols = torch.nonzero(mask).unbind(1)
    counts = torch.bincount(rows, minlength=mask.shape[0])
    return rows, cols, torch.cumsum(counts, 0) - counts


def _gather(a: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``a[rows, cols]`` for a contiguous (B, S) ``a`` (a flat index_select: faster)."""
    return a.view(-1).index_select(0, rows * a.shape[1] + cols)


def _row_dots(g: Tensor, W: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``g[rows[n]] . W[cols[n]]`` for every entry n, (nnz,), in one fused O(nnz d) pass."""
    offsets = rows.new_zeros(g.shape[0])  # unused by the sum mode; only shapes are checked
    return torch.ops.aten._embedding_bag_per_sample_weights_backward(g, W, cols, offsets, rows, 0)


class SparseCodes(torch.autograd.Function):
    """ReLU / JumpReLU encoder and decoder evaluated only at the active entries.

    Forward, for x (B, d) (no gradient needed), W_enc (d, S), bias (S,), W_dec (S, d),
    b_dec (d,), threshold theta (S,) or None (ReLU), ``pre = x @ W_enc + bias`` (B, S)
    computed without grad, ``mask`` (B, S) bool, the active entries (pre > theta, or > 0),
    ``window`` (2, n_w) the entries with |pre - theta| < eps / 2 (or None) and eps::

        f = pre * mask,   x_hat = f @ W_dec + b_dec (B, d),   f_sum = f.sum(0) (S,)
        l0 = mask.sum(-1) (B,)

    Backward, with df_n = g_x_hat[r_n] . W_dec[c_n] + g_f_sum[c_n] at the nnz active
    entries (r_n, c_n) and v_n = pre[r_n, c_n]::

        dW_enc[:, j] = sum_{n: c_n = j} df_n x[r_n]      dbias[j] = sum_{n: c_n = j} df_n
        dW_dec[j]    = sum_{n: c_n = j} v_n g_x_hat[r_n]  db_dec = g_x_hat.sum(0)

    and theta's straight-through gradient of :class:`JumpReLUFunction` over the window
    entries. These are :class:`ReLUCodes` / :class:`JumpReLUCodes`'s gradients (dense df
    masked by f > 0) restricted to where they are non-zero: O(nnz d) instead of four
    (B x d x S) matrix products. The entries are read by row for the decoder and by
    feature (the transposed mask, no sort) for the weight gradients.
    """

    @staticmethod
    def forward(ctx, x, W_enc, bias, W_dec, b_dec, threshold, pre, mask, window,
                bandwidth: float):
        rows, cols, offsets = active_entries(mask)
        values = _gather(pre, rows, cols)
        x_hat = sparse_decode(cols, values, offsets, W_dec) + b_dec
        f_sum = torch.zeros(pre.shape[1], dtype=pre.dtype, device=pre.device)
        f_sum.index_add_(0, cols, values)
        l0 = torch.diff(offsets, append=offsets.new_tensor([rows.numel()])).to(pre.dtype)
        ctx.bandwidth = bandwidth
        ctx.save_for_backward(x, W_dec, threshold, pre, mask, window)
        return x_hat, f_sum, l0

    @staticmethod
    def backward(ctx, grad_x_hat, grad_f_sum, grad_l0):
        x, W_dec, threshold, pre, mask, window = ctx.saved_tensors
        g = grad_x_hat.contiguous()
        S = pre.shape[1]
        # the active entries grouped by feature: bags for the (S, d) weight gradients
        cols, rows, bag_offsets = active_entries(mask.t().contiguous())
        df = _row_dots(g, W_dec, rows, cols)
        if grad_f_sum is not None:
            df += grad_f_sum[cols]
        grad_W_enc = grad_bias = grad_W_dec = grad_b_dec = grad_threshold = None
        if ctx.needs_input_grad[1]:
            grad_W_enc = F.embedding_bag(rows, x, bag_offsets, mode="sum",
                                         per_sample_weights=df).t().contiguous()
        if ctx.needs_input_grad[2]:
            grad_bias = torch.zeros(S, dtype=df.dtype, device=df.device).index_add_(0, cols, df)
        if ctx.needs_input_grad[3]:
            grad_W_dec = F.embedding_bag(rows, g, bag_offsets, mode="sum",
                                         per_sample_weights=_gather(pre, rows, cols))
        if ctx.needs_input_grad[4]:
            grad_b_dec = g.sum(0)
        if threshold is not None and ctx.needs_input_grad[5]:
            w_rows, w_cols = window
            df_w = _row_dots(g, W_dec, w_rows, w_cols)
            if grad_f_sum is not None:
                df_w += grad_f_sum[w_cols]
            grad_threshold = _threshold_grad(threshold, w_cols, df_w,
                                             None if grad_l0 is None else grad_l0[w_rows],
                                             ctx.bandwidth)
        return (None, grad_W_enc, grad_bias, grad_W_dec, grad_b_dec, grad_threshold,
                None, None, None, None)


class GatherPreActivations(torch.autograd.Function):
    """Selected pre-activations with a sparse backward pass.

    The dense pre-activations ``pre = x @ W_enc + bias`` (B, S) are computed without
    autograd; this function returns ``values[n] = pre[rows[n], cols[n]]`` for the nnz
    selected entries and back-propagates only through them:

        dW_enc[:, j] = sum_{n: cols[n] = j} g[n] * x[rows[n]]      (d, S)
        dbias[j]     = sum_{n: cols[n] = j} g[n]                   (S,)

    so the backward pass costs O(nnz * d) instead of two (B, S, d) matrix products.

    Args (forward):
        values: the selected pre-activations, (nnz,), computed without grad.
        x: inputs, (B, d).  W_enc: (d, S).  bias: (S,).
        rows, cols: int64 (nnz,) coordinates of the selected entries.
    """

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, W_enc: Tensor, bias: Tensor,
                rows: Tensor, cols: Tensor):
        ctx.save_for_backward(x, rows, cols)
        ctx.d_sae = W_enc.shape[1]
        return values.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, rows, cols = ctx.saved_tensors
        S = ctx.d_sae
        grad_W = grad_bias = None
        if ctx.needs_input_grad[2]:
            # features as bags: bag j sums g[n] * x[rows[n]] over the entries of feature j
            # int32 keys: torch's CPU sort is much faster on them than on int64
            order = torch.argsort(cols.to(torch.int32))
            counts = torch.bincount(cols, minlength=S)
            offsets = torch.cumsum(counts, 0) - counts
            grad_WT = F.embedding_bag(rows[order], x, offsets, mode="sum",
                                      per_sample_weights=grad[order].to(x.dtype))
            grad_W = grad_WT.t().contiguous()
        if ctx.needs_input_grad[3]:
            grad_bias = torch.zeros(S, dtype=grad.dtype, device=grad.device)
            grad_bias.index_add_(0, cols, grad)
        return None, None, grad_W, grad_bias, None, None


def sparse_decode(cols: Tensor, values: Tensor, offsets: Tensor, W_dec: Tensor) -> Tensor:
    """sum_n values[n] * W_dec[cols[n]] per row, with rows given as contiguous bags.

    Args:
        cols: feature index of each entry, int64 (nnz,), grouped by row.
        values: activation of each entry, (nnz,).
        offsets: start of each row's entries in ``cols``, int64 (B,).
        W_dec: (S, d).

    Returns:
        (B, d); rows without entries are zero.
    """
    return F.embedding_bag(cols, W_dec, offsets, mode="sum", per_sample_weights=values)


# --------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------


def batch_topk_indices(values: Tensor, m: int, sample: int = 1 << 16) -> tuple[Tensor, Tensor]:
    """Indices (ascending) and values of the m largest positive entries of ``values`` (N,).

    Equals ``values.relu().topk(m)`` restricted to positive values (zeros selected by topk
    change nothing), sorted by index. Instead of a top-k over all N entries it estimates a
    lower bound of the m-th largest value from a strided sample, keeps the entries above it
    (about 1.5 m) and takes the exact top-m among those; when the bound is too high it falls
    back to the full top-k, so the result is always exact.
    """
    N = values.numel()
    m = min(m, N)
    candidates = None
    if N > 4 * sample and m * 8 < N:
        stride = (N // sample) | 1  # odd: no aliasing with power-of-two widths
        probe = values[::stride]
        q = max(1, min(probe.numel(), int(round(probe.numel() * (1.0 - 1.5 * m / N)))))
        bound = probe.kthvalue(q).values.clamp_min(0)
        above = torch.nonzero(values > bound).squeeze(1)
        if above.numel() >= m:
            candidates = above
    if candidates is None:
        candidates = torch.nonzero(values > 0).squeeze(1)
    if candidates.numel() > m:
        # keep the top m, preserving index order (candidates come sorted from nonzero)
        top = values[candidates].topk(m, sorted=False).indices
        keep = torch.zeros(candidates.numel(), dtype=torch.bool, device=values.device)
        keep[top] = True
        candidates = candidates[keep]
    return candidates, values[candidates]
