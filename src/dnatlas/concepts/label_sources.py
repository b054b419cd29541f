"""Concept labels from the usual sources: annotation features, codons, attribute
sub-concepts, BED files (a motif scan's hits) and nucleotide identity.

:func:`build_labels` assembles them into one :class:`~dnatlas.concepts.labels.ConceptLabels`
over the evaluated records, and drops (and names) the concepts that have no element there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dnatlas.annotation.intervals import Interval, group_features, load_bed
from dnatlas.annotation.tracks import codon_track_intervals
from dnatlas.concepts.labels import (
    DEFAULT_CONCEPTS,
    ConceptLabels,
    combine,
    from_intervals,
    nucleotide_concepts,
    split_by_attribute,
)
from dnatlas.errors import InputError


@dataclass
class LabelSpec:
    """Which concepts to build.

    Attributes:
        concepts: annotation tracks or feature types (default :data:`DEFAULT_CONCEPTS`).
        codons: add ``start_codon``, ``start_codon_2nd``, ``stop_codon``, ``stop_codon_1st``.
        split_by: ``CONCEPT:ATTRIBUTE`` sub-concepts (e.g. ``tRNA:product``), each value
            kept when it has at least ``min_count`` features.
        beds: BED files; by default each distinct name column value (a motif of a
            ``dnatlas motifs scan``) is one concept ``FILE:NAME`` kept when it has at least
            ``min_count`` intervals; with ``bed_by_name=False`` the whole file is one concept.
        nucleotides: add the nucleotide-identity concepts A, C, G, T (001's Figure 3A).
    """

    concepts: Sequence[str] = DEFAULT_CONCEPTS
    codons: bool = True
    split_by: Sequence[str] = ()
    beds: Sequence[str] = ()
    bed_by_name: bool = True
    min_count: int = 10
    nucleotides: bool = True
    extra: Sequence[ConceptLabels] = field(default_factory=tuple)


def subset(labels: ConceptLabels, keep: Sequence[int]) -> ConceptLabels:
    """The concepts ``keep`` (indices, in that order) of ``labels``."""
    keep = list(keep)
    nucleotide = tuple(labels.nucleotide[c] for c in keep)
    return ConceptLabels(tuple(labels.names[c] for c in keep), labels.records, labels.lengths,
                         tuple(labels.pieces[c] for c in keep),
                         tuple(labels.multi_piece[c] for c in keep), nucleotide,
                         labels.codes if any(b >= 0 for b in nucleotide) else None)


def drop_empty(labels: ConceptLabels) -> tuple[ConceptLabels, list[str]]:
    """``labels`` without the concepts that have no element; and the dropped names."""
    counts = labels.n_elements()
    keep = [c for c in range(labels.n_concepts) if counts[c] > 0]
    return subset(labels, keep), [labels.names[c] for c in range(labels.n_concepts)
                                  if counts[c] == 0]


def _by_name(intervals: Sequence[Interval], prefix: str, min_count: int
             ) -> dict[str, list[list[Interval]]]:
    groups: dict[str, list[list[Interval]]] = {}
    for pieces in group_features(intervals):
        groups.setdefault(f"{prefix}:{pieces[0].name or '.'}", []).append(pieces)
    return {name: found for name, found in sorted(groups.items()) if len(found) >= min_count}


def bed_concepts(paths: Iterable[str], lengths: Mapping[str, int], by_name: bool = True,
                 min_count: int = 10) -> ConceptLabels:
    """Concepts from BED files (see :class:`LabelSpec`) over the records ``lengths``."""
    groups: dict[str, list[list[Interval]]] = {}
    for path in paths:
        intervals = [iv for iv in load_bed(path) if iv.seqid in lengths]
        for iv in intervals:
            if iv.end > lengths[iv.seqid]:
                raise InputError(f"interval [{iv.start}, {iv.end}) ends past the length "
                                 f"{lengths[iv.seqid]} of record {iv.seqid!r}", path=path)
        prefix = intervals[0].type if intervals else str(path)
        if by_name:
            groups.update(_by_name(intervals, prefix, min_count))
        elif intervals:
            groups[prefix] = group_features(intervals)
    return from_intervals([], lengths, groups=groups)


def _parse_split(text: str) -> tuple[str, str]:
    concept, sep, attribute = text.partition(":")
    if not sep or not concept or not attribute:
        raise InputError(f"sub-concepts are CONCEPT:ATTRIBUTE (e.g. tRNA:product), got {text!r}")
    return concept, attribute


def build_labels(intervals: Sequence[Interval], codes: Mapping[str, np.ndarray],
                 spec: LabelSpec) -> tuple[ConceptLabels, list[str]]:
    """All concepts of ``spec`` over the records ``codes`` (record ID -> uint8 codes).

    Returns the labels (concepts without any element dropped) and the dropped names.
    """
    lengths = {record: len(c) for record, c in codes.items()}
    parts = [from_intervals(intervals, lengths, spec.concepts)]
    if spec.codons:
        parts.append(from_intervals([], lengths, groups={
            name: group_features(found)
            for name, found in codon_track_intervals(intervals).items()}))
    for text in spec.split_by:
        concept, attribute = _parse_split(text)
        parts.append(split_by_attribute(intervals, lengths, concept, attribute, spec.min_count))
    if spec.beds:
        parts.append(bed_concepts(spec.beds, lengths, spec.bed_by_name, spec.min_count))
    if spec.nucleotides:
        parts.append(nucleotide_concepts(codes))
    parts += list(spec.extra)
    labels = combine(*parts)
    if len(set(labels.names)) != labels.n_concepts:
        seen: set[str] = set()
        twice = sorted({n for n in labels.names if n in seen or seen.add(n)})
        raise InputError(f"concept names given twice: {', '.join(twice)}")
    return drop_empty(labels)


@dataclass(frozen=True)
class ConceptCount:
    """A concept's elements and the positions it covers on each strand (nucleotide
    concepts: the counts of that base read on each strand); the columns of
    ``labels.summary.tsv``."""

    concept: str
    elements: int
    positions_plus: int
    positions_minus: int

    COLUMNS = ("concept", "elements", "positions_plus", "positions_minus")


def label_summary(labels: ConceptLabels) -> list[ConceptCount]:
    """Per concept its :class:`ConceptCount`."""
    rows = []
    counts = labels.n_elements()
    for c, name in enumerate(labels.names):
        base = labels.nucleotide[c]
        if base >= 0:
            plus = sum(int((codes == base).sum()) for codes in labels.codes.values())
            minus = sum(int((codes == 3 - base).sum()) for codes in labels.codes.values())
        else:
            table = labels.pieces[c]
            span = table[:, 2] - table[:, 1]
            plus, minus = int(span[table[:, 3] == 1].sum()), int(span[table[:, 3] == -1].sum())
        rows.append(ConceptCount(name, int(counts[c]), plus, minus))
    return rows


def write_bed(labels: ConceptLabels, fh) -> int:
    """Write the interval concepts' pieces as BED6 (name ``CONCEPT|ELEMENT``, score 0) to
    the text handle ``fh``, sorted by record and start; returns the lines written.
    Nucleotide-identity concepts are not written (they are the sequence itself)."""
    rows = []
    for c, name in enumerate(labels.names):
        if labels.nucleotide[c] < 0:
            rows += [(r, s, e, st, el, name) for r, s, e, st, el, _ in labels.pieces[c].tolist()]
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    for r, s, e, st, el, name in rows:
        fh.write(f"{labels.records[r]}\t{s}\t{e}\t{name}|{el}\t0\t{'+' if st == 1 else '-'}\n")
    return len(rows)
