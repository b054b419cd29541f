"""Average precision (AUPRC) of many neurons against many label tracks, vectorised.

Definition, identical to :func:`sklearn.metrics.average_precision_score`::

    AP = sum_k (R_k - R_{k-1}) * P_k

over the distinct score thresholds ``s_k`` in decreasing order, where ``P_k`` and ``R_k``
are the precision and recall of ``score >= s_k``. Tied scores form a single threshold.
Equivalently, AP is the mean over the positives ``j`` of the precision at their own score::

    AP = 1/P * sum_{j positive} #{positives with score >= s_j} / #{samples with score >= s_j}

which is what is computed here, from histograms instead of a sort:

1. The scores of one neuron are mapped to integer *keys* that preserve order and ties
   (float16 and small integers: their bit pattern, no sort at all; other dtypes: dense
   ranks from :func:`numpy.unique`).
2. Samples are grouped once by their *label combination* (the set of tracks they belong
   to; a genome has a few dozen), see :class:`LabelIndex`.
3. Per neuron, one ``bincount`` of the keys per combination gives the histogram of all
   samples and, through the combination table, of the positives of every track; reverse
   cumulative sums give the counts ``>= s`` at every threshold.

For ``N`` samples, ``M`` combinations, ``K`` distinct keys and ``T`` tracks this costs
``O(N + M*K + T*K)`` per neuron. With float16 activations over a 4.6 Mb genome it takes
a few tens of milliseconds per neuron and strand on one core.

Tracks without positives get AP = NaN (scikit-learn warns and returns 0 there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnatlas.progress import progress as progress_bar

#: Largest ``n_keys * n_combinations`` histogram built in one piece (int64 entries).
_MAX_HIST = 1 << 24

__all__ = [
    "LabelIndex",
    "average_precision",
    "average_precision_column",
    "average_precision_keys",
    "chance_rate",
    "joint_keys",
    "precision_recall_curve",
    "score_keys",
    "top_key_threshold",
]


# --------------------------------------------------------------------------- keys

def score_keys(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Map scores to order- and tie-preserving integer keys.

    Args:
        scores: shape (N,), any real dtype; NaN is not allowed.

    Returns:
        ``(keys, n_keys)``: keys of shape (N,) with ``0 <= keys < n_keys`` and
        ``keys[i] < keys[j]`` iff ``scores[i] < scores[j]`` (equal iff equal).
        float16, bool and 8/16-bit integers need no sort (``n_keys`` = 2 to 65536).
    """
    x = np.asarray(scores)
    if x.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {x.shape}")
    if x.dtype == np.float16:
        return _float16_keys(x), 1 << 16
    if x.dtype == np.bool_:
        return x.view(np.uint8), 2
    if x.dtype.kind in "iu" and x.dtype.itemsize <= 2:
        info = np.iinfo(x.dtype)
        return (x.astype(np.int32) - int(info.min)), int(info.max) - int(info.min) + 1
    if x.dtype.kind == "f" and np.isnan(x).any():
        raise ValueError("scores contain NaN")
    uniq, keys = np.unique(x, return_inverse=True)
    return keys.reshape(-1), len(uniq)


def _float16_keys(x: np.ndarray) -> np.ndarray:
    """Order-preserving uint16 keys of float16 values, integer ops only (fast).

    Positive values get their bit pattern with the sign bit set; negative values get
    all bits flipped. -0.0 is mapped to the key of +0.0 so that they tie, as in sklearn.
    """
    u = np.ascontiguousarray(x).view(np.uint16)
    if ((u & np.uint16(0x7FFF)) > np.uint16(0x7C00)).any():
        raise ValueError("scores contain NaN")
    flip = (u >> np.uint16(15)) * np.uint16(0x7FFF) | np.uint16(0x8000)
    keys = u ^ flip
    np.putmask(keys, keys == np.uint16(0x7FFF), np.uint16(0x8000))
    return keys


# --------------------------------------------------------------------------- labels

@dataclass(frozen=True)
class LabelIndex:
    """Samples grouped by label combination, built once and reused for every neuron.

    Attributes:
        order: (N,) sample indices sorted by combination (stable).
        bounds: (M+1,) ``order[bounds[m]:bounds[m+1]]`` are the samples of combination m.
        table: (M, T) bool, the tracks each combination belongs to.
        n_pos: (T,) number of positives per track.
        names: track names, or None.
    """

    order: np.ndarray
    bounds: np.ndarray
    table: np.ndarray
    n_pos: np.ndarray
    names: tuple[str, ...] | None = None

    @property
    def n(self) -> int:
        """Number of samples N."""
        return len(self.order)

    @property
    def n_tracks(self) -> int:
        return self.table.shape[1]

    @property
    def n_combinations(self) -> int:
        return self.table.shape[0]

    @classmethod
    def from_labels(cls, labels: np.ndarray, names=None) -> LabelIndex:
        """Build from a boolean label matrix of shape (N, T) (or (N,) for one track)."""
        y = np.asarray(labels, dtype=bool)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2:
            raise ValueError(f"labels must have shape (N, T), got {y.shape}")
        combo, table = _combinations(y)
        order = np.argsort(combo, kind="stable")
        bounds = np.searchsorted(combo[order], np.arange(len(table) + 1))
        n_pos = y.sum(axis=0, dtype=np.int64)
        return cls(order, bounds, table, n_pos, None if names is None else tuple(names))

    def segments(self):
        """Yield ``(m, start, stop)`` for each combination m (slices of ``order``)."""
        for m in range(self.n_combinations):
            yield m, int(self.bounds[m]), int(self.bounds[m + 1])


