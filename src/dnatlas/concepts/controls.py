"""Control labels: every record's concept tracks circularly shifted by a random offset.

Shifting keeps each track's structure (element lengths, spacing, strand, overlaps and
the co-occurrence of concepts, since all concepts of a record move together) and
destroys its alignment with the sequence, so a feature matching shifted labels measures
chance. Nucleotide-identity concepts shift their sequence codes the same way.
"""

from __future__ import annotations

import numpy as np

from dnatlas.concepts.labels import ConceptLabels, _table


def shift_offsets(labels: ConceptLabels, seed: int = 0) -> np.ndarray:
    """Int64 (R,): one offset per record, uniform in ``[1, length)`` (0 for length < 2)."""
    rng = np.random.default_rng(seed)
    return np.array([rng.integers(1, length) if length > 1 else 0
                     for length in labels.lengths.tolist()], dtype=np.int64)


def shuffled_labels(labels: ConceptLabels, seed: int = 0,
                    offsets: np.ndarray | None = None) -> ConceptLabels:
    """``labels`` with record ``r``'s tracks moved from ``i`` to ``(i + offsets[r]) % L``.

    A piece crossing the record's end is cut in two (the element keeps its id and
    becomes multi-piece). ``offsets`` default to :func:`shift_offsets` of ``seed``.
    """
    offsets = shift_offsets(labels, seed) if offsets is None else np.asarray(offsets, np.int64)
    pieces, multi = [], []
    for table, base in zip(labels.pieces, labels.nucleotide, strict=True):
        if base >= 0 or not len(table):
            pieces.append(table)
            multi.append(np.zeros(0, dtype=np.int64))
            continue
        record, start, end = table[:, 0], table[:, 1], table[:, 2]
        length, shift = labels.lengths[record], offsets[record]
        new_start = (start + shift) % length
        new_end = new_start + (end - start)
        wraps = new_end > length
        head = np.column_stack([record, new_start, np.minimum(new_end, length),
                                table[:, 3], table[:, 4]])
        tail = np.column_stack([record, np.zeros_like(start), new_end - length,
                                table[:, 3], table[:, 4]])[wraps]
        new_table, new_multi = _table(np.concatenate([head, tail]).tolist())
        pieces.append(new_table)
        multi.append(new_multi)
    codes = None
    if labels.codes is not None:
        codes = {record: np.roll(labels.codes[record], int(offsets[r]))
                 for r, record in enumerate(labels.records)}
    return ConceptLabels(labels.names, labels.records, labels.lengths, tuple(pieces),
                         tuple(multi), labels.nucleotide, codes)
