"""Every subcommand answers bad input (flags, files, damaged models, unusable outputs,
devices) with one line, ``dnatlas: error: ...``, exit code 2 and no traceback."""

import json
import os
import textwrap

import numpy as np
import pytest
import torch

from dnatlas.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GFF = """##gff-version 3
chrA\tt\tCDS\t201\t1100\t.\t+\t0\tID=c1;gene=geneA
chrA\tt\tCDS\t1301\t2000\t.\t-\t0\tID=c2;gene=geneB
"""


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """Inputs: a tiny model, a genome, an annotation, a store, an SAE, damaged copies."""
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
    from dnatlas.genome.store_build import build_store
    from dnatlas.sae import build_sae, make_config
    from dnatlas.sae.saelens_format import save_sae

    root = tmp_path_factory.mktemp("contract")
    torch.manual_seed(0)
    DNAtlas(DNAtlasConfig.preset("tiny", n_layers=2)).save_pretrained(root / "model")
    rng = np.random.default_rng(0)
    with open(root / "genome.fa", "w") as fh:
        for name, length in (("chrA", 3000), ("chrB", 1200)):
            fh.write(f">{name}\n" + "".join(rng.choice(list("ACGT"), length)) + "\n")
    (root / "ann.gff3").write_text(GFF)
    (root / "other.gff3").write_text(GFF.replace("chrA", "chrZ"))
    build_store([root / "genome.fa"], root / "store", val_fraction=0.3, progress=False)
    sae = build_sae(make_config("topk", 64, expansion=2, k=4, hook_name="blocks.1.residual"))
    save_sae(sae, root / "sae")
    (root / "a_file").write_text("x")
    for name, damage in (("list_config", "config"), ("truncated", "weights"),
                         ("empty", "empty"), ("garbage", "garbage")):
        d = root / name
        d.mkdir()
        for f in ("config.json", "model.safetensors"):
            (d / f).write_bytes((root / "model" / f).read_bytes())
        if damage == "config":
            (d / "config.json").write_text("[1, 2, 3]")
        elif damage == "weights":
            (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:200])
        elif damage == "empty":
            (d / "model.safetensors").write_bytes(b"")
        else:
            (d / "model.safetensors").write_bytes(os.urandom(500))
    truncated_sae = root / "truncated_sae"
    truncated_sae.mkdir()
    for f in ("cfg.json", "sae_weights.safetensors"):
        data = (root / "sae" / f).read_bytes()
        (truncated_sae / f).write_bytes(data if f == "cfg.json" else data[:300])
    from dnatlas.analysis.extract_folder import extract_to_dir
    from dnatlas.models import load_model

    seq = np.random.default_rng(2).integers(0, 4, 400).astype(np.uint8)
    acts = extract_to_dir(load_model(str(root / "model")), seq, root / "acts", [0],
                          seqid="chrA", progress=False)
    npy = acts.path / acts.meta["arrays"][0]["file"]
    npy.write_bytes(npy.read_bytes()[:1000])
    (root / "user_folder").mkdir()
    (root / "user_folder" / "notes.txt").write_text("mine")
    bad_sae = root / "bad_sae"
    bad_sae.mkdir()
    (bad_sae / "cfg.json").write_text("{not json")
    return root


def _args(w, text: str) -> list[str]:
    return [part.replace("{w}", str(w)) for part in text.split()]


EXTRACT = "extract --model {w}/model --genome {w}/genome.fa --out {w}/o_extract"
GRAM = "gram --model {w}/model --genome {w}/genome.fa --region chrA:1-500 --layer 0"
NEURONS = "neurons --model {w}/model --genome {w}/genome.fa --annotations {w}/ann.gff3 --layer 0"
EVAL = "eval --model {w}/model --data {w}/store --max-windows 2 --window 256"
SAE_TRAIN = ("sae train --model {w}/model --data {w}/store --layer 1 --arch topk --k 4 "
             "--steps 2 --batch-size 64 --window 128 --windows-per-batch 2")
SAE_EVAL = "sae eval --sae {w}/sae --model {w}/model --data {w}/store --window 128 --batches 1"
TRAIN = "train --data {w}/store --set steps=2 --set window=128"

CASES = {
    # flags out of range
    "extract chunk -5": EXTRACT + " --chunk-size -5",
    "extract batch 0": EXTRACT + " --batch-size 0",
    "extract layer 99": EXTRACT + " --layers 99",
    "extract bad site": EXTRACT + " --site bogus",
    "extract bad region": EXTRACT + " --region chrA:50-10",
    "extract region 0": EXTRACT + " --region chrA:0-10",
    "extract region past end": EXTRACT + " --region chrA:1-99999",
    "extract unknown record": EXTRACT + " --region chrQ",
    "gram max-offset 0": GRAM + " --max-offset 0 --out {w}/g.png",
    "gram no layer": "gram --model {w}/model --genome {w}/genome.fa --region chrA:1-500 --out {w}/g.png",
    "gram no input": "gram --layer 0 --out {w}/g.png",
    "gram phase without annotation": GRAM + " --phase 0 --out {w}/g.png",
    "neurons top -3": NEURONS + " --top -3 --out {w}/o_n",
    "neurons windows -1": NEURONS + " --windows -1 --out {w}/o_n",
    "neurons jobs 0": NEURONS + " --jobs 0 --out {w}/o_n",
    "neurons manhattan abc": NEURONS + " --manhattan abc --out {w}/o_n",
    "neurons manhattan 9999": NEURONS + " --manhattan 9999 --out {w}/o_n",
    "neurons no annotated record": NEURONS.replace("ann.gff3", "other.gff3") + " --out {w}/o_n2",
    "eval window too long": "eval --model {w}/model --data {w}/store --window 100000",
    "eval max-windows 0": EVAL + " --max-windows 0",
    "eval batch -1": EVAL + " --batch-size -1",
    "eval split nope": EVAL + " --split nope",
    "eval unknown baseline": EVAL + " --baseline hmm",
    "eval kmer orders": EVAL + " --baseline kmer --kmer-orders a,b",
    "sae batch -1": SAE_TRAIN + " --batch-size -1 --out {w}/s1",
    "sae expansion 0": SAE_TRAIN + " --expansion 0 --out {w}/s2",
    "sae steps 0": SAE_TRAIN + " --steps 0 --out {w}/s3",
    "sae huge window": SAE_TRAIN + " --window 10000000 --out {w}/s4",
    "sae layer 99": SAE_TRAIN.replace("--layer 1", "--layer 99") + " --out {w}/s5",
    "sae lr -1": SAE_TRAIN + " --lr -1 --out {w}/s6",
    "sae unknown preset": SAE_TRAIN + " --preset nope --out {w}/s7",
    "sae eval batches 0": SAE_EVAL + " --batches 0",
    "train checkpoint_every 0": TRAIN + " --set checkpoint_every=0 --out {w}/t1",
    "train eval_every 0": TRAIN + " --set eval_every=0 --out {w}/t2",
    "train negative lr": TRAIN + " --set lr=-1 --out {w}/t3",
    "train mask rate 2": TRAIN + " --set mask_rate=2 --out {w}/t4",
    "train eval windows 0": TRAIN + " --set eval_windows=0 --out {w}/t5",
    "train override typo": TRAIN + " --set model_overrides.n_layrs=6 --out {w}/t6",
    "train unknown preset": "train --config nope --data {w}/store --out {w}/t7",
    "train seed -1": TRAIN + " --set seed=-1 --out {w}/t8",
    # devices
    "extract device nope": EXTRACT + " --device nope",
    "extract device cuda": EXTRACT + " --device cuda:7",
    "sae device nope": SAE_TRAIN + " --device nope --out {w}/s8",
    "train device nope": TRAIN + " --device nope --out {w}/t9",
    # files: missing, damaged, of the wrong kind
    "extract missing fasta": "extract --model {w}/model --genome {w}/nope.fa --out {w}/o",
    "extract missing model": "extract --model {w}/nope --genome {w}/genome.fa --out {w}/o",
    "extract model is a file": "extract --model {w}/a_file --genome {w}/genome.fa --out {w}/o",
    "extract config is a list": "extract --model {w}/list_config --genome {w}/genome.fa --out {w}/o",
    "extract truncated weights": "extract --model {w}/truncated --genome {w}/genome.fa --out {w}/o",
    "extract empty weights": "extract --model {w}/empty --genome {w}/genome.fa --out {w}/o",
    "extract garbage weights": "extract --model {w}/garbage --genome {w}/genome.fa --out {w}/o",
    "extract unknown kind": "extract --model gpt:{w}/model --genome {w}/genome.fa --out {w}/o",
    "neurons missing annotation": NEURONS.replace("ann.gff3", "nope.gff3") + " --out {w}/o_n",
    "eval not a store": "eval --model {w}/model --data {w}/model",
    "sae eval missing sae": SAE_EVAL.replace("{w}/sae", "{w}/nope"),
    "sae eval damaged sae": SAE_EVAL.replace("{w}/sae", "{w}/bad_sae"),
    "sae eval truncated weights": SAE_EVAL.replace("{w}/sae", "{w}/truncated_sae"),
    "gram truncated activations": "gram --acts {w}/acts --out {w}/t.png",
    "sae missing data": SAE_TRAIN.replace("{w}/store", "{w}/nope") + " --out {w}/s9",
    "data info not a store": "data info {w}/model",
    "data build missing": "data build {w}/nope.fa --out {w}/st",
    "hf without repo": "extract --model hf: --genome {w}/genome.fa --out {w}/o",
    # outputs that cannot be written
    "extract out is a file": "extract --model {w}/model --genome {w}/genome.fa --out {w}/a_file",
    "extract out under a file": "extract --model {w}/model --genome {w}/genome.fa --out {w}/a_file/x",
    "gram out is a folder": GRAM + " --out {w}",
    "gram stats under a file": GRAM + " --out {w}/g.png --stats {w}/a_file/s.json",
    "neurons out is a file": NEURONS + " --out {w}/a_file",
    "eval json under a file": EVAL + " --json {w}/a_file/r.json",
    "sae eval json is a folder": SAE_EVAL + " --json {w}",
    "train out is a file": TRAIN + " --out {w}/a_file",
    # nothing is overwritten without --force
    "gram out exists": GRAM + " --out {w}/a_file",
    "eval json exists": EVAL + " --json {w}/a_file",
    "sae eval json exists": SAE_EVAL + " --json {w}/a_file",
    "neurons into a user folder": NEURONS + " --out {w}/user_folder",
    "figures into a user folder": "figures --out {w}/user_folder --layer 99",
    "demo into a user folder": "demo --out {w}/user_folder --skip-analysis",
    "annotate out exists": "annotate --genome {w}/genome.fa --out {w}/a_file --tools prodigal",
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_code_2(w, case, capsys):
    code = main(_args(w, CASES[case]))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dnatlas: error:")]
    assert len(errors) == 1, err
    assert err.strip().splitlines()[-1] == errors[0]


def test_nothing_is_overwritten_without_force(w, capsys):
    """An output folder holding another model's activations is refused, and kept."""
    out = w / "o_keep"
    assert main(_args(w, EXTRACT.replace("o_extract", "o_keep") + " --layers 0")) == 0
    before = json.loads((out / "meta.json").read_text())
    other = w / "other_model"
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

    torch.manual_seed(5)
    DNAtlas(DNAtlasConfig.preset("tiny", n_layers=2)).save_pretrained(other)
    capsys.readouterr()
    assert main(_args(w, f"extract --model {other} --genome {{w}}/genome.fa --out {out} "
                         "--layers 0")) == 2
    assert "--force" in capsys.readouterr().err
    assert json.loads((out / "meta.json").read_text()) == before
    (out / "mine.txt").write_text("user file")
    assert main(_args(w, f"extract --model {other} --genome {{w}}/genome.fa --out {out} "
                         "--layers 0 --force")) == 0
    assert (out / "mine.txt").read_text() == "user file"
    assert json.loads((out / "meta.json").read_text())["model"] == str(other)


def test_force_replaces_a_figure_and_writes_beside_user_files(w, capsys):
    png = w / "again.png"
    assert main(_args(w, GRAM + f" --out {png}")) == 0
    before = png.read_bytes()
    assert main(_args(w, GRAM + f" --out {png}")) == 2
    assert "--force" in capsys.readouterr().err and png.read_bytes() == before
    assert main(_args(w, GRAM + f" --out {png} --force")) == 0
    out = w / "user_neurons"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(_args(w, NEURONS + f" --tracks CDS --windows 1 --out {out}")) == 2
    assert main(_args(w, NEURONS + f" --tracks CDS --windows 1 --out {out} --force")) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "catalog.json").is_file()
    # a catalog folder holds only what a catalog writes: re-running into it needs no --force
    assert main(_args(w, NEURONS + f" --tracks CDS --windows 1 --out {w}/n_again")) == 0
    assert main(_args(w, NEURONS + f" --tracks CDS --windows 1 --out {w}/n_again")) == 0