def _combinations(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Combination id per row of y (N, T) and the table (M, T) of distinct rows."""
    packed = np.packbits(y, axis=1)  # (N, ceil(T/8))
    if packed.shape[1] <= 8:
        padded = np.zeros((len(y), 8), dtype=np.uint8)
        padded[:, : packed.shape[1]] = packed
        codes = padded.view(np.uint64).ravel()
        uniq, combo = np.unique(codes, return_inverse=True)
        table_packed = uniq.view(np.uint8).reshape(-1, 8)[:, : packed.shape[1]]
    else:
        table_packed, combo = np.unique(packed, axis=0, return_inverse=True)
    table = np.unpackbits(table_packed, axis=1, count=y.shape[1]).astype(bool)
    return combo.reshape(-1), table


def chance_rate(index: LabelIndex) -> np.ndarray:
    """AP of a random ranking (expected): the positive fraction of each track, shape (T,)."""
    return index.n_pos / max(index.n, 1)


# --------------------------------------------------------------------------- core

class _Histograms:
    """Key histograms of all samples and of each combination, summed over blocks.

    A *block* is one score column with its own :class:`LabelIndex` (for example the
    + strand and the − strand of one neuron); all blocks share one key space.
    """

    def __init__(self, n_keys: int):
        self.n_keys = n_keys
        self.parts: list[tuple[np.ndarray, LabelIndex]] = []  # (keys in index order, index)

    def add(self, keys: np.ndarray, index: LabelIndex) -> None:
        if len(keys) != index.n:
            raise ValueError(f"{len(keys)} scores but {index.n} labelled samples")
        # intp once here, not per bincount call
        self.parts.append((keys[index.order].astype(np.intp, copy=False), index))

    def average_precision(self) -> tuple[np.ndarray, np.ndarray]:
        """AP of every track (T,), and the histogram of all keys (n_keys,)."""
        n_pos = sum(index.n_pos for _, index in self.parts)
        total_m = sum(index.n_combinations for _, index in self.parts)
        if self.n_keys * total_m <= _MAX_HIST:
            h_all, h_pos = self._by_combination()
        else:
            h_all, h_pos = self._by_track()
        used = np.flatnonzero(h_all)
        return _ap_from_counts(h_all[used], h_pos, n_pos), h_all

    def _by_combination(self):
        """Histogram per combination, then tracks = table^T @ histograms."""
        h_pos = 0
        h_all = np.zeros(self.n_keys, dtype=np.int64)
        hists = []
        for sorted_keys, index in self.parts:
            h = np.empty((index.n_combinations, self.n_keys), dtype=np.int64)
            for m, a, b in index.segments():
                h[m] = np.bincount(sorted_keys[a:b], minlength=self.n_keys)
            h_all += h.sum(axis=0)
            hists.append((h, index))
        used = np.flatnonzero(h_all)
        for h, index in hists:  # einsum, not BLAS: small, and safe in forked workers
            h_pos = h_pos + np.einsum("mt,mk->tk", index.table.astype(np.float64),
                                      h[:, used].astype(np.float64))
        return h_all, np.asarray(h_pos, dtype=np.float64)

    def _by_track(self):
        """One bincount per track (for many distinct keys, e.g. float32 scores)."""
        h_all = sum(np.bincount(k, minlength=self.n_keys) for k, _ in self.parts)
        used = np.flatnonzero(h_all)
        n_tracks = self.parts[0][1].n_tracks
        h_pos = np.zeros((n_tracks, len(used)))
        for t in range(n_tracks):
            for sorted_keys, index in self.parts:
                pieces = [sorted_keys[a:b] for m, a, b in index.segments() if index.table[m, t]]
                if pieces:
                    h_pos[t] += np.bincount(np.concatenate(pieces), minlength=self.n_keys)[used]
        return h_all, h_pos


def _ap_from_counts(h_all: np.ndarray, h_pos: np.ndarray, n_pos: np.ndarray) -> np.ndarray:
    """AP from key histograms in increasing key order.

    Args:
        h_all: (K,) samples per key, all > 0.
        h_pos: (T, K) positives per key and track.
        n_pos: (T,) positives per track.
    """
    n_all_ge = np.cumsum(h_all[::-1])[::-1].astype(np.float64)  # samples with key >= k
    n_pos_ge = np.cumsum(h_pos[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (h_pos * n_pos_ge / n_all_ge).sum(axis=1) / n_pos
    return np.where(n_pos > 0, ap, np.nan)


# --------------------------------------------------------------------------- public

def joint_keys(scores: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Keys (see :func:`score_keys`) of several score vectors in one shared key space."""
    scores = [np.asarray(s) for s in scores]
    if len(scores) > 1 and not _sortless(scores[0].dtype):
        keys_all, n = score_keys(np.concatenate(scores))
        return np.split(keys_all, np.cumsum([len(s) for s in scores])[:-1]), n
    pairs = [score_keys(s) for s in scores]
    return [k for k, _ in pairs], pairs[0][1]


def average_precision_keys(blocks, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """AP from precomputed keys: ``blocks`` of ``(keys, index)`` sharing ``n_keys``.

    Returns:
        ``(ap, histogram)``: (T,) AP and the (n_keys,) count of every key over all blocks
        (e.g. to find the top-scoring samples without sorting, :func:`top_key_threshold`).
    """
    hist = _Histograms(n_keys)
    for keys, index in blocks:
        hist.add(keys, index)
    return hist.average_precision()


def top_key_threshold(histogram: np.ndarray, count: int) -> int:
    """The largest key ``k`` such that at least ``count`` samples have a key ``>= k``."""
    at_least = np.cumsum(histogram[::-1])
    i = int(np.searchsorted(at_least, min(count, int(at_least[-1]))))
    return len(histogram) - 1 - i


def average_precision_column(blocks) -> np.ndarray:
    """AP of one score column against every track of one or more label blocks.

    Args:
        blocks: iterable of ``(scores, index)``: scores of shape (N_b,) and the
            :class:`LabelIndex` of the same N_b samples. All blocks are pooled (for
            example the two strands of a genome); they must have the same tracks.

    Returns:
        (T,) float64 average precision, NaN where a track has no positives.
    """
    blocks = list(blocks)
    keys, n_keys = joint_keys([s for s, _ in blocks])
    ap, _ = average_precision_keys(zip(keys, (index for _, index in blocks)), n_keys)
    return ap


def _sortless(dtype) -> bool:
    dtype = np.dtype(dtype)
    return dtype == np.float16 or dtype == np.bool_ or (dtype.kind in "iu" and dtype.itemsize <= 2)


def average_precision(scores: np.ndarray, labels, progress: bool | None = False) -> np.ndarray:
    """Average precision of every score column against every label track.

    Args:
        scores: (N, C) scores (e.g. activations of C neurons at N positions), or (N,).
            float16 is fastest (no sort); other dtypes are ranked with ``np.unique``.
        labels: (N, T) bool, (N,) bool, or a prebuilt :class:`LabelIndex`.
        progress: False hides progress (default: a bar on a terminal, else log lines).

    Returns:
        (C, T) float64 AP, equal to ``sklearn.metrics.average_precision_score``
        for every pair (ties included); NaN for tracks without positives.
    """
    index = labels if isinstance(labels, LabelIndex) else LabelIndex.from_labels(labels)
    x = np.asarray(scores)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] != index.n:
        raise ValueError(f"scores have {x.shape[0]} rows but labels have {index.n}")
    out = np.empty((x.shape[1], index.n_tracks))
    for c in progress_bar(range(x.shape[1]), desc="AUPRC", unit="neuron",
                          disable=progress is False):
        out[c] = average_precision_column([(np.ascontiguousarray(x[:, c]), index)])
    return out


def precision_recall_curve(scores: np.ndarray, labels: np.ndarray):
    """Precision-recall curve of one score vector, as scikit-learn returns it.

    Args:
        scores: (N,) scores; labels: (N,) bool.

    Returns:
        ``(precision, recall, thresholds)``: thresholds are the distinct scores in
        increasing order (shape (K,)); precision and recall have shape (K+1,) and end
        with the point (recall 0, precision 1), like
        ``sklearn.metrics.precision_recall_curve(labels, scores)``.
    """
    x = np.asarray(scores)
    y = np.asarray(labels, dtype=bool)
    uniq, keys = np.unique(x, return_inverse=True)
    keys = keys.reshape(-1)
    h_all = np.bincount(keys, minlength=len(uniq))
    h_pos = np.bincount(keys[y], minlength=len(uniq))
    n_all_ge = np.cumsum(h_all[::-1])[::-1]
    n_pos_ge = np.cumsum(h_pos[::-1])[::-1]
    precision = n_pos_ge / n_all_ge
    recall = n_pos_ge / n_pos_ge[0] if n_pos_ge[0] else np.ones(len(uniq))
    return np.r_[precision, 1.0], np.r_[recall, 0.0], uniq
