"""Concept matching: features of a model scored against annotated concepts (InterPLM).

- :mod:`~dnatlas.concepts.labels`: :class:`ConceptLabels` (strand-aware elements with ids)
  from annotation intervals, attribute sub-concepts and nucleotide identity;
  :func:`chunk_labels` for one chunk.
- :mod:`~dnatlas.concepts.counting`: :func:`feature_maxima` and the streaming, sparse
  :class:`ConceptCounter` (TP, FP, positives, distinct elements hit per threshold).
- :mod:`~dnatlas.concepts.scores`: precision, recall (per nucleotide and per element), F1,
  :func:`best_per_concept` (valid -> test) and the tidy CSV table.
- :mod:`~dnatlas.concepts.controls`: circularly shifted labels.
"""

from dnatlas.concepts.controls import shuffled_labels
from dnatlas.concepts.counting import (
    DEFAULT_THRESHOLDS,
    ConceptCounter,
    ConceptCounts,
    feature_maxima,
)
from dnatlas.concepts.labels import (
    ChunkLabels,
    ConceptLabels,
    chunk_labels,
    combine,
    from_intervals,
    nucleotide_concepts,
    split_by_attribute,
)
from dnatlas.concepts.scores import BestMatch, best_per_concept, score_rows, scores, write_table

__all__ = [
    "DEFAULT_THRESHOLDS", "BestMatch", "ChunkLabels", "ConceptCounter", "ConceptCounts",
    "ConceptLabels", "best_per_concept", "chunk_labels", "combine", "feature_maxima",
    "from_intervals", "nucleotide_concepts", "score_rows", "scores", "shuffled_labels",
    "split_by_attribute", "write_table",
]
