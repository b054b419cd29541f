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
from matplotlib.patches import Patch

from dnatlas.analysis.plots import COORDINATE_FORMAT, draw_features, span

__all__ = ["collapse_windows", "label_levels", "manhattan_figure", "neuron_window_figure",
           "pr_curve_figure", "top_windows_figure"]

PLUS, MINUS = "#4C72B0", "#C44E52"


def _strand_legend(target, **kw):
    handles = [Patch(color=PLUS, label="+ strand (forward)"),
               Patch(color=MINUS, label="\u2212 strand (RC partner)")]
    return target.legend(handles=handles, fontsize=7, frameon=False, **kw)


def neuron_window_figure(acts: np.ndarray, neurons: Sequence[int], start: int = 0,
                         perm: np.ndarray | None = None, intervals=None,
                         seqid: str | None = None, labels: Mapping[int, str] | None = None,
                         row_height: float = 0.75, width: float = 9.0,
                         layer: str | None = None) -> Figure:
    """Selected neurons along a window, above an annotation track (Figure 4 a).

    Each row is labelled with ``layer`` and the neuron (and ``labels[n]``) and carries its
    activation scale; x is 1-based genomic position.

    Args:
        acts: (L, C) forward-strand activations of the window ``[start, start+L)``.
        neurons: neuron indices, one row each.
        perm: RCPS permutation (``model.rc_channel_permutation(site)``). When given, the −
            strand activation of neuron n (``acts[:, perm[n]]``) is drawn downwards.
        labels: optional neuron -> description (e.g. the track it detects best).
        layer: e.g. ``"layer 2"`` (0-based, as ``--layer`` counts; the site is blocks.2).
    """
    x = np.asarray(acts, dtype=np.float32)
    pos = start + np.arange(len(x)) + 1
    rows = len(neurons) + (1 if intervals is not None else 0)
    fig = Figure(figsize=(width, row_height * rows + 0.9))
    grid = fig.add_gridspec(rows, 1, hspace=0.12)
    ax0 = None
    for k, n in enumerate(neurons):
        ax = fig.add_subplot(grid[k], sharex=ax0)
        ax0 = ax0 or ax
        plus = x[:, n]
        ax.fill_between(pos, 0, plus, step="mid", color=PLUS, linewidth=0)
        top = max(float(plus.max(initial=0)), 1e-6)
        bottom = 0.0
        if perm is not None:
            minus = x[:, perm[n]]
            ax.fill_between(pos, 0, -minus, step="mid", color=MINUS, linewidth=0)
            bottom = -max(float(minus.max(initial=0)), 1e-6)
        ax.set_ylim(bottom * 1.05, top * 1.05)
        ax.axhline(0, color="0.6", linewidth=0.4)
        ax.set_yticks([t for t in (bottom, top) if t])
        ax.set_yticklabels([f"{abs(t):.2g}" for t in (bottom, top) if t])
        text = f"{layer} #{n}" if layer else f"neuron {n}"
        if labels and n in labels:
            text += f"\n{labels[n]}"
        ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=7, labelpad=4)
        ax.tick_params(labelbottom=False, labelsize=6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    end = start + len(x)
    if intervals is not None:
        ax = fig.add_subplot(grid[-1], sharex=ax0)
        draw_features(ax, intervals, start, end, "x", seqid, legend=True)
    last = fig.axes[-1]
    last.tick_params(labelbottom=True, labelsize=7)
    last.xaxis.set_major_formatter(COORDINATE_FORMAT)
    last.set_xlabel(f"{seqid} position (1-based, nt)" if seqid else "position (1-based)",
                    fontsize=8)
    fig.axes[0].set_xlim(*span(start, end))
    if perm is not None and neurons:
        _strand_legend(fig.axes[0], loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2,
                       title="activation (\u2212 strand drawn downwards)", title_fontsize=7)
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


def label_levels(positions: Sequence[float], widths: Sequence[float], levels: int = 3,
                 gap: float = 0.0) -> list[int | None]:
    """Stack labels centred at ``positions`` (with ``widths``, same units) on ``levels``
    rows so that none overlaps: each label takes the lowest free row; None where no row is
    free (the label is dropped). Labels are placed in order of position."""
    ends = [-np.inf] * levels
    out: list[int | None] = [None] * len(positions)
    for i in np.argsort(positions, kind="stable"):
        lo, hi = positions[i] - widths[i] / 2, positions[i] + widths[i] / 2
        free = [k for k in range(levels) if ends[k] + gap <= lo]
        if free:
            out[i] = free[0]
            ends[free[0]] = hi
    return out


def manhattan_figure(values: np.ndarray, minus: np.ndarray | None = None, start: int = 0,
                     title: str | None = None, n_bins: int = 20_000, annotate=None,
                     size: tuple[float, float] = (10.0, 3.0), levels: int = 3) -> Figure:
    """Activation of one neuron along a whole genome (Figure 4 b).

    Args:
        values: (L,) activation on the + strand (genomic coordinates from ``start``).
        minus: optional (L,) activation on the − strand, aligned to the same coordinates
            (for RCPS models: the paired neuron's forward activation).
        n_bins: the genome is cut into this many bins and each bin's maximum is drawn.
        annotate: optional list of ``(position, text)`` labels (0-based positions, e.g. the
            genes at the top sites), stacked on up to ``levels`` rows above the plot so
            that none overlaps; repeated texts are labelled once, at their highest site,
            and labels with no free row are dropped.
    """
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    for series, color, label in ((values, PLUS, "+ strand"), (minus, MINUS, "\u2212 strand")):
        if series is None:
            continue
        pos, peak = _binned_max(series, n_bins)
        ax.scatter(start + pos + 1, peak, s=2, color=color, linewidths=0, label=label)
    peaks = {}
    for position, text in annotate or ():
        y = float(np.max([s[int(position - start)] for s in (values, minus) if s is not None]))
        if text not in peaks or y > peaks[text][1]:
            peaks[text] = (position + 1, y)
    texts = list(peaks)
    axis_inches = size[0] * (fig.subplotpars.right - fig.subplotpars.left)
    length = max(len(values), 1)
    widths = [(len(t) * 6 * 0.62 / 72 + 0.06) / axis_inches * length for t in texts]
    rows = label_levels([peaks[t][0] for t in texts], widths, levels)
    for text, row in zip(texts, rows):
        if row is None:
            continue
        ax.annotate(text, peaks[text], xytext=(peaks[text][0], 1.03 + 0.11 * row),
                    textcoords=ax.get_xaxis_transform(), fontsize=6, ha="center", va="bottom",
                    annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.4})
    ax.set_xlabel("genome position (1-based, nt)")
    ax.xaxis.set_major_formatter(COORDINATE_FORMAT)
    ax.set_ylabel("activation (max per bin)")
    ax.set_xlim(start + 0.5, start + len(values) + 0.5)
    used = max([r for r in rows if r is not None], default=-1) + 1
    if minus is not None:
        ax.legend(fontsize=7, frameon=False, markerscale=4, ncol=2, loc="upper right",
                  bbox_to_anchor=(1.0, 1.04 + 0.11 * used + 0.1), borderaxespad=0)
    if title:
        ax.set_title(title, fontsize=9, loc="left", y=1.04 + 0.11 * used)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def pr_curve_figure(curves: Mapping[str, tuple], chance: Mapping[str, float] | float | None = None,
                    title: str | None = None, size: tuple[float, float] = (4.5, 4.0),
                    log: bool = False, reference: Mapping[str, float] | float | None = None
                    ) -> Figure:
    """Precision-recall curves (Figure 4 e), the legend outside the axes.

    Args:
        curves: label -> ``(precision, recall)`` or ``(precision, recall, ap)``, e.g. from
            :func:`dnatlas.analysis.auprc.precision_recall_curve`.
        chance: chance precision (positive fraction), one value or one per label; drawn
            dashed (grey for one value, the curve's colour for one per label).
        log: log-scale precision (use it when chance is tiny: it is otherwise
            indistinguishable from zero).
        reference: AUPRC of a reference detector (the exact codon match), one value or one
            per label; drawn dotted.
    """
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    lows = []
    for label, curve in curves.items():
        precision = np.asarray(curve[0], dtype=float)
        recall = np.asarray(curve[1], dtype=float)
        text = f"{label} (AP {curve[2]:.3g})" if len(curve) > 2 else label
        if log:
            precision = np.where(precision > 0, precision, np.nan)
        line, = ax.step(recall, precision, where="post", linewidth=1.2, label=text)
        lows.append(np.nanmin(precision) if np.isfinite(precision).any() else 1.0)
        for values, style, name in ((chance, "--", "chance"), (reference, ":", "exact codon match")):
            if isinstance(values, Mapping) and values.get(label) is not None:
                value = float(values[label])
                ax.axhline(value, color=line.get_color(), linestyle=style, linewidth=1.0,
                           label=f"{name}: {value:.2g}" + (f" ({label})" if len(curves) > 1 else ""))
                lows.append(value)
    for values, style, name in ((chance, "--", "chance"), (reference, ":", "exact codon match")):
        if values is not None and not isinstance(values, Mapping):
            ax.axhline(float(values), color="0.4", linestyle=style, linewidth=1.0,
                       label=f"{name}: {float(values):.2g}")
            lows.append(float(values))
    ax.set_xlim(0, 1)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(min(lows, default=1e-3) / 2, 1e-7), 1.5)
    else:
        ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision" + (" (log scale)" if log else ""))
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def collapse_windows(windows: Sequence[Mapping]) -> list[dict]:
    """Identical windows (same ``sequence``; e.g. the seven rRNA operons) merged into one,
    in order of first appearance, with ``count`` and the label of the first."""
    rows: dict[str, dict] = {}
    for w in windows:
        row = rows.setdefault(w["sequence"], {**w, "count": 0})
        row["count"] += 1
    return list(rows.values())


