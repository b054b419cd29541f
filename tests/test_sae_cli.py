"""``dnatlas sae`` end to end on a tiny FASTA and random-init models."""

import json

import numpy as np
import pytest

from dnatlas.cli import main
from dnatlas.genome.alphabet import decode
from dnatlas.sae.saelens_format import load_sae


@pytest.fixture
def fasta(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "g.fa"
    path.write_text("".join(f">r{i}\n{decode(rng.integers(0, 4, 3000))}\n" for i in range(2)))
    return path


COMMON = ["--window", "64", "--windows-per-batch", "4", "--device", "cpu"]


def test_train_resume_eval(tmp_path, fasta, capsys):
    out = tmp_path / "sae"
    args = ["sae", "train", "--model", "dnatlas:tiny:random-init", "--data", str(fasta),
            "--layer", "1", "--site", "residual", "--arch", "topk", "--expansion", "4", "--k", "8",
            "--steps", "6", "--batch-size", "64", "--buffer-rows", "512", "--out", str(out), *COMMON]
    assert main(args) == 0
    sae = load_sae(out)
    assert sae.cfg.hook_name == "blocks.1.residual" and sae.cfg.model_name == "dnatlas:tiny:random-init"
    assert main(args) == 2  # checkpoint exists without --resume
    assert "checkpoint already exists" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0  # already complete: resumes at the end

    report = tmp_path / "m.json"
    assert main(["sae", "eval", "--sae", str(out), "--model", "dnatlas:tiny:random-init", "--data",
                 str(fasta), "--batches", "2", "--loss-batches", "1", "--json", str(report), *COMMON]) == 0
    metrics = json.loads(report.read_text())
    assert metrics["l0"] == pytest.approx(8.0)
    for k in ("fvu", "dead_features", "dense_features", "loss_recovered", "loss_clean"):
        assert k in metrics
    assert len(metrics["feature_frequency"]) == sae.d_sae


def test_cache_then_train_several_layers(tmp_path, fasta):
    cache = tmp_path / "cache"
    assert main(["sae", "cache", "--model", "hyenadna:random-init", "--data", str(fasta), "--layer", "0,2",
                 "--shards", "2", "--batches-per-shard", "2", "--out", str(cache), *COMMON]) == 0
    assert json.loads((cache / "manifest.json").read_text())["complete"]
    multi = tmp_path / "multi"
    assert main(["sae", "train", "--model", "hyenadna:random-init", "--data", str(cache), "--layer", "0,2",
                 "--arch", "relu", "--expansion", "2", "--steps", "3", "--batch-size", "128",
                 "--out", str(multi), *COMMON]) == 0
    assert load_sae(multi / "blocks.2.residual").cfg.d_in == 256


def test_cli_errors(tmp_path, fasta, capsys):
    base = ["sae", "train", "--model", "dnatlas:tiny:random-init", "--out", str(tmp_path / "o"), *COMMON]
    assert main(base + ["--data", str(tmp_path / "nope"), "--layer", "0", "--arch", "relu"]) == 2
    assert main(base + ["--data", str(fasta), "--layer", "99", "--arch", "relu"]) == 2
    assert "layer 99 out of range" in capsys.readouterr().err
    assert main(base + ["--data", str(fasta), "--layer", "0", "--arch", "topk"]) == 2
    assert main(["sae", "train", "--model", "nt:random-init", "--data", str(fasta), "--layer", "0",
                 "--arch", "relu", "--window", "7000", "--out", str(tmp_path / "o")]) == 2
    assert "is longer than" in capsys.readouterr().err
    assert main(["sae", "train", "--model", "gpt:x", "--data", str(fasta), "--layer", "0", "--arch", "relu",
                 "--out", str(tmp_path / "o")]) == 2


def test_eval_warns_when_zero_ablation_beats_the_clean_model(tmp_path, fasta, capsys,
                                                             monkeypatch):
    """'loss recovered' means nothing when zeroing the site does not hurt the model."""
    import dnatlas.sae.metrics as metrics

    out = tmp_path / "sae"
    assert main(["sae", "train", "--model", "dnatlas:tiny:random-init", "--data", str(fasta),
                 "--layer", "1", "--arch", "topk", "--expansion", "2", "--k", "4", "--steps",
                 "2", "--batch-size", "64", "--buffer-rows", "256", "--out", str(out),
                 *COMMON]) == 0
    eval_args = ["sae", "eval", "--sae", str(out), "--model", "dnatlas:tiny:random-init",
                 "--data", str(fasta), "--batches", "1", "--loss-batches", "1", *COMMON]
    real = metrics.loss_recovered

    def zero_beats_clean(*args, **kwargs):
        result = real(*args, **kwargs)
        return {**result, "loss_zero": result["loss_clean"] - 0.1}

    monkeypatch.setattr(metrics, "loss_recovered", zero_beats_clean)
    assert main(eval_args + ["--json", str(tmp_path / "m.json")]) == 0
    assert "dnatlas: warning: zero-ablation" in capsys.readouterr().err
    assert json.loads((tmp_path / "m.json").read_text())["warnings"]
