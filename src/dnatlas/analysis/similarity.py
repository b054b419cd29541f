"""Similarity between two models' representations of the same sequence (report section 7.1).

- :func:`linear_cka`: linear centred kernel alignment (Kornblith et al. 2019),
  ``CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred
  X (n, p) and Y (n, q). Invariant to orthogonal transforms and isotropic scaling of
  either representation; 1 for identical representations.
- :func:`gram_spearman`: the report's ad-hoc measure (footnote 7): the Spearman correlation
  between the similarity matrices of the two representations, each mean-centred and
  unit-normalised per position, with the diagonal excluded. (Only the upper triangle is
  used: the matrices are symmetric, and duplicating every pair leaves Spearman's rho as is.)

Both need one row per shared position. A nucleotide model and a protein model are put on
the same positions with :func:`codon_pool` (one row per codon).
"""

from __future__ import annotations

import numpy as np

from dnatlas.analysis.gram import gram_matrix

__all__ = ["codon_pool", "cka_from_grams", "gram_spearman", "linear_cka"]


def _check_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError("representations must be 2-D (n positions, features)")
    if len(x) != len(y):
        raise ValueError(f"representations have {len(x)} and {len(y)} positions")
    return x, y


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between representations x (n, p) and y (n, q) of the same n positions.

    Computed in feature space, O(n (p + q)^2) time; float64. Returns a number in [0, 1]
    (NaN if either representation is constant).
    """
    x, y = _check_rows(x, y)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / denom) if denom > 0 else float("nan")


def cka_from_grams(k: np.ndarray, l: np.ndarray) -> float:
    """CKA from two (n, n) kernel matrices via HSIC: ``HSIC(K,L)/sqrt(HSIC(K,K) HSIC(L,L))``.

    With ``K = X X^T`` and ``L = Y Y^T`` this equals :func:`linear_cka` (the reference
    definition; O(n^2) memory).
    """
    k = np.asarray(k, dtype=np.float64)
    l = np.asarray(l, dtype=np.float64)
    n = len(k)
    h = np.eye(n) - 1.0 / n
    kc, lc = h @ k @ h, h @ l @ h
    hsic_kl = (kc * lc).sum()
    denom = np.sqrt((kc * kc).sum() * (lc * lc).sum())
    return float(hsic_kl / denom) if denom > 0 else float("nan")


def gram_spearman(x: np.ndarray, y: np.ndarray, center: bool = True) -> float:
    """Spearman correlation of two representations' similarity matrices, diagonal excluded.

    Args:
        x: (n, p) activations of model A; y: (n, q) of model B, same n positions.
        center: mean-centre each representation over positions before normalising
            (the report does, footnote 7).

    Returns:
        Spearman's rho between ``G_x[i, j]`` and ``G_y[i, j]`` over all pairs i < j.
    """
    from scipy.stats import spearmanr

    x, y = _check_rows(x, y)
    if len(x) < 3:
        raise ValueError("need at least 3 positions")
    iu = np.triu_indices(len(x), k=1)
    gx = gram_matrix(x, center=center)[iu]
    gy = gram_matrix(y, center=center)[iu]
    return float(spearmanr(gx, gy).statistic)


def codon_pool(acts: np.ndarray, frame: int = 0, reduce: str | int = "mean",
               reverse: bool = False) -> np.ndarray:
    """One row per codon from per-nucleotide activations, to compare with a protein model.

    Args:
        acts: (L, C) activations over a CDS (or a window containing it).
        frame: offset of the first codon's first nucleotide in ``acts``.
        reduce: ``"mean"`` (average the codon's three rows), ``"max"``, or 0/1/2 (keep
            the first/second/third nucleotide's row).
        reverse: the CDS is on the − strand: codons are read from the end of the window
            (``frame`` then counts from the end) and the result is in protein order.

    Returns:
        (n_codons, C) array; incomplete trailing codons are dropped.
    """
    x = np.asarray(acts)
    if reverse:
        x = x[::-1]
    n = (len(x) - frame) // 3
    if n <= 0:
        raise ValueError("no complete codon in the window")
    codons = x[frame:frame + 3 * n].reshape(n, 3, -1)
    if reduce == "mean":
        return codons.mean(axis=1)
    if reduce == "max":
        return codons.max(axis=1)
    if reduce in (0, 1, 2):
        return np.ascontiguousarray(codons[:, reduce])
    raise ValueError(f"reduce must be 'mean', 'max', 0, 1 or 2, got {reduce!r}")
