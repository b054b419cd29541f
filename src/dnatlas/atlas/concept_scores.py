"""Concept matches of the atlas: the concept evaluation's counts, kept whole, and the
scores read from them.

:class:`ConceptAccumulator` runs the very counting code of ``dnatlas concepts eval``
(:class:`~dnatlas.concepts.counting.ConceptCounter`, fed exactly as
:func:`dnatlas.pipelines.concepts._count` feeds it: labels from
:func:`~dnatlas.concepts.labels.chunk_labels` with the chunk's strand sign, N positions
masked, features normalised by the maxima of the validation sample) for every labels set
(``real``, ``shuffled``), split and strand. Its tables:

- ``concept_counts``: every (labels, split, strand, concept, feature, threshold);
- ``concept_scores``: per (feature, concept), the threshold with the highest per-element
  F1 on ``valid`` (both strands added; ties: the lowest threshold), and the test
  precision (per position), recall and F1 (per element) there; ``f1_shuffled`` the same
  on the shuffled labels. :func:`control_columns` (a finalizer) then fills
  ``f1_random_init`` and ``f1_neurons``: the test F1 of the best (feature, threshold) of
  the concept (:func:`~dnatlas.concepts.scores.best_per_concept`, as ``best.csv``) in the
  random-init model's dictionary of the same kind and site, and in the neurons of the
  same site (SAE rows only);
- ``features``: ``best_concept`` (highest test F1), ``best_f1``, ``best_f1_shuffled``.

Scores are those of :mod:`dnatlas.concepts.scores` (the report's), not recomputed here.
"""

from __future__ import annotations

import numpy as np

from dnatlas.atlas.accumulate import STRANDS, AtlasContext, Chunk
from dnatlas.concepts.counting import ConceptCounter, ConceptCounts, add_counts
from dnatlas.concepts.labels import chunk_labels
from dnatlas.concepts.scores import best_per_concept, scores

SPLITS = ("valid", "test")
_TEXT = ("dictionary", "labels", "split", "strand", "concept")
_LABEL_CACHE: dict = {}


def _labels_of(label_set, name: str, chunk: Chunk):
    """The chunk's labels (one entry cached: the dictionaries of a pass share them)."""
    key = (id(label_set), name, chunk.record, chunk.start, chunk.end, chunk.strand)
    hit = _LABEL_CACHE.get(key)
    if hit is None or hit[0] is not label_set:
        if len(_LABEL_CACHE) > 8:
            _LABEL_CACHE.clear()
        sign = 1 if chunk.strand == "+" else -1
        # the label set is kept with its labels: its id cannot be reused while cached
        hit = _LABEL_CACHE[key] = (label_set, chunk_labels(label_set, chunk.record,
                                                           chunk.start, chunk.end, sign))
    return hit[1]


def counter_state(counter: ConceptCounter) -> dict:
    """A :class:`ConceptCounter`'s state as arrays (its pending elements concatenated)."""
    pending = [np.concatenate(x) if counter._pending else np.zeros(0, np.int64)
               for x in zip(*counter._pending)] if counter._pending else \
        [np.zeros(0, np.int64)] * 3
    seen = np.concatenate(counter._seen) if counter._seen else np.zeros(0, np.int64)
    return {"tp": counter.tp, "elements_hit": counter.elements_hit, "fired": counter.fired,
            "n_positive": counter.n_positive, "n_elements": counter.n_elements,
            "pending_keys": pending[0], "pending_features": pending[1],
            "pending_levels": pending[2], "seen": seen}


def load_counter_state(counter: ConceptCounter, state: dict) -> None:
    for name in ("tp", "elements_hit", "fired", "n_positive", "n_elements"):
        setattr(counter, name, np.array(state[name], dtype=np.int64))
    pending = tuple(np.array(state[f"pending_{n}"], dtype=np.int64)
                    for n in ("keys", "features", "levels"))
    counter._pending = [pending] if len(pending[0]) else []
    counter._pending_size = len(pending[0])
    seen = np.array(state["seen"], dtype=np.int64)
    counter._seen = [seen] if len(seen) else []


