"""Matplotlib figures of the report's Gram-matrix analyses (Figures 2-3, Supp. Figures 1-2),
and the pieces every figure shares (annotation tracks, coordinates, saving).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no display backend needed; PNGs are rendered by Agg). Save with :func:`save_figure`.
Genomic coordinates are 0-based; axes show them as they are.

=========================  ==============================================================
report figure              function
=========================  ==============================================================
Figure 2 a-e, Supp. 1-2    :func:`gram_figure`, :func:`gram_grid_figure`
Figure 2 f-h               :func:`phase_gram_figure`
Figure 3                   :func:`gram_panels_figure` with ``scale="power"``
section 4.1 (numbers)      :func:`offset_profile_figure`
Figure 4, Supp. Figure 3   :mod:`dnatlas.analysis.neuron_plots`
=========================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colors
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon
from matplotlib.ticker import FuncFormatter

__all__ = [
    "FEATURE_STYLE",
    "draw_features",
    "feature_category",
    "gram_figure",
    "gram_grid_figure",
    "gram_norm",
    "gram_panels_figure",
    "offset_profile_figure",
    "phase_gram_figure",
    "plot_gram",
    "save_figure",
]

#: Colour and lane of each drawn feature category (lane 0: genes and RNAs, drawn as
#: strand arrows with names; lane 1: other elements, drawn as boxes).
FEATURE_STYLE: dict[str, tuple[str, int]] = {
    "CDS": ("#4C72B0", 0),
    "tRNA": ("#DD8452", 0),
    "rRNA": ("#C44E52", 0),
    "ncRNA": ("#8172B3", 0),
    "tmRNA": ("#8172B3", 0),
    "terminator": ("#55A868", 1),
    "REP": ("#937860", 1),
    "CRISPR": ("#DA8BC3", 1),
    "repeat_region": ("#B5A58C", 1),
    "mobile_element": ("#8C8C8C", 1),
    "promoter": ("#CCB974", 1),
}
_GENE_TYPES = ("gene", "pseudogene")
GRAM_CMAP = "magma"


# --------------------------------------------------------------------------- helpers

def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG (or any format matplotlib knows from the suffix); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def feature_category(interval, has_cds: bool = True) -> str | None:
    """Drawing category of an annotation interval (a key of :data:`FEATURE_STYLE`) or None.

    ``gene`` features are drawn only when the annotation has no CDS (their CDS/RNA
    children are drawn otherwise); exons and sequence regions are not drawn.
    """
    from dnatlas.annotation.tracks import is_crispr, is_rep

    kind = interval.type
    if is_crispr(interval):
        return "CRISPR"
    if is_rep(interval):
        return "REP"
    if kind in ("mobile_genetic_element", "mobile_element", "insertion_sequence",
                "transposable_element"):
        return "mobile_element"
    if kind in _GENE_TYPES:
        return None if has_cds else "CDS"
    return kind if kind in FEATURE_STYLE else None


#: Genomic coordinates as plain integers with thousands separators (no "1e6" offset).
COORDINATE_FORMAT = FuncFormatter(lambda value, _: f"{int(round(value)):,}")


def _in_window(intervals, start: int, end: int, seqid: str | None):
    return [iv for iv in intervals
            if iv.end > start and iv.start < end and (seqid is None or iv.seqid == seqid)]


def _label(interval) -> str:
    attrs = getattr(interval, "attributes", {}) or {}
    return interval.name or attrs.get("gene") or attrs.get("Name") or ""


def _arrow(lo: float, hi: float, strand: int, center: float, height: float, head: float):
    """Pentagon vertices (along, across) of a feature arrow pointing along its strand."""
    h = height / 2
    head = min(head, (hi - lo) * 0.6)
    if strand > 0:
        return [(lo, center - h), (hi - head, center - h), (hi, center),
                (hi - head, center + h), (lo, center + h)]
    if strand < 0:
        return [(hi, center - h), (lo + head, center - h), (lo, center),
                (lo + head, center + h), (hi, center + h)]
    return [(lo, center - h), (hi, center - h), (hi, center + h), (lo, center + h)]


def draw_features(ax, intervals: Iterable, start: int, end: int, axis: str = "x",
                  seqid: str | None = None, names: bool = True, legend: bool = False) -> None:
    """Draw an annotation track on ``ax`` for the window ``[start, end)``.

    Genes (CDS) and RNAs are strand arrows labelled with their names on lane 0; REP,
    terminators, CRISPR arrays, mobile elements on lane 1.

    Args:
        ax: a thin axes sharing the genomic axis with the main plot.
        intervals: objects with ``seqid, start, end, strand, type, name, attributes``.
        axis: ``"x"`` (horizontal track) or ``"y"`` (vertical track, genome top to bottom).
        seqid: keep only intervals of this sequence (None: all).
        names: write feature names that fit.
        legend: add a legend of the drawn categories.
    """
    intervals = list(intervals)
    has_cds = any(iv.type == "CDS" for iv in intervals)
    window = _in_window(intervals, start, end, seqid)
    span = max(end - start, 1)
    seen = {}
    for iv in sorted(window, key=lambda iv: (iv.start, iv.end)):
        category = feature_category(iv, has_cds)
        if category is None:
            continue
        color, lane = FEATURE_STYLE[category]
        lo, hi = max(iv.start, start), min(iv.end, end)
        center = 0.72 - 0.45 * lane
        strand = iv.strand if lane == 0 else 0
        verts = _arrow(lo, hi, strand, center, 0.32, head=0.012 * span)
        if axis == "y":
            verts = [(b, a) for a, b in verts]
        ax.add_patch(Polygon(verts, closed=True, facecolor=color, edgecolor="none", alpha=0.9))
        seen[category] = color
        label = _label(iv)
        if names and label and lane == 0 and (hi - lo) > 0.03 * span:
            mid = (lo + hi) / 2
            xy = (mid, center) if axis == "x" else (center, mid)
            ax.text(*xy, label, ha="center", va="center", fontsize=6, color="white",
                    rotation=0 if axis == "x" else -90, clip_on=True)
    if axis == "x":
        ax.set_xlim(start, end)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
    else:
        ax.set_ylim(end, start)
        ax.set_xlim(0, 1)
        ax.set_xticks([])
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    if legend and seen:
        ax.legend(handles=[Patch(color=c, label=k) for k, c in seen.items()],
                  loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6, frameon=False)


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
        extent: ``(first, last)`` coordinate of the rows/columns (default 0..n).
        scale: ``"linear"`` or ``"power"`` (:func:`gram_norm`).
        max_pixels: larger matrices are block-averaged first (speed, memory).
    """
    g = np.asarray(gram, dtype=np.float32)
    signed = bool(g.size and g.min() < 0)
    lo, hi = (0, len(g)) if extent is None else extent
    image = ax.imshow(_pool(g, max_pixels), norm=gram_norm(scale, gamma, signed),
                      cmap=cmap or ("RdBu_r" if signed else GRAM_CMAP),
                      extent=(lo, hi, hi, lo), interpolation="nearest", aspect="equal")
    return image


