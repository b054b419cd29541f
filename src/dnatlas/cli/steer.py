"""``dnatlas steer``: change SAE features at one site and report how masked predictions move.

Parses flags and calls :func:`dnatlas.pipelines.steer.steer` (see its module docstring).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnatlas.cli._model_input import (
    BUNDLED_GENOME,
    add_device_arg,
    add_genome_arg,
    add_model_arg,
    needs,
    non_negative_int,
    positive_int,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "steer", help="steer SAE features and report the change of masked predictions",
        description="Encode one site's activations with an SAE, change features, decode and "
                    "add back the reconstruction error, and report per position the change "
                    "of the masked-LM nucleotide probabilities (each position predicted with "
                    "it masked), per variant the change of log-odds ALT vs REF (against "
                    "random matched features with --control), and, for DNAtlas with "
                    "--frame-start, codon and amino-acid probabilities.")
    add_model_arg(p)
    add_genome_arg(p, required=True, default=BUNDLED_GENOME)
    p.add_argument("--sae", default="default", metavar="DIR",
                   help="SAELens folder, or 'default' (the bundled model's SAE; default)")
    p.add_argument("--hook", default=None, metavar="KEY",
                   help="site to steer (default: the SAE's hook_name)")
    p.add_argument("--edit", "-e", action="append", default=[], required=True, metavar="SPEC",
                   help="FEATURES=VALUE (set), FEATURES=KxMAX (K times the maximum "
                        "activation), FEATURES+=VALUE or -=VALUE (add), FEATURES=ablate; "
                        "FEATURES: an index, a comma list, or top:N (the N most active at "
                        "the reported positions); repeatable, applied in order")
    pos = p.add_argument_group("reported positions (any combination)")
    pos.add_argument("--region", action="append", default=[], metavar="ID:START-END",
                     help="1-based inclusive region, as in samtools/IGV (repeatable)")
    pos.add_argument("--bed", type=Path, metavar="FILE", help="BED file of positions")
    pos.add_argument("--all-positions", action="store_true",
                     help="every position of every record (one window per position: slow)")
    pos.add_argument("--variant", action="append", default=[], metavar="ID:POS:REF>ALT",
                     help="1-based variant on the forward strand; reports the change of "
                          "log p(ALT) - log p(REF) (repeatable)")
    mx = p.add_argument_group("maximum activations and controls")
    mx.add_argument("--max-activations", type=Path, metavar="TSV|ATLAS",
                    help="per-feature statistics (columns feature, max and optionally mean; "
                         "e.g. a feature_max.tsv written here), or a feature atlas folder "
                         "(dnatlas atlas build: whole-genome max, mean and frequency), "
                         "instead of a sample")
    mx.add_argument("--max-sample", type=positive_int, default=16, metavar="N",
                    help="random windows of the genome the maxima are taken over (default 16)")
    mx.add_argument("--max-window", type=positive_int, default=4096, metavar="NT",
                    help="length of those windows (default 4096, capped by the model)")
    mx.add_argument("--top-around", type=non_negative_int, default=0, metavar="NT",
                    help="top:N ranks features by mean activation over +-NT nt of the "
                         "positions (default 0)")
    mx.add_argument("--top-by", choices=("excess", "mean"), default="excess",
                    help="top:N ranks by that mean minus the feature's mean over the genome "
                         "sample (excess, default: dense features are not 'most active here') "
                         "or by the mean itself")
    mx.add_argument("--top-max-frequency", type=float, default=None, metavar="F",
                    help="leave out of top:N features firing on more than this fraction of "
                         "the genome sample (dense features; sae eval flags > 0.1)")
    mx.add_argument("--control", type=non_negative_int, default=0, metavar="N",
                    help="N draws of random features of matched maximum activation, "
                         "steered the same way, for each variant (default 0)")
    mx.add_argument("--control-pool", type=positive_int, default=10, metavar="K",
                    help="draw each control among the K features nearest in maximum (default 10)")
    mx.add_argument("--seed", type=int, default=0, help="seed of the sample and the controls")
    cod = p.add_argument_group("codons and amino acids (DNAtlas)")
    cod.add_argument("--frame-start", type=positive_int, default=None, metavar="POS",
                     help="1-based coordinate of the first base of a codon on --frame-strand "
                          "(on -: its highest coordinate, e.g. a - strand gene's end)")
    cod.add_argument("--frame-strand", choices=("+", "-"), default="+")
    cod.add_argument("--table", type=positive_int, default=11,
                     help="NCBI translation table (default 11)")
    p.add_argument("--annotations", "-a", default=None, metavar="GFF",
                   help="annotation drawn under the track (default: the bundled one of a "
                        "bundled genome)")
    p.add_argument("--top", type=positive_int, default=20, metavar="N",
                   help="positions listed as the most changed in steer.json (default 20)")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                   help="windows per forward pass (default 16)")
    add_device_arg(p)
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR")
    p.add_argument("--force", action="store_true", help="replace an existing result in --out")
    p.set_defaults(func=run_steer)
    needs(p, "analysis")


def run_steer(args: argparse.Namespace) -> int:
    from dnatlas.pipelines.steer import SteerRequest, steer

    req = SteerRequest(fasta=args.genome, edits=args.edit, sae=args.sae, regions=args.region,
                       bed=args.bed, all_positions=args.all_positions, variants=args.variant,
                       hook=args.hook, max_activations=args.max_activations,
                       max_sample=args.max_sample, max_window=args.max_window,
                       top_around=args.top_around, top_by=args.top_by,
                       top_max_frequency=args.top_max_frequency,
                       control=args.control,
                       control_pool=args.control_pool, frame_start=args.frame_start,
                       frame_strand=args.frame_strand, table=args.table,
                       annotations=args.annotations, top=args.top, batch_size=args.batch_size,
                       seed=args.seed)
    result = steer(args.model, req, args.out, device=args.device, force=args.force)
    print(f"edits\t{' '.join(f'{e.feature}:{e.op}={e.value:.4g}' for e in result.edits)}")
    print(f"positions\t{result.n_positions}\tmean_tv={result.mean_tv:.4g}"
          f"\tmax_tv={result.max_tv:.4g}")
    for v in result.variant_effects:
        line = f"{v.variant}\tdelta_log_odds={v.delta_log_odds:+.4f}"
        if v.control_n:
            line += (f"\tcontrol={v.control_mean:+.4f}+-{v.control_sd:.4f}"
                     f"\trank={v.control_rank:.3f}")
        print(line)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