class ConceptAccumulator:
    """The concept counts of one dictionary (module docstring)."""

    def __init__(self, context: AtlasContext):
        self.label_sets = context.extra["label_sets"]
        self.maxima = np.asarray(context.extra["maxima"], dtype=np.float64)
        self.thresholds = tuple(context.settings.get("thresholds"))
        self.counters = {(labels, split, strand):
                         ConceptCounter(ls.names, self.maxima, self.thresholds)
                         for labels, ls in self.label_sets.items()
                         for split in SPLITS for strand in STRANDS}

    def update(self, chunk: Chunk, acts) -> None:
        seq = chunk.seq[chunk.own] if chunk.has_halo else chunk.seq
        mask = seq < 4 if (seq == 4).any() else None
        firing = None     # one firing matrix for the real and shuffled labels
        for name, label_set in self.label_sets.items():
            labels = _labels_of(label_set, name, chunk)
            counter = self.counters[name, chunk.split, chunk.strand]
            if firing is None:
                firing = counter.firing(acts, mask)
            counter.update(acts, labels, mask, firing)

    def merge(self, other: ConceptAccumulator) -> None:
        for key, counter in self.counters.items():
            counter.merge(other.counters[key])

    def state_dict(self) -> dict:
        return {f"{'|'.join(key)}|{name}": value for key, counter in self.counters.items()
                for name, value in counter_state(counter).items()}

    def load_state_dict(self, state: dict) -> None:
        for key, counter in self.counters.items():
            prefix = "|".join(key) + "|"
            load_counter_state(counter, {k[len(prefix):]: v for k, v in state.items()
                                         if k.startswith(prefix)})

    def counts(self) -> dict[tuple[str, str, str], ConceptCounts]:
        """{(labels, split, strand): ConceptCounts} (as ``concepts eval`` keys them, less
        the dictionary)."""
        return {key: counter.counts() for key, counter in self.counters.items()}

    def tables(self, context: AtlasContext) -> dict[str, dict]:
        counts = self.counts()
        count_rows = _count_rows(context.dictionary, counts)
        both = {(labels, split): add_counts(counts[labels, split, "+"],
                                            counts[labels, split, "-"])
                for labels in self.label_sets for split in SPLITS}
        real = _chosen(both["real", "valid"], both["real", "test"])
        shuffled = (_chosen(both["shuffled", "valid"], both["shuffled", "test"])
                    if "shuffled" in self.label_sets else None)
        names = counts["real", "valid", "+"].names
        C, F = real["f1"].shape
        score_rows = {
            "dictionary": [context.dictionary] * (C * F),
            "feature": np.tile(np.arange(F, dtype=np.int32), C),
            "concept": np.repeat(np.array(names, dtype=object), F),
            "threshold": real["threshold"].ravel(),
            "precision": real["precision"].ravel(),
            "recall": real["recall"].ravel(),
            "f1": real["f1"].ravel(),
            "f1_shuffled": (shuffled["f1"].ravel() if shuffled is not None
                            else np.full(C * F, np.nan)),
            "f1_random_init": np.full(C * F, np.nan),
            "f1_neurons": np.full(C * F, np.nan),
        }
        best = best_per_concept(both["real", "valid"], both["real", "test"])
        context.extra["concept_best_f1"] = {m.concept: m.test["f1_per_element"] for m in best}
        # features: the concept with the highest test F1
        f1 = real["f1"]                                                 # (C, F)
        top = f1.argmax(axis=0) if C else np.zeros(F, np.int64)
        has = f1.max(axis=0) > 0 if C else np.zeros(F, bool)
        idx = np.arange(F)
        features = {
            "dictionary": [context.dictionary] * F,
            "feature": np.arange(F, dtype=np.int32),
            "best_concept": [names[c] if h else None for c, h in zip(top, has, strict=True)],
            "best_f1": np.where(has, f1[top, idx] if C else 0.0, np.nan),
            "best_f1_shuffled": (np.where(has, shuffled["f1"][top, idx], np.nan)
                                 if shuffled is not None and C else np.full(F, np.nan)),
        }
        return {"concept_counts": count_rows, "concept_scores": score_rows,
                "features": features}


def _chosen(valid: ConceptCounts, test: ConceptCounts) -> dict[str, np.ndarray]:
    """Per (concept, feature): the threshold with the best valid per-element F1, and the
    test precision, per-element recall and F1 there ((C, F) arrays)."""
    f1_valid = scores(valid)["f1_per_element"]                  # (C, F, T)
    t = f1_valid.argmax(axis=2)                                  # first max: lowest threshold
    s = scores(test)
    pick = (lambda a: np.take_along_axis(a, t[..., None], axis=2)[..., 0])
    return {"threshold": valid.thresholds[t], "precision": pick(s["precision"]),
            "recall": pick(s["recall_per_element"]), "f1": pick(s["f1_per_element"])}


