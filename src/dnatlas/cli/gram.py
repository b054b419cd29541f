"""``dnatlas gram``: activation similarity (Gram) maps of a region, with their statistics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dnatlas.cli._model_input import (
    add_model_input,
    add_site_arg,
    load_model,
    records_of,
)
from dnatlas.errors import InputError

SCALES = ("linear", "power")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gram", help="activation similarity (Gram) map of a region, with annotation tracks",
        description="Cosine similarities of unit-normalised activations of a region, drawn "
                    "as an image (report Figures 2-3), with genes, RNAs, REP, terminators and "
                    "CRISPR along both axes. Prints the Toeplitz score and 3-periodicity.")
    src = p.add_argument_group("input (either --acts, or --fasta and --region with a model)")
    src.add_argument("--acts", type=Path, metavar="DIR", help="directory from 'dnatlas extract'")
    add_model_input(src, required=False)
    src.add_argument("--region", metavar="ID:START-END",
                     help="region (required without --acts; an optional sub-region with it)")
    p.add_argument("--layer", default=None, metavar="L",
                   help="0-based layer or site name (default: the only one in --acts)")
    p.add_argument("--layers", choices=("all",), default=None,
                   help="'all': a grid with one map per layer (Supplementary Figures 1-2)")
    add_site_arg(p)
    p.add_argument("--phase", choices=("0", "1", "2", "all"), default=None,
                   help="keep only the 1st/2nd/3rd nucleotide of each codon, in the CDS's "
                        "frame; 'all': three panels (needs --annotations; Figure 2 f-h)")
    p.add_argument("--annotations", "-a", type=Path, metavar="GFF",
                   help="annotation (GFF3/GenBank/BED) drawn along the axes")
    p.add_argument("--scale", choices=SCALES, default="linear",
                   help="colour scale: linear, or power (square root; Figure 3)")
    p.add_argument("--center", action="store_true",
                   help="mean-centre before normalising (signed sites such as residual; "
                        "report footnote 5)")
    p.add_argument("--max-offset", type=int, default=60, metavar="K",
                   help="largest offset of the offset profile (default 60)")
    p.add_argument("--stats", type=Path, metavar="JSON",
                   help="also write the numbers and an offset-profile PNG next to it")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="PNG")
    p.set_defaults(func=run_gram)


def _gram_inputs(args):
    """``(seqid, start, end, {layer: (L, C) array})`` from --acts or from the model."""
    from dnatlas.analysis.extract import (
        extract_activations,
        layer_names,
        open_activations,
        parse_region,
    )

    if args.acts is not None:
        store = open_activations(args.acts)
        region = parse_region(args.region) if args.region else (None, None, None)
        seqid = region[0]
        layers = store.layers if args.layers == "all" else [_acts_layer(store, args.layer)]
        out = {}
        for layer in layers:
            entry = store.entry(layer, "+", seqid)
            array = store.load(layer, "+", seqid)
            array = array.T if store.layout == "CL" else array
            lo, hi = entry["start"], entry["end"]
            start, end = (lo, hi) if region[1] is None else region[1:]
            if not lo <= start < end <= hi:
                raise InputError(f"region [{start}, {end}) is outside the extracted "
                                 f"[{lo}, {hi})", path=args.acts)
            out[layer] = np.asarray(array[start - lo:end - lo])
            seqid = entry["seqid"]
        return seqid, start, end, out
    if args.fasta is None or args.region is None:
        raise InputError("give --acts, or --fasta and --region (and optionally --model)")
    if args.layers != "all" and args.layer is None:
        raise InputError("give --layer (or --layers all)")
    model = load_model(args.model, args.device)
    (record, start, end), = records_of(args.fasta, args.region)
    layers = layer_names(model, "all" if args.layers == "all" else args.layer, args.site)
    acts = extract_activations(model, record.seq, layers, args.site, start=start, end=end,
                               chunk_size=args.chunk_size, batch_size=args.batch_size)
    return record.id, start, end, acts


def _acts_layer(store, layer):
    if layer is None:
        if len(store.layers) != 1:
            raise InputError(f"give --layer: the directory holds {', '.join(store.layers)}",
                             path=store.path)
        return store.layers[0]
    if layer in store.layers:
        return layer
    matches = [name for name in store.layers if name.split(".")[1:2] == [str(layer)]]
    if len(matches) != 1:
        raise InputError(f"no single layer {layer!r} in {', '.join(store.layers)}", path=store.path)
    return matches[0]


def run_gram(args: argparse.Namespace) -> int:
    from dnatlas.analysis import plots
    from dnatlas.analysis.gram import gram_matrix
    from dnatlas.analysis.offsets import offset_profile, periodicity3, toeplitz_score

    seqid, start, end, acts = _gram_inputs(args)
    intervals, tracks = None, None
    if args.annotations is not None:
        from dnatlas.annotation.intervals import load_annotations
        from dnatlas.annotation.tracks import label_tracks

        intervals = [iv for iv in load_annotations(args.annotations) if iv.seqid == seqid]
        if args.phase is not None or args.stats is not None:
            length = max([end] + [iv.end for iv in intervals])
            tracks = label_tracks(intervals, seqid, length, tracks=["CDS"]).slice(start, end)
    if args.phase is not None:
        if tracks is None:
            raise InputError("--phase needs --annotations (to know the codon phases)")
        return _run_phase_gram(args, acts, tracks)
    grams = {layer: gram_matrix(a, center=args.center) for layer, a in acts.items()}
    stats = {}
    coding = None if tracks is None else tracks.any_strand("CDS")
    for layer, g in grams.items():
        prof = offset_profile(g, args.max_offset)
        stats[layer] = {"toeplitz_score": toeplitz_score(g), "periodicity3": periodicity3(prof)}
        print(f"{layer}\t{seqid}:{start}-{end}\ttoeplitz={stats[layer]['toeplitz_score']:.3f}"
              f"\tperiodicity3={stats[layer]['periodicity3']:.4f}")
    if len(grams) > 1:
        fig = plots.gram_grid_figure({k: g for k, g in grams.items()}, start, end, intervals,
                                     seqid, scale=args.scale)
    else:
        (layer, g), = grams.items()
        fig = plots.gram_figure(g, start, end, intervals, seqid, scale=args.scale,
                                title=f"{layer}  {seqid}:{start}-{end}")
    plots.save_figure(fig, args.out)
    if args.stats is not None:
        _write_gram_stats(args, grams, stats, coding)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _run_phase_gram(args, acts, tracks) -> int:
    """Figure 2 f-h: similarities of the codons' 1st/2nd/3rd nucleotides (axes: codons)."""
    from dnatlas.analysis import plots
    from dnatlas.analysis.gram import gram_matrix, phase_positions

    phases = (0, 1, 2) if args.phase == "all" else (int(args.phase),)
    names = ("1st", "2nd", "3rd")
    panels = {}
    for layer, a in acts.items():
        for phase in phases:
            positions = phase_positions(tracks.codon_phase, phase)
            if len(positions) < 2:
                raise InputError(f"the region has no CDS codons in phase {phase}")
            title = f"{names[phase]} nucleotide" + (f" ({layer})" if len(acts) > 1 else "")
            panels[title] = gram_matrix(a, center=args.center, positions=positions)
    if len(acts) == 1:
        fig = plots.gram_panels_figure(panels, scale=args.scale)
    else:
        fig = plots.gram_grid_figure(panels, ncols=len(phases), scale=args.scale)
    plots.save_figure(fig, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _write_gram_stats(args, grams, stats, coding) -> None:
    from dnatlas.analysis import plots
    from dnatlas.analysis.offsets import offset_profile

    profiles = {}
    for layer, g in grams.items():
        masks = {"all": None} if coding is None else {"coding": coding, "non-coding": ~coding}
        for label, mask in masks.items():
            prof = offset_profile(g, args.max_offset, mask)
            stats[layer][f"profile_{label}"] = prof.as_dict()
            profiles[f"{layer} {label}"] = prof
    args.stats.parent.mkdir(parents=True, exist_ok=True)
    args.stats.write_text(json.dumps(_finite(stats), indent=1))
    plots.save_figure(plots.offset_profile_figure(profiles), args.stats.with_suffix(".offsets.png"))


def _finite(x):
    """NaN/inf -> None, recursively (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
