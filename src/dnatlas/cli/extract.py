"""``dnatlas extract``: stream a model's activations over a genome to memory-mappable .npy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import add_model_input, add_site_arg


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "extract", help="stream activations of a genome or region to .npy files",
        description="Run any model over a sequence of any length in windows planned from its "
                    "context (receptive field, causal, maximum length) and write each layer's "
                    "activations as a memory-mappable .npy with a meta.json index.")
    add_model_input(p, required=True)
    p.add_argument("--region", metavar="ID[:START-END]",
                   help="one record or a 1-based inclusive region, as in samtools/IGV "
                        "(default: every record)")
    p.add_argument("--layers", default="all", metavar="LIST",
                   help="'all' or comma-separated 0-based layers / site names (default all)")
    add_site_arg(p)
    p.add_argument("--strand", choices=("+", "-", "both"), default="+",
                   help="strand(s) to write; '-' is in reverse-complement order (default +)")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    p.add_argument("--layout", choices=("LC", "CL"), default="LC",
                   help="LC: positions x channels (Gram maps); CL: channels x positions "
                        "(per-neuron statistics). Default LC")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR")
    p.add_argument("--force", action="store_true",
                   help="replace activations an earlier extraction wrote into DIR")
    p.set_defaults(func=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.extract import extract_genome

    acts = extract_genome(args.model, args.genome, args.out, args.layers, args.site,
                          region=args.region, strand=args.strand, dtype=args.dtype,
                          layout=args.layout, chunk_size=args.chunk_size,
                          batch_size=args.batch_size, device=args.device, force=args.force)
    print(f"wrote {acts.n_arrays} arrays to {args.out}", file=sys.stderr)
    return 0
