"""Concept labels: per-nucleotide, strand-aware tracks whose labelled elements keep an id.

A *concept* is a set of *elements* (one CDS, one tRNA, one REP element... or, for
nucleotide identity, one nucleotide). Each element lies on one strand of one record:
an unstranded annotation (strand 0) becomes two elements, one per strand, because the
model reads each strand apart and a chunk covers one strand. Coordinates are 0-based,
half-open, forward (design.md) on both strands: position ``i`` of a ``-`` strand chunk is
forward position ``i`` (activations of the reverse complement flipped back by the caller).

:class:`ConceptLabels` holds, for every interval concept, an int64 table of pieces
``(record, start, end, strand, element, layer)`` sorted by record, strand and start;
pieces of one multi-piece feature (same GFF3 ``ID``) share ``element``. Overlapping
pieces of one concept (overlapping genes) go to different *layers*, so that a position
covered by two elements counts for both. Nucleotide-identity concepts are computed from
the sequence codes on demand. :func:`chunk_labels` builds the labels of one chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dnatlas.annotation.intervals import Interval, group_features
from dnatlas.annotation.tracks import FEATURE_TRACKS, Rule, is_pseudo

#: Interval concepts built by default (feature types and the rules of ``annotation.tracks``).
DEFAULT_CONCEPTS = ("CDS", "tRNA", "rRNA", "ncRNA", "tmRNA", "repeat_region", "REP",
                    "mobile_element", "terminator", "CRISPR", "promoter")
NUCLEOTIDES = "ACGT"
_COLUMNS = ("record", "start", "end", "strand", "element", "layer")


@dataclass(frozen=True)
class ConceptLabels:
    """Labels of ``C`` concepts over a set of records.

    Attributes:
        names: the ``C`` concept names.
        records: record IDs; ``lengths`` (R,) int64 their lengths in nt.
        pieces: per concept, int64 (m, 6) ``record, start, end, strand (+1/-1), element,
            layer`` sorted by (record, strand, start); empty for nucleotide concepts.
        multi_piece: per concept, sorted int64 ids of elements made of several pieces.
        nucleotide: per concept, the base code (A=0 C=1 G=2 T=3) of a nucleotide-identity
            concept, else -1.
        codes: record ID -> uint8 sequence codes (needed by nucleotide concepts).
    """

    names: tuple[str, ...]
    records: tuple[str, ...]
    lengths: np.ndarray
    pieces: tuple[np.ndarray, ...]
    multi_piece: tuple[np.ndarray, ...]
    nucleotide: tuple[int, ...]
    codes: Mapping[str, np.ndarray] | None = None

    @property
    def n_concepts(self) -> int:
        return len(self.names)

    @property
    def n_layers(self) -> np.ndarray:
        """(C,) int64: layers per concept (1 for nucleotide concepts and empty concepts)."""
        return np.array([int(p[:, 5].max()) + 1 if len(p) else 1 for p in self.pieces])

    def n_elements(self) -> np.ndarray:
        """(C,) int64: elements of each concept over all records and both strands."""
        counts = []
        for c, base in enumerate(self.nucleotide):
            if base >= 0:
                counts.append(sum(int((codes == base).sum() + (codes == 3 - base).sum())
                                  for codes in self.codes.values()))
            else:
                counts.append(len(np.unique(self.pieces[c][:, 4])))
        return np.array(counts, dtype=np.int64)


@dataclass(frozen=True)
class ChunkLabels:
    """Labels of one chunk ``[a, b)`` of one record on one strand (n = b - a positions).

    Attributes:
        positives: bool (C, n): the position belongs to some element of the concept.
        element_ids: int64 (K, n): element id per layer, -1 outside; K >= C layers in all.
        layer_concept: int64 (K,): the concept of each layer.
        open_elements: int64 (m, 2) ``(concept, element)`` of the elements that may also
            lie outside the chunk (touching its ends, or made of several pieces).
    """

    positives: np.ndarray
    element_ids: np.ndarray
    layer_concept: np.ndarray
    open_elements: np.ndarray


def _rule(name: str) -> Rule:
    if name == "CDS":
        return lambda iv: iv.type == "CDS" and not is_pseudo(iv)
    return FEATURE_TRACKS.get(name, lambda iv: iv.type == name)


def _layers(table: np.ndarray) -> np.ndarray:
    """Greedy layer of each piece of a (record, strand, start)-sorted table: the first
    layer whose last piece ends at or before this start (one pass; tables are small)."""
    layer = np.zeros(len(table), dtype=np.int64)
    ends: dict[tuple[int, int], list[int]] = {}
    for i, (record, start, end, strand) in enumerate(table[:, :4].tolist()):
        free = ends.setdefault((record, strand), [])
        k = next((k for k, last in enumerate(free) if last <= start), len(free))
        if k < len(free):
            free[k] = end
        else:
            free.append(end)
        layer[i] = k
    return layer


def _table(rows: list[tuple[int, int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (m, 6) piece table and multi-piece element ids from (record, start, end,
    strand, element) rows."""
    table = np.array(rows, dtype=np.int64).reshape(-1, 5)
    table = table[np.lexsort((table[:, 2], table[:, 1], table[:, 3], table[:, 0]))]
    table = np.column_stack([table, _layers(table)])
    ids, counts = np.unique(table[:, 4], return_counts=True)
    return table, ids[counts > 1]


