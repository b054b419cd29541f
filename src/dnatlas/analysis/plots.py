"""Matplotlib figures of the report's Gram-matrix analyses (Figures 2-3, Supp. Figures 1-2),
and the pieces every figure shares (annotation tracks, coordinates, saving).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no display backend needed; PNGs are rendered by Agg). Save with :func:`save_figure`.
Genomic coordinates are 0-based half-open in the arguments; axes show them 1-based (the
nucleotide at 0-based index i is drawn centred at i + 1, as genome browsers number it).

Figure 2 a-e and Supp. 1-2: :func:`gram_figure`, :func:`gram_grid_figure`; Figure 2 f-h:
:func:`phase_gram_figure`; Figure 3: :func:`gram_panels_figure` (``scale="power"``); offset
profiles: :func:`offset_profile_figure`; Figure 4: :mod:`dnatlas.analysis.neuron_plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colors
from matplotlib.figure import Figure

from dnatlas.analysis.track_plots import (
    COORDINATE_FORMAT,
    FEATURE_STYLE,
    draw_features,
    feature_category,
    feature_legend,
    span,
)

__all__ = ["FEATURE_STYLE", "draw_features", "feature_category", "feature_legend",
           "gram_figure", "gram_grid_figure", "gram_norm", "gram_panels_figure", "map_inches",
           "offset_profile_figure", "phase_gram_figure", "plot_gram", "save_figure", "span"]

GRAM_CMAP = "magma"


# --------------------------------------------------------------------------- helpers

def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` atomically (PNG, or the format of the suffix); returns the path."""
    from dnatlas.files import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # tmp + fsync + rename: no half-written figure
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:] or "png")
    return path


CBAR_LABEL = "similarity (cosine of activations)"


def map_inches(n: int, size: float, dpi: int = 150, max_pixels: int = 1024) -> float:
    """Side of a map in inches: at least ``size``, and 1 pixel per row at ``dpi`` up to
    ``max_pixels`` rows (larger maps are block-averaged to fit, see :func:`plot_gram`)."""
    return max(size, min(n, max_pixels) / dpi)


def _map_axes(fig, w: float, h: float, x: float, y: float, side: float, tracks: bool):
    """Axes (map, top track, left track, colour bar) laid out in inches on a w x h figure
    with the map's lower-left corner at (x, y); the tracks are None without ``tracks``."""
    t, gap = (0.32, 0.04) if tracks else (0.0, 0.0)

    def rect(x0, y0, dx, dy):
        return [x0 / w, y0 / h, dx / w, dy / h]

    ax = fig.add_axes(rect(x + t + gap, y, side, side))
    top = fig.add_axes(rect(x + t + gap, y + side + gap, side, t), sharex=ax) if tracks else None
    left = fig.add_axes(rect(x, y, t, side), sharey=ax) if tracks else None
    cax = fig.add_axes(rect(x + t + gap + side + 0.15, y, 0.15, side))
    return ax, top, left, cax


def _genomic_axes(ax, left, start, end, intervals, seqid, top, label: str, fontsize=7):
    """Ticks and labels of a map: x below the map, y left of the left track (if any)."""
    lo, hi = span(start, end)
    ax.set_xlim(lo, hi)
    ax.set_ylim(hi, lo)
    seen = {}
    if top is not None:
        seen = draw_features(top, intervals, start, end, "x", seqid)
        draw_features(left, intervals, start, end, "y", seqid, names=False)
        top.tick_params(labelbottom=False, bottom=False)
        ax.tick_params(labelleft=False, left=False)
    ylabels = left if left is not None else ax
    ylabels.tick_params(labelleft=True, left=True, labelsize=fontsize)
    ax.tick_params(labelsize=fontsize)
    for axis in (ax.xaxis, ylabels.yaxis):
        axis.set_major_formatter(COORDINATE_FORMAT)
    ax.set_xlabel(label, fontsize=fontsize + 1)
    ylabels.set_ylabel(label, fontsize=fontsize + 1)
    return seen


