"""Models the trainer knows, and their training objective as (summed loss, count).

The objective of each trainable kind lives with its adapter class in :mod:`dnatlas.models`,
which implements :class:`dnatlas.models.Trainable` (``build``, ``training_loss``,
``count_loss_terms``); this module only looks it up through the kind's registry record. Returning a
*sum* and a *count* lets the trainer normalise by the global number of loss positions
across micro-batches and ranks, so that W ranks with gradient accumulation give the same
update as one process with the same global batch.
"""

from __future__ import annotations

import torch
from torch import nn

from dnatlas.models.registry import trainable_adapter


def build_model(kind: str, preset: str, overrides: dict | None = None) -> nn.Module:
    """A freshly initialised model of a trainable ``kind`` ("dnatlas" or "transformer")."""
    return trainable_adapter(kind).build(preset, dict(overrides or {}))


def loss_sum_and_count(model: nn.Module, kind: str, seq: torch.Tensor, mask: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed training loss (nats) and the number of loss terms for one micro-batch.

    ``model`` may be wrapped (DDP, torch.compile); ``seq`` (B, L) true codes, ``mask``
    (B, L) bool.
    """
    return trainable_adapter(kind).training_loss(model, seq, mask)


def count_loss_terms(kind: str, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Number of loss terms of a batch without running the model (for normalisation)."""
    return trainable_adapter(kind).count_loss_terms(seq, mask)
