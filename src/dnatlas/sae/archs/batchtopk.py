"""The BatchTopK SAE (Bussmann et al. 2024): the k * B largest ReLU(pre) of the batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from dnatlas.sae.archs.topk import TopKConfig, TopKSAE
from dnatlas.sae.sparse_ops import batch_topk_indices

__all__ = ["ARCHITECTURE", "BatchTopKConfig", "BatchTopKSAE"]


@dataclass
class BatchTopKConfig(TopKConfig):
    """BatchTopK SAE settings; ``k``: active features per row on average;
    ``threshold_lr``: rate of the moving average of the inference threshold."""

    arch: ClassVar[str] = "batchtopk"

    threshold_lr: float = 0.01


class BatchTopKSAE(TopKSAE):
    """BatchTopK SAE (Bussmann et al. 2024): the k * B largest ReLU(pre) of the batch.

    Training is as TopK but the selection is over the whole batch, so rows have k active
    features on average. ``threshold`` (d_sae,) is an exponential moving average (rate
    ``threshold_lr``) of the smallest selected activation; :meth:`encode` is the JumpReLU
    relu(pre) * (pre > threshold), per row, which is how SAELens saves BatchTopK SAEs.
    The batch-level selection is not shared by data-parallel ranks.
    """

    arch = "batchtopk"
    config_class = BatchTopKConfig
    data_parallel = False
    saelens_architecture = "jumprelu"
    saved_tensors = ("threshold",)
    reads_saelens = False  # SAELens' jumprelu folders load as jumprelu

    def __init__(self, cfg: BatchTopKConfig):
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

    @classmethod
    def saelens_fields(cls, cfg):
        return {}  # saved as a JumpReLU

    @torch.no_grad()
    def after_load(self) -> None:
        self.threshold_initialised.fill_(True)


ARCHITECTURE = BatchTopKSAE
