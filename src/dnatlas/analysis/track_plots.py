"""Annotation tracks and genomic coordinates drawn beside every figure: genes and RNAs as
strand arrows with names, other elements (REP, terminators, CRISPR, ...) as boxes, with a
legend of their colours. Coordinates are 0-based half-open in the arguments and drawn
1-based (the nucleotide at index i is centred at i + 1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from matplotlib.patches import Patch, Polygon
from matplotlib.ticker import FuncFormatter

__all__ = ["COORDINATE_FORMAT", "FEATURE_STYLE", "draw_features", "feature_category",
           "feature_legend", "span"]

#: Colour and lane of each drawn feature category (lane 0: genes and RNAs, drawn as
#: strand arrows with names; lane 1: other elements, drawn as boxes).
FEATURE_STYLE: dict[str, tuple[str, int]] = {
    "CDS": ("#4C72B0", 0), "tRNA": ("#DD8452", 0), "rRNA": ("#C44E52", 0),
    "ncRNA": ("#8172B3", 0), "tmRNA": ("#8172B3", 0), "terminator": ("#55A868", 1),
    "REP": ("#937860", 1), "CRISPR": ("#DA8BC3", 1), "repeat_region": ("#B5A58C", 1),
    "mobile_element": ("#8C8C8C", 1), "promoter": ("#CCB974", 1)}
_GENE_TYPES = ("gene", "pseudogene")
_MOBILE_TYPES = ("mobile_genetic_element", "mobile_element", "insertion_sequence",
                 "transposable_element")

def feature_category(interval, has_cds: bool = True) -> str | None:
    """Drawing category of an interval (a key of :data:`FEATURE_STYLE`) or None; ``gene``
    features only when the annotation has no CDS; exons and sequence regions never."""
    from dnatlas.annotation.tracks import is_crispr, is_rep

    kind = interval.type
    if is_crispr(interval):
        return "CRISPR"
    if is_rep(interval):
        return "REP"
    if kind in _MOBILE_TYPES:
        return "mobile_element"
    if kind in _GENE_TYPES:
        return None if has_cds else "CDS"
    return kind if kind in FEATURE_STYLE else None


#: Genomic coordinates as plain integers with thousands separators (no "1e6" offset).
COORDINATE_FORMAT = FuncFormatter(lambda value, _: f"{int(round(value)):,}")
#: Colour-bar label of a Gram map (activations are unit-normalised per position).


def span(start: int, end: int) -> tuple[float, float]:
    """Axis limits of the 0-based ``[start, end)``, 1-based (nucleotide i centred at i + 1)."""
    return start + 0.5, end + 0.5


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
                  seqid: str | None = None, names: bool = True,
                  legend: bool = False) -> dict[str, str]:
    """Draw an annotation track on ``ax`` for the window ``[start, end)``; returns the
    drawn categories (name -> colour), e.g. for :func:`feature_legend`.

    Genes (CDS) and RNAs are strand arrows labelled with their names on lane 0; REP,
    terminators, CRISPR arrays, mobile elements on lane 1. Drawn in 1-based coordinates
    (:func:`span`), like every axis of this module.

    Args:
        ax: a thin axes sharing the genomic axis with the main plot.
        intervals: objects with ``seqid, start, end, strand, type, name, attributes``.
        axis: ``"x"`` (horizontal track) or ``"y"`` (vertical track, genome top to bottom).
        seqid: keep only intervals of this sequence (None: all).
        names: write feature names that fit.
        legend: add a legend of the drawn categories right of the track.
    """
    intervals = list(intervals)
    has_cds = any(iv.type == "CDS" for iv in intervals)
    window = [iv for iv in intervals
              if iv.end > start and iv.start < end and (seqid is None or iv.seqid == seqid)]
    span_ = max(end - start, 1)
    seen: dict[str, str] = {}
    for iv in sorted(window, key=lambda iv: (iv.start, iv.end)):
        category = feature_category(iv, has_cds)
        if category is None:
            continue
        color, lane = FEATURE_STYLE[category]
        lo, hi = span(max(iv.start, start), min(iv.end, end))
        center = 0.72 - 0.45 * lane
        strand = iv.strand if lane == 0 else 0
        verts = _arrow(lo, hi, strand, center, 0.32, head=0.012 * span_)
        if axis == "y":
            verts = [(b, a) for a, b in verts]
        ax.add_patch(Polygon(verts, closed=True, facecolor=color, edgecolor="none", alpha=0.9))
        seen[category] = color
        attrs = getattr(iv, "attributes", {}) or {}
        label = iv.name or attrs.get("gene") or attrs.get("Name") or ""
        if names and label and lane == 0 and (hi - lo) > 0.03 * span_:
            mid = (lo + hi) / 2
            xy = (mid, center) if axis == "x" else (center, mid)
            ax.text(*xy, label, ha="center", va="center", fontsize=6, color="white",
                    rotation=0 if axis == "x" else -90, clip_on=True)
    lo, hi = span(start, end)
    if axis == "x":
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
    else:
        ax.set_ylim(hi, lo)
        ax.set_xlim(0, 1)
        ax.set_xticks([])
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    if legend and seen:
        feature_legend(ax, seen, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return seen


def feature_legend(target, categories: Mapping[str, str], **kw):
    """A legend of annotation-track colours (``categories``: name -> colour) on an axes or
    figure; ``kw`` go to ``legend`` (placement)."""
    handles = [Patch(color=c, label=k.replace("_", " ")) for k, c in categories.items()]
    return target.legend(handles=handles, **{"fontsize": 7, "title_fontsize": 7, "frameon": False,
                                             "title": "annotation (arrows: strand)", **kw})