# --------------------------------------------------------------------------- Gram maps

def gram_figure(gram: np.ndarray, start: int = 0, end: int | None = None, intervals=None,
                seqid: str | None = None, scale: str = "linear", title: str | None = None,
                size: float = 6.0, cmap: str | None = None) -> Figure:
    """One similarity map with annotation tracks along both axes (Figure 2 a-e).

    Args:
        gram: (L, L) similarities of the window ``[start, end)`` (end default start+L).
        intervals: annotation intervals (optional); drawn above and left of the map.
        seqid: sequence of the window (filters ``intervals``).
        scale: ``"linear"`` or ``"power"``.
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    end = start + len(gram) if end is None else end
    fig = Figure(figsize=(size * 1.15, size))
    ax = fig.add_subplot()
    image = plot_gram(ax, gram, (start, end), scale=scale, cmap=cmap)
    ax.tick_params(labelsize=7)
    ax.yaxis.tick_right()
    ax.xaxis.set_major_formatter(COORDINATE_FORMAT)
    ax.yaxis.set_major_formatter(COORDINATE_FORMAT)
    divider = make_axes_locatable(ax)
    if intervals is not None:
        top = divider.append_axes("top", size="8%", pad=0.03, sharex=ax)
        left = divider.append_axes("left", size="8%", pad=0.03, sharey=ax)
        draw_features(top, intervals, start, end, "x", seqid)
        draw_features(left, intervals, start, end, "y", seqid, names=False)
        top.tick_params(labelbottom=False, bottom=False)
        left.tick_params(labelleft=False, left=False)
        ax.set_xlim(start, end)
        ax.set_ylim(end, start)
    cax = divider.append_axes("right", size="3%", pad=0.55)
    fig.colorbar(image, cax=cax)
    cax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def gram_grid_figure(grams: Mapping[str, np.ndarray], start: int = 0, end: int | None = None,
                     intervals=None, seqid: str | None = None, ncols: int = 3,
                     scale: str = "linear", panel_size: float = 3.2) -> Figure:
    """A grid of similarity maps of the same window, e.g. one per layer (Supp. Figures 1-2).

    Args:
        grams: title -> (L, L) similarities, in display order.
        intervals: optional annotation, drawn above each panel.
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    items = list(grams.items())
    ncols = min(ncols, len(items))
    nrows = int(np.ceil(len(items) / ncols))
    fig = Figure(figsize=(panel_size * ncols + 0.8, panel_size * nrows * 1.08))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for ax, (title, gram) in zip(axes.flat, items):
        stop = start + len(gram) if end is None else end
        image = plot_gram(ax, gram, (start, stop), scale=scale)
        ax.set_xticks([])
        ax.set_yticks([])
        head = ax
        if intervals is not None:
            head = make_axes_locatable(ax).append_axes("top", size="8%", pad=0.02, sharex=ax)
            draw_features(head, intervals, start, stop, "x", seqid, names=False)
            head.set_xticks([])
            ax.set_xlim(start, stop)
        head.set_title(title, fontsize=9)
    for ax in axes.flat[len(items):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes.flat), shrink=0.6, pad=0.02)
    return fig


