"""``dnatlas neurons``: the neuron catalog (AUPRC of every neuron for every annotation track)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dnatlas.cli._model_input import (
    BUNDLED_GENOME,
    add_model_input,
    add_site_arg,
    default_annotations,
    needs,
    non_negative_int,
    positive_int,
)
from dnatlas.errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "neurons", help="rank neurons by AUPRC for every annotation track (neuron catalog)",
        description="Score every neuron of one or more layers of any model against every "
                    "label track (CDS, start/stop codons, tRNA, rRNA, ncRNA, REP, terminators, "
                    "CRISPR, ...) over the whole genome and both strands, and write "
                    "catalog.csv/json, the best neurons' precision-recall curves, Manhattan "
                    "plots and top-activating windows.")
    add_model_input(p, required=True, default_genome=BUNDLED_GENOME)
    p.add_argument("--annotations", "-a", action="append", metavar="FILES",
                   help="annotation file(s) (GFF3, GenBank, BED) or bundled annotation name "
                        "(ecoli_k12_mg1655: RefSeq plus TransTermHP terminators and pilercr "
                        "CRISPR arrays); comma-separated or repeated, read as one union "
                        "(default: the bundled annotation with the bundled genome)")
    p.add_argument("--layer", "--layers", required=True, metavar="L",
                   help="0-based layer or site name; 'all' or a comma-separated list scans "
                        "several layers (one forward pass), each into OUT/LAYER, with the best "
                        "layer of each track in OUT/layers.csv")
    add_site_arg(p)
    p.add_argument("--records", metavar="IDS",
                   help="comma-separated records (default: records with annotations)")
    p.add_argument("--region", metavar="ID:START-END",
                   help="scan one 1-based inclusive region (samtools/IGV style) instead of "
                        "whole records; activations keep their real flanking context")
    p.add_argument("--tracks", metavar="LIST", help="comma-separated tracks (default: all)")
    p.add_argument("--footnote6", action="store_true",
                   help="label start codons at their 2nd and stop codons at their 1st nucleotide")
    p.add_argument("--top", type=positive_int, default=20, help="neurons listed per track (default 20)")
    p.add_argument("--windows", type=non_negative_int, default=10, metavar="K",
                   help="top-activating windows per neuron (default 10)")
    p.add_argument("--half-window", type=positive_int, default=40, metavar="NT",
                   help="nucleotides each side of a top window's centre (default 40)")
    p.add_argument("--manhattan", metavar="NEURONS",
                   help="comma-separated neurons to plot (default: the best of each track)")
    p.add_argument("--acts", type=Path, metavar="DIR",
                   help="reuse (or create) neuron-major activations here (default OUT/acts)")
    p.add_argument("--jobs", "-j", type=positive_int, default=1, metavar="N",
                   help="processes scoring neurons (default 1)")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR")
    p.add_argument("--force", action="store_true",
                   help="write into DIR even when it holds files a catalog does not write")
    p.set_defaults(func=run_neurons)
    needs(p, "analysis")


def _neuron_list(spec: str | None) -> list[int] | None:
    if not spec:
        return None
    try:
        return [int(n) for n in spec.split(",") if n.strip()]
    except ValueError:
        raise InputError(f"--manhattan takes neuron numbers, got {spec!r}") from None


def run_neurons(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.neurons import CatalogSettings, neuron_catalog

    settings = CatalogSettings(
        records=args.records.split(",") if args.records else None, region=args.region,
        tracks=[t for t in args.tracks.split(",") if t] if args.tracks else None,
        footnote6=args.footnote6, top=args.top, windows=args.windows,
        half_window=args.half_window, manhattan=_neuron_list(args.manhattan), jobs=args.jobs,
        chunk_size=args.chunk_size, batch_size=args.batch_size)
    annotations = default_annotations(
        args.genome, [item for value in args.annotations or [] for item in value.split(",")
                      if item])
    result = neuron_catalog(args.model, args.genome, annotations, args.layer, args.out,
                            site=args.site, acts_dir=args.acts, settings=settings,
                            device=args.device, force=args.force)
    if result.summary:
        print_layer_summary(result)
    else:
        print_summary(result.catalogs[0], result.codon_match)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _match(match: dict, track: str) -> str:
    return f"{match[track]:.3f}" if track in match else "-"


def print_layer_summary(result) -> None:
    """Each track's best layer and neuron, with the AP of an exact codon match."""
    print("track\tchance\tbest_layer\tneuron\tauprc\tlift\tcodon_match")
    for b in result.best_per_track:
        print(f"{b.track}\t{b.chance:.3g}\t{b.layer}\t{b.neuron}"
              f"\t{b.auprc:.3f}\t{b.lift:.1f}\t{_match(result.codon_match, b.track)}")
    for track in result.tracks_without_positives:
        print(f"{track}\t0\t-\t-\t-\t-  (no positives)")


def print_summary(catalog, match) -> None:
    print("track\tchance\tbest_neuron\trc_partner\tauprc\tcodon_match")
    for t, track in enumerate(catalog.tracks):
        neuron, ap = catalog.best(track)
        if not np.isfinite(ap):
            print(f"{track}\t0\t-\t-\t-  (no positives)")
            continue
        partner = catalog.rc_partner(neuron)
        print(f"{track}\t{catalog.chance[t]:.3g}\t{neuron}\t{'-' if partner is None else partner}"
              f"\t{ap:.3f}\t{_match(match, track)}")
    if catalog.partner is not None:
        print("(RC-equivariant model: a neuron and its rc_partner are one feature on opposite "
              "strands)")
