"""Offset-dependent similarity (report section 4.1, Figure 3).

Three numbers summarise how much the similarity of two positions depends on their distance:

- **Offset profile** ``p(k)``: the mean similarity of positions ``i`` and ``i + k``, over the
  pairs where both positions are in a mask (e.g. both coding, or both non-coding).
  :func:`offset_profile` reads it off a Gram matrix; :func:`offset_profile_acts` computes it
  from the activations in O(L*K*C) without building the L x L matrix (whole genomes).
- **3-periodicity** (:func:`periodicity3`): codon structure makes positions a multiple of
  three apart more similar. Defined as the mean, over offsets ``k = 3, 6, ...``, of the
  local contrast ``p(k) - (p(k-1) + p(k+1)) / 2``; a smooth (e.g. decaying) profile scores
  ~0, any linear trend cancels exactly. Units: similarity (the Gram matrix's). The spectral
  alternative :func:`period3_power` is the power at frequency 1/3 of the detrended profile
  relative to the mean power at the other frequencies.
- **Toeplitz score** (:func:`toeplitz_score`): the share of the variance of the
  off-diagonal similarities explained by the offset alone, i.e. the R^2 of predicting
  ``G[i, j]`` by the mean of its diagonal ``|i - j|``: the variance of the per-diagonal means
  weighted by diagonal length, over the total variance. 1 for a Toeplitz matrix, ~0 when the
  offset carries no information (under pure noise its expectation is about (K-1)/n_pairs
  for K diagonals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnatlas.analysis.gram import unit_normalize

__all__ = [
    "OffsetProfile",
    "offset_profile",
    "offset_profile_acts",
    "period3_power",
    "periodicity3",
    "toeplitz_score",
]


@dataclass(frozen=True)
class OffsetProfile:
    """Mean similarity by offset.

    Attributes:
        offsets: (K+1,) offsets 0..K in nucleotides.
        mean: (K+1,) mean similarity of the pairs at each offset (NaN without pairs).
        count: (K+1,) number of pairs averaged.
    """

    offsets: np.ndarray
    mean: np.ndarray
    count: np.ndarray

    def periodicity3(self) -> float:
        return periodicity3(self)

    def as_dict(self) -> dict:
        return {"offsets": self.offsets.tolist(), "mean": self.mean.tolist(),
                "count": self.count.tolist(), "periodicity3": periodicity3(self)}


def _pair_mask(mask: np.ndarray | None, n: int, k: int) -> np.ndarray | None:
    """Boolean (n-k,) mask of pairs (i, i+k) with both ends in ``mask``."""
    if mask is None:
        return None
    return mask[: n - k] & mask[k:]


def _check_mask(mask, n):
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.shape != (n,):
        raise ValueError(f"mask must have shape ({n},), got {m.shape}")
    return m


def offset_profile(gram: np.ndarray, max_offset: int | None = None,
                   mask: np.ndarray | None = None) -> OffsetProfile:
    """Mean similarity at each offset from a Gram matrix.

    Args:
        gram: (L, L) similarity matrix.
        max_offset: largest offset K (default L-1).
        mask: optional (L,) bool; only pairs with both positions in the mask count.
    """
    g = np.asarray(gram)
    n = len(g)
    m = _check_mask(mask, n)
    kmax = n - 1 if max_offset is None else min(int(max_offset), n - 1)
    mean = np.full(kmax + 1, np.nan)
    count = np.zeros(kmax + 1, dtype=np.int64)
    for k in range(kmax + 1):
        d = np.diagonal(g, k)
        pm = _pair_mask(m, n, k)
        if pm is not None:
            d = d[pm]
        count[k] = d.size
        if d.size:
            mean[k] = d.mean(dtype=np.float64)
    return OffsetProfile(np.arange(kmax + 1), mean, count)


def offset_profile_acts(acts: np.ndarray, max_offset: int, mask: np.ndarray | None = None,
                        center: bool = False, chunk: int = 1 << 16) -> OffsetProfile:
    """Offset profile directly from activations (no L x L matrix), for long sequences.

    Args:
        acts: (L, C) activations (may be a memory map); rows are unit-normalised chunk by
            chunk. With ``center`` the global mean is subtracted first.
        max_offset: largest offset K.
        mask: optional (L,) bool, as in :func:`offset_profile`.
        chunk: positions processed at once (memory ~ chunk * C * 4 bytes * 2).

    Returns:
        The same profile as ``offset_profile(gram_matrix(acts, center), K, mask)``.
    """
    n = len(acts)
    m = _check_mask(mask, n)
    kmax = min(int(max_offset), n - 1)
    mean_vec = None
    if center:
        mean_vec = np.zeros(acts.shape[1])
        for a in range(0, n, chunk):
            mean_vec += np.asarray(acts[a:a + chunk], dtype=np.float64).sum(axis=0)
        mean_vec = (mean_vec / n).astype(np.float32)
    sums = np.zeros(kmax + 1)
    count = np.zeros(kmax + 1, dtype=np.int64)
    for a in range(0, n, chunk):
        b = min(a + chunk + kmax, n)  # rows a..b; pairs start in [a, a+chunk)
        x = np.asarray(acts[a:b], dtype=np.float32)
        if mean_vec is not None:
            x = x - mean_vec
        u = unit_normalize(x)
        starts = min(chunk, n - a)
        for k in range(kmax + 1):
            stop = max(0, min(starts, len(u) - k))
            prod = np.einsum("ij,ij->i", u[:stop], u[k:k + stop])
            if m is not None:
                prod = prod[m[a:a + stop] & m[a + k:a + k + stop]]
            sums[k] += prod.sum(dtype=np.float64)
            count[k] += prod.size
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, sums / np.maximum(count, 1), np.nan)
    return OffsetProfile(np.arange(kmax + 1), mean, count)


def periodicity3(profile: OffsetProfile | np.ndarray) -> float:
    """3-periodicity of an offset profile: mean over k = 3, 6, ... of p(k) - (p(k-1)+p(k+1))/2.

    Args:
        profile: an :class:`OffsetProfile` or (K+1,) array p(0..K); needs K >= 4.

    Returns:
        Similarity units; > 0 when positions a multiple of 3 apart are more similar than
        their neighbours (codon structure), ~0 for smooth profiles. NaN if undefined.
    """
    p = np.asarray(profile.mean if isinstance(profile, OffsetProfile) else profile, dtype=float)
    ks = np.arange(3, len(p) - 1, 3)
    if ks.size == 0:
        return float("nan")
    contrast = p[ks] - 0.5 * (p[ks - 1] + p[ks + 1])
    contrast = contrast[np.isfinite(contrast)]
    return float(contrast.mean()) if contrast.size else float("nan")


def period3_power(profile: OffsetProfile | np.ndarray, start: int = 1) -> float:
    """Spectral 3-periodicity: power at period 3 over the mean power elsewhere.

    The profile p(start..K) is linearly detrended, then its periodogram is taken; the
    frequency closest to 1/3 cycles per nucleotide is compared with the mean of all others
    (excluding frequency 0). About 1 for noise, >> 1 for a codon rhythm.
    """
    p = np.asarray(profile.mean if isinstance(profile, OffsetProfile) else profile, dtype=float)
    p = p[start:]
    p = p[np.isfinite(p)]
    if len(p) < 6:
        return float("nan")
    t = np.arange(len(p))
    p = p - np.polyval(np.polyfit(t, p, 1), t)
    power = np.abs(np.fft.rfft(p)) ** 2
    freqs = np.fft.rfftfreq(len(p))
    i3 = int(np.argmin(np.abs(freqs - 1 / 3)))
    others = np.delete(power[1:], i3 - 1)
    ref = others.mean() if others.size else 0.0
    return float(power[i3] / ref) if ref > 0 else float("inf")


def toeplitz_score(gram: np.ndarray, max_offset: int | None = None,
                   mask: np.ndarray | None = None) -> float:
    """Share of the off-diagonal similarity variance explained by the offset alone.

    ``score = sum_k n_k (m_k - mu)^2 / sum_{i<j} (G_ij - mu)^2`` over the diagonals
    k = 1..K, with n_k pairs and mean m_k on diagonal k, mu the mean of all those pairs.

    Args:
        gram: (L, L) symmetric similarity matrix (only the upper triangle is read).
        max_offset: only pairs with 1 <= |i - j| <= K count (default: all).
        mask: optional (L,) bool; only pairs with both positions in the mask count.

    Returns:
        A number in [0, 1]; 1 for a Toeplitz matrix. NaN if the similarities are constant.
    """
    g = np.asarray(gram)
    n = len(g)
    m = _check_mask(mask, n)
    kmax = n - 1 if max_offset is None else min(int(max_offset), n - 1)
    counts, sums, sqsums = [], [], []
    for k in range(1, kmax + 1):
        d = np.diagonal(g, k).astype(np.float64)
        pm = _pair_mask(m, n, k)
        if pm is not None:
            d = d[pm]
        counts.append(d.size)
        sums.append(d.sum())
        sqsums.append(np.square(d).sum())
    counts, sums, sqsums = map(np.asarray, (counts, sums, sqsums))
    total_n = counts.sum()
    if total_n == 0:
        return float("nan")
    mu = sums.sum() / total_n
    total_ss = sqsums.sum() - total_n * mu ** 2
    has = counts > 0
    between_ss = (np.square(sums[has]) / counts[has]).sum() - total_n * mu ** 2
    if total_ss <= 1e-12 * max(total_n, 1):
        return float("nan")
    return float(np.clip(between_ss / total_ss, 0.0, 1.0))
