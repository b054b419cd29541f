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

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from dnatlas.sae.sparse_ops import (  # re-exported: tests and users import them from here
    GatherPreActivations,
    JumpReLUFunction,
    batch_topk_indices,
    sparse_decode,
)

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
        if self.d_in < 1 or self.d_sae < 1:
            raise ValueError("d_in and d_sae must be positive")
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
        return cls(arch=arch, d_in=d_in, d_sae=int(expansion * d_in), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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
    #: whether decoder rows are renormalised to unit norm after each step
    project_decoder: ClassVar[bool] = True

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

    def extra_repr(self) -> str:
        c = self.cfg
        extra = f", k={c.k}" if c.k is not None else ""
        return f"arch={c.arch}, d_in={c.d_in}, d_sae={c.d_sae}{extra}, hook={c.hook_name!r}"

    # ---- helpers shared by subclasses ---------------------------------------------------

    def _pre_act_aux(self, pre: Tensor, threshold: Tensor | float) -> Tensor:
        """Anthropic's dead-feature loss: c * mean_b sum_{i dead} relu(theta_i - pre_i) ||W_dec[i]||."""
        c = self.cfg.aux_coefficient
        if not c:
            return self._zero()
        dead = torch.nonzero(self.dead_mask).squeeze(1)
        if dead.numel() == 0:
            return self._zero()
        pre_d = pre.index_select(1, dead)
        theta = threshold.index_select(0, dead) if isinstance(threshold, Tensor) else threshold
        norms = self.W_dec.index_select(0, dead).norm(dim=1)
        return c * ((theta - pre_d).relu() * norms).sum(-1).mean()

    def _aux_k(self, x_n: Tensor, pre: Tensor, x_hat: Tensor) -> Tensor:
        """AuxK: the aux_k largest dead pre-activations (ReLU) reconstruct x_n - x_hat.

        Gradients reach only dead features' W_enc columns, b_enc and W_dec rows.
        """
        c = self.cfg.aux_coefficient
        if not c:
            return self._zero()
        dead = torch.nonzero(self.dead_mask).squeeze(1)
        if dead.numel() == 0:
            return self._zero()
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


# --------------------------------------------------------------------------------------
# architectures
# --------------------------------------------------------------------------------------


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
        pre = torch.addmm(bias, x_n, self.W_enc)
        f = pre.relu()
        x_hat = torch.addmm(self.b_dec, f, self.W_dec)
        f_sum = f.sum(0)
        norms = self.W_dec.norm(dim=1)
        sparsity = (self.cfg.l1_coefficient * sparsity_scale / B) * (f_sum @ norms)
        aux = self._pre_act_aux(pre, 0.0)
        fired = f_sum.detach() > 0
        l0 = (f.detach() > 0).sum(-1, dtype=f.dtype).mean() if metrics else None
        return x_hat, sparsity, aux, fired, l0


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
        pre = torch.addmm(bias, x_n, self.W_enc)
        f, l0_rows = JumpReLUFunction.apply(pre, self.threshold, self.cfg.jumprelu_bandwidth)
        x_hat = torch.addmm(self.b_dec, f, self.W_dec)
        sparsity = self.cfg.l0_coefficient * sparsity_scale * l0_rows.mean()
        aux = self._pre_act_aux(pre, self.threshold)
        fired = f.detach().sum(0) > 0
        l0 = l0_rows.detach().mean() if metrics else None
        return x_hat, sparsity, aux, fired, l0

    @torch.no_grad()
    def after_step(self) -> None:
        super().after_step()
        self.threshold.clamp_(min=0.0)


SAE_CLASSES: dict[str, type[SparseAutoencoder]] = {
    cls.arch: cls for cls in (ReLUSAE, TopKSAE, BatchTopKSAE, JumpReLUSAE)
}


def build_sae(cfg: SAEConfig) -> SparseAutoencoder:
    """A freshly initialised SAE of ``cfg.arch``."""
    return SAE_CLASSES[cfg.arch](cfg)


def expected_norm_scale(sum_sq: float, n_rows: int, d_in: int) -> float:
    """Input scale s with E||x * s||^2 = d_in, from the sum of ||x||^2 over n_rows rows."""
    mean_sq = sum_sq / max(n_rows, 1)
    return math.sqrt(d_in / mean_sq) if mean_sq > 0 else 1.0
