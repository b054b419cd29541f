"""Matplotlib figures of single neurons (report Figure 4 and Supplementary Figure 3).

=========================  ==============================================================
report figure              function
=========================  ==============================================================
Figure 4 a                 :func:`neuron_window_figure`
Figure 4 b                 :func:`manhattan_figure`
Figure 4 e                 :func:`pr_curve_figure`
Supp. Figure 3             :func:`top_windows_figure`
=========================  ==============================================================

Like :mod:`dnatlas.analysis.plots`, every function returns a Figure built without pyplot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dnatlas.analysis.plots import COORDINATE_FORMAT, draw_features

__all__ = ["manhattan_figure", "neuron_window_figure", "pr_curve_figure", "top_windows_figure"]


def neuron_window_figure(acts: np.ndarray, neurons: Sequence[int], start: int = 0,
                         perm: np.ndarray | None = None, intervals=None,
                         seqid: str | None = None, labels: Mapping[int, str] | None = None,
                         row_height: float = 0.6, width: float = 9.0) -> Figure:
    """Selected neurons along a window, above an annotation track (Figure 4 a).

    Args:
        acts: (L, C) forward-strand activations of the window ``[start, start+L)``.
        neurons: neuron indices, one row each.
        perm: RCPS permutation (``model.rc_channel_permutation(site)``). When given, the −
            strand activation of neuron n (``acts[:, perm[n]]``) is drawn downwards.
        labels: optional neuron -> description.
    """
    x = np.asarray(acts, dtype=np.float32)
    pos = start + np.arange(len(x))
    rows = len(neurons) + (1 if intervals is not None else 0)
    fig = Figure(figsize=(width, row_height * rows + 0.6))
    grid = fig.add_gridspec(rows, 1, hspace=0.08)
    ax0 = None
    for k, n in enumerate(neurons):
        ax = fig.add_subplot(grid[k], sharex=ax0)
        ax0 = ax0 or ax
        plus = x[:, n]
        ax.fill_between(pos, 0, plus, step="mid", color="#4C72B0", linewidth=0)
        top = max(float(plus.max(initial=0)), 1e-6)
        bottom = 0.0
        if perm is not None:
            minus = x[:, perm[n]]
            ax.fill_between(pos, 0, -minus, step="mid", color="#C44E52", linewidth=0)
            bottom = -max(float(minus.max(initial=0)), 1e-6)
        ax.set_ylim(bottom * 1.05, top * 1.05)
        ax.axhline(0, color="0.6", linewidth=0.4)
        text = f"{n}" + (f" {labels[n]}" if labels and n in labels else "")
        ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=7)
        ax.set_yticks([])
        ax.tick_params(labelbottom=False, labelsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    end = start + len(x)
    if intervals is not None:
        ax = fig.add_subplot(grid[-1], sharex=ax0)
        draw_features(ax, intervals, start, end, "x", seqid, legend=True)
        ax.tick_params(labelsize=7)
    elif fig.axes:
        fig.axes[-1].tick_params(labelbottom=True)
    fig.axes[-1].xaxis.set_major_formatter(COORDINATE_FORMAT)
    fig.axes[0].set_xlim(start, end)
    return fig


def _binned_max(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Max and arg-max of ``values`` in ``n_bins`` equal bins; returns (positions, maxima)."""
    v = np.asarray(values, dtype=np.float32)
    size = max(1, int(np.ceil(len(v) / n_bins)))
    m = len(v) // size
    blocks = v[: m * size].reshape(m, size)
    arg = blocks.argmax(axis=1) + np.arange(m) * size
    if m * size < len(v):
        tail = m * size + int(np.argmax(v[m * size:]))
        arg = np.r_[arg, tail]
    return arg, v[arg]


def manhattan_figure(values: np.ndarray, minus: np.ndarray | None = None, start: int = 0,
                     title: str | None = None, n_bins: int = 20_000, annotate=None,
                     size: tuple[float, float] = (10.0, 3.0)) -> Figure:
    """Activation of one neuron along a whole genome (Figure 4 b).

    Args:
        values: (L,) activation on the + strand (genomic coordinates from ``start``).
        minus: optional (L,) activation on the − strand, aligned to the same coordinates
            (for RCPS models: the paired neuron's forward activation).
        n_bins: the genome is cut into this many bins and each bin's maximum is drawn.
        annotate: optional list of ``(position, text)`` labels (e.g. top genes).
    """
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    for series, color, label in ((values, "#4C72B0", "+ strand"), (minus, "#C44E52", "− strand")):
        if series is None:
            continue
        pos, peak = _binned_max(series, n_bins)
        ax.scatter(start + pos, peak, s=2, color=color, linewidths=0, label=label)
    for position, text in annotate or ():
        y = float(np.max([s[int(position - start)] for s in (values, minus) if s is not None]))
        ax.annotate(text, (position, y), fontsize=6, xytext=(0, 3), textcoords="offset points",
                    ha="center", rotation=90)
    ax.set_xlabel("genome position (nt)")
    ax.xaxis.set_major_formatter(COORDINATE_FORMAT)
    ax.set_ylabel("activation")
    ax.set_xlim(start, start + len(values))
    if minus is not None:
        ax.legend(fontsize=7, frameon=False, markerscale=4, ncol=2, loc="lower right",
                  bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title, fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def pr_curve_figure(curves: Mapping[str, tuple], chance: Mapping[str, float] | float | None = None,
                    title: str | None = None, size: tuple[float, float] = (4.5, 4.0)) -> Figure:
    """Precision-recall curves (Figure 4 e).

    Args:
        curves: label -> ``(precision, recall)`` or ``(precision, recall, ap)``, e.g. from
            :func:`dnatlas.analysis.auprc.precision_recall_curve`.
        chance: chance precision (positive fraction), one value or one per label; drawn dashed.
    """
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    for label, curve in curves.items():
        precision, recall = curve[0], curve[1]
        text = f"{label} (AP {curve[2]:.3f})" if len(curve) > 2 else label
        line, = ax.step(recall, precision, where="post", linewidth=1.2, label=text)
        rate = chance.get(label) if isinstance(chance, Mapping) else chance
        if rate is not None:
            ax.axhline(rate, color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def top_windows_figure(windows: Sequence[Mapping], title: str | None = None,
                       cmap: str = "Reds", max_letters: int = 120) -> Figure:
    """Top-activating windows of a neuron, letters shaded by activation (Supp. Figure 3).

    Args:
        windows: dicts with ``sequence`` (str, reading direction of the strand) and
            ``values`` (activations along it, same length); optional ``label``
            (e.g. ``"K-12-MG1655:1234 -"``).
    """
    rows = len(windows)
    width = max((len(w["sequence"]) for w in windows), default=1)
    fig = Figure(figsize=(min(0.11 * width + 2.5, 20), 0.22 * rows + 0.6))
    ax = fig.add_subplot()
    values = np.full((rows, width), np.nan)
    for r, w in enumerate(windows):
        v = np.asarray(w["values"], dtype=float)
        values[r, : len(v)] = v
    vmax = np.nanmax(values) if np.isfinite(values).any() else 1.0
    ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax or 1.0, aspect="auto",
              interpolation="nearest")
    if width <= max_letters:
        for r, w in enumerate(windows):
            for c, letter in enumerate(w["sequence"]):
                ax.text(c, r, letter, ha="center", va="center", fontsize=6, family="monospace")
    ax.set_yticks(range(rows))
    ax.set_yticklabels([w.get("label", "") for w in windows], fontsize=6)
    ax.set_xticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig
