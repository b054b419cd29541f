"""``dnatlas demo``: the main job on the bundled data, end to end, in a few minutes on a CPU.

1. build a genome store from the bundled genomes (train: *E. coli* MG1655 and four
   *K. pneumoniae*; held out: *V. cholerae* H1);
2. train a DNAtlas briefly, to show the training engine working;
3. evaluate the bundled pretrained model, the briefly trained one and the k-mer baseline
   on the held-out genome with the same seeded masking;
4. analyse the bundled model on *E. coli*: activation Gram maps and the neuron catalog
   against the RefSeq annotation (when the analysis extra is installed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DEMO_VAL_GENOME = "vibrio_cholerae_h1"


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the main job on the bundled genomes and model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder [runs/demo]")
    p.add_argument("--train-steps", type=int, default=30, help="steps of the brief training run")
    p.add_argument("--eval-windows", type=int, default=24)
    p.add_argument("--skip-analysis", action="store_true")
    p.set_defaults(func=run)


def _section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def build_default_store(out: Path, force: bool = False):
    """The bundled store: train on MG1655 + K. pneumoniae, hold out V. cholerae H1."""
    from dnatlas.genome.store import GenomeStore
    from dnatlas.genome.store_build import build_store, bundled_genome_paths

    if out.exists() and not force:
        return GenomeStore.open(out)
    return build_store(bundled_genome_paths(), out, val_genomes=[DEMO_VAL_GENOME],
                       overwrite=force)


def run(args: argparse.Namespace) -> int:
    from dnatlas.cli.data import format_info
    from dnatlas.model.pretrained import default_model_path, load_model
    from dnatlas.training.config import load_train_config
    from dnatlas.training.evaluate import dnatlas_predictor, evaluate
    from dnatlas.training.trainer import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    _section("1. genome store from the bundled genomes")
    store = build_default_store(out / "store")
    print(format_info(store.info()))

    _section(f"2. brief training run ({args.train_steps} steps of the tiny preset)")
    cfg = load_train_config("tiny", [f"steps={args.train_steps}", "window=512", "batch_size=8",
                                     "micro_batch_size=8", "warmup_steps=5",
                                     f"eval_every={args.train_steps}", "eval_windows=8",
                                     f"checkpoint_every={args.train_steps}", "tensorboard=false"])
    result = train(cfg, store.path, out / "brief-run", progress=True)
    print(f"train loss {result.train_losses[0]:.3f} -> {result.train_losses[-1]:.3f} nats "
          f"(windowed MLM); model in {out / 'brief-run' / 'model'}")

    _section("3. held-out genome (V. cholerae H1): masked-nucleotide bits/nt")
    common = dict(store=store, split="val", window=1024, max_windows=args.eval_windows,
                  batch_size=8)
    results = {}
    if (default_model_path() / "model.safetensors").exists():
        results["bundled DNAtlas (default)"] = evaluate(dnatlas_predictor(load_model()), **common)
    results["brief run"] = evaluate(dnatlas_predictor(load_model(out / "brief-run" / "model")),
                                    **common)
    from dnatlas.training.evaluate import fit_kmer_baseline

    sel = fit_kmer_baseline(store, "val", [1, 2, 4, 6], 1024)
    results[f"k-mer baseline (k={sel.best_k})"] = evaluate(sel.model.predict_nucleotides, **common)
    for name, r in results.items():
        print(f"{name:<32} {r['bits_per_nt']:.4f} bits/nt   accuracy {r['accuracy']:.4f}")
    (out / "eval.json").write_text(json.dumps(results, indent=2) + "\n")

    if not args.skip_analysis:
        _run_analysis(out)
    print(f"\ndone in {time.perf_counter() - t0:.0f} s; outputs in {out}/")
    return 0


def _run_analysis(out: Path) -> None:
    try:
        import matplotlib  # noqa: F401  (the analysis extra)
    except ImportError as exc:
        print(f"(analysis skipped: {exc}; pip install 'dnatlas[analysis]')")
        return
    from dnatlas.cli import figures

    _section("4. the bundled model on E. coli MG1655: Gram maps, offsets, neuron catalog")
    figures.run(argparse.Namespace(model=None, out=out / "figures", layer=None, quick=True,
                                   work=None))
