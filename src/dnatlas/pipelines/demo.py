"""The demo pipeline (``dnatlas demo``): the main job on the bundled data, end to end, in a few minutes on a CPU.

1. build a genome store from the bundled genomes (train: *E. coli* MG1655 and four
   *K. pneumoniae*; held out: *V. cholerae* H1);
2. train a DNAtlas briefly, to show the training engine working;
3. evaluate the bundled pretrained model, the briefly trained one and the k-mer baseline
   on the held-out genome with the same seeded masking;
4. analyse the bundled model on *E. coli*: activation Gram maps and the neuron catalog
   against the RefSeq annotation (when the analysis extra is installed);
5. train a small SAE on the bundled model (quick settings, said on screen);
6. build its feature atlas on the first 300 kb of *E. coli* (concept matches with
   controls, descriptions; when the atlas extra is installed).

``dnatlas demo`` then writes the static feature explorer of that atlas
(``dnatlas explore --export``) and prints the file to open.
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_VAL_GENOME = "vibrio_cholerae_h1"
#: the demo's SAE: a demonstration of the pipeline, far too brief to be a useful SAE
DEMO_SAE = dict(arch="topk", k=8, expansion=4, steps=200, batch_size=1024)
DEMO_ATLAS_VALID = "K-12-MG1655:1-150000"
DEMO_ATLAS_TEST = "K-12-MG1655:150001-300000"
#: what the demo writes into its folder (``explorer``: by ``dnatlas demo``, after it)
DEMO_OUTPUTS = frozenset({"store", "brief-run", "eval.json", "figures", "sae", "atlas",
                          "explorer"})
BRIEF_RUN_PURPOSE = ("The brief run shows the training engine working (store, masking, "
                     "checkpoints, evaluation) in seconds; it is far too short to learn the "
                     "genome: expect it to score no better than the k-mer baseline, and far "
                     "from the bundled model (trained for 93 minutes).")


def _section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def build_default_store(out: str | Path, force: bool = False):
    """The bundled store: train on MG1655 + K. pneumoniae, hold out V. cholerae H1.

    An existing store at ``out`` is reused (``force``: rebuilt).
    """
    from dnatlas.genome.sources import bundled_genome_paths
    from dnatlas.genome.store import GenomeStore
    from dnatlas.genome.store_build import build_store

    out = Path(out)
    if out.exists() and not force:
        return GenomeStore.open(out)
    return build_store(bundled_genome_paths(), out, val_genomes=[DEMO_VAL_GENOME],
                       overwrite=force)


def run_demo(out: str | Path = "runs/demo", train_steps: int = 30, eval_windows: int = 24,
             analysis: bool = True, force: bool = False, atlas: bool = True) -> dict:
    """:func:`_run_demo` (arguments as it takes them) holding the demo folder's lock
    (:mod:`dnatlas.outputs`): a second demo into ``out`` fails at once."""
    from dnatlas.files import check_output_dir
    from dnatlas.outputs import lock_folder

    check_output_dir(out, "demo folder", force=force, own=DEMO_OUTPUTS.__contains__)
    with lock_folder(out, "demo folder"):
        return _run_demo(out, train_steps, eval_windows, analysis, force, atlas)


def _run_demo(out: str | Path = "runs/demo", train_steps: int = 30, eval_windows: int = 24,
              analysis: bool = True, force: bool = False, atlas: bool = True) -> dict:
    """Store, brief training, held-out evaluation, analysis, and (``atlas``) a quick SAE
    and its atlas; returns the eval results (with ``atlas``: also ``results["atlas"]``,
    the atlas and SAE folders, when built)."""
    from dnatlas.files import check_output_dir, write_json
    from dnatlas.models import default_model_path, load_model
    from dnatlas.training.config import load_train_config
    from dnatlas.training.evaluate import evaluate, fit_kmer_baseline
    from dnatlas.training.metrics_log import nats_to_bits
    from dnatlas.training.trainer import train

    out = check_output_dir(out, "demo folder", force=force, own=DEMO_OUTPUTS.__contains__)
    t0 = time.perf_counter()

    _section("1. genome store from the bundled genomes")
    store = build_default_store(out / "store")
    genomes = store.meta["genomes"]
    print(f"{store.path}: {len(genomes)} genomes, "
          f"{sum(r['length'] for g in genomes for r in g['records']):,} bp")

    _section(f"2. brief training run ({train_steps} steps of the tiny preset)")
    print(BRIEF_RUN_PURPOSE)
    cfg = load_train_config("tiny", [f"steps={train_steps}", "window=512", "batch_size=8",
                                     "micro_batch_size=8", "warmup_steps=5",
                                     f"eval_every={train_steps}", "eval_windows=8",
                                     f"checkpoint_every={train_steps}", "tensorboard=false"])
    result = train(cfg, store.path, out / "brief-run", progress=True, force=True)
    print(f"train loss {nats_to_bits(result.train_losses[0]):.3f} -> "
          f"{nats_to_bits(result.train_losses[-1]):.3f} bits (windowed MLM, as training "
          f"prints it); model in {out / 'brief-run' / 'model'}")

    _section("3. held-out genome (V. cholerae H1): masked-nucleotide bits/nt")
    common = dict(store=store, split="val", window=1024, max_windows=eval_windows,
                  batch_size=8)
    results = {}
    if (default_model_path() / "model.safetensors").exists():
        results["bundled DNAtlas (default)"] = evaluate(
            load_model("default").nucleotide_log_probs, **common)
    results["brief run"] = evaluate(
        load_model(str(out / "brief-run" / "model")).nucleotide_log_probs, **common)
    sel = fit_kmer_baseline(store, "val", [1, 2, 4, 6], 1024)
    results[f"k-mer baseline (k={sel.best_k})"] = evaluate(sel.model.predict_nucleotides, **common)
    for name, r in results.items():
        print(f"{name:<32} {r['bits_per_nt']:.4f} bits/nt   accuracy {r['accuracy']:.4f}")
    kmer = next(r for name, r in results.items() if name.startswith("k-mer"))
    brief = results["brief run"]
    brief["purpose"] = BRIEF_RUN_PURPOSE
    if brief["bits_per_nt"] >= kmer["bits_per_nt"]:
        note = (f"the brief run ({train_steps} steps) does not beat the k-mer baseline "
                f"({brief['bits_per_nt']:.3f} vs {kmer['bits_per_nt']:.3f} bits/nt), as "
                "expected: it only shows that training runs; the bundled model is the "
                "trained one")
        brief["note"] = note
        print(f"note: {note}")
    write_json(out / "eval.json", results)

    if analysis:
        _run_analysis(out)
    if atlas:
        built = _run_atlas(out, store.path)
        if built is not None:
            results["atlas"] = built
    print(f"\ndone in {time.perf_counter() - t0:.0f} s; outputs in {out}/")
    return results


def _run_atlas(out: Path, store: Path) -> dict | None:
    """Steps 5-6: a quick SAE of the bundled model and its atlas; ``{"atlas", "sae"}``."""
    from dnatlas import extras

    if not extras.optional("atlas", "the SAE, its atlas and the explorer (steps 5-7)"):
        return None
    from dnatlas.atlas.reader import Atlas
    from dnatlas.pipelines.atlas import AtlasSettings, build_atlas
    from dnatlas.pipelines.sae import SAEHyperparameters, WindowSettings, train_sae

    q = DEMO_SAE
    _section(f"5. a small SAE of the bundled model at blocks.2.residual (quick settings: "
             f"{q['arch']} k={q['k']}, {q['expansion']}x expansion, {q['steps']} steps of "
             f"{q['batch_size']:,} rows; a demonstration, not a useful SAE)")
    sae_dir = out / "sae" / f"demo-blocks.2.residual-{q['arch']}{q['k']}"
    (sae_dir,) = train_sae(None, WindowSettings(data=str(store), window=1024), [2], sae_dir,
                           SAEHyperparameters(**q, checkpoint_every=q["steps"]),
                           buffer_rows=1 << 15, force=True)
    _section(f"6. its feature atlas on E. coli MG1655 {DEMO_ATLAS_VALID.split(':')[1]} "
             f"(valid) and {DEMO_ATLAS_TEST.split(':')[1]} (test), both strands")
    settings = AtlasSettings(valid=[DEMO_ATLAS_VALID], test=[DEMO_ATLAS_TEST],
                             sample_nt=100_000, top_k=5, top_pool=10, quantile_k=2)
    result = build_atlas(None, "ecoli_k12_mg1655", None, saes=[str(sae_dir)],
                         settings=settings, out=out / "atlas", force=True)
    reader = Atlas.open(result.out)
    try:
        for d in reader.dictionaries():
            top = reader.features(d["dictionary"], order="score_concept", limit=3)
            print(f"{d['dictionary']}: {top['total']:,} features; best concept matches:")
            for row in top["rows"]:
                print(f"  #{row['feature']}: {row['description']}")
    finally:
        reader.close()
    return {"atlas": str(result.out), "sae": str(sae_dir)}


def _run_analysis(out: Path) -> None:
    from dnatlas import extras

    if not extras.optional("analysis", "the analysis (Gram maps, offsets, neuron catalog)"):
        return  # the CLI refuses to start without it unless --skip-analysis
    from dnatlas.pipelines.figures import report_figures

    _section("4. the bundled model on E. coli MG1655: Gram maps, offsets, neuron catalog")
    report_figures(None, out / "figures", quick=True)
