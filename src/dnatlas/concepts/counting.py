"""Streaming concept-matching counts of features against concepts (InterPLM semantics).

Each feature is divided by its maximum over a sample (:func:`feature_maxima`, window
edges left out) and *fires* at threshold ``t`` where the normalised activation is
strictly greater than ``t``. For every (concept, feature, threshold) the
:class:`ConceptCounter` accumulates, over chunks that partition the evaluated
(record, strand, position)s (each seen at most once):

- ``tp``: firing positions inside the concept; ``fp``: firing positions outside it;
- ``n_positive``: positions inside the concept (per concept);
- ``elements_hit``: DISTINCT elements with at least one firing position, an element
  spanning several chunks counted once; ``n_elements``: distinct elements seen.

Only positive activations can fire (thresholds are >= 0), so the work is proportional
to the non-zeros: each activation gets a *level*, the number of thresholds below it,
and sparse products (scipy.sparse) of the (concept x position) labels and the
(element x position) incidence with the (position x feature*level) firing matrix give
the counts per level; a reversed cumulative sum over levels turns them into counts per
threshold. Elements that may continue in another chunk (touching a chunk end, or
multi-piece) are kept as (element, feature, highest level) triples until
:meth:`ConceptCounter.counts`; the others are counted at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from dnatlas.concepts.labels import ChunkLabels

DEFAULT_THRESHOLDS = (0.0, 0.15, 0.5, 0.6, 0.8)
_ELEMENT_BITS = 40   # key = concept << 40 | element id


def feature_maxima(chunks: Iterable, edge: int = 0) -> np.ndarray:
    """Float64 (F,): each feature's maximum activation over ``chunks``, at least 0.

    ``chunks`` yields (n, F) arrays (numpy or scipy.sparse); the first and last ``edge``
    positions of each chunk (window edges, where context is truncated) are left out.
    """
    best = None
    for acts in chunks:
        n = acts.shape[0]
        inner = acts[edge:n - edge] if edge else acts
        if inner.shape[0] == 0:
            chunk_max = np.zeros(acts.shape[1])
        elif sp.issparse(inner):
            chunk_max = sp.csr_matrix(inner).max(axis=0).toarray().ravel()
        else:
            chunk_max = np.asarray(inner).max(axis=0)
        chunk_max = np.maximum(np.asarray(chunk_max, dtype=np.float64), 0.0)
        best = chunk_max if best is None else np.maximum(best, chunk_max)
    if best is None:
        raise ValueError("no chunks to take feature maxima from")
    return best


@dataclass(frozen=True)
class Firing:
    """A chunk's firing matrix (n, F*T) int32 CSR (1 where feature f is at level l + 1,
    i.e. fires at the thresholds up to l), its per-(feature, threshold) firing counts
    and the maxima and thresholds it was made with (:meth:`ConceptCounter.firing`)."""

    matrix: sp.csr_matrix
    fired: np.ndarray
    maxima: np.ndarray
    thresholds: np.ndarray


@dataclass
class ConceptCounts:
    """Counts of C concepts x F features x T thresholds (int64 arrays).

    Attributes:
        names: concept names (C,); thresholds: float64 (T,), ascending.
        tp, fp, elements_hit: (C, F, T); n_positive, n_elements: (C,).
    """

    names: tuple[str, ...]
    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_positive: np.ndarray
    n_elements: np.ndarray
    elements_hit: np.ndarray


def _reverse_cumsum(levels: np.ndarray) -> np.ndarray:
    """Counts per level (..., T) -> counts per threshold: level l fires thresholds < l."""
    return levels[..., ::-1].cumsum(axis=-1)[..., ::-1]


def _max_per_pair(keys: np.ndarray, features: np.ndarray, levels: np.ndarray):
    """Unique (key, feature) pairs with their highest level."""
    if not len(keys):
        return keys, features, levels
    order = np.lexsort((levels, features, keys))
    keys, features, levels = keys[order], features[order], levels[order]
    last = np.r_[(keys[1:] != keys[:-1]) | (features[1:] != features[:-1]), True]
    return keys[last], features[last], levels[last]


class ConceptCounter:
    """Accumulates :class:`ConceptCounts` over chunks.

    Args:
        names: the C concept names (in the order of the chunk labels).
        maxima: float64 (F,) normalisation maxima (:func:`feature_maxima`); a feature
            whose maximum is <= 0 never fires.
        thresholds: ascending thresholds >= 0 on the normalised activation.
    """

    def __init__(self, names: Sequence[str], maxima: np.ndarray,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS):
        thresholds = np.asarray(thresholds, dtype=np.float64)
        if thresholds.ndim != 1 or np.any(thresholds < 0) or np.any(np.diff(thresholds) <= 0):
            raise ValueError(f"thresholds must be ascending and >= 0, got {thresholds}")
        self.names, self.thresholds = tuple(names), thresholds
        self.maxima = np.asarray(maxima, dtype=np.float64)
        C, F, T = len(self.names), len(self.maxima), len(thresholds)
        self._divisor = np.where(self.maxima > 0, self.maxima, np.inf)
        self.tp = np.zeros((C, F, T), dtype=np.int64)
        self.elements_hit = np.zeros((C, F, T), dtype=np.int64)
        self.fired = np.zeros((F, T), dtype=np.int64)
        self.n_positive = np.zeros(C, dtype=np.int64)
        self.n_elements = np.zeros(C, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_size = 0
        self._seen: list[np.ndarray] = []

    def firing(self, activations, mask: np.ndarray | None = None) -> Firing:
        """The (position x feature*level) firing matrix of a chunk's activations, which
        :meth:`update` takes; counters of the same maxima and thresholds (the real and
        shuffled labels of one dictionary) can share it."""
        F, T = self.tp.shape[1:]
        n = activations.shape[0]
        if activations.shape[1] != F:
            raise ValueError(f"activations {activations.shape} do not match {F} features")
        rows, cols, values = self._positive_entries(activations)
        if mask is not None:
            keep = mask[rows]
            rows, cols, values = rows[keep], cols[keep], values[keep]
        levels = np.searchsorted(self.thresholds, values / self._divisor[cols], side="left")
        fires = levels > 0
        rows, column = rows[fires], cols[fires] * T + (levels[fires] - 1)
        matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, column)),
                               shape=(n, F * T))
        fired = _reverse_cumsum(np.bincount(column, minlength=F * T).reshape(F, T))
        return Firing(matrix, fired, self.maxima, self.thresholds)

    def update(self, activations, chunk: ChunkLabels, mask: np.ndarray | None = None,
               firing: Firing | None = None) -> None:
        """Add one chunk: ``activations`` (n, F) float (numpy or scipy.sparse), row i at
        the chunk's position i; ``mask`` bool (n,) leaves False positions out; ``firing``
        (optional) the chunk's :meth:`firing` under the same mask, computed once."""
        C, F, T = self.tp.shape
        n = chunk.positives.shape[1]
        if activations.shape != (n, F) or chunk.positives.shape[0] != C:
            raise ValueError(f"activations {activations.shape} and labels "
                             f"{chunk.positives.shape} do not match ({C} concepts, {F} features)")
        if firing is None:
            firing = self.firing(activations, mask)
        elif firing.maxima is not self.maxima and (
                not np.array_equal(firing.maxima, self.maxima)
                or not np.array_equal(firing.thresholds, self.thresholds)):
            raise ValueError("a firing matrix of other maxima or thresholds")
        positives, element_ids = chunk.positives, chunk.element_ids
        if mask is not None:
            positives, element_ids = positives & mask, np.where(mask, element_ids, -1)
        self.fired += firing.fired
        firing = firing.matrix
        self.n_positive += positives.sum(axis=1)
        labels = sp.csr_matrix(positives.astype(np.int32))
        self.tp += _reverse_cumsum((labels @ firing).toarray().reshape(C, F, T))
        self._count_elements(element_ids, chunk, firing)

    @staticmethod
    def _positive_entries(activations):
        """(rows, cols, float64 values) of the activations > 0."""
        if sp.issparse(activations):
            coo = sp.coo_matrix(activations)
            keep = coo.data > 0
            return (coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64),
                    coo.data[keep].astype(np.float64))
        activations = np.asarray(activations)
        rows, cols = np.nonzero(activations > 0)
        return rows, cols, activations[rows, cols].astype(np.float64)

    def _count_elements(self, element_ids: np.ndarray, chunk: ChunkLabels,
                        firing: sp.csr_matrix) -> None:
        C, F, T = self.tp.shape
        layer, position = np.nonzero(element_ids >= 0)
        if not len(layer):
            return
        key = (chunk.layer_concept[layer] << _ELEMENT_BITS) | element_ids[layer, position]
        elements, local = np.unique(key, return_inverse=True)
        incidence = sp.csr_matrix((np.ones(len(local), dtype=np.int32), (local, position)),
                                  shape=(len(elements), firing.shape[0]))
        hits = (incidence @ firing).tocsr()
        hits.sum_duplicates()
        hits.sort_indices()
        element = np.repeat(np.arange(len(elements)), np.diff(hits.indptr))
        feature, level = hits.indices // T, hits.indices % T + 1
        # per row, columns sorted by (feature, level): the last of a feature has its top level
        last = np.r_[(element[1:] != element[:-1]) | (feature[1:] != feature[:-1]), True]
        last = last[:len(element)]   # no hit at all (no feature fired): nothing to keep
        element, feature, level = element[last], feature[last], level[last]
        open_keys = (chunk.open_elements[:, 0] << _ELEMENT_BITS) | chunk.open_elements[:, 1]
        is_open = np.isin(elements, open_keys)
        concept = elements >> _ELEMENT_BITS
        closed = ~is_open[element]
        self._add_hits(concept[element[closed]], feature[closed], level[closed])
        self.n_elements += np.bincount(concept[~is_open], minlength=C)
        opened = ~closed
        self._pending.append((elements[element[opened]], feature[opened], level[opened]))
        self._pending_size += int(opened.sum())
        self._seen.append(elements[is_open])
        if self._pending_size > 4_000_000:
            self._pending = [_max_per_pair(*map(np.concatenate, zip(*self._pending)))]
            self._pending_size = len(self._pending[0][0])
            self._seen = [np.unique(np.concatenate(self._seen))]

    def _add_hits(self, concept, feature, level, into: np.ndarray | None = None) -> None:
        C, F, T = self.tp.shape
        index = (concept * F + feature) * T + (level - 1)
        counts = np.bincount(index, minlength=C * F * T).reshape(C, F, T)
        target = self.elements_hit if into is None else into
        target += _reverse_cumsum(counts)

    def merge(self, other: ConceptCounter) -> None:
        """Add the counts of ``other``, a counter of the same concepts, maxima and
        thresholds over chunks disjoint from this one's (another process's share). Elements
        that continue across the two are resolved by :meth:`counts`, as in one counter."""
        if other.names != self.names or other.tp.shape != self.tp.shape \
                or not np.array_equal(other.thresholds, self.thresholds) \
                or not np.array_equal(other.maxima, self.maxima):
            raise ValueError("counters of different concepts, features, thresholds or maxima")
        for name in ("tp", "elements_hit", "fired", "n_positive", "n_elements"):
            getattr(self, name).__iadd__(getattr(other, name))
        self._pending += other._pending
        self._pending_size += other._pending_size
        self._seen += other._seen

    def counts(self) -> ConceptCounts:
        """The counts so far (the pending elements resolved; the counter can go on)."""
        C = self.tp.shape[0]
        elements_hit = self.elements_hit.copy()
        if self._pending:
            keys, features, levels = _max_per_pair(*map(np.concatenate, zip(*self._pending)))
            self._add_hits(keys >> _ELEMENT_BITS, features, levels, into=elements_hit)
        seen = np.unique(np.concatenate(self._seen)) if self._seen else np.zeros(0, np.int64)
        n_elements = self.n_elements + np.bincount(seen >> _ELEMENT_BITS, minlength=C)
        return ConceptCounts(self.names, self.thresholds.copy(), self.tp.copy(),
                             self.fired[None] - self.tp, self.n_positive.copy(), n_elements,
                             elements_hit)


def add_counts(*counts: ConceptCounts) -> ConceptCounts:
    """The counts of disjoint evaluations added (e.g. the + and − strands, whose elements
    are distinct): every field summed."""
    first = counts[0]
    for other in counts[1:]:
        if other.names != first.names or other.tp.shape != first.tp.shape \
                or not np.array_equal(other.thresholds, first.thresholds):
            raise ValueError("counts of different concepts, features or thresholds")
    return ConceptCounts(first.names, first.thresholds.copy(),
                         *(sum(getattr(c, name) for c in counts)
                           for name in ("tp", "fp", "n_positive", "n_elements", "elements_hit")))


def at_thresholds(counts: ConceptCounts, index) -> ConceptCounts:
    """The counts restricted to the thresholds ``index`` (an int, slice or index array)."""
    keep = np.atleast_1d(np.arange(len(counts.thresholds))[index])
    return ConceptCounts(counts.names, counts.thresholds[keep], counts.tp[..., keep],
                         counts.fp[..., keep], counts.n_positive, counts.n_elements,
                         counts.elements_hit[..., keep])