def _element_rows(features: Iterable[list[Interval]], index: Mapping[str, int]) -> list:
    rows: list[tuple[int, int, int, int, int]] = []
    element = 0
    for pieces in features:
        strands = {iv.strand for iv in pieces}
        for strand in (1, -1):
            if strand in strands or 0 in strands:
                rows += [(index[iv.seqid], iv.start, iv.end, strand, element)
                         for iv in pieces if iv.strand in (strand, 0) and iv.end > iv.start]
                element += 1
    return rows


def from_intervals(intervals: Iterable[Interval], lengths: Mapping[str, int],
                   concepts: Sequence[str] = DEFAULT_CONCEPTS,
                   groups: Mapping[str, list[list[Interval]]] | None = None) -> ConceptLabels:
    """Interval concepts from annotation features on the records ``lengths`` (ID -> nt).

    ``concepts`` names standard tracks (``CDS`` without pseudogenes, ``REP``,
    ``CRISPR``, ``mobile_element``... as :mod:`dnatlas.annotation.tracks` selects them)
    or feature types (``promoter``); features of other records are ignored. Pieces
    sharing an ``ID`` form one element. ``groups`` (name -> features) bypasses selection.
    """
    index = {record: i for i, record in enumerate(lengths)}
    kept = [iv for iv in intervals if iv.seqid in index]
    if groups is None:
        features = group_features(kept)
        groups = {name: [f for f in features if _rule(name)(f[0])] for name in concepts}
    tables = [_table(_element_rows(features, index)) for features in groups.values()]
    return ConceptLabels(tuple(groups), tuple(lengths),
                         np.array(list(lengths.values()), dtype=np.int64),
                         tuple(t for t, _ in tables), tuple(m for _, m in tables),
                         (-1,) * len(groups))


def split_by_attribute(intervals: Iterable[Interval], lengths: Mapping[str, int],
                       concept: str, attribute: str, min_count: int = 10) -> ConceptLabels:
    """Sub-concepts ``concept[attribute=value]`` of one concept (e.g. tRNA by ``product``),
    one per attribute value carried by at least ``min_count`` features (sorted by value)."""
    index = set(lengths)
    features = [f for f in group_features(iv for iv in intervals if iv.seqid in index)
                if _rule(concept)(f[0])]
    by_value: dict[str, list[list[Interval]]] = {}
    for pieces in features:
        value = pieces[0].attributes.get(attribute)
        if value:
            by_value.setdefault(value, []).append(pieces)
    groups = {f"{concept}[{attribute}={value}]": found
              for value, found in sorted(by_value.items()) if len(found) >= min_count}
    return from_intervals([], lengths, groups=groups)