def top_windows_figure(windows: Sequence[Mapping], title: str | None = None,
                       cmap: str = "Reds", max_letters: int = 120,
                       centre: int | None = None) -> Figure:
    """Top-activating windows of a neuron, letters shaded by activation (Supp. Figure 3).

    Identical windows are shown once, their label ending in "×N" (:func:`collapse_windows`).
    The x axis is the offset from the window's centre (its peak), in the reading direction
    of the window's strand.

    Args:
        windows: dicts with ``sequence`` (str, reading direction of the strand) and
            ``values`` (activations along it, same length); optional ``label``
            (e.g. ``"K-12-MG1655:1234 -"``).
        centre: index of the peak in each window (default: the first window's
            ``centre`` key, else the middle).
    """
    windows = collapse_windows(windows)
    rows = len(windows)
    width = max((len(w["sequence"]) for w in windows), default=1)
    fig = Figure(figsize=(min(0.11 * width + 3.2, 20), 0.22 * rows + 1.0))
    ax = fig.add_subplot()
    values = np.full((rows, width), np.nan)
    for r, w in enumerate(windows):
        v = np.asarray(w["values"], dtype=float)
        values[r, : len(v)] = v
    vmax = np.nanmax(values) if np.isfinite(values).any() else 1.0
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax or 1.0, aspect="auto",
                      interpolation="nearest")
    if width <= max_letters:
        for r, w in enumerate(windows):
            for c, letter in enumerate(w["sequence"]):
                ax.text(c, r, letter, ha="center", va="center", fontsize=6, family="monospace")
    ax.set_yticks(range(rows))
    ax.set_yticklabels([w.get("label", "") + (f"  \u00d7{w['count']}" if w["count"] > 1 else "")
                        for w in windows], fontsize=6)
    mid = windows[0].get("centre", width // 2) if centre is None and windows else centre or 0
    ticks = [c for c in range(width) if (c - mid) % 10 == 0]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{c - mid:+d}" if c != mid else "0" for c in ticks], fontsize=6)
    ax.set_xlabel("offset from the peak (nt, 5'\u21923' on the window's strand)", fontsize=7)
    bar = fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    bar.set_label("activation", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