def _repeated(values, index: np.ndarray):
    """A dictionary-encoded string column: ``values[index]`` (no Python strings per row)."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)),
                                          pa.array(list(values), pa.string()))


def _count_rows(dictionary: str, counts: dict) -> dict:
    cols = {c: [] for c in ("dictionary", "labels", "split", "strand", "concept", "feature",
                            "threshold", "tp", "fp", "elements_hit", "n_positive",
                            "n_elements")}
    for (labels, split, strand), c in counts.items():
        C, F, T = c.tp.shape
        n = C * F * T
        zeros = np.zeros(n, dtype=np.int32)
        cols["dictionary"].append(_repeated([dictionary], zeros))
        cols["labels"].append(_repeated([labels], zeros))
        cols["split"].append(_repeated([split], zeros))
        cols["strand"].append(_repeated([strand], zeros))
        cols["concept"].append(_repeated(c.names, np.repeat(np.arange(C), F * T)))
        cols["feature"].append(np.tile(np.repeat(np.arange(F, dtype=np.int32), T), C))
        cols["threshold"].append(np.tile(c.thresholds, C * F))
        cols["tp"].append(c.tp.ravel())
        cols["fp"].append(c.fp.ravel())
        cols["elements_hit"].append(c.elements_hit.ravel())
        cols["n_positive"].append(np.repeat(c.n_positive, F * T))
        cols["n_elements"].append(np.repeat(c.n_elements, F * T))
    return {k: _concat(v) for k, v in cols.items()}


def _concat(parts):
    import pyarrow as pa

    if not parts:
        return []
    if isinstance(parts[0], pa.Array):
        return pa.chunked_array(parts)
    return np.concatenate(parts)


def counts_from_table(table, dictionary: str, names=None
                      ) -> dict[tuple[str, str, str], ConceptCounts]:
    """The :class:`ConceptCounts` of one dictionary back from ``concept_counts`` rows
    (a pyarrow table or a dict of columns): ``{(labels, split, strand): counts}``, the
    concepts in the order ``names`` (default: as the rows first name them)."""
    if hasattr(table, "column_names"):
        cols = {k: np.asarray(table.column(k).to_pylist()) if k in _TEXT
                else table.column(k).to_numpy() for k in table.column_names}
    else:
        cols = {k: np.asarray(v) for k, v in table.items()}
    mine = cols["dictionary"] == dictionary
    cols = {k: v[mine] for k, v in cols.items()}
    out = {}
    for key in sorted(set(zip(cols["labels"], cols["split"], cols["strand"], strict=True))):
        sel = (cols["labels"] == key[0]) & (cols["split"] == key[1]) & (cols["strand"] == key[2])
        names = tuple(dict.fromkeys(cols["concept"][sel].tolist())) if names is None \
            else tuple(names)
        thresholds = np.unique(cols["threshold"][sel])
        F = int(cols["feature"][sel].max()) + 1
        C, T = len(names), len(thresholds)
        index = {name: i for i, name in enumerate(names)}
        concept_index = np.array([index[x] for x in cols["concept"][sel]], dtype=np.int64)
        order = np.lexsort((cols["threshold"][sel], cols["feature"][sel], concept_index))
        block = {name: cols[name][sel][order].reshape(C, F, T).astype(np.int64)
                 for name in ("tp", "fp", "elements_hit", "n_positive", "n_elements")}
        out[key] = ConceptCounts(names, thresholds, block["tp"], block["fp"],
                                 block["n_positive"][:, 0, 0], block["n_elements"][:, 0, 0],
                                 block["elements_hit"])
    return out


def control_columns(tables: dict, contexts: dict) -> dict:
    """Finalizer: fill ``concept_scores.f1_random_init`` and ``f1_neurons`` from the
    best F1 per concept of the control and neuron dictionaries."""
    import pyarrow as pa

    if "concept_scores" not in tables or not tables["concept_scores"].num_rows:
        return tables
    scores_table = tables["concept_scores"]
    dictionary = np.asarray(scores_table.column("dictionary").to_pylist(), dtype=object)
    concept = np.asarray(scores_table.column("concept").to_pylist(), dtype=object)
    random_init = np.asarray(scores_table.column("f1_random_init").to_numpy(
        zero_copy_only=False), dtype=np.float64).copy()
    neurons = np.asarray(scores_table.column("f1_neurons").to_numpy(zero_copy_only=False),
                         dtype=np.float64).copy()
    best = {name: ctx.extra.get("concept_best_f1") for name, ctx in contexts.items()}
    for name, ctx in contexts.items():
        mine = dictionary == name
        if not mine.any():
            continue
        control = next((n for n, c in contexts.items() if c.control and not ctx.control
                        and c.kind == ctx.kind and c.site == ctx.site and best.get(n)), None)
        if control is not None:
            random_init[mine] = [best[control].get(c, np.nan) for c in concept[mine]]
        if ctx.kind == "sae":
            neuron = next((n for n, c in contexts.items() if c.kind == "neurons"
                           and c.control == ctx.control and c.site == ctx.site
                           and best.get(n)), None)
            if neuron is not None:
                neurons[mine] = [best[neuron].get(c, np.nan) for c in concept[mine]]
    i = scores_table.column_names.index("f1_random_init")
    scores_table = scores_table.set_column(i, "f1_random_init",
                                           pa.array(random_init, from_pandas=True))
    i = scores_table.column_names.index("f1_neurons")
    scores_table = scores_table.set_column(i, "f1_neurons",
                                           pa.array(neurons, from_pandas=True))
    return {**tables, "concept_scores": scores_table}


def concept_factory(context: AtlasContext) -> ConceptAccumulator | None:
    if not context.extra.get("label_sets") or context.extra.get("maxima") is None:
        return None
    return ConceptAccumulator(context)


ACCUMULATORS = [concept_factory]
FINALIZERS = [control_columns]
