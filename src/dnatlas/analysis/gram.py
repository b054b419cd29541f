"""Gram matrices of activations: the similarity maps of the report's Figures 2-3.

Activations ``acts`` have shape (L, C): one row per nucleotide. Every row is scaled to unit
length, so the Gram matrix ``G[i, j] = <a_i, a_j> / (|a_i| |a_j|)`` is the cosine similarity
between positions i and j. For nonnegative activations (``neurons``, ``post_act``) it lies in
[0, 1]: 0 unrelated, 1 identical (report section 4). Signed activations (``residual``,
``pre_act``) are best mean-centred first (report footnote 5): the mean over positions is
subtracted before normalising, and the similarities then lie in [-1, 1]; plot their positive
and negative parts separately (:func:`signed_parts`), as in Figure 3 b-d.

Codon-phase views (Figure 2 f-h) keep the positions of a CDS whose codon phase (0: first
nucleotide of a codon in the CDS's own reading direction, 1: second, 2: third) is a given
value: :func:`phase_positions`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MAX_GRAM_LENGTH",
    "gram_matrix",
    "phase_positions",
    "signed_parts",
    "unit_normalize",
]

#: Largest sequence length for which a full Gram matrix is built (L*L float32 = 1.6 GB).
MAX_GRAM_LENGTH = 20_000


def unit_normalize(acts: np.ndarray, center: bool = False, eps: float = 1e-12) -> np.ndarray:
    """Scale each position's activation vector to unit length.

    Args:
        acts: (L, C) activations, any float dtype.
        center: subtract the mean over positions first (footnote 5 of the report).
        eps: rows with a norm below ``eps`` become zero (their similarities are 0).

    Returns:
        (L, C) float32 array with rows of norm 1 (or 0).
    """
    x = np.asarray(acts, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"activations must have shape (L, C), got {x.shape}")
    if center:
        x = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > eps)


def gram_matrix(acts: np.ndarray, center: bool = False, positions: np.ndarray | None = None,
                max_length: int = MAX_GRAM_LENGTH) -> np.ndarray:
    """Cosine-similarity Gram matrix of activations.

    Args:
        acts: (L, C) activations.
        center: mean-centre over the (selected) positions before normalising.
        positions: optional (n,) indices or boolean mask selecting rows (e.g. one codon phase).
        max_length: refuse matrices larger than this many rows (memory guard).

    Returns:
        (n, n) float32, symmetric; in [0, 1] for nonnegative, uncentred activations, with a
        unit diagonal except for all-zero rows.
    """
    x = np.asarray(acts)
    if positions is not None:
        x = x[positions]
    if len(x) > max_length:
        raise ValueError(f"a Gram matrix of {len(x)} positions is too large "
                         f"(max {max_length}); choose a shorter region")
    u = unit_normalize(x, center=center)
    g = u @ u.T
    if not center:
        np.clip(g, -1.0, 1.0, out=g)
    return g


def signed_parts(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative components of a signed similarity matrix.

    Returns:
        ``(max(G, 0), max(-G, 0))``, both nonnegative, for two panels with one colour scale
        each (Figure 3 c, d).
    """
    g = np.asarray(gram)
    return np.maximum(g, 0), np.maximum(-g, 0)


def phase_positions(codon_phase: np.ndarray, phase: int, strand: int | None = None) -> np.ndarray:
    """Positions whose codon phase equals ``phase``, in increasing genomic order.

    Args:
        codon_phase: (L,) or (2, L) int8 codon phase per position (row 0: + strand CDS,
            row 1: − strand CDS; -1 outside CDS), as in ``LabelTracks.codon_phase``.
        phase: 0, 1 or 2 (first, second, third nucleotide of a codon, counted in the
            CDS's own reading direction).
        strand: +1 or -1 to pick a row; None picks the row with more CDS positions
            (for a window around one gene: that gene's strand).

    Returns:
        (n,) int64 indices into the window.
    """
    if phase not in (0, 1, 2):
        raise ValueError(f"phase must be 0, 1 or 2, got {phase}")
    cp = np.asarray(codon_phase)
    if cp.ndim == 2:
        if strand is None:
            row = int(np.argmax((cp >= 0).sum(axis=1)))
        elif strand in (1, -1):
            row = 0 if strand == 1 else 1
        else:
            raise ValueError(f"strand must be +1, -1 or None, got {strand}")
        cp = cp[row]
    return np.flatnonzero(cp == phase)
