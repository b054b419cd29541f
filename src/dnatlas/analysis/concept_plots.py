"""Figures of a concept evaluation: per-concept F1 of every dictionary and control, and the
number of concepts identified at each threshold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dnatlas.analysis.plots import save_figure
from dnatlas.concepts.scores import IDENTIFIED_F1


def _label(view) -> str:
    name, labels, _ = view
    return name if labels == "real" else f"{name} (shuffled labels)"


def _style(view) -> dict:
    name, labels, _ = view
    if labels == "shuffled":
        return {"marker": "x", "linestyle": ":"}
    if name.startswith("random-init"):
        return {"marker": "s", "linestyle": "--"}
    return {"marker": "o", "linestyle": "-"}


def plot_f1_distributions(path: str | Path, best_by_view: Mapping, strand: str,
                          max_concepts: int = 60) -> Path:
    """Left: each concept's test per-element F1 (its best feature chosen on valid), one
    marker per dictionary and control (the ``max_concepts`` concepts with the highest F1 of
    any dictionary). Right: the fraction of all concepts reaching each F1."""
    views = [v for v in best_by_view if v[2] == strand]
    concepts = [m.concept for m in best_by_view[views[0]]]
    f1 = {v: np.array([m.test["f1_per_element"] for m in best_by_view[v]]) for v in views}
    order = np.argsort(-np.max([f1[v] for v in views], axis=0), kind="stable")[:max_concepts]
    shown = len(order) < len(concepts)
    legend_in = 0.2 + 0.16 * ((len(views) + 1) // 2)
    height = max(3.5, 0.17 * len(order) + 1.3 + legend_in)
    fig = Figure(figsize=(11, height))
    bottom = (0.55 + legend_in) / height
    left = fig.add_axes((0.22, bottom, 0.43, 0.92 - bottom))
    right = fig.add_axes((0.74, bottom, 0.24, 0.92 - bottom))
    y = np.arange(len(order))
    for view in views:
        style = _style(view)
        left.scatter(f1[view][order], y, s=18, marker=style["marker"], label=_label(view),
                     alpha=0.8)
        xs = np.sort(f1[view])[::-1]
        right.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post",
                   linestyle=style["linestyle"])
    left.axvline(IDENTIFIED_F1, color="grey", linewidth=0.8, linestyle="--")
    left.set_yticks(y, [concepts[i] for i in order], fontsize=7)
    left.set_ylim(len(order) - 0.5, -0.5)
    left.set_xlim(-0.02, 1.02)
    left.set_xlabel("test per-element F1 of the best (feature, threshold) chosen on valid")
    title = f"Best feature per concept ({strand} strands)"
    if shown:
        title += f": the {len(order)} of {len(concepts)} concepts with the highest F1"
    left.set_title(title, fontsize=10)
    right.axvline(IDENTIFIED_F1, color="grey", linewidth=0.8, linestyle="--")
    right.set_xlim(-0.02, 1.02)
    right.set_ylim(0, 1.02)
    right.set_xlabel("test per-element F1")
    right.set_ylabel(f"fraction of the {len(concepts)} concepts with F1 ≥ x")
    right.set_title("Concepts reaching each F1", fontsize=10)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False)
    return save_figure(fig, path)


def plot_identified(path: str | Path, by_threshold: Mapping, thresholds: Sequence[float],
                    strand: str) -> Path:
    """Concepts identified (per-element F1 > 0.5 on valid and test) when every feature is
    binarised at one threshold, per dictionary and control."""
    fig = Figure(figsize=(7, 5))
    ax = fig.add_axes((0.1, 0.34, 0.86, 0.58))
    top = 1
    for view, counts in by_threshold.items():
        if view[2] != strand:
            continue
        style = _style(view)
        ax.plot(thresholds, counts, marker=style["marker"], linestyle=style["linestyle"],
                label=_label(view))
        top = max(top, max(counts))
    ax.set_xlabel("threshold on the max-normalised activation")
    ax.set_ylabel("concepts identified")
    ax.set_ylim(-0.3, top + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Concepts identified at each threshold ({strand} strands)", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              frameon=False)
    return save_figure(fig, path)
