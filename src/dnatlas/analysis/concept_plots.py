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


def plot_f1_distributions(path: str | Path, best_by_view: Mapping, strand: str) -> Path:
    """Left: each concept's test per-element F1 (its best feature chosen on valid), one
    marker per dictionary and control. Right: the fraction of concepts reaching each F1."""
    views = [v for v in best_by_view if v[2] == strand]
    concepts = [m.concept for m in best_by_view[views[0]]]
    order = np.argsort([-best_by_view[views[0]][i].test["f1_per_element"]
                        for i in range(len(concepts))], kind="stable")
    height = max(3.5, 0.18 * len(concepts) + 1.5)
    fig = Figure(figsize=(11, height))
    left, right = fig.add_axes((0.22, 0.1, 0.43, 0.8)), fig.add_axes((0.74, 0.1, 0.24, 0.8))
    y = np.arange(len(concepts))
    for view in views:
        f1 = np.array([best_by_view[view][i].test["f1_per_element"] for i in order])
        style = _style(view)
        left.scatter(f1, y, s=18, marker=style["marker"], label=_label(view), alpha=0.8)
        xs = np.sort(f1)[::-1]
        right.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post",
                   linestyle=style["linestyle"], label=_label(view))
    left.axvline(IDENTIFIED_F1, color="grey", linewidth=0.8, linestyle="--")
    left.set_yticks(y, [concepts[i] for i in order], fontsize=7)
    left.invert_yaxis()
    left.set_xlim(-0.02, 1.02)
    left.set_xlabel("test per-element F1 of the best (feature, threshold) chosen on valid")
    left.set_title(f"Best feature per concept ({strand} strands)", fontsize=10)
    left.legend(fontsize=7, loc="lower right")
    right.axvline(IDENTIFIED_F1, color="grey", linewidth=0.8, linestyle="--")
    right.set_xlim(-0.02, 1.02)
    right.set_ylim(0, 1.02)
    right.set_xlabel("test per-element F1")
    right.set_ylabel("fraction of concepts with F1 ≥ x")
    right.set_title("Concepts reaching each F1", fontsize=10)
    return save_figure(fig, path)


def plot_identified(path: str | Path, by_threshold: Mapping, thresholds: Sequence[float],
                    strand: str) -> Path:
    """Concepts identified (per-element F1 > 0.5 on valid and test) when every feature is
    binarised at one threshold, per dictionary and control."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_axes((0.12, 0.14, 0.55, 0.74))
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
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return save_figure(fig, path)
