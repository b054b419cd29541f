"""One-call recipes for the report's figures, from a model, a record and its annotation.

Each function runs the model on a window (with real flanking context), computes what the
figure shows and returns a :class:`matplotlib.figure.Figure` (save with
:func:`dnatlas.analysis.plots.save_figure`). Layers are 0-based (the report's "layer 8" is 7).

>>> gene = find_feature(intervals, "cpoB")                                # doctest: +SKIP
>>> fig = codon_phase_figure(model, record.seq, gene, layer=7)           # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from dnatlas.analysis import neuron_plots, plots
from dnatlas.analysis.extract import extract_activations
from dnatlas.analysis.gram import gram_matrix, phase_positions, signed_parts
from dnatlas.analysis.similarity import gram_spearman
from dnatlas.errors import InputError
from dnatlas.genome.regions import format_region
from dnatlas.models import as_adapter

__all__ = [
    "between",
    "check_window",
    "codon_phase_figure",
    "find_feature",
    "flank",
    "layer_caption",
    "layer_grid_figure",
    "neuron_window",
    "offset_similarity_figure",
    "region_gram_figure",
]


def find_feature(intervals: Iterable, name: str, types: Sequence[str] = ("CDS", "gene", "tRNA",
                 "rRNA", "ncRNA", "tmRNA")):
    """The first interval named ``name`` (``name``, ``gene`` or ``Name`` attribute), CDS first."""
    matches = [iv for iv in intervals if iv.type in types and name in (
        iv.name, iv.attributes.get("gene"), iv.attributes.get("Name"))]
    if not matches:
        raise InputError(f"no feature named {name!r}")
    return sorted(matches, key=lambda iv: types.index(iv.type))[0]


def gene_name(feature) -> str:
    return feature.name or feature.attributes.get("gene", "")


def flank(feature, upstream: int = 0, downstream: int = 0) -> tuple[int, int]:
    """The window of ``feature`` with ``upstream`` nt on its 5' side and ``downstream`` nt
    on its 3' side, strand-aware (a − strand feature's upstream lies at higher positions)."""
    if feature.strand < 0:
        return feature.start - downstream, feature.end + upstream
    return feature.start - upstream, feature.end + downstream


def between(left, right, pad: int = 0) -> tuple[int, int]:
    """The gap between two features (in genomic order), extended by ``pad`` nt each side."""
    a, b = sorted((left, right), key=lambda iv: iv.start)
    if b.start < a.end:
        raise ValueError(f"{gene_name(a)} and {gene_name(b)} overlap: no gap between them")
    return a.end - pad, b.start + pad


def check_window(start: int, end: int, features: Iterable, what: str = "figure",
                 contain: bool = False, seqid: str = "seq") -> None:
    """Raise ``ValueError`` unless the window ``[start, end)`` overlaps (``contain``: holds)
    every feature (intervals, or ``(name, start, end)`` triples) a figure's caption names."""
    for f in features:
        name, lo, hi = f if isinstance(f, tuple) else (gene_name(f), f.start, f.end)
        ok = start <= lo and hi <= end if contain else lo < end and start < hi
        if not ok:
            raise ValueError(f"{what}: window {format_region(seqid, start, end)} does not "
                             f"{'contain' if contain else 'overlap'} {name} "
                             f"({format_region(seqid, lo, hi)})")


def layer_caption(key: str) -> str:
    """``"blocks.2.neurons"`` -> ``"layer 2 (blocks.2.neurons)"``: layers are 0-based in
    captions as on the command line (``--layer 2``), and the site name says which one
    unambiguously; names without a block number unchanged."""
    match = re.match(r"(?:.*\.)?(?:blocks|layers?|h)\.(\d+)(?:\.|$)", key)
    return f"layer {int(match.group(1))} ({key})" if match else key


def _acts(model, seq, layer, site, start, end):
    (name,) = as_adapter(model).select_keys(layer, site)
    return name, extract_activations(model, seq, [name], site, start=start, end=end,
                                     progress=False)[name]


def region_gram_figure(model, seq: np.ndarray, start: int, end: int, layer: int | str = 7,
                       intervals=None, seqid: str | None = None, site: str = "neurons",
                       scale: str = "linear", center: bool = False, title: str | None = None,
                       caption: str | None = None):
    """Figure 2 a-e: the similarity map of ``seq[start:end]`` with annotation tracks.

    The title gives ``caption`` (what the window shows), the layer (1-based) and the region
    (1-based, closed), unless ``title`` replaces it.
    """
    name, acts = _acts(model, seq, layer, site, start, end)
    gram = gram_matrix(acts, center=center)
    head = f"{layer_caption(name)}   {format_region(seqid or 'seq', start, end)}"
    return plots.gram_figure(gram, start, end, intervals, seqid, scale=scale,
                             title=title or (f"{caption}\n{head}" if caption else head))


