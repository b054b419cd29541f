"""``dnatlas eval``: masked-nucleotide bits/nt and accuracy, DNAtlas next to the baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="masked-nucleotide cross-entropy (bits/nt) of models and baselines",
        description="Score models on a split of a genome store with a fixed, seeded Markov "
                    "masking, so numbers are comparable across models.")
    p.add_argument("--model", action="append", default=None,
                   help="saved model folder, or 'default' for the bundled model (repeatable)")
    p.add_argument("--data", required=True, help="genome store")
    p.add_argument("--split", default="val")
    p.add_argument("--baseline", action="append", default=[],
                   help="'kmer' (fitted on the train split, k chosen on the split), "
                        "'kmer:PATH' (saved k-mer model) or 'transformer:PATH' (repeatable)")
    p.add_argument("--kmer-orders", default="1,2,3,4,5,6,7", help="k values tried for 'kmer'")
    p.add_argument("--annotations", help="GFF3/GenBank/BED: also report coding and non-coding")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--max-windows", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", dest="json_out", help="write all results to this JSON file")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dnatlas.genome.store import GenomeStore
    from dnatlas.model.pretrained import load_model, resolve_model_path
    from dnatlas.training.evaluate import (coding_lookup, dnatlas_predictor, evaluate,
                                           fit_kmer_baseline)
    from dnatlas.errors import InputError

    store = GenomeStore.open(args.data)
    if store.segment_indices(args.split).size == 0:
        raise InputError(f"the store has no {args.split!r} split", path=args.data)
    coding = coding_lookup(store, args.annotations) if args.annotations else None
    common = dict(store=store, split=args.split, window=args.window, max_windows=args.max_windows,
                  batch_size=args.batch_size, coding=coding, device=args.device, progress=True)
    results: dict[str, dict] = {}
    for spec in args.model or ([] if args.baseline else ["default"]):
        model = load_model(spec, args.device)
        predict = (dnatlas_predictor(model) if hasattr(model, "site_names")
                   else model.predict_nucleotides)
        label = resolve_model_path(spec).name if spec in (None, "default") else spec
        results[f"model:{label}"] = evaluate(predict, **common)
    for spec in args.baseline:
        kind, _, path = spec.partition(":")
        if kind == "kmer" and not path:
            orders = [int(k) for k in args.kmer_orders.split(",")]
            sel = fit_kmer_baseline(store, args.split, orders, args.window)
            res = evaluate(sel.model.predict_nucleotides, **common)
            res["k"] = sel.best_k
            res["k_selection_bits_per_nt"] = sel.bits_per_nt
            results["baseline:kmer"] = res
        elif kind == "kmer":
            from dnatlas.baselines.kmer import KmerContextModel

            results[f"baseline:kmer:{path}"] = evaluate(
                KmerContextModel.load(path).predict_nucleotides, **common)
        elif kind == "transformer" and path:
            results[f"baseline:transformer:{path}"] = evaluate(
                load_model(path, args.device).predict_nucleotides, **common)
        else:
            raise InputError(f"unknown baseline {spec!r}: use kmer, kmer:PATH or transformer:PATH")
    _print_table(results)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _print_table(results: dict[str, dict]) -> None:
    cols = ["bits_per_nt", "accuracy"]
    has_coding = any("coding" in r for r in results.values())
    header = f"{'model':<60} {'bits/nt':>8} {'acc':>7}"
    if has_coding:
        header += f" {'coding':>8} {'noncoding':>9}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        line = f"{name[-60:]:<60} {r[cols[0]]:8.4f} {r[cols[1]]:7.4f}"
        if has_coding and "coding" in r:
            line += f" {r['coding']['bits_per_nt']:8.4f} {r['noncoding']['bits_per_nt']:9.4f}"
        print(line)
