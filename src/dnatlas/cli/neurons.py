"""``dnatlas neurons``: the neuron catalog (AUPRC of every neuron for every annotation track)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dnatlas.cli._model_input import add_model_input, add_site_arg, load_model
from dnatlas.errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "neurons", help="rank neurons by AUPRC for every annotation track (neuron catalog)",
        description="Score every neuron of one or more layers against every label track "
                    "(CDS, start/stop codons, tRNA, rRNA, ncRNA, REP, terminators, CRISPR, ...) over the whole "
                    "genome and both strands (via RCPS), and write catalog.csv/json, the best "
                    "neurons' precision-recall curves, Manhattan plots and top-activating windows.")
    add_model_input(p, required=True)
    p.add_argument("--annotations", "-a", type=Path, required=True, metavar="GFF")
    p.add_argument("--layer", "--layers", required=True, metavar="L",
                   help="0-based layer or site name; 'all' or a comma-separated list scans "
                        "several layers (one forward pass), each into OUT/LAYER, with the best "
                        "layer of each track in OUT/layers.csv")
    add_site_arg(p)
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
    from dnatlas.analysis.catalog import write_layer_summary
    from dnatlas.analysis.extract import layer_names
    from dnatlas.analysis.motifs import codon_match_auprc
    from dnatlas.analysis.neurons import GenomeLabels, footnote6_names
    from dnatlas.annotation.intervals import load_annotations
    from dnatlas.annotation.tracks import label_tracks
    from dnatlas.genome.readers import read_records

    model = load_model(args.model, args.device)
    layers = layer_names(model, args.layer, args.site)
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
    match = codon_match_auprc([r.seq for r in records], [tracks[r.id] for r in records],
                              labels.names)
    acts_dir = args.acts or args.out / "acts"
    acts_by_layer = _neuron_major(model, records, layers, args, acts_dir)
    catalogs = []
    for layer in layers:
        out = args.out if len(layers) == 1 else args.out / layer
        catalogs.append(_layer_catalog(model, layer, acts_by_layer[layer], records, labels,
                                       intervals, args, out, match))
        if len(layers) > 1:
            print(f"wrote {out}", file=sys.stderr)
    if len(layers) > 1:
        _print_layer_summary(write_layer_summary(catalogs, args.out), match)
    else:
        _print_summary(catalogs[0], match)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _layer_catalog(model, layer, acts, records, labels, intervals, args, out: Path, match):
    """Scan one layer's neurons and write its catalog, windows and figures into ``out``.

    ``match`` ({codon track: AP of an exact codon match}) is recorded in catalog.json.
    """
    from dnatlas.analysis.catalog import NeuronCatalog, write_top_windows
    from dnatlas.analysis.extract import rc_permutation
    from dnatlas.analysis.neurons import scan_neurons

    perm = rc_permutation(model, layer)
    chosen = _parse_neurons(args.manhattan, acts[0].shape[0])
    auprc, windows = scan_neurons(acts, labels, perm, seqs=[r.seq for r in records],
                                  top_k=args.windows, half_window=args.half_window,
                                  n_jobs=args.jobs)
    catalog = NeuronCatalog(layer, labels.names, np.arange(acts[0].shape[0]), auprc,
                            labels.chance, labels.n_pos, labels.n)
    extra = {"model": _model_name(args), "records": labels.seqids,
             "footnote6": args.footnote6, "codon_match_auprc": match}
    catalog.save(out, args.top, extra)
    write_top_windows(windows, out / "top_windows.csv")
    write_top_windows(windows, out / "top_windows.json")
    chosen = _best_neurons(catalog) if chosen is None else chosen
    _neuron_figures(out, catalog, labels, acts, perm, windows, chosen, intervals)
    return catalog


def _neuron_major(model, records, layers, args, acts_dir) -> dict[str, list]:
    """``{layer: [(C, L) float16 per record]}``, extracted once into ``acts_dir``.

    Layers missing for a record are extracted together, in one pass over the record.
    """
    from dnatlas.analysis.extract import extract_to_dir, open_activations

    existing = None
    if (acts_dir / "meta.json").exists():
        existing = open_activations(acts_dir)
        if existing.layout != "CL":
            raise InputError("--acts must hold neuron-major (--layout CL) activations",
                             path=acts_dir)
        model_name = _model_name(args)
        if (existing.meta.get("model"), existing.meta.get("site")) != (model_name, args.site):
            raise InputError(f"--acts holds activations of model {existing.meta.get('model')!r} "
                             f"at site {existing.meta.get('site')!r}, not of {model_name!r} at "
                             f"{args.site!r}; give another --acts folder", path=acts_dir)
    out: dict[str, list] = {layer: [] for layer in layers}
    for record in records:
        missing = [layer for layer in layers if existing is None or not any(
            a["seqid"] == record.id and a["layer"] == layer and a["strand"] == "+"
            and a["start"] == 0 and a["end"] == len(record) for a in existing.meta["arrays"])]
        if missing:
            existing = extract_to_dir(model, record.seq, acts_dir, missing, args.site,
                                      seqid=record.id, layout="CL", dtype=np.float16,
                                      chunk_size=args.chunk_size, batch_size=args.batch_size,
                                      model_name=_model_name(args))
        for layer in layers:
            out[layer].append(existing.load(layer, "+", record.id))
    return out


def _model_name(args) -> str:
    """How the model is named in activation and catalog metadata."""
    return str(args.model or "default")


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
    from dnatlas.analysis import neuron_plots, plots
    from dnatlas.analysis.neurons import neuron_scores, pr_curve

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
    genes = _gene_finder(intervals)
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
                     "label": f"{w.seqid}:{w.position} {'+' if w.strand > 0 else '-'} "
                              f"{genes(w.seqid, w.position)}"}
                    for w in windows[neuron]]
            plots.save_figure(neuron_plots.top_windows_figure(rows, title=f"neuron {neuron}"),
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


def _match(match: dict, track: str) -> str:
    return f"{match[track]:.3f}" if track in match else "-"


def _print_layer_summary(rows, match) -> None:
    """Each track's best layer and neuron; ``codon_match``: AP of an exact codon match."""
    print("track\tchance\tbest_layer\tneuron\tauprc\tlift\tcodon_match")
    for row in rows:
        if row["best_layer"]:
            print(f"{row['track']}\t{row['chance']:.3g}\t{row['layer']}\t{row['neuron']}"
                  f"\t{row['auprc']:.3f}\t{row['lift']:.1f}\t{_match(match, row['track'])}")
    missing = sorted({r["track"] for r in rows} - {r["track"] for r in rows if r["best_layer"]})
    for track in missing:
        print(f"{track}\t0\t-\t-\t-\t-  (no positives)")


def _print_summary(catalog, match) -> None:
    print("track\tchance\tbest_neuron\tauprc\tcodon_match")
    for t, track in enumerate(catalog.tracks):
        neuron, ap = catalog.best(track)
        if not np.isfinite(ap):
            print(f"{track}\t0\t-\t-  (no positives)")
            continue
        print(f"{track}\t{catalog.chance[t]:.3g}\t{neuron}\t{ap:.3f}\t{_match(match, track)}")

