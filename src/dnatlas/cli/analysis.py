"""``dnatlas extract``, ``dnatlas gram`` and ``dnatlas neurons``: activation analysis.

Layers are 0-based (the report's "layer 8" is ``--layer 7``) or full site names such as
``blocks.7.neurons``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError

SCALES = ("linear", "power")


# --------------------------------------------------------------------------- shared

def load_model(spec: str | None, device: str | None = None):
    """The model of ``--model``: a ``save_pretrained`` folder, or the bundled default.

    ``device`` (e.g. ``cuda``) moves it there; extraction then runs on that device.
    """
    from dnatlas.model.pretrained import load_model as load

    model = load(spec)
    return model if device is None else model.to(device)


def _records(fasta: Path, region: str | None):
    """``[(record, start, end)]``: one region, or every record of the file."""
    from dnatlas.analysis.extract import parse_region
    from dnatlas.genome.readers import read_records

    if region is None:
        return [(r, 0, len(r)) for r in read_records(fasta)]
    seqid, start, end = parse_region(region)
    for record in read_records(fasta):
        if record.id == seqid:
            start, end = (0, len(record)) if start is None else (start, end)
            if end > len(record):
                raise InputError(f"region end {end} is past the record's length {len(record)}",
                                 path=fasta, record=seqid)
            return [(record, start, end)]
    raise InputError(f"no record {seqid!r}", path=fasta)


def _add_model_input(parser, required: bool) -> None:
    parser.add_argument("--model", "-m", default=None, metavar="DIR",
                        help="model folder (config.json + model.safetensors); default: the "
                             "bundled model")
    parser.add_argument("--fasta", "-f", type=Path, required=required, metavar="FILE",
                        help="genome (FASTA or GenBank, optionally gzipped)")
    parser.add_argument("--chunk-size", type=int, default=1 << 15, metavar="NT",
                        help="positions per forward pass (default 32768)")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N",
                        help="chunks per forward pass (default 1; more helps on a GPU)")
    parser.add_argument("--device", default=None, metavar="DEV",
                        help="torch device, e.g. cuda (default: the model's, cpu)")


def _site_arg(parser) -> None:
    from dnatlas.analysis.extract import SITES

    parser.add_argument("--site", choices=SITES, default="neurons",
                        help="activation site (default neurons: after thresholding, before SoLU)")


# --------------------------------------------------------------------------- extract

def _register_extract(subparsers) -> None:
    p = subparsers.add_parser(
        "extract", help="stream activations of a genome or region to .npy files",
        description="Run a model over a sequence of any length in overlapping chunks and "
                    "write each layer's activations as a memory-mappable .npy (L x C) with a "
                    "meta.json index. The - strand is derived exactly by RCPS.")
    _add_model_input(p, required=True)
    p.add_argument("--region", metavar="ID[:START-END]",
                   help="one record or a 0-based half-open region (default: every record)")
    p.add_argument("--layers", default="all", metavar="LIST",
                   help="'all' or comma-separated 0-based layers / site names (default all)")
    _site_arg(p)
    p.add_argument("--strand", choices=("+", "-", "both"), default="+",
                   help="strand(s) to write; '-' is in reverse-complement order (default +)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    p.add_argument("--layout", choices=("LC", "CL"), default="LC",
                   help="LC: positions x channels (Gram maps); CL: channels x positions "
                        "(per-neuron statistics). Default LC")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR")
    p.set_defaults(func=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    from dnatlas.analysis.extract import extract_to_dir

    model = load_model(args.model, args.device)
    acts = None
    for record, start, end in _records(args.fasta, args.region):
        acts = extract_to_dir(model, record.seq, args.out, args.layers, args.site,
                              seqid=record.id, start=start, end=end, strand=args.strand,
                              chunk_size=args.chunk_size, batch_size=args.batch_size,
                              dtype=np.dtype(args.dtype), layout=args.layout,
                              model_name=str(args.model or "default"))
    n = len(acts.meta["arrays"]) if acts else 0
    print(f"wrote {n} arrays to {args.out}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- gram

def _register_gram(subparsers) -> None:
    p = subparsers.add_parser(
        "gram", help="activation similarity (Gram) map of a region, with annotation tracks",
        description="Cosine similarities of unit-normalised activations of a region, drawn "
                    "as an image (report Figures 2-3), with genes, RNAs, REP, terminators and "
                    "CRISPR along both axes. Prints the Toeplitz score and 3-periodicity.")
    src = p.add_argument_group("input (either --acts, or --fasta and --region with a model)")
    src.add_argument("--acts", type=Path, metavar="DIR", help="directory from 'dnatlas extract'")
    _add_model_input(src, required=False)
    src.add_argument("--region", metavar="ID:START-END",
                     help="region (required without --acts; an optional sub-region with it)")
    p.add_argument("--layer", default=None, metavar="L",
                   help="0-based layer or site name (default: the only one in --acts)")
    p.add_argument("--layers", choices=("all",), default=None,
                   help="'all': a grid with one map per layer (Supplementary Figures 1-2)")
    _site_arg(p)
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
    from dnatlas.analysis.extract import extract_activations, layer_names, open_activations, parse_region

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
    (record, start, end), = _records(args.fasta, args.region)
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


# --------------------------------------------------------------------------- neurons

def _register_neurons(subparsers) -> None:
    p = subparsers.add_parser(
        "neurons", help="rank neurons by AUPRC for every annotation track (neuron catalog)",
        description="Score every neuron of a layer against every label track (CDS, start/stop "
                    "codons, tRNA, rRNA, ncRNA, REP, terminators, CRISPR, ...) over the whole "
                    "genome and both strands (via RCPS), and write catalog.csv/json, the best "
                    "neurons' precision-recall curves, Manhattan plots and top-activating windows.")
    _add_model_input(p, required=True)
    p.add_argument("--annotations", "-a", type=Path, required=True, metavar="GFF")
    p.add_argument("--layer", required=True, metavar="L", help="0-based layer or site name")
    _site_arg(p)
    p.add_argument("--records", metavar="IDS",
                   help="comma-separated records (default: records with annotations)")
    p.add_argument("--tracks", metavar="LIST", help="comma-separated tracks (default: all)")
    p.add_argument("--footnote6", action="store_true",
                   help="label start codons at their 2nd and stop codons at their 1st nucleotide")
    p.add_argument("--top", type=int, default=20, help="neurons listed per track (default 20)")
    p.add_argument("--windows", type=int, default=10, metavar="K",
                   help="top-activating windows per neuron (default 10)")
    p.add_argument("--half-window", type=int, default=40, metavar="NT",
                   help="nucleotides each side of a top window's centre (default 40)")
    p.add_argument("--manhattan", metavar="NEURONS",
                   help="comma-separated neurons to plot (default: the best of each track)")
    p.add_argument("--acts", type=Path, metavar="DIR",
                   help="reuse (or create) neuron-major activations here (default OUT/acts)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="processes scoring neurons (default 1)")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR")
    p.set_defaults(func=run_neurons)


def run_neurons(args: argparse.Namespace) -> int:
    from dnatlas.analysis.extract import layer_names, rc_permutation
    from dnatlas.analysis.neurons import (
        GenomeLabels,
        NeuronCatalog,
        footnote6_names,
        scan_neurons,
        write_top_windows,
    )
    from dnatlas.annotation.intervals import load_annotations
    from dnatlas.annotation.tracks import label_tracks
    from dnatlas.genome.readers import read_records

    model = load_model(args.model, args.device)
    (layer,) = layer_names(model, args.layer, args.site)
    intervals = load_annotations(args.annotations)
    wanted = set(args.records.split(",")) if args.records else {iv.seqid for iv in intervals}
    records = [r for r in read_records(args.fasta) if r.id in wanted]
    if not records:
        raise InputError("no record of the genome is annotated (check the seqids)", path=args.annotations)
    names = None
    if args.tracks:
        names = footnote6_names([t for t in args.tracks.split(",") if t], args.footnote6)
    tracks = {r.id: label_tracks(intervals, r.id, len(r), tracks=names) for r in records}
    labels = GenomeLabels.from_tracks(tracks, names, footnote6=args.footnote6)
    acts_dir = args.acts or args.out / "acts"
    acts = _neuron_major(model, records, layer, args, acts_dir)
    perm = rc_permutation(model, layer)
    chosen = _parse_neurons(args.manhattan, acts[0].shape[0])
    auprc, windows = scan_neurons(acts, labels, perm, seqs=[r.seq for r in records],
                                  top_k=args.windows, half_window=args.half_window,
                                  n_jobs=args.jobs)
    catalog = NeuronCatalog(layer, labels.names, np.arange(acts[0].shape[0]), auprc,
                            labels.chance, labels.n_pos, labels.n)
    extra = {"model": str(args.model or "default"), "records": labels.seqids,
             "footnote6": args.footnote6}
    catalog.save(args.out, args.top, extra)
    write_top_windows(windows, args.out / "top_windows.csv")
    write_top_windows(windows, args.out / "top_windows.json")
    chosen = _best_neurons(catalog) if chosen is None else chosen
    _neuron_figures(args.out, catalog, labels, acts, perm, windows, chosen, intervals)
    _print_summary(catalog)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _neuron_major(model, records, layer, args, acts_dir):
    """(C, L) float16 activations per record, extracted once into ``acts_dir``."""
    from dnatlas.analysis.extract import extract_to_dir, open_activations

    existing = None
    if (acts_dir / "meta.json").exists():
        existing = open_activations(acts_dir)
        if existing.layout != "CL":
            raise InputError("--acts must hold neuron-major (--layout CL) activations",
                             path=acts_dir)
    out = []
    for record in records:
        present = existing is not None and any(
            a["seqid"] == record.id and a["layer"] == layer and a["strand"] == "+"
            and a["start"] == 0 and a["end"] == len(record) for a in existing.meta["arrays"])
        if not present:
            existing = extract_to_dir(model, record.seq, acts_dir, [layer], args.site,
                                      seqid=record.id, layout="CL", dtype=np.float16,
                                      chunk_size=args.chunk_size, batch_size=args.batch_size,
                                      model_name=str(args.model or "default"))
        out.append(existing.load(layer, "+", record.id))
    return out


def _parse_neurons(spec: str | None, n_channels: int) -> list[int] | None:
    """Neurons of ``--manhattan`` (validated), or None when not given."""
    if not spec:
        return None
    try:
        chosen = [int(n) for n in spec.split(",") if n.strip()]
    except ValueError:
        raise InputError(f"--manhattan takes neuron numbers, got {spec!r}") from None
    bad = [n for n in chosen if not 0 <= n < n_channels]
    if bad:
        raise InputError(f"neuron {bad[0]} out of range: the layer has {n_channels} neurons")
    return chosen


def _best_neurons(catalog) -> list[int]:
    """The best neuron of every track (each once)."""
    chosen = []
    for track in catalog.tracks:
        neuron, ap = catalog.best(track)
        if np.isfinite(ap) and neuron not in chosen:
            chosen.append(neuron)
    return chosen


def _neuron_figures(out: Path, catalog, labels, acts, perm, windows, chosen,
                    intervals) -> None:
    """PR curves of each track's best neuron (and all codon tracks together, Figure 4 e),
    Manhattan plots with the top sites' genes (Figure 4 b) and top windows (Supp. Fig. 3)."""
    from dnatlas.analysis import plots
    from dnatlas.analysis.neurons import neuron_scores, pr_curve

    codons = {}
    for t, track in enumerate(catalog.tracks):
        neuron, ap = catalog.best(track)
        if not np.isfinite(ap):
            continue
        precision, recall, _ = pr_curve(acts, labels, track, neuron, perm)
        fig = plots.pr_curve_figure({f"neuron {neuron}": (precision, recall, ap)},
                                    chance=float(catalog.chance[t]), title=track)
        plots.save_figure(fig, out / "pr" / f"{track}.png")
        if track.startswith(("start_codon", "stop_codon")):
            codons[f"{track}: neuron {neuron}"] = (precision, recall, ap)
    if codons:
        chance = float(max(catalog.chance[catalog.tracks.index(k.split(":")[0])] for k in codons))
        plots.save_figure(plots.pr_curve_figure(codons, chance=chance, title=catalog.layer),
                          out / "pr" / "codons.png")
    genes = _gene_finder(intervals)
    offsets = dict(zip(labels.seqids, labels.offsets.tolist()))
    for neuron in chosen:
        plus = neuron_scores(acts, neuron)
        minus = neuron_scores(acts, int(perm[neuron])) if perm is not None else None
        sites = windows.get(neuron, [])[:8]
        notes = [(offsets[w.seqid] + w.position, genes(w.seqid, w.position)) for w in sites]
        fig = plots.manhattan_figure(plus, minus, title=f"{catalog.layer} neuron {neuron}",
                                     annotate=[(x, g) for x, g in notes if g])
        plots.save_figure(fig, out / "manhattan" / f"neuron_{neuron}.png")
        if sites:
            rows = [{"sequence": w.sequence, "values": w.values,
                     "label": f"{w.seqid}:{w.position} {'+' if w.strand > 0 else '-'} "
                              f"{genes(w.seqid, w.position)}"}
                    for w in windows[neuron]]
            plots.save_figure(plots.top_windows_figure(rows, title=f"neuron {neuron}"),
                              out / "windows" / f"neuron_{neuron}.png")


def _gene_finder(intervals):
    """``f(seqid, position)`` -> name of a CDS/RNA feature covering the position, or ''."""
    kinds = ("CDS", "tRNA", "rRNA", "ncRNA", "tmRNA")
    by_seq: dict[str, list] = {}
    for iv in intervals:
        if iv.type in kinds:
            by_seq.setdefault(iv.seqid, []).append(iv)

    def find(seqid: str, position: int) -> str:
        for iv in by_seq.get(seqid, ()):
            if iv.start <= position < iv.end:
                return iv.name or iv.attributes.get("gene", "")
        return ""

    return find


def _print_summary(catalog) -> None:
    print("track\tchance\tbest_neuron\tauprc")
    for t, track in enumerate(catalog.tracks):
        neuron, ap = catalog.best(track)
        if not np.isfinite(ap):
            print(f"{track}\t0\t-\t-  (no positives)")
            continue
        print(f"{track}\t{catalog.chance[t]:.3g}\t{neuron}\t{ap:.3f}")


def register(subparsers) -> None:
    _register_extract(subparsers)
    _register_gram(subparsers)
    _register_neurons(subparsers)