# ---------------------------------------------------------------- output folders (issue 22)

STEER = ("steer --model {w}/model --genome {w}/genome.fa --sae {w}/sae --edit 3=1 "
         "--region chrA:1-40")
CONCEPTS = ("concepts eval --model {w}/model --genome {w}/genome.fa --annotations "
            "{w}/ann.gff3 --sae {w}/sae --no-codons --no-shuffled --sample 2000 --edge 0")
SAE_TRAIN_FASTA = ("sae train --model {w}/model --data {w}/genome.fa --layer 1 --arch topk "
                   "--steps 2 --batch-size 64 --window 128 --windows-per-batch 2 "
                   "--buffer-rows 256")

LOCKED = {
    "sae train": SAE_TRAIN_FASTA + " --k 4",
    "sae cache": ("sae cache --model {w}/model --data {w}/genome.fa --layer 1 --shards 1 "
                  "--batches-per-shard 1 --window 128 --windows-per-batch 2"),
    "sae meta": "sae meta --sae {w}/sae --steps 2 --width 4 --k 2",
    "steer": STEER,
    "concepts eval": CONCEPTS,
    "extract": EXTRACT.replace(" --out {w}/o_extract", "") + " --layers 0",
    "neurons": NEURONS + " --tracks CDS --windows 1",
    "audit index": "audit index --genome {w}/genome.fa",
    "audit search": "audit search --fasta {w}/genome.fa --genome {w}/genome.fa",
    "demo": "demo --skip-analysis",
    "figures": "figures --quick",
}


