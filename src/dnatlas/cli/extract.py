"""``dnatlas extract``: stream a model's activations over a genome to memory-mappable .npy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dnatlas.cli._model_input import (
    add_model_input,
    add_site_arg,
    load_model,
    records_of,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "extract", help="stream activations of a genome or region to .npy files",
        description="Run a model over a sequence of any length in overlapping chunks and "
                    "write each layer's activations as a memory-mappable .npy (L x C) with a "
                    "meta.json index. The - strand is derived exactly by RCPS.")
    add_model_input(p, required=True)
    p.add_argument("--region", metavar="ID[:START-END]",
                   help="one record or a 0-based half-open region (default: every record)")
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
    p.set_defaults(func=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    from dnatlas.analysis.extract import extract_to_dir

    model = load_model(args.model, args.device)
    acts = None
    for record, start, end in records_of(args.fasta, args.region):
        acts = extract_to_dir(model, record.seq, args.out, args.layers, args.site,
                              seqid=record.id, start=start, end=end, strand=args.strand,
                              chunk_size=args.chunk_size, batch_size=args.batch_size,
                              dtype=np.dtype(args.dtype), layout=args.layout,
                              model_name=str(args.model or "default"))
    n = len(acts.meta["arrays"]) if acts else 0
    print(f"wrote {n} arrays to {args.out}", file=sys.stderr)
    return 0