def _position_label(seqid: str | None) -> str:
    return f"{seqid} position (1-based, nt)" if seqid else "position (1-based)"


def gram_norm(scale: str = "linear", gamma: float = 0.5, signed: bool = False):
    """Colour normalisation of a similarity map.

    ``linear`` maps [0, 1] (signed: [-1, 1]) linearly, as in Figure 2; ``power`` maps
    ``v -> v**gamma`` (signed: ``sign(v)|v|**gamma``), emphasising small similarities
    like Figure 3's nonlinear scale (gamma 0.5 = square root).
    """
    lo = -1.0 if signed else 0.0
    if scale == "linear":
        return colors.Normalize(lo, 1.0)
    if scale == "power":
        if not signed:
            return colors.PowerNorm(gamma, vmin=0.0, vmax=1.0)

        def forward(v):
            return np.sign(v) * np.abs(v) ** gamma

        def inverse(v):
            return np.sign(v) * np.abs(v) ** (1 / gamma)

        return colors.FuncNorm((forward, inverse), vmin=-1.0, vmax=1.0)
    raise ValueError(f"scale must be 'linear' or 'power', got {scale!r}")


def _pool(gram: np.ndarray, max_pixels: int) -> np.ndarray:
    """Block-average a large matrix down to at most ``max_pixels`` per side."""
    n = len(gram)
    f = int(np.ceil(n / max_pixels))
    if f <= 1:
        return gram
    m = n // f
    return gram[: m * f, : m * f].reshape(m, f, m, f).mean(axis=(1, 3))


def plot_gram(ax, gram: np.ndarray, extent: tuple[float, float] | None = None,
              scale: str = "linear", gamma: float = 0.5, cmap: str | None = None,
              max_pixels: int = 2048):
    """Draw a similarity matrix on ``ax``; returns the image (for a colorbar).

    Args:
        gram: (n, n) similarities; a matrix with negative values gets a diverging map.
        extent: ``(lo, hi)`` edges of the rows/columns (default ``(0.5, n + 0.5)``: rows
            numbered 1..n; a genomic window: :func:`span`).
        scale: ``"linear"`` or ``"power"`` (:func:`gram_norm`).
        max_pixels: larger matrices are block-averaged first (speed, memory).
    """
    g = np.asarray(gram, dtype=np.float32)
    signed = bool(g.size and g.min() < 0)
    lo, hi = (0.5, len(g) + 0.5) if extent is None else extent
    image = ax.imshow(_pool(g, max_pixels), norm=gram_norm(scale, gamma, signed),
                      cmap=cmap or ("RdBu_r" if signed else GRAM_CMAP),
                      extent=(lo, hi, hi, lo), interpolation="nearest", aspect="equal")
    return image


# --------------------------------------------------------------------------- Gram maps

def gram_figure(gram: np.ndarray, start: int = 0, end: int | None = None, intervals=None,
                seqid: str | None = None, scale: str = "linear", title: str | None = None,
                size: float = 6.0, cmap: str | None = None, cbar_label: str = CBAR_LABEL,
                dpi: int = 150) -> Figure:
    """One similarity map with annotation tracks along both axes (Figure 2 a-e).

    Axes are 1-based genomic positions; the map gets at least 1 pixel per nucleotide at
    ``dpi`` (larger windows than 1,024 nt are block-averaged to fit), a labelled colour bar
    and a legend of the track colours.

    Args:
        gram: (L, L) similarities of the window ``[start, end)`` (end default start+L).
        intervals: annotation intervals (optional); drawn above and left of the map.
        seqid: sequence of the window (filters ``intervals``, names the axes).
        scale: ``"linear"`` or ``"power"``.
    """
    end = start + len(gram) if end is None else end
    side = map_inches(len(gram), size, dpi)
    w, h = side + 2.6, side + 2.0
    fig = Figure(figsize=(w, h), dpi=dpi)
    ax, top, left, cax = _map_axes(fig, w, h, 0.9, 1.1, side, intervals is not None)
    image = plot_gram(ax, gram, span(start, end), scale=scale, cmap=cmap,
                      max_pixels=int(side * dpi))
    seen = _genomic_axes(ax, left, start, end, intervals, seqid, top, _position_label(seqid))
    fig.colorbar(image, cax=cax).set_label(cbar_label, fontsize=8)
    cax.tick_params(labelsize=7)
    if seen:
        box = ax.get_position()
        feature_legend(fig, seen, loc="upper center", ncol=min(len(seen), 6),
                       bbox_to_anchor=((box.x0 + box.x1) / 2, 0.35 / h))
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.15 / h, va="top")
    return fig