@pytest.mark.parametrize("command", LOCKED)
def test_a_second_run_into_a_busy_output_folder_fails_at_once(w, command, capsys):
    """Every writer of an output folder takes the lock ``train`` takes: a run into a folder
    another run holds is one line, exit 2, and writes nothing there."""
    from dnatlas.outputs import lock_folder

    out = w / f"busy_{command.replace(' ', '_')}"
    out.mkdir()
    with lock_folder(out):
        assert main(_args(w, LOCKED[command] + f" --out {out}")) == 2
    err = capsys.readouterr().err
    assert "another dnatlas run is using this" in err and "Traceback" not in err, err
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_train_takes_the_same_lock(w, capsys):
    from dnatlas.outputs import lock_folder

    out = w / "busy_train"
    out.mkdir()
    with lock_folder(out):
        assert main(_args(w, TRAIN + f" --out {out}")) == 2
    assert "is using this folder" in capsys.readouterr().err


def test_sae_train_replaces_an_sae_only_with_force(w, capsys):
    out = w / "sae_k"
    assert main(_args(w, SAE_TRAIN_FASTA + f" --k 8 --out {out}")) == 0
    k8 = json.loads((out / "cfg.json").read_text())
    assert k8["k"] == 8 and (out / ".complete.json").is_file()
    assert main(_args(w, SAE_TRAIN_FASTA + f" --k 2 --out {out}")) == 2
    assert "--force" in capsys.readouterr().err
    assert json.loads((out / "cfg.json").read_text()) == k8
    assert main(_args(w, SAE_TRAIN_FASTA + f" --k 2 --out {out} --force")) == 0
    assert json.loads((out / "cfg.json").read_text())["k"] == 2
    steps = [line.split(",")[0] for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps), key=int)  # one run's rows, not two interleaved
    # a folder of the user's files is not an SAE folder
    assert main(_args(w, SAE_TRAIN_FASTA + " --k 2 --out {w}/user_folder")) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in (w / "user_folder").iterdir()) == ["notes.txt"]


