"""Tables, summary and figures of a concept evaluation (:mod:`dnatlas.pipelines.concepts`).

For every *view* — a dictionary, the labels (``real`` or ``shuffled``) and the strands
(``+``, ``-`` or ``both`` added together) — the best (feature, threshold) of each concept
is chosen on ``valid`` and reported on ``test``:

- ``best.csv``: one row per view and concept (valid and test scores, ``identified``, and
  for SAEs on RC-equivariant models the feature's RC partner and their cosine);
- ``concepts.csv``: the tidy rows (``dictionary, labels, strand`` then
  :data:`~dnatlas.concepts.scores.COLUMNS`) of each concept's ``top`` features on valid
  (each at its best threshold), on both splits;
- ``summary.json``: settings, model, splits, per dictionary the concepts identified (and
  those whose test F1 also beats the shuffled-labels control by :data:`BEYOND_SHUFFLED`:
  a large concept such as CDS is "identified" by any dense feature, shifted labels too),
  the features (and RC pairs) tied to a concept (and those whose F1 beats the shuffled
  control's best for that concept by the same margin), the RC pairing statistics;
- ``table.txt`` (also printed): per concept, the best SAE feature, the best neuron, the
  random-init control and the shuffled-labels control (test per-element F1);
- ``f1_distributions.png`` and ``identified_vs_threshold.png``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatlas.concepts.counting import add_counts, at_thresholds
from dnatlas.concepts.scores import COLUMNS, IDENTIFIED_F1, best_per_concept, score_rows, scores
from dnatlas.files import atomic_write, atomic_write_text, write_json

PREFIX = ("dictionary", "labels", "strand")
#: an identified concept must also beat the shuffled-labels control by this much (test F1)
BEYOND_SHUFFLED = 0.1
BEST_COLUMNS = (*PREFIX, "concept", "feature", "threshold", "identified", "partner",
                "partner_cosine", *(f"valid_{c}" for c in COLUMNS[4:]),
                *(f"test_{c}" for c in COLUMNS[4:]))


@dataclass(frozen=True)
class DictionaryHeadline:
    """One dictionary's result on its headline view (real labels, both strands when both
    were evaluated, else its first view).

    Attributes:
        name: the dictionary; features: its number of features.
        identified: concepts identified; features_tied: features tied to a concept.
        identified_beyond_shuffled, features_tied_beyond_shuffled: the same, beating the
            shuffled-labels control (None without that control).
    """

    name: str
    features: int
    view: str
    identified: list[str]
    features_tied: int
    identified_beyond_shuffled: list[str] | None = None
    features_tied_beyond_shuffled: int | None = None


@dataclass
class ConceptResult:
    """What :func:`~dnatlas.pipelines.concepts.evaluate_concepts` produced: ``summary`` (as
    in ``summary.json``), ``best`` rows (as in ``best.csv``), the printed ``table``, the
    output folder and each dictionary's :class:`DictionaryHeadline`."""

    summary: dict
    best: list[dict]
    table: str
    out: Path
    headlines: list[DictionaryHeadline] = field(default_factory=list)


#: the view a dictionary's headline reports, when it was evaluated
HEADLINE_VIEW = "real both"


def _headline(name: str, entry: dict) -> DictionaryHeadline:
    label = HEADLINE_VIEW if HEADLINE_VIEW in entry["views"] else next(iter(entry["views"]))
    view = entry["views"][label]
    return DictionaryHeadline(name, entry["features"], label, view["identified"],
                              view["features_tied"], view.get("identified_beyond_shuffled"),
                              view.get("features_tied_beyond_shuffled"))


def _views(dicts, counts, settings):
    """{(dictionary, labels, strand): (valid counts, test counts)}."""
    views = {}
    labels_of = sorted({key[1] for key in counts})
    for d in dicts:
        for labels in labels_of:
            if (d.name, labels, "valid", settings.strands[0]) not in counts:
                continue
            per = {s: {split: counts[d.name, labels, split, s] for split in ("valid", "test")}
                   for s in settings.strands}
            for s in settings.strands:
                views[d.name, labels, s] = (per[s]["valid"], per[s]["test"])
            if len(settings.strands) == 2:
                views[d.name, labels, "both"] = tuple(
                    add_counts(per["+"][split], per["-"][split]) for split in ("valid", "test"))
    return views


def _top_cells(valid, top: int):
    f1 = scores(valid)["f1_per_element"]
    per_feature = f1.max(axis=2)                         # (C, F)
    best_t = f1.argmax(axis=2)
    order = np.argsort(-per_feature, axis=1, kind="stable")[:, :top]
    return [(c, int(f), int(best_t[c, f])) for c in range(f1.shape[0]) for f in order[c]
            if per_feature[c, f] > 0]


def _tied(valid, test, floor: np.ndarray | None = None) -> np.ndarray:
    """Bool (F,): features with per-element F1 > 0.5 on both splits for some concept and
    threshold; with ``floor`` (C,), also above the concept's floor on both."""
    bar = IDENTIFIED_F1 if floor is None else np.maximum(IDENTIFIED_F1, floor)[:, None, None]
    both = (scores(valid)["f1_per_element"] > bar) & (scores(test)["f1_per_element"] > bar)
    return both.any(axis=(0, 2))


def _best_row(view, match, pairs) -> dict:
    row = dict(zip(PREFIX, view, strict=True))
    row.update(concept=match.concept, feature=match.feature, threshold=match.threshold,
               identified=match.identified, partner="", partner_cosine="")
    if pairs is not None:
        row.update(partner=int(pairs.partner[match.feature]),
                   partner_cosine=round(float(pairs.cosine[match.feature]), 4))
    for split, values in (("valid", match.valid), ("test", match.test)):
        row.update({f"{split}_{c}": values[c] for c in COLUMNS[4:]})
    return row