def gram_panels_figure(panels: Mapping[str, np.ndarray], scale: str = "linear",
                       extents: Mapping[str, tuple[float, float]] | None = None,
                       panel_size: float = 3.5, gamma: float = 0.5) -> Figure:
    """A row of similarity maps with one colour scale each (Figure 2 f-h, Figure 3).

    For Figure 3 pass the raw map of DNAtlas and the positive/negative parts
    (:func:`dnatlas.analysis.gram.signed_parts`) of mean-centred maps, with ``scale="power"``.
    """
    items = list(panels.items())
    fig = Figure(figsize=(panel_size * len(items) * 1.1, panel_size))
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    for ax, (title, gram) in zip(axes, items):
        extent = None if extents is None else extents.get(title)
        image = plot_gram(ax, gram, extent, scale=scale, gamma=gamma)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        fig.colorbar(image, ax=ax, shrink=0.75, pad=0.02)
    return fig


def phase_gram_figure(grams: Sequence[np.ndarray], gene: str = "", scale: str = "linear",
                      panel_size: float = 3.5) -> Figure:
    """Similarities of the 1st, 2nd and 3rd nucleotide of every codon (Figure 2 f-h).

    Args:
        grams: three (n_codons, n_codons) maps, for codon phases 0, 1, 2 (see
            :func:`dnatlas.analysis.gram.phase_positions`); axes count codons.
    """
    names = ("1st", "2nd", "3rd")
    prefix = f"{gene}: " if gene else ""
    fig = gram_panels_figure({f"{prefix}{names[k]} nucleotide": g for k, g in enumerate(grams)},
                             scale=scale, panel_size=panel_size)
    for ax in fig.axes[:len(grams)]:  # the panels (colorbars come after)
        ax.set_xlabel("codon", fontsize=8)
    return fig


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
    if title:
        ax.set_title(title, fontsize=9)
    return fig


# --------------------------------------------------------------------------- neurons
