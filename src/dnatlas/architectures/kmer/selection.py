"""Scoring masked-nucleotide predictions and choosing the k-mer model's order on validation.

Split from :mod:`dnatlas.architectures.kmer.model`: these helpers work with any predictor
``tokens (B, L) -> log-probabilities (B, L, 4)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from dnatlas.architectures.kmer.counts import as_codes
from dnatlas.architectures.kmer.model import KmerContextModel
from dnatlas.genome.alphabet import MASK
from dnatlas.masked_scores import masked_scores


@dataclass
class MaskedScore:
    """Masked-nucleotide metrics: cross-entropy in bits/nt and accuracy over ``n`` positions."""

    bits_per_nt: float
    accuracy: float
    n: int


def masked_nucleotide_sums(log_probs: torch.Tensor, targets: torch.Tensor,
                           loss_mask: torch.Tensor) -> tuple[float, int, int]:
    """Summed cross-entropy (bits), number correct and number scored.

    Scores the positions where ``loss_mask`` is true and ``targets`` is A/C/G/T.

    Args:
        log_probs: (B, L, 4) natural-log probabilities.
        targets: (B, L) true codes 0..4.
        loss_mask: (B, L) bool, true where the input was masked.
    """
    nll, correct, scored = masked_scores(log_probs, targets, loss_mask)
    n = int(scored.sum())
    if n == 0:
        return 0.0, 0, 0
    return float(nll[scored].sum()) / float(np.log(2.0)), int(correct[scored].sum()), n


def evaluate_masked(predictor, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
                    ) -> MaskedScore:
    """Score ``predictor.predict_nucleotides`` on ``(inputs, targets, loss_mask)`` batches."""
    bits, correct, n = 0.0, 0, 0
    for inputs, targets, loss_mask in batches:
        b, c, m = masked_nucleotide_sums(predictor.predict_nucleotides(inputs), targets, loss_mask)
        bits, correct, n = bits + b, correct + c, n + m
    return MaskedScore(bits / n if n else float("nan"), correct / n if n else float("nan"), n)


def masked_batches(sequences: Iterable[np.ndarray], masking_fn: Callable, seq_len: int = 1024,
                   batch_size: int = 16
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Cut sequences into rows of ``seq_len`` and mask them: yields ``(inputs, targets, mask)``.

    Each sequence gives ``len // seq_len`` full rows (grouped ``batch_size`` to a batch) and, if
    there is a remainder, one shorter row on its own.

    ``masking_fn(tokens)`` takes a LongTensor (B, L) and returns either a bool mask (B, L)
    (tensor or numpy array; true = masked, inputs become MASK there) or a tuple
    ``(inputs, mask)``. It should be seeded by the caller for a fixed evaluation, e.g.
    ``lambda t: MarkovMasking().mask_batch(t.shape[1], seeds_for(t))``.
    """
    def emit(rows: np.ndarray):
        targets = torch.from_numpy(rows.astype(np.int64))
        result = masking_fn(targets)
        if isinstance(result, tuple):
            inputs, mask = torch.as_tensor(result[0]).long(), torch.as_tensor(result[1]).bool()
        else:
            mask = torch.as_tensor(result).bool()
            inputs = targets.masked_fill(mask, MASK)
        return inputs, targets, mask

    pending: list[np.ndarray] = []
    for i, seq in enumerate(sequences):
        x = as_codes(seq, f"sequence {i}")
        n_full = x.size // seq_len
        for r in range(n_full):
            pending.append(x[r * seq_len:(r + 1) * seq_len])
            if len(pending) == batch_size:
                yield emit(np.stack(pending))
                pending = []
        if x.size % seq_len:
            yield emit(x[n_full * seq_len:][None])
    if pending:
        yield emit(np.stack(pending))


#: Dirichlet strengths tried by :func:`select_k`.
DEFAULT_ALPHAS = (1.0, 4.0, 16.0, 64.0, 256.0)


@dataclass
class KSelection:
    """Result of :func:`select_k`.

    Attributes:
        best_k, best_alpha: the chosen order and Dirichlet strength (None for the other
            smoothings).
        bits_per_nt, accuracy: per ``k``, at that ``k``'s best ``alpha``.
        n_scored: number of scored (masked, non-N) validation positions.
        model: the fitted model at ``best_k`` and ``best_alpha``.
        scores: every ``(k, alpha)`` tried.
    """

    best_k: int
    best_alpha: float | None
    bits_per_nt: dict[int, float]
    accuracy: dict[int, float]
    n_scored: int
    model: KmerContextModel = field(repr=False)
    scores: dict[tuple[int, float | None], MaskedScore] = field(repr=False)


def select_k(train_seqs: Iterable[np.ndarray], val_seqs: Iterable[np.ndarray],
             ks: Sequence[int], masking_fn: Callable, *,
             alphas: Sequence[float] = DEFAULT_ALPHAS, seq_len: int = 1024,
             batch_size: int = 16, **model_kwargs) -> KSelection:
    """Choose ``k`` (and the Dirichlet ``alpha``) by masked cross-entropy on validation data.

    Fits one model of order ``max(ks)`` (lower orders are its truncations, identical to
    separate fits), masks the validation rows once with ``masking_fn`` (see
    :func:`masked_batches`), counts every scored position's contexts once and scores every
    ``(k, alpha)`` on the same masked positions. ``alphas`` is used only with
    ``smoothing="dirichlet"`` (the default). Ties go to the smaller ``k``, then the larger
    ``alpha``. ``model_kwargs`` go to :class:`KmerContextModel`.
    """
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise ValueError("ks is empty")
    full = KmerContextModel(ks[-1], **model_kwargs).fit(train_seqs)
    grid_alphas = [float(a) for a in alphas] if full.smoothing == "dirichlet" else [None]
    if not grid_alphas:
        raise ValueError("alphas is empty")
    sums = {(k, a): np.zeros(3) for k in ks for a in grid_alphas}
    for inputs, targets, mask in masked_batches(val_seqs, masking_fn, seq_len, batch_size):
        scored = (mask & (targets < 4)).reshape(-1).numpy()
        if not scored.any():
            continue
        counts = full.order_counts(inputs.numpy())[:, scored]
        truth = targets.reshape(-1).numpy()[scored]
        for (k, a), acc in sums.items():
            probs = full.combine(counts, k, a)
            p_true = probs[np.arange(truth.size), truth]
            acc += (-np.log2(p_true).sum(), (probs.argmax(axis=1) == truth).sum(), truth.size)
    scores = {ka: MaskedScore(b / n if n else float("nan"), c / n if n else float("nan"), int(n))
              for ka, (b, c, n) in sums.items()}
    best_k, best_alpha = min(scores, key=lambda ka: (scores[ka].bits_per_nt, ka[0],
                                                     -(ka[1] or 0.0)))
    per_k = {k: min((scores[(k, a)] for a in grid_alphas), key=lambda s: s.bits_per_nt)
             for k in ks}
    model = full.truncated(best_k)
    if best_alpha is not None:
        model.alpha = best_alpha
    return KSelection(best_k, best_alpha, {k: s.bits_per_nt for k, s in per_k.items()},
                      {k: s.accuracy for k, s in per_k.items()}, scores[(best_k, best_alpha)].n,
                      model, scores)
