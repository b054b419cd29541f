"""Every subcommand answers bad input (flags, files, damaged models, unusable outputs,
devices) with one line, ``dnatlas: error: ...``, exit code 2 and no traceback."""

import json
import os

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


EXTRACT = "extract --model {w}/model --fasta {w}/genome.fa --out {w}/o_extract"
GRAM = "gram --model {w}/model --fasta {w}/genome.fa --region chrA:1-500 --layer 0"
NEURONS = "neurons --model {w}/model --fasta {w}/genome.fa --annotations {w}/ann.gff3 --layer 0"
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
    "gram no layer": "gram --model {w}/model --fasta {w}/genome.fa --region chrA:1-500 --out {w}/g.png",
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
    "extract missing fasta": "extract --model {w}/model --fasta {w}/nope.fa --out {w}/o",
    "extract missing model": "extract --model {w}/nope --fasta {w}/genome.fa --out {w}/o",
    "extract model is a file": "extract --model {w}/a_file --fasta {w}/genome.fa --out {w}/o",
    "extract config is a list": "extract --model {w}/list_config --fasta {w}/genome.fa --out {w}/o",
    "extract truncated weights": "extract --model {w}/truncated --fasta {w}/genome.fa --out {w}/o",
    "extract empty weights": "extract --model {w}/empty --fasta {w}/genome.fa --out {w}/o",
    "extract garbage weights": "extract --model {w}/garbage --fasta {w}/genome.fa --out {w}/o",
    "extract unknown kind": "extract --model gpt:{w}/model --fasta {w}/genome.fa --out {w}/o",
    "neurons missing annotation": NEURONS.replace("ann.gff3", "nope.gff3") + " --out {w}/o_n",
    "eval not a store": "eval --model {w}/model --data {w}/model",
    "sae eval missing sae": SAE_EVAL.replace("{w}/sae", "{w}/nope"),
    "sae eval damaged sae": SAE_EVAL.replace("{w}/sae", "{w}/bad_sae"),
    "sae eval truncated weights": SAE_EVAL.replace("{w}/sae", "{w}/truncated_sae"),
    "gram truncated activations": "gram --acts {w}/acts --out {w}/t.png",
    "sae missing data": SAE_TRAIN.replace("{w}/store", "{w}/nope") + " --out {w}/s9",
    "data info not a store": "data info {w}/model",
    "data build missing": "data build {w}/nope.fa --out {w}/st",
    "hf without repo": "extract --model hf: --fasta {w}/genome.fa --out {w}/o",
    # outputs that cannot be written
    "extract out is a file": "extract --model {w}/model --fasta {w}/genome.fa --out {w}/a_file",
    "extract out under a file": "extract --model {w}/model --fasta {w}/genome.fa --out {w}/a_file/x",
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
    "annotate out exists": "annotate {w}/genome.fa --out {w}/a_file --tools prodigal",
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
    assert main(_args(w, f"extract --model {other} --fasta {{w}}/genome.fa --out {out} "
                         "--layers 0")) == 2
    assert "--force" in capsys.readouterr().err
    assert json.loads((out / "meta.json").read_text()) == before
    (out / "mine.txt").write_text("user file")
    assert main(_args(w, f"extract --model {other} --fasta {{w}}/genome.fa --out {out} "
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
