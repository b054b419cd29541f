"""One-call recipes for the report's figures, from a model, a record and its annotation.

Each function runs the model on a window (with real flanking context), computes what the
figure shows and returns a :class:`matplotlib.figure.Figure` (save with
:func:`dnatlas.analysis.plots.save_figure`). Layers are 0-based (the report's "layer 8" is 7).

>>> gene = find_feature(intervals, "cpoB")                                # doctest: +SKIP
>>> fig = codon_phase_figure(model, record.seq, gene, layer=7)           # doctest: +SKIP
"""

from __future__ import annotations

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
    "codon_phase_figure",
    "find_feature",
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


def _acts(model, seq, layer, site, start, end):
    (name,) = as_adapter(model).select_keys(layer, site)
    return name, extract_activations(model, seq, [name], site, start=start, end=end,
                                     progress=False)[name]


def region_gram_figure(model, seq: np.ndarray, start: int, end: int, layer: int | str = 7,
                       intervals=None, seqid: str | None = None, site: str = "neurons",
                       scale: str = "linear", center: bool = False, title: str | None = None):
    """Figure 2 a-e: the similarity map of ``seq[start:end]`` with annotation tracks."""
    name, acts = _acts(model, seq, layer, site, start, end)
    gram = gram_matrix(acts, center=center)
    return plots.gram_figure(gram, start, end, intervals, seqid, scale=scale,
                             title=title or f"{name}  {format_region(seqid or 'seq', start, end)}")


def codon_phase_figure(model, seq: np.ndarray, cds, layer: int | str = 7,
                       site: str = "neurons", scale: str = "linear"):
    """Figure 2 f-h: similarities of the 1st, 2nd and 3rd nucleotide of every codon of ``cds``.

    Args:
        cds: the CDS interval (its strand sets the reading direction; a − strand CDS's
            codons are shown in genomic order).
    """
    start, end = cds.start, cds.end
    _, acts = _acts(model, seq, layer, site, start, end)
    offset = np.arange(end - start)
    phase = (offset if cds.strand >= 0 else offset[::-1]) % 3
    grams = [gram_matrix(acts, positions=phase_positions(phase, k)) for k in range(3)]
    gene = cds.name or cds.attributes.get("gene", "")
    return plots.phase_gram_figure(grams, gene=gene, scale=scale)


def layer_grid_figure(model, seq: np.ndarray, start: int, end: int, intervals=None,
                      seqid: str | None = None, layers="all", site: str = "neurons",
                      ncols: int = 3, scale: str = "linear"):
    """Supplementary Figures 1-2: one similarity map per layer (titles are 1-based)."""
    names = as_adapter(model).select_keys(layers, site)
    acts = extract_activations(model, seq, names, site, start=start, end=end, progress=False)
    grams = {f"layer {int(n.split('.')[1]) + 1}": gram_matrix(acts[n]) for n in names}
    return plots.gram_grid_figure(grams, start, end, intervals, seqid, ncols=ncols, scale=scale)


def offset_similarity_figure(model, seq: np.ndarray, cds, layer: int | str = 7,
                             site: str = "neurons", other: np.ndarray | None = None,
                             other_name: str = "other model", gamma: float = 0.5):
    """Figure 3: offset-dependent similarity over a CDS, on the nonlinear (power) scale.

    Panels: (a) raw similarities; (b) positive part after mean-centring. With ``other``
    ((n_codons, D) activations of another model, e.g. a protein model's residual stream
    per residue) also (c, d) its positive and negative parts, and the title gives the
    report's Spearman measure (footnote 7) between codon-averaged DNAtlas activations and
    ``other``.
    """
    from dnatlas.analysis.similarity import codon_pool

    _, acts = _acts(model, seq, layer, site, cds.start, cds.end)
    panels = {"a: raw": gram_matrix(acts),
              "b: centred, positive": signed_parts(gram_matrix(acts, center=True))[0]}
    title = None
    if other is not None:
        pos, neg = signed_parts(gram_matrix(other, center=True))
        panels[f"c: {other_name}, positive"] = pos
        panels[f"d: {other_name}, negative"] = neg
        codons = codon_pool(acts, reverse=cds.strand < 0)
        n = min(len(codons), len(other))
        rho = gram_spearman(codons[:n], np.asarray(other)[:n])
        title = f"Spearman of centred similarities (codon-averaged): {rho:.2f}"
    fig = plots.gram_panels_figure(panels, scale="power", gamma=gamma)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def neuron_window(model, seq: np.ndarray, start: int, end: int, neurons: Sequence[int],
                  layer: int | str = 7, intervals=None, seqid: str | None = None,
                  labels: dict | None = None):
    """Figure 4 a: selected neurons (both strands, via RCPS) over a window, with annotation."""
    name, acts = _acts(model, seq, layer, "neurons", start, end)
    perm = as_adapter(model).rc_permutation(name)
    return neuron_plots.neuron_window_figure(acts, neurons, start, perm, intervals, seqid, labels)