def nucleotide_concepts(codes: Mapping[str, np.ndarray]) -> ConceptLabels:
    """Nucleotide identity: concepts A, C, G, T over ``codes`` (record ID -> uint8 codes).

    On the ``-`` strand the base read is the complement (``3 - code``); N is no concept.
    Every nucleotide of every strand is its own element.
    """
    codes = {record: np.asarray(c, dtype=np.uint8) for record, c in codes.items()}
    empty = np.zeros((0, 6), dtype=np.int64)
    return ConceptLabels(tuple(NUCLEOTIDES), tuple(codes),
                         np.array([len(c) for c in codes.values()], dtype=np.int64),
                         (empty,) * 4, (empty[:, 0],) * 4, (0, 1, 2, 3), codes)


def combine(*labels: ConceptLabels) -> ConceptLabels:
    """The concepts of several :class:`ConceptLabels` over the same records, in order."""
    first = labels[0]
    for other in labels[1:]:
        if other.records != first.records or not np.array_equal(other.lengths, first.lengths):
            raise ValueError("concept labels cover different records")
    codes = next((lab.codes for lab in labels if lab.codes is not None), None)
    return ConceptLabels(sum((lab.names for lab in labels), ()), first.records, first.lengths,
                         sum((lab.pieces for lab in labels), ()),
                         sum((lab.multi_piece for lab in labels), ()),
                         sum((lab.nucleotide for lab in labels), ()), codes)


def chunk_labels(labels: ConceptLabels, record: str | int, a: int, b: int,
                 strand: int) -> ChunkLabels:
    """Labels of positions ``[a, b)`` of ``record`` (ID or index) on ``strand`` (+1/-1).

    Cost: O(pieces of the concepts + K * n log m) with vectorised numpy.
    """
    r = record if isinstance(record, int) else labels.records.index(record)
    if strand not in (1, -1) or not 0 <= a <= b <= labels.lengths[r]:
        raise ValueError(f"bad chunk [{a}, {b}) strand {strand} of record {record!r}")
    n = b - a
    offset = int(labels.lengths[:r].sum())
    ids_rows, layer_concept, open_rows = [], [], []
    for c, base in enumerate(labels.nucleotide):
        if base >= 0:
            seq = labels.codes[labels.records[r]][a:b]
            on = seq == (base if strand == 1 else 3 - base)
            ids = 2 * (offset + a + np.arange(n, dtype=np.int64)) + (strand == -1)
            layers = [np.where(on, ids, -1)]
        else:
            table = labels.pieces[c]
            here = table[(table[:, 0] == r) & (table[:, 3] == strand)
                         & (table[:, 1] < b) & (table[:, 2] > a)]
            layers = [_paint_ids(here[here[:, 5] == k], a, n)
                      for k in range(labels.n_layers[c])]
            multi = np.intersect1d(here[:, 4], labels.multi_piece[c])
            open_rows.append(np.column_stack([np.full(len(multi), c), multi]))
        for ids in layers:
            ids_rows.append(ids)
            layer_concept.append(c)
            if n:
                edge = ids[[0, -1]]
                edge = np.unique(edge[edge >= 0])
                open_rows.append(np.column_stack([np.full(len(edge), c), edge]))
    element_ids = np.array(ids_rows, dtype=np.int64).reshape(-1, n)
    layer_concept = np.array(layer_concept, dtype=np.int64)
    positives = np.zeros((labels.n_concepts, n), dtype=bool)
    np.logical_or.at(positives, layer_concept, element_ids >= 0)
    open_elements = np.unique(np.concatenate(open_rows).reshape(-1, 2).astype(np.int64), axis=0)
    return ChunkLabels(positives, element_ids, layer_concept, open_elements)


def _paint_ids(pieces: np.ndarray, a: int, n: int) -> np.ndarray:
    """Int64 (n,) element id of non-overlapping ``pieces`` (start-sorted) over [a, a+n)."""
    if not len(pieces):
        return np.full(n, -1, dtype=np.int64)
    position = np.arange(a, a + n)
    i = np.maximum(np.searchsorted(pieces[:, 1], position, side="right") - 1, 0)
    inside = (pieces[i, 1] <= position) & (position < pieces[i, 2])
    return np.where(inside, pieces[i, 4], -1)