def test_a_failed_forced_rerun_leaves_no_mixed_folder(w, monkeypatch, capsys):
    """--force removes the earlier result before the new run; a run that fails midway leaves
    an unfinished folder (no completion marker) that readers refuse."""
    out = w / "steer_again"
    assert main(_args(w, STEER + f" --out {out}")) == 0
    assert (out / ".complete.json").is_file() and (out / "steer.json").is_file()
    from dnatlas.pipelines import steer_report

    def half_written(out, *args, **kwargs):
        (out / "positions.tsv").write_text("pos\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(steer_report, "write_all", half_written)
    assert main(_args(w, STEER + f" --out {out} --force")) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (out / ".complete.json").exists()
    assert not (out / "steer.json").exists()  # the earlier result went before the rerun
    (out / "feature_max.tsv").write_text("feature\tmax\n0\t1\n")  # a leftover, say
    monkeypatch.undo()
    assert main(_args(w, STEER + f" --out {w}/steer_reader --max-activations "
                                 f"{out}/feature_max.tsv")) == 2
    assert "unfinished" in capsys.readouterr().err


def test_concepts_eval_force_rerun_is_atomic(w, monkeypatch, capsys):
    out = w / "concepts_again"
    assert main(_args(w, CONCEPTS + f" --out {out}")) == 0
    assert (out / ".complete.json").is_file() and (out / "concepts.csv").is_file()
    assert main(_args(w, CONCEPTS + f" --out {out}")) == 2
    assert "--force" in capsys.readouterr().err
    from dnatlas.pipelines import concept_report

    def fails(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(concept_report, "write_report", fails)
    assert main(_args(w, CONCEPTS + f" --out {out} --force")) == 2
    assert not any(p.name in ("concepts.csv", "best.csv", ".complete.json")
                   for p in out.iterdir())
    from dnatlas.errors import InputError
    from dnatlas.pipelines.meta_sae import ConceptFilter, read_concepts

    (out / "concepts.csv").write_text("dictionary,concept,feature,split,f1_per_element\n")
    with pytest.raises(InputError, match="unfinished"):
        read_concepts(ConceptFilter(out / "concepts.csv"), 8)


def test_motifs_summary_cannot_be_the_hits(w, capsys):
    motifs = w / "m.jaspar"
    motifs.write_text(">MA0001.1 TEST\nA [ 9 0 0 ]\nC [ 0 9 0 ]\nG [ 0 0 9 ]\nT [ 0 0 0 ]\n")
    bed = w / "m.bed"
    assert main(_args(w, f"motifs scan --genome {{w}}/genome.fa --motifs {motifs} --out {bed} "
                         f"--summary {bed}")) == 2
    assert "same file" in capsys.readouterr().err and not bed.exists()
    from dnatlas.outputs import lock_file

    with lock_file(bed):  # another scan writing these hits (and their summary)
        assert main(_args(w, f"motifs scan --genome {{w}}/genome.fa --motifs {motifs} "
                             f"--out {bed}")) == 2
    assert "another dnatlas run" in capsys.readouterr().err and not bed.exists()


def test_extract_does_not_replace_another_region_without_force(w, capsys):
    out = w / "o_regions"
    base = "extract --model {w}/model --genome {w}/genome.fa --layers 0 --out " + str(out)
    assert main(_args(w, base + " --region chrA:1-500")) == 0
    assert main(_args(w, base + " --region chrA:1-500")) == 0  # the same span again: fine
    assert main(_args(w, base + " --region chrA:501-900")) == 2
    err = capsys.readouterr().err
    assert "chrA:1-500" in err and "--force" in err
    assert main(_args(w, base + " --region chrA:501-900 --force")) == 0


# ---------------------------------------------------------------- missing extras (issue 22)

MISSING = {
    "neurons": ("matplotlib", NEURONS + " --out {w}/x_neurons", "analysis"),
    "gram": ("matplotlib", GRAM + " --out {w}/x_gram.png", "analysis"),
    "steer": ("matplotlib", STEER + " --out {w}/x_steer", "analysis"),
    "concepts eval": ("scipy", CONCEPTS + " --out {w}/x_concepts", "analysis"),
    "concepts labels": ("scipy", "concepts labels --genome {w}/genome.fa --annotations "
                                 "{w}/ann.gff3 --out {w}/x_labels.bed", "analysis"),
    "demo": ("matplotlib", "demo --out {w}/x_demo", "analysis"),
    "figures": ("matplotlib", "figures --out {w}/x_figures", "analysis"),
    "annotate": ("pyrodigal", "annotate --genome {w}/genome.fa --out {w}/x_ann.gff3", "annotate"),
    "motifs": ("lightmotif", "motifs scan --genome {w}/genome.fa --jaspar CORE --out {w}/x_m.bed",
               "motifs"),
    "audit": ("scipy", "audit index --genome {w}/genome.fa --out {w}/x_index", "analysis"),
}


@pytest.mark.parametrize("command", MISSING)
def test_a_missing_extra_is_one_line_before_any_work(w, command, monkeypatch, capsys):
    module, argv, extra = MISSING[command]
    monkeypatch.setitem(__import__("sys").modules, module, None)  # as on a bare install
    assert main(_args(w, argv)) == 2
    err = capsys.readouterr().err
    assert err.count("dnatlas: error:") == 1 and "Traceback" not in err, err
    assert f"pip install 'dnatlas[{extra}]'" in err and module in err
    assert not list(w.glob("x_*"))  # nothing written, nothing started


def test_an_optional_extra_is_a_warning_naming_what_is_left_out(monkeypatch, capsys):
    from dnatlas import extras

    monkeypatch.setitem(__import__("sys").modules, "tensorboard", None)
    assert extras.optional("train", "the TensorBoard log") is False
    err = capsys.readouterr().err
    assert "warning: the TensorBoard log skipped" in err and "dnatlas[train]" in err
    assert set(extras.EXTRAS) >= {"atlas", "explorer", "analysis", "motifs", "annotate"}
    assert {"duckdb", "pyarrow"} <= set(extras.EXTRAS["atlas"])
    assert {"fastapi", "uvicorn", "pydantic"} <= set(extras.EXTRAS["explorer"])


def test_help_and_version_are_fast_and_import_no_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom dnatlas.cli import main\n"
            "for argv in (['--help'], ['--version'], ['neurons', '--help'], ['demo', '--help'],"
            " ['figures', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('TORCH', 'torch' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "TORCH False" in run.stdout, run.stdout[-500:]


# ---------------------------------------------------------------- write failures (issue 22)

FULL = {
    "eval --json": EVAL + " --json {w}/full/r.json",
    "sae eval --json": SAE_EVAL + " --json {w}/full/m.json",
    "sae train": SAE_TRAIN_FASTA + " --k 4 --out {w}/full/sae",
    "train": TRAIN + " --out {w}/full/run",
    "gram": GRAM + " --out {w}/full/g.png",
    "neurons": NEURONS + " --tracks CDS --windows 1 --out {w}/full/n",
    "steer": STEER + " --out {w}/full/steer",
    "concepts eval": CONCEPTS + " --out {w}/full/concepts",
    "sae meta": "sae meta --sae {w}/sae --steps 2 --width 4 --k 2 --out {w}/full/meta",
    "annotate": "annotate --genome {w}/genome.fa --tools prodigal --out {w}/full/a.gff3",
    "sae cache": LOCKED["sae cache"] + " --out {w}/full/cache",
    "extract": EXTRACT.replace("{w}/o_extract", "{w}/full/acts"),
    "concepts labels": ("concepts labels --genome {w}/genome.fa --annotations {w}/ann.gff3 "
                        "--out {w}/full/labels.bed"),
    "audit index": "audit index --genome {w}/genome.fa --out {w}/full/index",
}


@pytest.mark.parametrize("command", FULL)
def test_a_full_disk_is_one_line(w, command, monkeypatch, capsys):
    """Every durable write fsyncs; a disk that fills up fails there (simulated ENOSPC)."""
    import errno
    import shutil

    shutil.rmtree(w / "full", ignore_errors=True)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(_args(w, FULL[command])) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        "dnatlas: error:"), err
    assert "no space left" in err.lower()
    leftovers = [p.name for p in (w / "full").rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers  # nothing half-written


@pytest.mark.parametrize("command", ["sae train", "sae cache"])
def test_an_unwritable_output_folder_is_one_line_before_work(w, command, monkeypatch, capsys):
    out = w / f"readonly_{command.replace(' ', '_')}"
    out.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(out)
                        else real(p, mode, **k))
    assert main(_args(w, LOCKED[command] + f" --out {out}")) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "Traceback" not in err
    assert not any(out.iterdir())


# ---------------------------------------------------------------- one vocabulary (issue 22)


def test_old_genome_spellings_still_work_with_a_deprecation_note(w, capsys):
    from dnatlas.cli import build_parser
    from dnatlas.cli._model_input import genome_of

    out = w / "o_old_spelling"
    assert main(_args(w, "extract --model {w}/model --fasta {w}/genome.fa --layers 0 "
                         f"--region chrB --out {out}")) == 0
    assert "--fasta is deprecated" in capsys.readouterr().err
    for argv, genome in ((["annotate", "g.fa", "--out", "o.gff3"], "g.fa"),
                         (["motifs", "scan", "a.fa", "b.fa", "--jaspar", "CORE", "--out", "m"],
                          ["a.fa", "b.fa"]),
                         (["audit", "index", "--genomes", "a.fa", "--out", "i"], None),
                         (["steer", "-f", "g.fa", "--edit", "1=1", "--out", "o"], "g.fa")):
        args = build_parser().parse_args(argv)
        if genome is not None:
            assert genome_of(args) == genome, argv
        assert "deprecated" in capsys.readouterr().err, argv
    help_text = build_parser()._subparsers._group_actions[0].choices["steer"].format_help()
    assert "--genome" in help_text and "--fasta" not in help_text


def test_neurons_defaults_to_the_bundled_genome_and_annotation(tmp_path):
    out = tmp_path / "n"
    assert main(["neurons", "--layer", "0", "--region", "K-12-MG1655:1-3,000", "--tracks",
                 "CDS", "--windows", "0", "--out", str(out)]) == 0
    assert (out / "catalog.csv").is_file()


def test_a_genome_of_the_users_needs_its_annotation(w, capsys):
    assert main(_args(w, "neurons --model {w}/model --genome {w}/genome.fa --layer 0 "
                         "--out {w}/o_no_ann")) == 2
    assert "--annotations" in capsys.readouterr().err


def test_region_lists_keep_the_commas_inside_numbers(w):
    from dnatlas.genome.regions import parse_region_list, split_region_list

    assert split_region_list("K-12-MG1655:1-100,000") == ["K-12-MG1655:1-100,000"]
    assert split_region_list(["chrA:1,001-2,000,chrB:5", "chrC"]) == [
        "chrA:1,001-2,000", "chrB:5", "chrC"]
    assert [(r.seqid, r.start, r.end) for r in parse_region_list("a:1-1,000,b")] == [
        ("a", 0, 1000), ("b", None, None)]
    out = w / "o_regions_list"
    assert main(_args(w, CONCEPTS + " --valid chrA:1-1,500 --test chrA:1,501-3,000,chrB "
                                    f"--out {out}")) == 0
    splits = json.loads((out / "summary.json").read_text())["splits"]
    assert "chrA:1,501-3,000" in json.dumps(splits)


def test_concepts_eval_says_its_passes_and_writes_the_first_before_the_second(
        w, monkeypatch, capsys):
    from dnatlas.pipelines import concepts

    out = w / "o_two_passes"
    seen = []
    real_run = concepts._run_model

    def run_model(model, dicts, *args):
        if args[-1] == "random-init":  # the second pass starts: the first's results exist
            seen.append(json.loads((out / "summary.json").read_text()))
        return real_run(model, dicts, *args)

    monkeypatch.setattr(concepts, "_run_model", run_model)
    assert main(_args(w, CONCEPTS + f" --random-init --out {out}")) == 0
    err = capsys.readouterr().err
    assert "2 pass(es)" in err and "random-init control" in err and "pass 1 done" in err
    assert seen and "unfinished" in seen[0]
    final = json.loads((out / "summary.json").read_text())
    assert "unfinished" not in final and (out / ".complete.json").is_file()


@pytest.mark.parametrize("command", ["sae train", "sae cache"])
def test_too_little_disk_space_is_refused_before_work(w, command, monkeypatch, capsys):
    import shutil
    from types import SimpleNamespace

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=1000)
                        if "small_disk" in str(path) else real(path))
    out = w / f"small_disk_{command.replace(' ', '_')}"
    assert main(_args(w, LOCKED[command] + f" --out {out}")) == 2
    err = capsys.readouterr().err
    assert "not enough free disk space" in err and "Traceback" not in err
    assert not [p for p in out.rglob("*") if p.name != ".lock"]


def test_asking_whether_an_extra_is_installed_keeps_the_transformers_hook(tmp_path):
    """``dnatlas.extras`` looks modules up with importlib.util.find_spec; that must not
    unhook DNAtlas's registration with transformers (it did: AutoConfig then failed)."""
    import subprocess
    import sys

    pytest.importorskip("transformers")
    code = textwrap.dedent(f"""
        import sys
        import dnatlas
        from dnatlas import extras
        assert extras.missing("hf") == [] and "transformers" not in sys.modules
        import transformers
        from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
        DNAtlas(DNAtlasConfig.preset("tiny", n_layers=2)).save_pretrained({str(tmp_path)!r})
        print(type(transformers.AutoConfig.from_pretrained({str(tmp_path)!r})).__name__)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and "DNAtlasHFConfig" in run.stdout, run.stderr[-800:]