def gram_grid_figure(grams: Mapping[str, np.ndarray], start: int = 0, end: int | None = None,
                     intervals=None, seqid: str | None = None, ncols: int = 3,
                     scale: str = "linear", panel_size: float = 3.2, title: str | None = None,
                     cbar_label: str = CBAR_LABEL, axis_label: str | None = None) -> Figure:
    """A grid of similarity maps of the same window, e.g. one per layer (Supp. Figures 1-2).

    The outer panels carry 1-based coordinates, the grid one labelled colour bar and
    (with ``intervals``) a legend of the track colours.

    Args:
        grams: title -> (L, L) similarities, in display order.
        intervals: optional annotation, drawn above each panel.
    """
    from matplotlib.ticker import MaxNLocator, NullFormatter
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    items = list(grams.items())
    ncols = min(ncols, len(items))
    nrows = int(np.ceil(len(items) / ncols))
    fig = Figure(figsize=(panel_size * ncols + 1.4, panel_size * nrows * 1.12 + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image, seen = None, {}
    for k, (ax, (name, gram)) in enumerate(zip(axes.flat, items)):
        stop = start + len(gram) if end is None else end
        image = plot_gram(ax, gram, span(start, stop), scale, max_pixels=int(panel_size * 150))
        row, col = divmod(k, ncols)
        for axis, outer in ((ax.xaxis, row == nrows - 1 or k + ncols >= len(items)),
                            (ax.yaxis, col == 0)):
            axis.set_major_locator(MaxNLocator(3))
            axis.set_major_formatter(COORDINATE_FORMAT if outer else NullFormatter())
        ax.tick_params(labelsize=6)
        head = ax
        if intervals is not None:
            head = make_axes_locatable(ax).append_axes("top", size="8%", pad=0.02, sharex=ax)
            seen.update(draw_features(head, intervals, start, stop, "x", seqid, names=False))
            head.tick_params(labelbottom=False, bottom=False)
            ax.set_xlim(*span(start, stop))
        head.set_title(name, fontsize=9)
    for ax in axes.flat[len(items):]:
        ax.set_visible(False)
    label = axis_label or _position_label(seqid)
    fig.supxlabel(label, fontsize=8)
    fig.supylabel(label, fontsize=8)
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes.flat), shrink=0.6, pad=0.02)
        bar.set_label(cbar_label, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if seen:
        feature_legend(fig, seen, loc="upper center", ncol=len(seen), bbox_to_anchor=(0.45, 0))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def gram_panels_figure(panels: Mapping[str, np.ndarray], scale: str = "linear",
                       extents: Mapping[str, tuple[float, float]] | None = None,
                       panel_size: float = 3.5, gamma: float = 0.5, window=None,
                       intervals=None, seqid: str | None = None,
                       cbar_label: str | Mapping[str, str] | None = None,
                       axis_label: str | None = None, title: str | None = None,
                       dpi: int = 150) -> Figure:
    """A row of similarity maps with one labelled colour scale each (Figure 2 f-h, Figure 3).

    For Figure 3 pass the raw map of DNAtlas and the positive/negative parts
    (:func:`dnatlas.analysis.gram.signed_parts`) of mean-centred maps, with ``scale="power"``.
    Each map gets at least 1 pixel per row at ``dpi`` (beyond 1,024 rows: block-averaged).

    Args:
        window: ``(start, end)`` 0-based genomic window of every panel: axes in 1-based
            genomic coordinates, with annotation tracks when ``intervals`` are given.
            Otherwise rows are numbered 1..n (``extents``: title -> edges, instead).
        cbar_label: one label, or title -> label (default: the similarity, with the
            power scale's gamma).
        axis_label: the axes' label (default: genomic position, or "row").
    """
    items = list(panels.items())
    side = map_inches(max(len(g) for _, g in items), panel_size, dpi)
    tracks = window is not None and intervals is not None
    pw = side + 2.0 + (0.36 if tracks else 0)
    w, h = pw * len(items), side + 1.5 + (0.36 if tracks else 0)
    fig = Figure(figsize=(w, h), dpi=dpi)
    default = CBAR_LABEL + (f", power scale (\u03b3 = {gamma:g})" if scale == "power" else "")
    for k, (name, gram) in enumerate(items):
        ax, top, left, cax = _map_axes(fig, w, h, k * pw + 0.8, 0.8, side, tracks)
        if window is not None:
            image = plot_gram(ax, gram, span(*window), scale=scale, gamma=gamma,
                              max_pixels=int(side * dpi))
            seen = _genomic_axes(ax, left, *window, intervals, seqid, top,
                                 axis_label or _position_label(seqid))
        else:
            extent = None if extents is None else extents.get(name)
            image = plot_gram(ax, gram, extent, scale=scale, gamma=gamma,
                              max_pixels=int(side * dpi))
            ax.tick_params(labelsize=7)
            ax.set_xlabel(axis_label or "row", fontsize=8)
            ax.set_ylabel(axis_label or "row", fontsize=8)
        (top or ax).set_title(name, fontsize=9)
        label = cbar_label.get(name) if isinstance(cbar_label, Mapping) else cbar_label
        fig.colorbar(image, cax=cax).set_label(label or default, fontsize=8)
        cax.tick_params(labelsize=7)
    if window is not None and tracks and seen:
        feature_legend(fig, seen, loc="upper center", ncol=len(seen), bbox_to_anchor=(0.5, 0))
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.1 / h, va="top")
    return fig


