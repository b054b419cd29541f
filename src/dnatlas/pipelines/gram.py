"""Gram-map pipeline (report Figures 2-3): similarity maps of a region's activations, of any
model, from an activation folder or straight from the model, with their statistics."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter, resolve_model


@dataclass
class GramRequest:
    """What to draw.

    Attributes:
        acts: an activation folder (``dnatlas extract``), or None to run ``model``.
        fasta, region: genome file and 1-based region (``RECORD:START-END``); with
            ``acts`` the region is optional and selects a sub-region.
        layer: 0-based layer or full key; ``all_layers``: a grid of every layer.
        site: activation site of integer layers (default: the model's first).
        phase: "0", "1", "2" or "all": keep one codon position (needs annotations).
        annotations: GFF3/GenBank/BED drawn along the axes.
        scale: "linear" or "power"; center: mean-centre before normalising.
        max_offset: largest offset of the offset profile.
    """

    acts: Path | None = None
    fasta: Path | None = None
    region: str | None = None
    layer: str | None = None
    all_layers: bool = False
    site: str | None = None
    phase: str | None = None
    annotations: Path | None = None
    scale: str = "linear"
    center: bool = False
    max_offset: int = 60
    chunk_size: int = 1 << 15
    batch_size: int = 1


def _from_folder(req: GramRequest):
    from dnatlas.analysis.activation_files import open_activations
    from dnatlas.genome.regions import parse_region

    store = open_activations(req.acts)
    region = parse_region(req.region) if req.region else None
    seqid = region.seqid if region else None
    layers = store.layers if req.all_layers else [_folder_layer(store, req.layer)]
    out = {}
    for layer in layers:
        entry = store.entry(layer, "+", seqid)
        array = store.load_entry(entry)
        array = array.T if store.layout == "CL" else array
        lo, hi = entry["start"], entry["end"]
        start, end = (lo, hi) if region is None or region.start is None else (region.start, region.end)
        if not lo <= start < end <= hi:
            raise InputError(f"region [{start}, {end}) is outside the extracted "
                             f"[{lo}, {hi})", path=req.acts)
        out[layer] = np.asarray(array[start - lo:end - lo], dtype=np.float32)
        seqid = entry["seqid"]
    return seqid, start, end, out


def _folder_layer(store, layer):
    if layer is None:
        if len(store.layers) != 1:
            raise InputError(f"give a layer: the folder holds {', '.join(store.layers)}",
                             path=store.path)
        return store.layers[0]
    if layer in store.layers:
        return layer
    matches = [name for name in store.layers if name.split(".")[1:2] == [str(layer)]]
    if len(matches) != 1:
        raise InputError(f"no single layer {layer!r} in {', '.join(store.layers)}", path=store.path)
    return matches[0]


def gram_inputs(model: str | ModelAdapter | None, req: GramRequest, device: str | None = None):
    """``(seqid, start, end, {layer: (L, C) float32})`` from the folder or the model."""
    from dnatlas.analysis.extract import extract_activations
    from dnatlas.pipelines.records import records_of

    if req.acts is not None:
        return _from_folder(req)
    if req.fasta is None or req.region is None:
        raise InputError("give an activation folder (acts), or fasta and region",
                         setting=("acts", "fasta", "region"))
    if not req.all_layers and req.layer is None:
        raise InputError("give layer (or all_layers=True)", setting=("layer", "all_layers"))
    adapter = resolve_model(model, device)
    (record, start, end), = records_of(req.fasta, req.region)
    keys = adapter.select_keys("all" if req.all_layers else req.layer, req.site)
    acts = extract_activations(adapter, record.seq, keys, req.site, start=start, end=end,
                               chunk_size=req.chunk_size, batch_size=req.batch_size)
    return record.id, start, end, acts


@dataclass
class GramStats:
    """One layer's Gram map numbers: its ``region`` (1-based), Toeplitz score and
    3-periodicity; ``profiles`` (with a statistics file): offset profiles by label
    (``all``, or ``coding`` and ``non-coding``)."""

    region: str
    toeplitz_score: float
    periodicity3: float
    profiles: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"region": self.region, "toeplitz_score": self.toeplitz_score,
                "periodicity3": self.periodicity3,
                **{f"profile_{label}": prof for label, prof in self.profiles.items()}}


def gram_maps(model: str | ModelAdapter | None, req: GramRequest, out: str | Path,
              stats_path: str | Path | None = None, device: str | None = None,
              force: bool = False) -> dict[str, GramStats]:
    """Draw the Gram map(s) of ``req`` into PNG ``out``; returns each layer's
    :class:`GramStats` (none for ``--phase`` maps; with ``stats_path`` also offset
    profiles, written as JSON with an offset-profile PNG next to it). Existing outputs are
    replaced only with ``force``."""
    from dnatlas.analysis import plots
    from dnatlas.analysis.gram import gram_matrix
    from dnatlas.analysis.offsets import offset_profile, periodicity3, toeplitz_score
    from dnatlas.files import check_writable_file

    out = check_writable_file(out, "figure", force=force)
    if stats_path is not None:
        stats_path = check_writable_file(stats_path, "statistics file", force=force)
    seqid, start, end, acts = gram_inputs(model, req, device)
    intervals, tracks = _annotation(req, seqid, start, end)
    if req.phase is not None:
        if tracks is None:
            raise InputError("phase needs annotations (to know the codon phases)",
                             setting=("phase", "annotations"))
        _phase_maps(req, acts, tracks, out)
        return {}
    grams = {layer: gram_matrix(a, center=req.center) for layer, a in acts.items()}
    stats = {}
    for layer, g in grams.items():
        prof = offset_profile(g, req.max_offset)
        stats[layer] = GramStats(_region(seqid, start, end), toeplitz_score(g),
                                 periodicity3(prof))
    if len(grams) > 1:
        fig = plots.gram_grid_figure(grams, start, end, intervals, seqid, scale=req.scale)
    else:
        (layer, g), = grams.items()
        fig = plots.gram_figure(g, start, end, intervals, seqid, scale=req.scale,
                                title=f"{layer}  {_region(seqid, start, end)}")
    plots.save_figure(fig, out)
    if stats_path is not None:
        coding = None if tracks is None else tracks.any_strand("CDS")
        _write_stats(req, grams, stats, coding, Path(stats_path))
    return stats


def _region(seqid: str, start: int, end: int) -> str:
    from dnatlas.genome.regions import format_region

    return format_region(seqid, start, end)


def _annotation(req: GramRequest, seqid: str, start: int, end: int):
    if req.annotations is None:
        return None, None
    from dnatlas.annotation.intervals import load_annotations
    from dnatlas.annotation.tracks import label_tracks

    intervals = [iv for iv in load_annotations(req.annotations) if iv.seqid == seqid]
    if not intervals:
        print(f"dnatlas: warning: {req.annotations}: no feature on record {seqid!r}; the "
              "map is drawn without tracks", file=sys.stderr)
    length = max([end] + [iv.end for iv in intervals])
    tracks = label_tracks(intervals, seqid, length, tracks=["CDS"]).slice(start, end)
    return intervals, tracks


def _phase_maps(req: GramRequest, acts, tracks, out: Path) -> None:
    """Figure 2 f-h: similarities of the codons' 1st/2nd/3rd nucleotides (axes: codons)."""
    from dnatlas.analysis import plots
    from dnatlas.analysis.gram import gram_matrix, phase_positions

    phases = (0, 1, 2) if req.phase == "all" else (int(req.phase),)
    names = ("1st", "2nd", "3rd")
    panels = {}
    for layer, a in acts.items():
        for phase in phases:
            positions = phase_positions(tracks.codon_phase, phase)
            if len(positions) < 2:
                raise InputError(f"the region has no CDS codons in phase {phase}")
            title = f"{names[phase]} nucleotide" + (f" ({layer})" if len(acts) > 1 else "")
            panels[title] = gram_matrix(a, center=req.center, positions=positions)
    if len(acts) == 1:
        fig = plots.gram_panels_figure(panels, scale=req.scale)
    else:
        fig = plots.gram_grid_figure(panels, ncols=len(phases), scale=req.scale)
    plots.save_figure(fig, out)


def _write_stats(req: GramRequest, grams, stats, coding, path: Path) -> None:
    from dnatlas.analysis import plots
    from dnatlas.analysis.offsets import offset_profile
    from dnatlas.files import write_json

    profiles = {}
    for layer, g in grams.items():
        masks = {"all": None} if coding is None else {"coding": coding, "non-coding": ~coding}
        for label, mask in masks.items():
            prof = offset_profile(g, req.max_offset, mask)
            stats[layer].profiles[label] = prof.as_dict()
            profiles[f"{layer} {label}"] = prof
    write_json(path, {layer: s.to_json() for layer, s in stats.items()}, indent=1)
    plots.save_figure(plots.offset_profile_figure(profiles), path.with_suffix(".offsets.png"))
