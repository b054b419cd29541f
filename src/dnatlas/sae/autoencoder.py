"""The base class shared by every SAE architecture: parameters, inference, training loss.

:class:`SparseAutoencoder` holds the SAELens-named parameters and computes pre-activations,
reconstruction, the normalised-space training loss and the dead-feature auxiliary losses;
each architecture of :mod:`dnatlas.sae.registry` (one module of :mod:`dnatlas.sae.archs`
each: relu, topk, batchtopk, jumprelu) names its config class and implements
``activation`` and ``_train_codes``, and says how it is saved as a SAELens folder.

All architectures share :class:`SparseAutoencoder`, which holds the SAELens-named parameters

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

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from dnatlas.runtime import tune_allocator
from dnatlas.sae.config import SAEConfig
from dnatlas.sae.sparse_ops import GatherPreActivations, sparse_decode

#: default of :attr:`SparseAutoencoder.sparse_below` by device type: the measured crossover
#: (fraction of active entries) on CPU; devices without a measurement stay dense
SPARSE_BELOW = {"cpu": 0.08}


@dataclass
class TrainOutput:
    """What one training forward pass returns.

    Attributes:
        loss: total loss, a differentiable scalar.
        terms: differentiable scalars ``mse``, ``sparsity``, ``aux`` (their sum is ``loss``).
        fired: which features fired on this batch, bool (d_sae,).
        l0: mean number of active features per row (detached scalar); only when metrics
            were requested, else None.
        fvu: fraction of variance unexplained of the batch (detached scalar) or None.
    """

    loss: Tensor
    terms: dict[str, Tensor]
    fired: Tensor
    l0: Tensor | None = None
    fvu: Tensor | None = None


class SparseAutoencoder(nn.Module):
    """Base of all architectures; see the module docstring for the maths.

    Subclasses implement :meth:`activation` (dense inference) and :meth:`_train_codes`
    (training forward pass).
    """

    arch: ClassVar[str] = ""
    #: the architecture's config: a :class:`~dnatlas.sae.config.SAEConfig` dataclass
    config_class: ClassVar[type[SAEConfig]] = SAEConfig
    #: whether decoder rows are renormalised to unit norm after each step
    project_decoder: ClassVar[bool] = True
    #: whether data-parallel ranks can train it (each on its share of every batch)
    data_parallel: ClassVar[bool] = True
    #: SAELens: the ``architecture`` of cfg.json, the tensors saved beside W_enc, b_enc,
    #: W_dec, b_dec, and whether SAELens' own folders of that architecture load as this one
    saelens_architecture: ClassVar[str] = ""
    saved_tensors: ClassVar[tuple[str, ...]] = ()
    reads_saelens: ClassVar[bool] = True
    #: ReLU / JumpReLU training: below this fraction of active entries (pre > threshold) the
    #: decoder and the weight gradients are computed at the active entries only
    #: (:class:`~dnatlas.sae.sparse_ops.SparseCodes`), above it densely; both give the same
    #: gradients. 0: always dense, >= 1: always sparse, None: ``SPARSE_BELOW`` of the
    #: device (see bench/bench_sae.py --sparse-sweep for the measurement).
    sparse_below: float | None = None

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        if cfg.arch != self.arch:
            raise ValueError(f"{type(self).__name__} needs arch={self.arch!r}, got {cfg.arch!r}")
        self.cfg = cfg
        d, S = cfg.d_in, cfg.d_sae
        gen = torch.Generator().manual_seed(cfg.seed)
        w = torch.randn(S, d, generator=gen)
        w = w / w.norm(dim=1, keepdim=True) * cfg.decoder_init_norm
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.t().clone())
        self.b_enc = nn.Parameter(torch.zeros(S))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.register_buffer("input_scale", torch.tensor(1.0))
        self.register_buffer("steps_since_fired", torch.zeros(S, dtype=torch.long))

    # ---- inference on raw activations ------------------------------------------------

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    def pre_activations(self, x: Tensor) -> Tensor:
        """(x * s - b_dec) @ W_enc + b_enc for raw x (..., d_in) -> (..., d_sae)."""
        x = x.to(self.W_enc.dtype) * self.input_scale
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def activation(self, pre: Tensor) -> Tensor:
        """Feature activations from pre-activations, (..., d_sae) -> (..., d_sae)."""
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """Feature activations of raw activations: (..., d_in) -> (..., d_sae)."""
        return self.activation(self.pre_activations(x))

    def decode(self, f: Tensor) -> Tensor:
        """Reconstruction in raw units: (..., d_sae) -> (..., d_in)."""
        return (f.to(self.W_dec.dtype) @ self.W_dec + self.b_dec) / self.input_scale

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_hat, f)`` for raw x (..., d_in): shapes (..., d_in) and (..., d_sae)."""
        f = self.encode(x)
        return self.decode(f), f

    # ---- training ---------------------------------------------------------------------

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Differentiable loss terms on a batch of raw activations x (B, d_in).

        Returns:
            ``{"loss", "mse", "sparsity", "aux"}``, scalars; ``loss`` is the sum of the others.
            ``mse`` is sum over d_in, mean over rows, in normalised space.
        """
        out = self.forward_train(x)
        return {"loss": out.loss, **out.terms}

    def forward_train(self, x: Tensor, sparsity_scale: float = 1.0,
                      metrics: bool = False) -> TrainOutput:
        """Training forward pass on raw activations x (B, d_in).

        Args:
            sparsity_scale: multiplier of the sparsity coefficient (for its warm-up).
            metrics: also compute L0 and FVU (detached).
        """
        tune_allocator()  # (B, d_sae) codes are reused, not re-mapped, from step to step
        x_n = x.to(self.W_enc.dtype) * self.input_scale
        # (x_n - b_dec) @ W_enc + b_enc, written so that no gradient flows into x_n
        bias = self.b_enc - self.b_dec @ self.W_enc
        x_hat, sparsity, aux, fired, l0 = self._train_codes(x_n, bias, sparsity_scale, metrics)
        err = x_hat - x_n
        mse = err.pow(2).sum(-1).mean()
        loss = mse + sparsity + aux
        fvu = None
        if metrics:
            with torch.no_grad():
                centred = x_n - x_n.mean(0)
                fvu = err.pow(2).sum() / centred.pow(2).sum().clamp_min(1e-12)
        terms = {"mse": mse, "sparsity": sparsity, "aux": aux}
        return TrainOutput(loss=loss, terms=terms, fired=fired, l0=l0, fvu=fvu)

    def _train_codes(self, x_n: Tensor, bias: Tensor, sparsity_scale: float, metrics: bool
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """Architecture-specific part of :meth:`forward_train`.

        Args:
            x_n: normalised inputs (B, d).  bias: b_enc - b_dec @ W_enc, (S,).

        Returns:
            (x_hat (B, d) normalised, sparsity term, aux term, fired (S,) bool, l0 or None)
        """
        raise NotImplementedError

    @property
    def dead_mask(self) -> Tensor:
        """Features that have not fired for ``cfg.dead_after`` steps, bool (d_sae,)."""
        return self.steps_since_fired >= self.cfg.dead_after

    @torch.no_grad()
    def update_dead(self, fired: Tensor) -> None:
        """Advance the steps-since-fired counters by one step given ``fired`` (d_sae,)."""
        self.steps_since_fired.add_(1).masked_fill_(fired, 0)

    @torch.no_grad()
    def after_step(self) -> None:
        """Constraints applied after each optimiser step (decoder projection...)."""
        if self.project_decoder:
            self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def set_input_scale(self, scale: float) -> None:
        self.input_scale.fill_(float(scale))

    def _sparse_codes(self, pre: Tensor, threshold: Tensor | float) -> bool:
        """Whether the active fraction of pre (B, S) (> threshold) is below ``sparse_below``.

        Estimated on at most 256 evenly spaced rows; it only chooses how to compute.
        """
        below = self.sparse_below
        if below is None:
            below = SPARSE_BELOW.get(pre.device.type, 0.0)
        if below <= 0 or below >= 1:
            return below >= 1
        sample = pre[:: max(1, pre.shape[0] // 256)]
        return float((sample > threshold).sum()) < below * sample.numel()

    def _zero(self) -> Tensor:
        return self.W_dec.new_zeros(())

    # ---- saving ----------------------------------------------------------------------

    @torch.no_grad()
    def folded(self) -> SparseAutoencoder:
        """A copy with the input scale folded into the weights (``input_scale`` = 1).

        Its :meth:`encode`, :meth:`decode` and :meth:`forward` equal this SAE's on raw
        activations; pre-activations (and so thresholds) are unchanged.
        """
        other = copy.deepcopy(self)
        s = float(self.input_scale)
        other.W_enc.mul_(s)
        other.W_dec.div_(s)
        other.b_dec.div_(s)
        other.input_scale.fill_(1.0)
        return other

    @classmethod
    def saelens_fields(cls, cfg: SAEConfig) -> dict[str, Any]:
        """Top-level cfg.json fields of this architecture beyond the shared ones."""
        return {}

    @classmethod
    def from_saelens(cls, cfg: dict[str, Any], tensors: dict[str, Tensor], hook_name: str,
                     model_name: str) -> tuple[SAEConfig, dict[str, Tensor]]:
        """The config (and the tensors, converted where needed) of a folder SAELens wrote."""
        return cls.config_class(int(cfg["d_in"]), int(cfg["d_sae"]), hook_name=hook_name,
                                model_name=model_name), tensors

    @torch.no_grad()
    def after_load(self) -> None:
        """Called once saved tensors are copied in (state that is not saved)."""

    def _repr_fields(self) -> str:
        """The architecture's own fields in :meth:`extra_repr` (``", k=16"``)."""
        return ""

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"arch={c.arch}, d_in={c.d_in}, d_sae={c.d_sae}{self._repr_fields()}, "
                f"hook={c.hook_name!r}")

    # ---- helpers shared by subclasses ---------------------------------------------------

    def _dead_for_aux(self) -> Tensor | None:
        """Indices of the dead features when the auxiliary loss is on and any is dead."""
        if not self.cfg.aux_coefficient:
            return None
        dead = torch.nonzero(self.dead_mask).squeeze(1)
        return dead if dead.numel() else None

    def _dead_pre_activations(self, x: Tensor, bias: Tensor, dead: Tensor | None
                              ) -> Tensor | None:
        """pre[:, dead] = x @ W_enc[:, dead] + bias[dead], (B, n_dead), from those columns only."""
        if dead is None:
            return None
        return torch.addmm(bias.index_select(0, dead), x, self.W_enc.index_select(1, dead))

    def _pre_act_aux(self, pre_d: Tensor, dead: Tensor | None, threshold: Tensor | float) -> Tensor:
        """Anthropic's dead-feature loss: c * mean_b sum_{i dead} relu(theta_i - pre_i) ||W_dec[i]||.

        ``pre_d``: the dead features' pre-activations (B, n_dead), ``dead`` their indices
        (from :meth:`_dead_for_aux`; None: no loss).
        """
        if dead is None:
            return self._zero()
        c = self.cfg.aux_coefficient
        theta = threshold.index_select(0, dead) if isinstance(threshold, Tensor) else threshold
        norms = self.W_dec.index_select(0, dead).norm(dim=1)
        return c * ((theta - pre_d).relu() * norms).sum(-1).mean()

    def _aux_k(self, x_n: Tensor, pre: Tensor, x_hat: Tensor) -> Tensor:
        """AuxK: the aux_k largest dead pre-activations (ReLU) reconstruct x_n - x_hat.

        Gradients reach only dead features' W_enc columns, b_enc and W_dec rows.
        """
        dead = self._dead_for_aux()
        if dead is None:
            return self._zero()
        c = self.cfg.aux_coefficient
        B = x_n.shape[0]
        k_aux = min(self.cfg.aux_k, dead.numel())
        with torch.no_grad():
            vals, j = pre.index_select(1, dead).topk(k_aux, dim=1, sorted=False)
            cols = dead[j].reshape(-1)
            rows = torch.arange(B, device=x_n.device).repeat_interleave(k_aux)
        bias = self.b_enc - self.b_dec.detach() @ self.W_enc
        a = GatherPreActivations.apply(vals.reshape(-1), x_n, self.W_enc, bias, rows, cols).relu()
        offsets = torch.arange(0, B * k_aux, k_aux, device=x_n.device)
        recon = sparse_decode(cols, a, offsets, self.W_dec)
        residual = (x_n - x_hat).detach()
        return c * (recon - residual).pow(2).sum(-1).mean()


def expected_norm_scale(sum_sq: float, n_rows: int, d_in: int) -> float:
    """Input scale s with E||x * s||^2 = d_in, from the sum of ||x||^2 over n_rows rows."""
    mean_sq = sum_sq / max(n_rows, 1)
    return math.sqrt(d_in / mean_sq) if mean_sq > 0 else 1.0
