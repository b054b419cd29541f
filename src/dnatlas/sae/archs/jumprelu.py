"""The JumpReLU SAE (Rajamanoharan et al. 2024): f = pre * H(pre - threshold)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from dnatlas.sae.autoencoder import SparseAutoencoder
from dnatlas.sae.config import SAEConfig
from dnatlas.sae.sparse_ops import JumpReLUCodes, JumpReLUFunction, SparseCodes

__all__ = ["ARCHITECTURE", "JumpReLUConfig", "JumpReLUSAE"]


@dataclass
class JumpReLUConfig(SAEConfig):
    """JumpReLU SAE settings.

    Args:
        l0_coefficient: weight of the L0 penalty.
        jumprelu_bandwidth: width epsilon of the rectangle kernel of the straight-through
            estimator, in normalised units.
        jumprelu_init_threshold: initial threshold.
    """

    arch: ClassVar[str] = "jumprelu"

    l0_coefficient: float = 1.0
    jumprelu_bandwidth: float = 0.001
    jumprelu_init_threshold: float = 0.001


class JumpReLUSAE(SparseAutoencoder):
    """JumpReLU SAE (Rajamanoharan et al. 2024): f = pre * H(pre - threshold).

    The threshold (d_sae,) is a parameter trained through the straight-through estimator
    of :class:`~dnatlas.sae.sparse_ops.JumpReLUFunction` (rectangle kernel, bandwidth
    ``jumprelu_bandwidth``); the penalty is ``l0_coefficient * mean_b sum_i H(pre_bi -
    threshold_i)``. Decoder rows are kept at unit norm and the threshold non-negative, by
    projection after each step.
    """

    arch = "jumprelu"
    config_class = JumpReLUConfig
    saelens_architecture = "jumprelu"
    saved_tensors = ("threshold",)

    def __init__(self, cfg: JumpReLUConfig):
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
                pre_dead = self._dead_pre_activations(x_n, bias, dead)
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


ARCHITECTURE = JumpReLUSAE