def phase_gram_figure(grams: Sequence[np.ndarray], gene: str = "", scale: str = "linear",
                      panel_size: float = 3.5, title: str | None = None) -> Figure:
    """Similarities of the 1st, 2nd and 3rd nucleotide of every codon (Figure 2 f-h):
    three (n_codons, n_codons) maps (:func:`dnatlas.analysis.gram.phase_positions`)."""
    names = ("1st", "2nd", "3rd")
    prefix = f"{gene}: " if gene else ""
    return gram_panels_figure({f"{prefix}{names[k]} nucleotide": g for k, g in enumerate(grams)},
                              scale=scale, panel_size=panel_size,
                              axis_label="codon (genomic order)", title=title)


# --------------------------------------------------------------------------- offsets

def offset_profile_figure(profiles: Mapping, title: str | None = None,
                          size: tuple[float, float] = (6.0, 3.2)) -> Figure:
    """Mean similarity against offset, one line per profile (e.g. coding vs non-coding).

    Args:
        profiles: label -> :class:`dnatlas.analysis.offsets.OffsetProfile` (or a
            ``(offsets, mean)`` pair). Offsets 0 (self-similarity) are not drawn.
    """
    from dnatlas.analysis.offsets import OffsetProfile, periodicity3

    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    kmax = 0
    for label, prof in profiles.items():
        if isinstance(prof, OffsetProfile):
            offsets, mean = prof.offsets, prof.mean
            label = f"{label} (3-periodicity {periodicity3(prof):.3f})"
        else:
            offsets, mean = map(np.asarray, prof)
        ax.plot(offsets[1:], mean[1:], marker=".", markersize=3, linewidth=1, label=label)
        kmax = max(kmax, int(offsets[-1]))
    for k in range(3, kmax + 1, 3):
        ax.axvline(k, color="0.9", linewidth=0.6, zorder=0)
    ax.set_xlabel("offset (nt)")
    ax.set_ylabel("mean similarity")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title or "", fontsize=9)
    return fig