def codon_phase_figure(model, seq: np.ndarray, cds, layer: int | str = 7,
                       site: str = "neurons", scale: str = "linear", seqid: str | None = None,
                       gene: str | None = None):
    """Figure 2 f-h: similarities of the 1st, 2nd and 3rd nucleotide of every codon of ``cds``.

    Args:
        cds: the CDS interval (its strand sets the reading direction; a − strand CDS's
            codons are shown in genomic order).
        gene: the gene's name in titles (default: the annotation's).
    """
    start, end = cds.start, cds.end
    name, acts = _acts(model, seq, layer, site, start, end)
    offset = np.arange(end - start)
    phase = (offset if cds.strand >= 0 else offset[::-1]) % 3
    grams = [gram_matrix(acts, positions=phase_positions(phase, k)) for k in range(3)]
    gene = gene or gene_name(cds)
    region = format_region(seqid or cds.seqid, start, end)
    strand = "+" if cds.strand >= 0 else "\u2212"
    return plots.phase_gram_figure(grams, gene=gene, scale=scale, title=(
        f"codon positions of {gene} ({region}, {strand} strand), {layer_caption(name)}"))


def layer_grid_figure(model, seq: np.ndarray, start: int, end: int, intervals=None,
                      seqid: str | None = None, layers="all", site: str = "neurons",
                      ncols: int = 3, scale: str = "linear", caption: str | None = None):
    """Supplementary Figures 1-2: one similarity map per layer (titles are 1-based)."""
    names = as_adapter(model).select_keys(layers, site)
    acts = extract_activations(model, seq, names, site, start=start, end=end, progress=False)
    grams = {layer_caption(n): gram_matrix(acts[n]) for n in names}
    region = format_region(seqid or "seq", start, end)
    return plots.gram_grid_figure(grams, start, end, intervals, seqid, ncols=ncols, scale=scale,
                                  title=f"{caption}   {region}" if caption else region)


def offset_similarity_figure(model, seq: np.ndarray, cds, layer: int | str = 7,
                             site: str = "neurons", other: np.ndarray | None = None,
                             other_name: str = "other model", gamma: float = 0.5,
                             intervals=None, seqid: str | None = None):
    """Figure 3: offset-dependent similarity over a CDS, on the nonlinear (power) scale.

    Panels: (a) raw similarities; (b) positive part after mean-centring, both on 1-based
    genomic axes (with annotation tracks when ``intervals`` are given) and at least one
    pixel per nucleotide. With ``other`` ((n_codons, D) activations of another model, e.g. a
    protein model's residual stream per residue) also (c, d) its positive and negative
    parts (axes: codons), and the title gives the report's Spearman measure (footnote 7)
    between codon-averaged DNAtlas activations and ``other``.
    """
    from dnatlas.analysis.similarity import codon_pool

    name, acts = _acts(model, seq, layer, site, cds.start, cds.end)
    window = (cds.start, cds.end)
    strand = "+" if cds.strand >= 0 else "\u2212"
    title = (f"{gene_name(cds)} ({format_region(seqid or cds.seqid, *window)}, {strand} strand),"
             f" {layer_caption(name)}")
    panels = {"a: raw": gram_matrix(acts),
              "b: centred, positive part": signed_parts(gram_matrix(acts, center=True))[0]}
    if other is None:
        return plots.gram_panels_figure(panels, scale="power", gamma=gamma, window=window,
                                        intervals=intervals, seqid=seqid or cds.seqid,
                                        title=title)
    extents = {k: plots.span(*window) for k in panels}
    pos, neg = signed_parts(gram_matrix(other, center=True))
    panels.update({f"c: {other_name}, positive": pos, f"d: {other_name}, negative": neg})
    codons = codon_pool(acts, reverse=cds.strand < 0)
    n = min(len(codons), len(other))
    rho = gram_spearman(codons[:n], np.asarray(other)[:n])
    return plots.gram_panels_figure(
        panels, scale="power", gamma=gamma, extents=extents,
        axis_label="a, b: position (1-based); c, d: codon",
        title=f"{title}\nSpearman of centred similarities (codon-averaged): {rho:.2f}")


def neuron_window(model, seq: np.ndarray, start: int, end: int, neurons: Sequence[int],
                  layer: int | str = 7, intervals=None, seqid: str | None = None,
                  labels: dict | None = None):
    """Figure 4 a: selected neurons (both strands, via RCPS) over a window, with annotation;
    rows are labelled with the layer (1-based) and neuron."""
    name, acts = _acts(model, seq, layer, "neurons", start, end)
    perm = as_adapter(model).rc_permutation(name)
    return neuron_plots.neuron_window_figure(acts, neurons, start, perm, intervals, seqid,
                                             labels, layer=layer_caption(name).split(" (")[0])
