"""``dnatlas eval``: masked-nucleotide bits/nt and accuracy, models next to the baselines."""

from __future__ import annotations

import argparse

from dnatlas.cli._model_input import MODEL_HELP, add_device_arg, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="masked-nucleotide cross-entropy (bits/nt) of models and baselines",
        description="Score models on a split of a genome store with a fixed, seeded Markov "
                    "masking, so numbers are comparable across models.")
    p.add_argument("--model", "-m", action="append", default=None, metavar="SPEC",
                   help=MODEL_HELP + "; repeatable")
    p.add_argument("--data", required=True, help="genome store")
    p.add_argument("--split", default="val", choices=("train", "val"))
    p.add_argument("--baseline", action="append", default=[],
                   help="'kmer' (fitted on the train split, k chosen on the split), or a "
                        "model spec such as kmer:PATH or transformer:PATH (repeatable)")
    p.add_argument("--kmer-orders", default="1,2,3,4,5,6,7", help="k values tried for 'kmer'")
    p.add_argument("--annotations", help="GFF3/GenBank/BED: also report coding and non-coding")
    p.add_argument("--window", type=positive_int, default=1024)
    p.add_argument("--max-windows", type=positive_int, default=256)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--json", dest="json_out", help="write all results to this JSON file")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dnatlas.errors import InputError
    from dnatlas.files import check_writable_file, write_json
    from dnatlas.pipelines.evaluate import evaluate_models

    try:
        orders = [int(k) for k in args.kmer_orders.split(",") if k.strip()]
    except ValueError:
        raise InputError(f"--kmer-orders must be integers, got {args.kmer_orders!r}") from None
    if args.json_out:
        check_writable_file(args.json_out, "--json", force=args.force)
    results = evaluate_models(args.data, args.model, args.baseline, args.split,
                              args.annotations, orders, args.window, args.max_windows,
                              args.batch_size, args.device)
    _print_table(results)
    if args.json_out:
        write_json(args.json_out, {label: r.metrics for label, r in results.items()})
    return 0


def _print_table(results) -> None:
    has_coding = any(r.coding_bits_per_nt is not None for r in results.values())
    header = f"{'model':<60} {'bits/nt':>8} {'acc':>7}"
    if has_coding:
        header += f" {'coding bits/nt':>14} {'noncoding bits/nt':>17}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        line = f"{name[-60:]:<60} {r.bits_per_nt:8.4f} {r.accuracy:7.4f}"
        if has_coding and r.coding_bits_per_nt is not None:
            line += f" {r.coding_bits_per_nt:14.4f} {r.noncoding_bits_per_nt:17.4f}"
        print(line)