def _identified_by_threshold(valid, test) -> list[int]:
    return [sum(m.identified for m in best_per_concept(at_thresholds(valid, t),
                                                       at_thresholds(test, t)))
            for t in range(len(valid.thresholds))]


def _write_csv(path: Path, columns, rows) -> None:
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _pick(best_by_view, dicts, kind: str, control: bool, labels: str, strand: str):
    for d in dicts:
        if d.kind == kind and d.control == control and (d.name, labels, strand) in best_by_view:
            return d.name
    return None


def _columns(best_by_view, dicts, strand: str) -> list[tuple[str, str, str]]:
    """(title, dictionary, labels) of the printed table's columns that exist."""
    def pick(kind, control, labels):
        return _pick(best_by_view, dicts, kind, control, labels, strand)

    columns = [("best SAE feature", pick("sae", False, "real"), "real"),
               ("best neuron", pick("neurons", False, "real"), "real"),
               ("random-init", pick("sae", True, "real") or pick("neurons", True, "real"), "real"),
               ("shuffled labels", pick("sae", False, "shuffled")
                or pick("neurons", False, "shuffled"), "shuffled")]
    return [(title, name, labels) for title, name, labels in columns if name is not None]


def _table(best_by_view, dicts, strand: str) -> str:
    columns = _columns(best_by_view, dicts, strand)
    first = best_by_view[columns[0][1], columns[0][2], strand]
    width = max(len(m.concept) for m in first) + 2
    lines = [f"test per-element F1 of each concept's best (feature, threshold) chosen on "
             f"valid; strands: {strand}; * identified (> {IDENTIFIED_F1} on both splits)",
             f"{'concept':<{width}}" + "".join(f"{t:>24}" for t, _, _ in columns)]
    for i, match in enumerate(first):
        cells = []
        for _, name, labels in columns:
            m = best_by_view[name, labels, strand][i]
            cells.append(f"{m.test['f1_per_element']:.3f}{'*' if m.identified else ' '} "
                         f"f{m.feature}@{m.threshold:g}")
        lines.append(f"{match.concept:<{width}}" + "".join(f"{c:>24}" for c in cells))
    lines.append("columns: " + "; ".join(f"{t} = {n}" + (" on shuffled labels"
                                                          if labels == "shuffled" else "")
                                          for t, n, labels in columns))
    return "\n".join(lines) + "\n"


def write_report(out: Path, dicts, counts, settings, context: dict) -> ConceptResult:
    """Write the files of the module doc; returns a :class:`ConceptResult`."""
    from dnatlas.analysis.concept_plots import plot_f1_distributions, plot_identified

    views = _views(dicts, counts, settings)
    pairs = {d.name: d.pairs for d in dicts}
    best_by_view, best_rows, top_rows, by_threshold = {}, [], [], {}
    for view, (valid, test) in views.items():
        matches = best_per_concept(valid, test)
        best_by_view[view] = matches
        best_rows += [_best_row(view, m, pairs[view[0]]) for m in matches]
        cells = _top_cells(valid, settings.top)
        for split, c in (("valid", valid), ("test", test)):
            top_rows += [{**dict(zip(PREFIX, view, strict=True)), **row}
                         for row in score_rows(c, split, cells)]
        by_threshold[view] = _identified_by_threshold(valid, test)
    strand = "both" if len(settings.strands) == 2 else settings.strands[0]
    summary = {"format": "dnatlas-concept-evaluation", "version": 1, **context,
               "thresholds": list(map(float, settings.thresholds)),
               "strands": list(settings.strands), "sample_nt": settings.sample_nt,
               "edge": settings.edge, "seed": settings.seed, "dictionaries": {}}
    for d in dicts:
        entry = {"kind": d.kind, "site": d.key, "features": d.n_features,
                 "control": d.control, "source": d.source, "views": {}}
        if d.pairs is not None:
            entry["rc_pairing"] = d.pairs.summary()
        for (name, labels, s), (valid, test) in views.items():
            if name != d.name:
                continue
            tied = _tied(valid, test)
            view = {"identified": [m.concept for m in best_by_view[name, labels, s]
                                   if m.identified],
                    "features_tied": int(tied.sum()),
                    "identified_by_threshold": by_threshold[name, labels, s]}
            shuffled = best_by_view.get((name, "shuffled", s))
            if labels == "real" and shuffled is not None:
                floor = np.array([m.test["f1_per_element"] for m in shuffled]) + BEYOND_SHUFFLED
                view["features_tied_beyond_shuffled"] = int(_tied(valid, test, floor).sum())
                view["identified_beyond_shuffled"] = [
                    m.concept for m, control in zip(best_by_view[name, labels, s], shuffled,
                                                    strict=True)
                    if m.identified and m.test["f1_per_element"]
                    > control.test["f1_per_element"] + BEYOND_SHUFFLED]
            if d.pairs is not None:
                view["rc_pairs_tied"] = int(len(np.unique(d.pairs.canonical()[tied])))
            entry["views"][f"{labels} {s}"] = view
        summary["dictionaries"][d.name] = entry
    table = _table(best_by_view, dicts, strand)
    _write_csv(out / "best.csv", BEST_COLUMNS, best_rows)
    _write_csv(out / "concepts.csv", (*PREFIX, *COLUMNS), top_rows)
    write_json(out / "summary.json", summary)
    atomic_write_text(out / "table.txt", table)
    plot_f1_distributions(out / "f1_distributions.png", best_by_view, strand)
    plot_identified(out / "identified_vs_threshold.png", by_threshold,
                    list(map(float, settings.thresholds)), strand)
    return ConceptResult(summary, best_rows, table, out,
                         [_headline(name, entry) for name, entry in summary["dictionaries"].items()])
