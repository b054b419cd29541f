"""Sparse autoencoder architectures: ReLU+L1, TopK, BatchTopK and JumpReLU.

All four share :class:`SparseAutoencoder`, which holds the SAELens-named parameters

    W_enc (d_in, d_sae)   b_enc (d_sae,)   W_dec (d_sae, d_in)   b_dec (d_in,)

(plus ``threshold`` (d_sae,) for JumpReLU and BatchTopK) and computes, on raw activations x
of shape (..., d_in),

    pre   = (x * s - b_dec) @ W_enc + b_enc          pre-activations, (..., d_sae)
    f     = act(pre)                                 feature activations, (..., d_sae)
    x_hat = (f @ W_dec + b_dec) / s                  reconstruction, (..., d_in)

where ``s`` is the input scale (buffer ``input_scale``). The trainer sets ``s`` so that
E||x * s||^2 = d_in on the first batches ("normalised space"); every loss term is computed in
that space, so hyperparameters transfer across layers and models. :meth:`folded` absorbs ``s``
into the weights (W_enc * s, W_dec / s, b_dec / s), which changes no output, so a saved SAE
works on raw activations with ``s = 1``.

Each feature's decoder direction is a *row* of W_dec. How its norm is kept from absorbing the
sparsity penalty differs by architecture:

=========== ====================================================== =========================
arch        activation                                             decoder norm
=========== ====================================================== =========================
relu        ReLU(pre); penalty l1 * sum_i f_i * ||W_dec[i]||       free, penalty norm-weighted
topk        keep the k largest pre per row, then ReLU              unit rows (projection)
batchtopk   keep the k * B largest ReLU(pre) of the whole batch    unit rows (projection)
jumprelu    pre * H(pre - threshold); penalty l0 * sum_i H(...)    unit rows (projection)
=========== ====================================================== =========================

"Projection" renormalises every row of W_dec to unit norm after each optimiser step
(:meth:`SparseAutoencoder.after_step`). The relu architecture follows Anthropic's April 2024
update (as SAELens' "standard" SAE): decoder unconstrained, L1 weighted by decoder norms.

Dead features (no activation for ``dead_after`` consecutive training steps, counted in the
buffer ``steps_since_fired``) get an auxiliary loss: AuxK for topk/batchtopk (Gao et al.
2024: the ``aux_k`` largest dead pre-activations reconstruct the residual x - x_hat), and
Anthropic's pre-activation loss for relu/jumprelu (push dead pre-activations up to the
threshold). Only dead features' parameters receive its gradient.

BatchTopK trains with a batch-level top-k and keeps an exponential moving average of the
smallest selected activation in ``threshold``; at inference (:meth:`encode`) it is a JumpReLU
with that threshold, which is how SAELens saves it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dnatlas.sae.autoencoder import (  # re-exported: importers use dnatlas.sae.architectures
    SparseAutoencoder,
    TrainOutput,
    expected_norm_scale,
)
from dnatlas.sae.config import ARCHITECTURES, DEFAULT_AUX_COEFFICIENT, SAEConfig
from dnatlas.sae.sparse_ops import (  # re-exported: tests and users import them from here
    GatherPreActivations,
    JumpReLUCodes,
    JumpReLUFunction,
    ReLUCodes,
    SparseCodes,
    batch_topk_indices,
    sparse_decode,
)

__all__ = [
    "ARCHITECTURES", "DEFAULT_AUX_COEFFICIENT", "SAE_CLASSES", "BatchTopKSAE",
    "GatherPreActivations", "JumpReLUCodes", "JumpReLUFunction", "JumpReLUSAE", "ReLUCodes",
    "ReLUSAE", "SAEConfig", "SparseCodes",
    "SparseAutoencoder", "TopKSAE", "TrainOutput", "batch_topk_indices", "build_sae",
    "expected_norm_scale", "sparse_decode",
]


class ReLUSAE(SparseAutoencoder):
    """ReLU SAE with a decoder-norm-weighted L1 penalty (the setup of paper 001).

    sparsity = l1 * mean_b sum_i f_bi * ||W_dec[i]||; decoder rows are not projected.
    """

    arch = "relu"
    project_decoder = False

    def activation(self, pre: Tensor) -> Tensor:
        return pre.relu()

    def _train_codes(self, x_n, bias, sparsity_scale, metrics):
        B = x_n.shape[0]
        dead = self._dead_for_aux()
        with torch.no_grad():
            pre = torch.addmm(bias, x_n, self.W_enc)
        if self._sparse_codes(pre, 0.0):
            x_hat, f_sum, l0_rows = SparseCodes.apply(x_n, self.W_enc, bias, self.W_dec,
                                                      self.b_dec, None, pre, pre > 0, None, 0.0)
            pre_dead, l0 = _dead_pre_activations(x_n, self.W_enc, bias, dead), l0_rows.mean()
        else:
            x_hat, f_sum, pre_dead, l0 = ReLUCodes.apply(x_n, self.W_enc, bias, self.W_dec,
                                                         self.b_dec, dead, metrics, pre)
        norms = self.W_dec.norm(dim=1)
        sparsity = (self.cfg.l1_coefficient * sparsity_scale / B) * (f_sum @ norms)
        aux = self._pre_act_aux(pre_dead, dead, 0.0)
        fired = f_sum.detach() > 0
        return x_hat, sparsity, aux, fired, l0.detach() if metrics else None


class TopKSAE(SparseAutoencoder):
    """TopK SAE (Gao et al. 2024): the k largest pre-activations of each row, then ReLU.

    Training uses a sparse decoder and a sparse encoder backward pass (O(B k d) instead of
    O(B d_sae d)); AuxK revives dead features. Decoder rows are kept at unit norm.
    """

    arch = "topk"

    def activation(self, pre: Tensor) -> Tensor:
        vals, idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter_(-1, idx, vals.relu())

    def _select(self, pre: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(values, rows, cols, offsets) of the selected entries, grouped by row."""
        B, k = pre.shape[0], self.cfg.k
        vals, idx = pre.topk(k, dim=1, sorted=False)
        rows = torch.arange(B, device=pre.device).repeat_interleave(k)
        offsets = torch.arange(0, B * k, k, device=pre.device)
        return vals.reshape(-1), rows, idx.reshape(-1), offsets

    def _train_codes(self, x_n, bias, sparsity_scale, metrics):
        B = x_n.shape[0]
        with torch.no_grad():
            pre = torch.addmm(bias, x_n, self.W_enc)
            vals, rows, cols, offsets = self._select(pre)
        a = GatherPreActivations.apply(vals, x_n, self.W_enc, bias, rows, cols).relu()
        x_hat = sparse_decode(cols, a, offsets, self.W_dec) + self.b_dec
        with torch.no_grad():
            positive = a.detach() > 0
            fired = torch.zeros(self.d_sae, dtype=torch.bool, device=x_n.device)
            fired[cols[positive]] = True
            self._after_select(a.detach())
        aux = self._aux_k(x_n, pre, x_hat)
        l0 = positive.sum(dtype=a.dtype) / B if metrics else None
        return x_hat, self._zero(), aux, fired, l0

    def _after_select(self, values: Tensor) -> None:
        """Hook for BatchTopK's threshold update."""


