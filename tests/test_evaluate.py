import json

import numpy as np
import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
from dnatlas.cli import main
from dnatlas.genome.store_build import build_store
from dnatlas.training.evaluate import dnatlas_predictor, evaluate, evaluation_windows


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalstore")
    rng = np.random.default_rng(1)
    # a genome with a strong period-3 signal, so context helps
    codons = np.array([list("ATG"), list("GCC"), list("AAA"), list("TGG")])
    seq = "".join("".join(codons[i]) for i in rng.integers(0, 4, 6000))
    (root / "a.fa").write_text(f">chrA\n{seq[:12000]}\n")
    (root / "b.fa").write_text(f">chrB\n{seq[12000:]}\n")
    (root / "b.gff3").write_text("##gff-version 3\nchrB\tx\tCDS\t1\t3000\t.\t+\t0\tID=c1\n")
    return build_store([root / "a.fa", root / "b.fa"], root / "store", val_genomes=["b"],
                       progress=False)


def _uniform(tokens):
    return torch.full((*tokens.shape, 4), float(np.log(0.25)))


def test_uniform_predictor_scores_two_bits(store):
    r = evaluate(_uniform, store, "val", window=256, max_windows=8)
    assert r["bits_per_nt"] == pytest.approx(2.0)
    assert r["n_positions"] > 0 and r["n_windows"] == 8


def test_evaluation_is_deterministic_and_windows_are_thinned_evenly(store):
    model = DNAtlas(DNAtlasConfig(d_model=8, n_neurons=16, n_layers=2, dilations=(1, 2)))
    a = evaluate(dnatlas_predictor(model), store, "val", window=256, max_windows=6)
    b = evaluate(dnatlas_predictor(model), store, "val", window=256, max_windows=6)
    assert a == b
    seg, start = evaluation_windows(store, "val", 256, 6)
    assert seg.size == 6 and start[0] == 0 and np.all(np.diff(start) > 0)


def test_coding_and_noncoding_partition_the_positions(store, tmp_path):
    from dnatlas.training.evaluate import coding_lookup
    gff = store.path.parent / "b.gff3"
    r = evaluate(_uniform, store, "val", window=256, max_windows=20, coding=coding_lookup(store, gff))
    assert r["coding"]["n_positions"] + r["noncoding"]["n_positions"] == r["n_positions"]
    assert r["coding"]["n_positions"] > 0 and r["noncoding"]["n_positions"] > 0


def test_eval_cli_puts_models_and_kmer_baseline_side_by_side(store, tmp_path, capsys):
    model = DNAtlas(DNAtlasConfig(d_model=8, n_neurons=16, n_layers=2, dilations=(1, 2)))
    model.save_pretrained(tmp_path / "m")
    out = tmp_path / "eval.json"
    code = main(["eval", "--model", str(tmp_path / "m"), "--data", str(store.path),
                 "--baseline", "kmer", "--kmer-orders", "1,2,3", "--window", "256",
                 "--max-windows", "8", "--json", str(out)])
    assert code == 0
    results = json.loads(out.read_text())
    kmer = results["baseline:kmer"]
    assert kmer["k"] in (1, 2, 3)
    assert kmer["bits_per_nt"] < 1.9  # the codon structure is learnable from counts
    assert f"model:{tmp_path / 'm'}" in results  # named as given on the command line
    assert "bits/nt" in capsys.readouterr().out


def test_eval_cli_rejects_unknown_baseline(store, capsys):
    assert main(["eval", "--data", str(store.path), "--baseline", "hmm"]) == 2
    assert "unknown baseline" in capsys.readouterr().err
