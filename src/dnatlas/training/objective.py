"""Models the trainer knows, and their training objective as (summed loss, count).

Returning a *sum* and a *count* lets the trainer normalise by the global number of loss
positions across micro-batches and ranks, so that W ranks with gradient accumulation give
the same update as one process with the same global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dnatlas.model import DNAtlas, DNAtlasConfig
from dnatlas.model.windowed_mlm import loss_positions, mask_tokens, windowed_mlm_loss


def build_model(kind: str, preset: str, overrides: dict | None = None) -> nn.Module:
    """A freshly initialised model: ``kind`` is "dnatlas" or "transformer"."""
    overrides = dict(overrides or {})
    if kind == "dnatlas":
        return DNAtlas(DNAtlasConfig.preset(preset, **overrides))
    from dnatlas.baselines.transformer import TransformerConfig, TransformerMLM

    return TransformerMLM(TransformerConfig.preset(preset, **overrides))


def loss_sum_and_count(model: nn.Module, kind: str, seq: torch.Tensor, mask: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed training loss (nats) and the number of loss terms for one micro-batch.

    ``model`` may be wrapped (DDP, torch.compile); ``seq`` (B, L) true codes, ``mask``
    (B, L) bool. DNAtlas uses the windowed-MLM triplet loss; the Transformer baseline the
    per-nucleotide cross-entropy at masked A/C/G/T positions.
    """
    tokens = mask_tokens(seq, mask)
    if kind == "dnatlas":
        logits = model(tokens).logits
        nll = windowed_mlm_loss(logits, seq, mask, reduction="none")
        return nll.sum(), loss_positions(seq, mask).sum()
    logits = model(tokens)
    keep = mask & (seq < 4)
    nll = F.cross_entropy(logits[keep], seq[keep], reduction="sum")
    return nll, keep.sum()


def count_loss_terms(kind: str, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Number of loss terms of a batch without running the model (for normalisation)."""
    if kind == "dnatlas":
        return loss_positions(seq, mask).sum()
    return (mask & (seq < 4)).sum()