class BatchTopKSAE(TopKSAE):
    """BatchTopK SAE (Bussmann et al. 2024): the k * B largest ReLU(pre) of the batch.

    Training is as TopK but the selection is over the whole batch, so rows have k active
    features on average. ``threshold`` (d_sae,) is an exponential moving average (rate
    ``threshold_lr``) of the smallest selected activation; :meth:`encode` is the JumpReLU
    relu(pre) * (pre > threshold), per row, which is how SAELens saves BatchTopK SAEs.
    """

    arch = "batchtopk"

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self.register_buffer("threshold", torch.zeros(cfg.d_sae))
        self.register_buffer("threshold_initialised", torch.tensor(False))

    def activation(self, pre: Tensor) -> Tensor:
        return pre.relu() * (pre > self.threshold)

    def encode_batch(self, x: Tensor) -> Tensor:
        """Training-time activations: batch top-k of ReLU(pre) over x (B, d_in) -> (B, d_sae)."""
        pre = self.pre_activations(x).relu()
        vals, rows, cols, _ = self._select(pre)
        f = torch.zeros_like(pre)
        f[rows, cols] = vals
        return f

    def _select(self, pre: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        B, S = pre.shape
        flat, values = batch_topk_indices(pre.reshape(-1), self.cfg.k * B)
        rows, cols = flat // S, flat % S
        counts = torch.bincount(rows, minlength=B)
        offsets = torch.cumsum(counts, 0) - counts
        return values, rows, cols, offsets

    @torch.no_grad()
    def _after_select(self, values: Tensor) -> None:
        positive = values[values > 0]
        if positive.numel() == 0:
            return
        smallest = positive.min().to(self.threshold.dtype)
        if not bool(self.threshold_initialised):
            self.threshold.fill_(smallest)
            self.threshold_initialised.fill_(True)
        else:
            lr = self.cfg.threshold_lr
            self.threshold.mul_(1 - lr).add_(lr * smallest)


class JumpReLUSAE(SparseAutoencoder):
    """JumpReLU SAE (Rajamanoharan et al. 2024): f = pre * H(pre - threshold).

    The threshold (d_sae,) is a parameter trained through the straight-through estimator
    of :class:`JumpReLUFunction` (rectangle kernel, bandwidth ``jumprelu_bandwidth``); the
    penalty is ``l0_coefficient * mean_b sum_i H(pre_bi - threshold_i)``. Decoder rows are
    kept at unit norm and the threshold non-negative, by projection after each step.
    """

    arch = "jumprelu"

    def __init__(self, cfg: SAEConfig):
        super().__init__(cfg)
        self.threshold = nn.Parameter(torch.full((cfg.d_sae,), float(cfg.jumprelu_init_threshold)))

    def activation(self, pre: Tensor) -> Tensor:
        return pre.relu() * (pre > self.threshold)

    def _train_codes(self, x_n, bias, sparsity_scale, metrics):
        dead = self._dead_for_aux()
        theta, eps = self.threshold, self.cfg.jumprelu_bandwidth
        if bool((theta < 0).any()):  # the fused nodes need theta >= 0 (f > 0 = active)
            pre = torch.addmm(bias, x_n, self.W_enc)
            f, l0_rows = JumpReLUFunction.apply(pre, theta, eps)
            x_hat = torch.addmm(self.b_dec, f, self.W_dec)
            pre_dead = pre.index_select(1, dead) if dead is not None else None
            fired = (f.detach() != 0).any(0)
        else:
            with torch.no_grad():
                pre = torch.addmm(bias, x_n, self.W_enc)
            if self._sparse_codes(pre, theta):
                with torch.no_grad():
                    mask = pre > theta
                    window = torch.nonzero((pre - theta).abs_() < eps / 2).t()
                x_hat, f_sum, l0_rows = SparseCodes.apply(x_n, self.W_enc, bias, self.W_dec,
                                                          self.b_dec, theta, pre, mask, window, eps)
                pre_dead = _dead_pre_activations(x_n, self.W_enc, bias, dead)
                fired = f_sum.detach() > 0  # active entries are > theta >= 0
            else:
                x_hat, l0_rows, pre_dead, fired = JumpReLUCodes.apply(
                    x_n, self.W_enc, bias, self.W_dec, self.b_dec, theta, eps, dead, pre)
        sparsity = self.cfg.l0_coefficient * sparsity_scale * l0_rows.mean()
        aux = self._pre_act_aux(pre_dead, dead, theta)
        l0 = l0_rows.detach().mean() if metrics else None
        return x_hat, sparsity, aux, fired, l0

    @torch.no_grad()
    def after_step(self) -> None:
        super().after_step()
        self.threshold.clamp_(min=0.0)


def _dead_pre_activations(x: Tensor, W_enc: Tensor, bias: Tensor, dead: Tensor | None
                          ) -> Tensor | None:
    """pre[:, dead] = x @ W_enc[:, dead] + bias[dead], (B, n_dead), from those columns only."""
    if dead is None:
        return None
    return torch.addmm(bias.index_select(0, dead), x, W_enc.index_select(1, dead))


SAE_CLASSES: dict[str, type[SparseAutoencoder]] = {
    cls.arch: cls for cls in (ReLUSAE, TopKSAE, BatchTopKSAE, JumpReLUSAE)
}


def build_sae(cfg: SAEConfig) -> SparseAutoencoder:
    """A freshly initialised SAE of ``cfg.arch``."""
    return SAE_CLASSES[cfg.arch](cfg)
