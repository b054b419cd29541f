"""Figures of a layer's neuron catalog: PR curves (Figure 4e), Manhattan plots with the
genes at the top sites (Figure 4b) and top-activating windows (Supplementary Figure 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENE_TYPES = ("CDS", "tRNA", "rRNA", "ncRNA", "tmRNA")


def best_neurons(catalog) -> list[int]:
    """The best neuron of every track (each once)."""
    chosen = []
    for track in catalog.tracks:
        neuron, ap = catalog.best(track)
        if np.isfinite(ap) and neuron not in chosen:
            chosen.append(neuron)
    return chosen


def gene_finder(intervals):
    """``f(seqid, position)`` -> name of a CDS/RNA feature covering the position, or ''."""
    by_seq: dict[str, list] = {}
    for iv in intervals:
        if iv.type in GENE_TYPES:
            by_seq.setdefault(iv.seqid, []).append(iv)

    def find(seqid: str, position: int) -> str:
        for iv in by_seq.get(seqid, ()):
            if iv.start <= position < iv.end:
                return iv.name or iv.attributes.get("gene", "")
        return ""

    return find


def pr_figures(out: Path, catalog, labels, acts, perm) -> None:
    """One PR curve per track (its best neuron), and the codon tracks together."""
    from dnatlas.analysis import neuron_plots, plots
    from dnatlas.analysis.neurons import pr_curve

    codons = {}
    for t, track in enumerate(catalog.tracks):
        neuron, ap = catalog.best(track)
        if not np.isfinite(ap):
            continue
        precision, recall, _ = pr_curve(acts, labels, track, neuron, perm)
        fig = neuron_plots.pr_curve_figure({f"neuron {neuron}": (precision, recall, ap)},
                                           chance=float(catalog.chance[t]), title=track)
        plots.save_figure(fig, out / "pr" / f"{track}.png")
        if track.startswith(("start_codon", "stop_codon")):
            codons[f"{track}: neuron {neuron}"] = (precision, recall, ap)
    if codons:
        chance = float(max(catalog.chance[catalog.tracks.index(k.split(":")[0])] for k in codons))
        plots.save_figure(neuron_plots.pr_curve_figure(codons, chance=chance, title=catalog.layer),
                          out / "pr" / "codons.png")


def neuron_figures(out: Path, catalog, labels, acts, perm, windows, chosen, intervals) -> None:
    """PR curves, and for each chosen neuron its Manhattan plot and top windows."""
    from dnatlas.analysis import neuron_plots, plots
    from dnatlas.analysis.neurons import neuron_scores

    pr_figures(out, catalog, labels, acts, perm)
    genes = gene_finder(intervals)
    offsets = dict(zip(labels.seqids, labels.offsets.tolist()))
    for neuron in chosen:
        plus = neuron_scores(acts, neuron)
        minus = neuron_scores(acts, int(perm[neuron])) if perm is not None else None
        sites = windows.get(neuron, [])[:8]
        notes = [(offsets[w.seqid] + w.position, genes(w.seqid, w.position)) for w in sites]
        fig = neuron_plots.manhattan_figure(plus, minus, title=f"{catalog.layer} neuron {neuron}",
                                            annotate=[(x, g) for x, g in notes if g])
        plots.save_figure(fig, out / "manhattan" / f"neuron_{neuron}.png")
        if sites:
            rows = [{"sequence": w.sequence, "values": w.values,
                     "label": f"{w.seqid}:{w.position + 1:,} {'+' if w.strand > 0 else '-'} "
                              f"{genes(w.seqid, w.position)}"}
                    for w in windows[neuron]]
            plots.save_figure(neuron_plots.top_windows_figure(rows, title=f"neuron {neuron}"),
                              out / "windows" / f"neuron_{neuron}.png")
