"""``dnatlas gram``: activation similarity (Gram) maps of a region, with their statistics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import (
    add_model_input,
    add_site_arg,
    needs,
    positive_int,
)

SCALES = ("linear", "power")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gram", help="activation similarity (Gram) map of a region, with annotation tracks",
        description="Cosine similarities of unit-normalised activations of a region, drawn "
                    "as an image (report Figures 2-3), with genes, RNAs, REP, terminators and "
                    "CRISPR along both axes. Prints the Toeplitz score and 3-periodicity.")
    src = p.add_argument_group("input (either --acts, or --genome and --region with a model)")
    src.add_argument("--acts", type=Path, metavar="DIR", help="folder from 'dnatlas extract'")
    add_model_input(src, required=False)
    src.add_argument("--region", metavar="ID:START-END",
                     help="1-based inclusive region, as in samtools/IGV (required without "
                          "--acts; an optional sub-region with it)")
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
    p.add_argument("--max-offset", type=positive_int, default=60, metavar="K",
                   help="largest offset of the offset profile (default 60)")
    p.add_argument("--stats", type=Path, metavar="JSON",
                   help="also write the numbers and an offset-profile PNG next to it")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="PNG")
    p.add_argument("--force", action="store_true", help="replace an existing PNG / --stats")
    p.set_defaults(func=run_gram)
    needs(p, "analysis")


def run_gram(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.gram import GramRequest, gram_maps

    req = GramRequest(acts=args.acts, fasta=args.genome, region=args.region, layer=args.layer,
                      all_layers=args.layers == "all", site=args.site, phase=args.phase,
                      annotations=args.annotations, scale=args.scale, center=args.center,
                      max_offset=args.max_offset, chunk_size=args.chunk_size,
                      batch_size=args.batch_size)
    stats = gram_maps(args.model, req, args.out, args.stats, device=args.device,
                      force=args.force)
    for layer, s in stats.items():
        print(f"{layer}\t{s.region}\ttoeplitz={s.toeplitz_score:.3f}"
              f"\tperiodicity3={s.periodicity3:.4f}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
