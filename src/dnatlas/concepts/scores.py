"""Scores of concept-matching counts: precision, recall, F1, the best feature per concept.

From :class:`~dnatlas.concepts.counting.ConceptCounts` (C concepts x F features x T
thresholds), all arrays (C, F, T) float64, 0 where undefined (never NaN):

- ``precision = tp / (tp + fp)``;
- ``recall = tp / n_positive`` (per nucleotide);
- ``recall_per_element = elements_hit / n_elements``;
- ``f1`` and ``f1_per_element``: harmonic means of precision with each recall.

:func:`best_per_concept` picks, for each concept, the (feature, threshold) with the
highest per-element F1 on the validation split and reports the same pair on test; the
concept is *identified* when per-element F1 > 0.5 on both (InterPLM). :func:`write_table`
writes the tidy CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.concepts.counting import ConceptCounts
from dnatlas.files import atomic_write

COLUMNS = ("concept", "feature", "threshold", "split", "tp", "fp", "n_positive", "n_elements",
           "elements_hit", "precision", "recall", "recall_per_element", "f1", "f1_per_element")
IDENTIFIED_F1 = 0.5


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64),
                                   np.asarray(den, dtype=np.float64))
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _harmonic(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    return _ratio(2 * p * r, p + r)


def scores(counts: ConceptCounts) -> dict[str, np.ndarray]:
    """Float64 (C, F, T) ``precision, recall, recall_per_element, f1, f1_per_element``."""
    precision = _ratio(counts.tp, counts.tp + counts.fp)
    recall = _ratio(counts.tp, counts.n_positive[:, None, None])
    recall_el = _ratio(counts.elements_hit, counts.n_elements[:, None, None])
    return {"precision": precision, "recall": recall, "recall_per_element": recall_el,
            "f1": _harmonic(precision, recall), "f1_per_element": _harmonic(precision, recall_el)}


def score_rows(counts: ConceptCounts, split: str,
               cells: Iterable[tuple[int, int, int]] | None = None) -> list[dict]:
    """Tidy rows (:data:`COLUMNS`) of the (concept, feature, threshold) index triples
    ``cells``; default: every cell with at least one true positive."""
    table = scores(counts)
    if cells is None:
        cells = zip(*np.nonzero(counts.tp > 0), strict=True)
    rows = []
    for c, f, t in cells:
        cell = (c, f, t)
        rows.append({"concept": counts.names[c], "feature": int(f),
                     "threshold": float(counts.thresholds[t]), "split": split,
                     "tp": int(counts.tp[cell]), "fp": int(counts.fp[cell]),
                     "n_positive": int(counts.n_positive[c]),
                     "n_elements": int(counts.n_elements[c]),
                     "elements_hit": int(counts.elements_hit[cell]),
                     **{name: float(values[cell]) for name, values in table.items()}})
    return rows


@dataclass(frozen=True)
class BestMatch:
    """The best (feature, threshold) of one concept, chosen on valid, with both splits'
    rows (:data:`COLUMNS`); ``identified``: per-element F1 > 0.5 on both splits."""

    concept: str
    feature: int
    threshold: float
    valid: dict
    test: dict
    identified: bool


def best_per_concept(valid: ConceptCounts, test: ConceptCounts) -> list[BestMatch]:
    """For each concept, the (feature, threshold) maximising per-element F1 on ``valid``
    (ties: lowest feature, then lowest threshold), reported on ``test`` too."""
    if valid.names != test.names or valid.tp.shape != test.tp.shape \
            or not np.array_equal(valid.thresholds, test.thresholds):
        raise ValueError("valid and test counts cover different concepts, features or "
                         "thresholds")
    f1 = scores(valid)["f1_per_element"]
    C, F, T = f1.shape
    best = f1.reshape(C, F * T).argmax(axis=1)
    matches = []
    for c, flat in enumerate(best):
        cell = (c, int(flat) // T, int(flat) % T)
        (valid_row,), (test_row,) = score_rows(valid, "valid", [cell]), \
            score_rows(test, "test", [cell])
        identified = (valid_row["f1_per_element"] > IDENTIFIED_F1
                      and test_row["f1_per_element"] > IDENTIFIED_F1)
        matches.append(BestMatch(valid.names[c], cell[1], float(valid.thresholds[cell[2]]),
                                 valid_row, test_row, identified))
    return matches


def write_table(path: str | Path, rows: Iterable[dict]) -> None:
    """Write tidy rows as CSV with :data:`COLUMNS`, atomically."""
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
