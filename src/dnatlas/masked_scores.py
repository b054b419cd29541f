"""Masked-nucleotide scoring, written once for every model and baseline.

A model's prediction is a (B, L, 4) tensor of natural-log probabilities of A, C, G, T.
The scored positions are the masked ones whose true base is A, C, G or T (not N).
"""

from __future__ import annotations

import torch


def masked_scores(log_probs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-position negative log-likelihood, correctness and which positions are scored.

    Args:
        log_probs: (B, L, 4) natural-log probabilities.
        targets: (B, L) true codes 0..4 (N = 4 is never scored).
        mask: (B, L) bool, true where the input was masked.

    Returns:
        ``(nll, correct, scored)``: (B, L) float64 nats, (B, L) bool top-1 hit, (B, L) bool;
        ``nll`` and ``correct`` are meaningful only where ``scored``.
    """
    targets = targets.to(log_probs.device).long()
    scored = mask.to(log_probs.device).bool() & (targets < 4)
    truth = targets.clamp(max=3)
    lp = log_probs.double()
    nll = -lp.gather(-1, truth[..., None]).squeeze(-1)
    correct = lp.argmax(-1) == truth
    return nll, correct, scored
