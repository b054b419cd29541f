"""Windowed masked language modelling (report section 2.2.1, Figure 1b).

At every position l the model predicts the 64-way triplet ``(x[l-1], x[l], x[l+1])``
(index 16*first + 4*middle + last). Triplets inconsistent with the *unmasked* input
nucleotides get a large finite negative logit (in fp32). The loss covers every triplet
that contains a masked nucleotide, even when its centre is unmasked; triplets that
contain N or run off either end of the sequence are excluded.

From one forward pass this module also derives per-nucleotide marginals, the codon
distribution of a masked codon, and amino-acid probabilities for a reading frame.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F

from dnatlas.architectures.dnatlas.rcps import triplet_rc_permutation
from dnatlas.genome.alphabet import MASK
from dnatlas.genome.codons import AMINO_ACIDS, amino_acid_index

#: added to the logits of triplets inconsistent with the input (finite, so fp32-safe)
INCONSISTENT_PENALTY = -1.0e4


def _allowed(tokens: torch.Tensor) -> torch.Tensor:
    """(B, L) tokens -> (B, L, 4) bool: which nucleotides each input position allows.

    A, C, G, T allow only themselves; N and MASK allow all four.
    """
    known = tokens < 4
    onehot = F.one_hot(tokens.clamp(max=3).long(), 4).bool()
    return torch.where(known[..., None], onehot, torch.ones_like(onehot))


def consistency_bias(tokens: torch.Tensor) -> torch.Tensor:
    """(B, L) input tokens -> (B, L, 64) fp32: 0 for consistent triplets, else a penalty.

    Positions beyond the sequence ends allow all four nucleotides.
    """
    pen = (~_allowed(tokens)).float() * INCONSISTENT_PENALTY  # (B, L, 4)
    pad = torch.zeros_like(pen[:, :1])
    left = torch.cat([pad, pen[:, :-1]], dim=1)    # penalty of x[l-1]
    right = torch.cat([pen[:, 1:], pad], dim=1)    # penalty of x[l+1]
    bias = left[..., :, None, None] + pen[..., None, :, None] + right[..., None, None, :]
    return bias.flatten(-3)


def triplet_targets(seq: torch.Tensor) -> torch.Tensor:
    """(B, L) true nucleotide codes -> (B, L) long triplet index, -1 where undefined
    (first and last position, or any N in the triplet)."""
    seq = seq.long()
    target = torch.full_like(seq, -1)
    a, b, c = seq[:, :-2], seq[:, 1:-1], seq[:, 2:]
    valid = (a < 4) & (b < 4) & (c < 4)
    target[:, 1:-1] = torch.where(valid, 16 * a + 4 * b + c, torch.full_like(a, -1))
    return target


def loss_positions(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: positions whose triplet contains a masked nucleotide and is defined."""
    m = mask.bool()
    touched = m.clone()
    touched[:, 1:] |= m[:, :-1]
    touched[:, :-1] |= m[:, 1:]
    return touched & (triplet_targets(seq) >= 0)


def mask_tokens(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Model input: ``seq`` (B, L) with masked positions replaced by MASK."""
    return torch.where(mask.bool(), torch.full_like(seq, MASK), seq)


def masked_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Triplet log-probabilities (B, L, 64) fp32 after the consistency mask."""
    return torch.log_softmax(logits.float() + consistency_bias(tokens), dim=-1)


def windowed_mlm_loss(logits: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor,
                      reduction: str = "mean") -> torch.Tensor:
    """Windowed MLM cross-entropy in nats.

    Args:
        logits: (B, L, 64) model output on ``mask_tokens(seq, mask)``.
        seq: (B, L) true nucleotide codes (0-4).
        mask: (B, L) bool, which positions were masked in the input.
        reduction: ``"mean"`` over loss positions, ``"sum"``, or ``"none"`` ((B, L), zero
            outside loss positions).
    """
    tokens = mask_tokens(seq, mask)
    logp = masked_log_probs(logits, tokens)
    target = triplet_targets(seq)
    keep = loss_positions(seq, mask)
    nll = -logp.gather(-1, target.clamp(min=0)[..., None]).squeeze(-1) * keep
    if reduction == "none":
        return nll
    total = nll.sum()
    return total if reduction == "sum" else total / keep.sum().clamp(min=1)


def nucleotide_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-nucleotide log-probabilities (B, L, 4) over A, C, G, T: the log centre marginal
    of each position's triplet distribution (one forward pass)."""
    logp = masked_log_probs(logits, tokens).view(*logits.shape[:-1], 4, 4, 4)
    return logp.logsumexp(dim=(-3, -1))


def nucleotide_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-nucleotide probabilities (B, L, 4): ``exp`` of :func:`nucleotide_log_probs`."""
    return nucleotide_log_probs(logits, tokens).exp()


def codon_probs(logits: torch.Tensor, tokens: torch.Tensor, frame: int = 0,
                strand: int = 1) -> torch.Tensor:
    """Codon distributions (B, n_codons, 64) for a reading frame.

    Codon j occupies forward positions ``frame + 3j .. frame + 3j + 2``; its distribution
    is the triplet distribution centred on its middle nucleotide. On the − strand
    (``strand=-1``) codons are read on the reverse complement, so codon index ``c`` of
    the result is the reverse complement of forward triplet ``P[c]``; codon j is then
    still listed in forward order (reverse the axis for 5'->3' order on the − strand).
    """
    L = logits.shape[1]
    centres = torch.arange(frame + 1, L - 1, 3, device=logits.device)
    p = masked_log_probs(logits, tokens).exp()[:, centres]
    if strand == -1:
        p = p[..., triplet_rc_permutation().to(p.device)]
    elif strand != 1:
        raise ValueError("strand must be 1 or -1")
    return p


@cache
def codon_to_amino_acid(table: int = 11) -> torch.Tensor:
    """(64,) long: index into :data:`~dnatlas.genome.codons.AMINO_ACIDS` of each codon under
    an NCBI table (:func:`dnatlas.genome.codons.amino_acid_index`)."""
    return torch.from_numpy(amino_acid_index(table))


def amino_acid_probs(logits: torch.Tensor, tokens: torch.Tensor, frame: int = 0,
                     strand: int = 1, table: int = 11) -> torch.Tensor:
    """Amino-acid probabilities (B, n_codons, 21) over :data:`AMINO_ACIDS` (``*`` = stop),
    summing synonymous codons of :func:`codon_probs` under NCBI translation ``table``."""
    p = codon_probs(logits, tokens, frame, strand)
    index = codon_to_amino_acid(table).to(p.device)
    out = p.new_zeros(*p.shape[:-1], len(AMINO_ACIDS))
    return out.index_add_(-1, index, p)
