"""Figures of a layer's neuron catalog: PR curves (Figure 4e), Manhattan plots with the
genes at the top sites (Figure 4b) and top-activating windows (Supplementary Figure 3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dnatlas.analysis.figures import layer_caption

GENE_TYPES = ("CDS", "tRNA", "rRNA", "ncRNA", "tmRNA")


def best_neurons(catalog) -> list[int]:
    """The best neuron of every track (each once; an RC pair is one neuron, see
    :class:`~dnatlas.analysis.catalog.NeuronCatalog`)."""
    chosen = []
    for track in catalog.tracks:
        neuron, ap = catalog.best(track)
        partner = catalog.rc_partner(neuron) if hasattr(catalog, "rc_partner") else None
        if np.isfinite(ap) and neuron not in chosen and partner not in chosen:
            chosen.append(neuron)  # its figures name the partner (the other strand's panel)
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


def _codon_match(out: Path, codon_match) -> dict:
    """The exact-codon-match AUPRC per track: given, or read from ``out/catalog.json``."""
    if codon_match is not None:
        return dict(codon_match)
    path = out / "catalog.json"
    if path.exists():
        return json.loads(path.read_text()).get("codon_match_auprc") or {}
    return {}


def pr_figures(out: Path, catalog, labels, acts, perm, codon_match=None,
               log_below: float = 0.01) -> None:
    """One PR curve per track (its best neuron), and the codon tracks together, with the
    chance rate and (codon tracks) the exact-codon-match AUPRC as lines; precision on a log
    scale where chance is below ``log_below``."""
    from dnatlas.analysis import neuron_plots, plots
    from dnatlas.analysis.neurons import pr_curve

    match = _codon_match(out, codon_match)
    layer = layer_caption(catalog.layer)
    codons, chances = {}, {}
    for t, track in enumerate(catalog.tracks):
        neuron, ap = catalog.best(track)
        if not np.isfinite(ap):
            continue
        precision, recall, _ = pr_curve(acts, labels, track, neuron, perm)
        rate = float(catalog.chance[t])
        partner = catalog.rc_partner(neuron) if hasattr(catalog, "rc_partner") else None
        name = f"neuron {neuron}" + ("" if partner is None else f" (RC partner {partner})")
        fig = neuron_plots.pr_curve_figure({name: (precision, recall, ap)},
                                           chance=rate, reference=match.get(track),
                                           log=rate < log_below, title=f"{track}, {layer}")
        plots.save_figure(fig, out / "pr" / f"{track}.png")
        if track.startswith(("start_codon", "stop_codon")):
            key = f"{track}: neuron {neuron}"
            codons[key], chances[key] = (precision, recall, ap), (rate, match.get(track))
    if codons:
        fig = neuron_plots.pr_curve_figure(
            codons, chance={k: c for k, (c, _) in chances.items()},
            reference={k: m for k, (_, m) in chances.items() if m is not None},
            log=min(c for c, _ in chances.values()) < log_below, title=layer, size=(5.0, 4.0))
        plots.save_figure(fig, out / "pr" / "codons.png")


def neuron_figures(out: Path, catalog, labels, acts, perm, windows, chosen, intervals,
                   codon_match=None, origin: int = 0) -> None:
    """PR curves, and for each chosen neuron its Manhattan plot and top windows.

    Args:
        origin: genomic start of the scanned sequence (a ``--region`` of one record; the
            windows' positions are genomic).
        codon_match: AUPRC of an exact codon match per codon track (default: read from
            ``out/catalog.json``, where :func:`dnatlas.pipelines.neurons.layer_catalog`
            wrote it).
    """
    from dnatlas.analysis import neuron_plots, plots
    from dnatlas.analysis.neurons import neuron_scores

    pr_figures(out, catalog, labels, acts, perm, codon_match)
    genes = gene_finder(intervals)
    offsets = ({labels.seqids[0]: 0} if origin else
               dict(zip(labels.seqids, labels.offsets.tolist())))
    layer = layer_caption(catalog.layer)
    best, lifts = {}, {}  # each neuron's track: where it is best, by lift over chance
    for t, track in enumerate(catalog.tracks):
        neuron, ap = catalog.best(track)
        lift = ap / catalog.chance[t] if catalog.chance[t] > 0 else 0.0
        if np.isfinite(ap) and lift > lifts.get(neuron, -1.0):
            best[neuron], lifts[neuron] = track, lift
    for neuron in chosen:
        plus = neuron_scores(acts, neuron)
        minus = neuron_scores(acts, int(perm[neuron])) if perm is not None else None
        sites = windows.get(neuron, [])
        notes = [(offsets[w.seqid] + w.position, genes(w.seqid, w.position)) for w in sites]
        what = f" (best for {best[neuron]})" if neuron in best else ""
        partner = catalog.rc_partner(neuron) if hasattr(catalog, "rc_partner") else None
        if partner is not None:  # the same feature on the other strand (− panel)
            what += f", RC partner {partner}"
        fig = neuron_plots.manhattan_figure(plus, minus, start=origin,
                                            title=f"{layer} neuron {neuron}{what}",
                                            annotate=[(x, g) for x, g in notes if g])
        plots.save_figure(fig, out / "manhattan" / f"neuron_{neuron}.png")
        if sites:
            rows = [{"sequence": w.sequence, "values": w.values,
                     "centre": w.position - w.start if w.strand > 0 else w.end - 1 - w.position,
                     "label": f"{w.seqid}:{w.position + 1:,} {'+' if w.strand > 0 else '-'} "
                              f"{genes(w.seqid, w.position)}"}
                    for w in sites]
            fig = neuron_plots.top_windows_figure(rows, title=f"{layer} neuron {neuron}{what}: "
                                                  f"top {len(rows)} windows")
            plots.save_figure(fig, out / "windows" / f"neuron_{neuron}.png")
