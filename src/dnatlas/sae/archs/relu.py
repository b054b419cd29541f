"""The ReLU SAE with a decoder-norm-weighted L1 penalty (SAELens' "standard")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from dnatlas.sae.autoencoder import SparseAutoencoder
from dnatlas.sae.config import SAEConfig
from dnatlas.sae.sparse_ops import ReLUCodes, SparseCodes

__all__ = ["ARCHITECTURE", "ReLUConfig", "ReLUSAE"]


@dataclass
class ReLUConfig(SAEConfig):
    """ReLU SAE settings; ``l1_coefficient``: weight of the norm-weighted L1 penalty."""

    arch: ClassVar[str] = "relu"
    default_aux_coefficient: ClassVar[float] = 0.0
    default_decoder_init_norm: ClassVar[float] = 0.1  # free norms

    l1_coefficient: float = 0.1


class ReLUSAE(SparseAutoencoder):
    """ReLU SAE with a decoder-norm-weighted L1 penalty (the setup of paper 001).

    sparsity = l1 * mean_b sum_i f_bi * ||W_dec[i]||; decoder rows are not projected.
    """

    arch = "relu"
    config_class = ReLUConfig
    project_decoder = False
    saelens_architecture = "standard"

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
            pre_dead, l0 = self._dead_pre_activations(x_n, bias, dead), l0_rows.mean()
        else:
            x_hat, f_sum, pre_dead, l0 = ReLUCodes.apply(x_n, self.W_enc, bias, self.W_dec,
                                                         self.b_dec, dead, metrics, pre)
        norms = self.W_dec.norm(dim=1)
        sparsity = (self.cfg.l1_coefficient * sparsity_scale / B) * (f_sum @ norms)
        aux = self._pre_act_aux(pre_dead, dead, 0.0)
        fired = f_sum.detach() > 0
        return x_hat, sparsity, aux, fired, l0.detach() if metrics else None


ARCHITECTURE = ReLUSAE
