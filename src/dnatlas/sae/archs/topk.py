"""The TopK SAE (Gao et al. 2024): the k largest pre-activations of each row, then ReLU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from dnatlas.sae.autoencoder import SparseAutoencoder
from dnatlas.sae.config import SAEConfig, check_k
from dnatlas.sae.sparse_ops import GatherPreActivations, sparse_decode

__all__ = ["ARCHITECTURE", "TopKConfig", "TopKSAE"]


@dataclass
class TopKConfig(SAEConfig):
    """TopK SAE settings; ``k``: active features per row (1 <= k <= d_sae)."""

    arch: ClassVar[str] = "topk"
    default_aux_coefficient: ClassVar[float] = 1 / 32

    k: int | None = None

    def __post_init__(self):
        super().__post_init__()
        check_k(self)


class TopKSAE(SparseAutoencoder):
    """TopK SAE (Gao et al. 2024): the k largest pre-activations of each row, then ReLU.

    Training uses a sparse decoder and a sparse encoder backward pass (O(B k d) instead of
    O(B d_sae d)); AuxK revives dead features. Decoder rows are kept at unit norm.
    """

    arch = "topk"
    config_class = TopKConfig
    saelens_architecture = "topk"

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

    def _repr_fields(self) -> str:
        return f", k={self.cfg.k}"

    @classmethod
    def saelens_fields(cls, cfg: SAEConfig) -> dict[str, Any]:
        return {"k": int(cfg.k), "rescale_acts_by_decoder_norm": False}

    @classmethod
    def from_saelens(cls, cfg, tensors, hook_name, model_name):
        """k from cfg.json; decoder norms folded into the encoder when SAELens selected on
        pre * ||W_dec|| (``rescale_acts_by_decoder_norm``)."""
        if cfg.get("rescale_acts_by_decoder_norm"):
            norms = tensors["W_dec"].norm(dim=1).clamp_min(1e-8)
            tensors = {**tensors, "W_enc": tensors["W_enc"] * norms,
                       "b_enc": tensors["b_enc"] * norms,
                       "W_dec": tensors["W_dec"] / norms[:, None]}
        return TopKConfig(int(cfg["d_in"]), int(cfg["d_sae"]), k=int(cfg["k"]),
                          hook_name=hook_name, model_name=model_name), tensors


ARCHITECTURE = TopKSAE
