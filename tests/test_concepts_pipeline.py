"""The concept-evaluation pipeline end to end: planted features found on both strands,
shuffled labels and a random-init model not; outputs, splits and one-line errors."""

import csv
import json

import numpy as np
import pytest
import torch

from dnatlas.cli import main
from dnatlas.concepts.label_sources import LabelSpec
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import decode, encode, reverse_complement
from dnatlas.models import ModelAdapter
from dnatlas.pipelines.concepts import ConceptSettings, evaluate_concepts, write_concept_labels
from tests.helpers import one_line

MOTIF = encode("GATTACA")          # not its own reverse complement
L = 40_000


class MotifAdapter(ModelAdapter):
    """A model whose site ``blocks.0.residual`` has three channels, computed from the
    sequence it reads: 0 = inside a GATTACA (plus a small noise), 1 = noise only,
    2 = the base read is A. Not RC-equivariant: the − strand is a pass over the RC."""

    kind, sites, n_layers = "motif", ("residual",), 1
    receptive_field = len(MOTIF) - 1

    def __init__(self, planted=True, name="motif"):
        self.planted, self.name = planted, name

    device = property(lambda self: torch.device("cpu"))

    def to(self, device):
        return self

    def d(self, key):
        return 3

    def activations(self, tokens, keys, intervene=None):
        t = tokens.numpy()
        B, n = t.shape
        m = len(MOTIF)
        hit = np.zeros((B, n), dtype=bool)
        starts = np.all([t[:, j:n - m + 1 + j] == MOTIF[j] for j in range(m)], axis=0)
        for j in range(m):
            hit[:, j:n - m + 1 + j] |= starts
        noise = 0.15 * ((t * 7 + np.roll(t, 1, axis=1) * 3 + np.roll(t, -1, axis=1)) % 5) / 4
        signal = hit if self.planted else np.zeros_like(hit)
        acts = np.stack([signal + noise, noise, (t == 0).astype(float)], axis=-1)
        return {k: torch.from_numpy(acts.astype(np.float32)) for k in keys}

    def nucleotide_log_probs(self, tokens, intervene=None):
        raise NotImplementedError

    def mlm_loss(self, tokens, intervene=None, seed=0):
        raise NotImplementedError

    def random_init(self, seed=0):
        return MotifAdapter(planted=False, name="motif:random-init")

    def state_for_fingerprint(self):
        return [("planted", self.planted)]


def _occurrences(seq: np.ndarray, motif: np.ndarray) -> list[int]:
    m = len(motif)
    return [i for i in range(len(seq) - m + 1) if np.array_equal(seq[i:i + m], motif)]


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """A random genome with GATTACA planted on both strands, and a BED of every
    occurrence (found by brute force) on its strand."""
    root = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(1)
    seq = rng.integers(0, 4, L).astype(np.uint8)
    rc_motif = reverse_complement(MOTIF)
    for i in range(150, L - 20, 250):
        seq[i:i + 7] = MOTIF if (i // 250) % 2 else rc_motif
    (root / "g.fa").write_text(f">chrP\n{decode(seq)}\n")
    plus = _occurrences(seq, MOTIF)
    minus = _occurrences(seq, rc_motif)
    with open(root / "motif.bed", "w") as fh:
        for i in plus:
            fh.write(f"chrP\t{i}\t{i + 7}\tGATTACA\t0\t+\n")
        for i in minus:
            fh.write(f"chrP\t{i}\t{i + 7}\tGATTACA\t0\t-\n")
    with open(root / "minus_only.bed", "w") as fh:
        for i in minus:
            fh.write(f"chrP\t{i}\t{i + 7}\tminus\t0\t-\n")
    return root, seq, len(plus), len(minus)


def _settings(root, **kw):
    labels = LabelSpec(concepts=(), codons=False, beds=[str(root / "motif.bed"),
                                                        str(root / "minus_only.bed")])
    return ConceptSettings(sample_nt=10_000, chunk_size=8192, labels=labels, **kw)


@pytest.fixture(scope="module")
def evaluated(genome, tmp_path_factory):
    root, *_ = genome
    out = tmp_path_factory.mktemp("eval")
    result = evaluate_concepts(MotifAdapter(), root / "g.fa", None, out,
                               neurons=["blocks.0.residual"], random_init=True,
                               settings=_settings(root))
    return result, out


def _best(result, dictionary, strand, concept, labels="real"):
    rows = [r for r in result.best if r["dictionary"] == dictionary and r["strand"] == strand
            and r["concept"] == concept and r["labels"] == labels]
    assert len(rows) == 1
    return rows[0]


def test_planted_feature_is_found_on_both_strands_and_controls_are_not(evaluated, genome):
    result, _ = evaluated
    _, _, n_plus, n_minus = genome
    for strand in ("+", "-", "both"):
        row = _best(result, "neurons:blocks.0.residual", strand, "motif:GATTACA")
        assert row["feature"] == 0 and row["identified"]
        assert row["test_f1_per_element"] > 0.97 and row["valid_f1_per_element"] > 0.97
        assert row["test_precision"] > 0.97
        shuffled = _best(result, "neurons:blocks.0.residual", strand, "motif:GATTACA", "shuffled")
        assert shuffled["test_f1_per_element"] < 0.1 and not shuffled["identified"]
        control = _best(result, "random-init neurons:blocks.0.residual", strand, "motif:GATTACA")
        assert control["test_f1_per_element"] < 0.1
    # every element counted exactly once over the two splits
    both = _best(result, "neurons:blocks.0.residual", "both", "motif:GATTACA")
    assert both["valid_n_elements"] + both["test_n_elements"] == pytest.approx(
        n_plus + n_minus, abs=2)       # an element cut by the split boundary counts twice


def test_strands_are_told_apart(evaluated):
    """A concept with elements only on the − strand is found there, and has no element
    (F1 0) on the + strand; the base read on − is the complement of the forward base."""
    result, _ = evaluated
    minus = _best(result, "neurons:blocks.0.residual", "-", "minus_only:minus")
    plus = _best(result, "neurons:blocks.0.residual", "+", "minus_only:minus")
    assert minus["identified"] and minus["feature"] == 0
    assert plus["test_n_elements"] == 0 and plus["test_f1_per_element"] == 0
    for strand in ("+", "-"):
        a = _best(result, "neurons:blocks.0.residual", strand, "A")
        assert a["feature"] == 2 and a["test_precision"] == 1.0 and a["test_recall"] == 1.0


def test_outputs(evaluated):
    result, out = evaluated
    with open(out / "concepts.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:17] == ["dictionary", "labels", "strand", "concept", "feature",
                                  "threshold", "split", "tp", "fp", "n_positive", "n_elements",
                                  "elements_hit", "precision", "recall", "recall_per_element",
                                  "f1", "f1_per_element"]
    assert {r["split"] for r in rows} == {"valid", "test"}
    summary = json.loads((out / "summary.json").read_text())
    neurons = summary["dictionaries"]["neurons:blocks.0.residual"]["views"]["real both"]
    assert "motif:GATTACA" in neurons["identified"] and neurons["features_tied"] >= 2
    shuffled = summary["dictionaries"]["neurons:blocks.0.residual"]["views"]["shuffled both"]
    assert "motif:GATTACA" not in shuffled["identified"]
    assert summary["splits"]["valid"] == [f"chrP:1-{L // 2:,}"]  # 1-based, closed
    assert "motif:GATTACA" in neurons["identified_beyond_shuffled"]
    assert 1 <= neurons["features_tied_beyond_shuffled"] <= neurons["features_tied"]
    # table columns: neurons, random-init, shuffled labels (each its own view)
    row = next(line for line in result.table.splitlines() if line.startswith("motif:GATTACA"))
    neuron_f1, control_f1, shuffled_f1 = (float(cell.rstrip("*")) for cell in row.split()[1::2])
    assert neuron_f1 > 0.97 and control_f1 < 0.1 and shuffled_f1 < 0.1
    for png in ("f1_distributions.png", "identified_vs_threshold.png"):
        assert (out / png).stat().st_size > 10_000


def test_sae_dictionary_and_rc_pairs(genome, tmp_path):
    """An SAE whose latent 1 reads channel 0 finds the motif through the SAE path."""
    from dnatlas.sae import build_sae, make_config
    from dnatlas.sae.saelens_format import save_sae

    root, *_ = genome
    sae = build_sae(make_config("relu", d_in=3, d_sae=4, hook_name="blocks.0.residual",
                              normalize=False))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.W_enc[0, 1] = 1.0           # latent 1 = relu(channel 0 - b_dec . W_enc)
        sae.W_enc[1, 2] = 1.0
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    save_sae(sae, tmp_path / "sae")
    result = evaluate_concepts(MotifAdapter(), root / "g.fa", None, tmp_path / "out",
                               saes=[tmp_path / "sae"], neurons=[],
                               settings=_settings(root, shuffled=False))
    row = _best(result, "sae:sae", "both", "motif:GATTACA")
    assert row["feature"] == 1 and row["identified"]


def test_splits_must_be_disjoint_and_known(genome, tmp_path):
    root, *_ = genome
    with pytest.raises(InputError, match="overlaps"):
        evaluate_concepts(MotifAdapter(), root / "g.fa", None, tmp_path / "o",
                          neurons=["blocks.0.residual"],
                          settings=_settings(root, valid=["chrP:1-20000"], test=["chrP:19001-40000"]))
    with pytest.raises(InputError, match="no record 'chrQ'"):
        evaluate_concepts(MotifAdapter(), root / "g.fa", None, tmp_path / "o",
                          neurons=["blocks.0.residual"],
                          settings=_settings(root, valid=["chrQ"], test=["chrP"]))
    with pytest.raises(InputError, match="both valid and test"):
        evaluate_concepts(MotifAdapter(), root / "g.fa", None, tmp_path / "o",
                          neurons=["blocks.0.residual"], settings=_settings(root, valid=["chrP"]))


def test_concept_labels_bed(genome, tmp_path):
    root, seq, n_plus, n_minus = genome
    spec = LabelSpec(concepts=(), codons=False, beds=[str(root / "motif.bed")])
    rows = write_concept_labels(root / "g.fa", None, tmp_path / "labels.bed", spec)
    by = {r.concept: r for r in rows}
    assert by["motif:GATTACA"].elements == n_plus + n_minus
    assert by["motif:GATTACA"].positions_plus == 7 * n_plus
    assert by["A"].positions_plus == int((seq == 0).sum())
    assert by["A"].positions_minus == int((seq == 3).sum())
    lines = (tmp_path / "labels.bed").read_text().splitlines()
    assert len(lines) == n_plus + n_minus
    assert lines[0].split("\t")[3].startswith("motif:GATTACA|")
    with pytest.raises(InputError, match="exists"):
        write_concept_labels(root / "g.fa", None, tmp_path / "labels.bed", spec)


@pytest.mark.parametrize("argv, words", [
    (["--thresholds", "0.5,0.2"], ("thresholds", "ascending")),
    (["--thresholds", "a"], ("--thresholds",)),
    (["--valid", "K-12-MG1655:1-100"], ("--valid", "--test")),
    (["--random-init-sae", "x"], ("--random-init",)),
    (["--sae", "/nonexistent/sae"], ("SAE folder",)),
])
def test_cli_errors_are_one_line(argv, words, tmp_path, capsys):
    code = main(["concepts", "eval", "--out", str(tmp_path / "o"), *argv])
    assert code == 2
    one_line(capsys.readouterr().err, *words)


def test_headlines_are_typed_and_the_defaults_live_in_the_library(evaluated):
    from dnatlas.pipelines.concepts import default_annotations, default_saes

    result, _ = evaluated
    by_name = {h.name: h for h in result.headlines}
    assert list(by_name) == list(result.summary["dictionaries"])
    real = by_name["neurons:blocks.0.residual"]
    view = result.summary["dictionaries"][real.name]["views"]["real both"]
    assert real.view == "real both" and real.identified == view["identified"]
    assert real.features_tied == view["features_tied"]
    assert real.identified_beyond_shuffled == view["identified_beyond_shuffled"]
    control = by_name["random-init neurons:blocks.0.residual"]
    assert control.identified_beyond_shuffled is None  # no shuffled control counted
    assert default_annotations("ecoli_k12_mg1655") == "ecoli_k12_mg1655"
    assert default_annotations("genome.fa") is None
    assert default_annotations("genome.fa", ["a.gff3"]) == ["a.gff3"]
    assert default_annotations("ecoli_k12_mg1655", None) is None
    assert default_saes(None, None, None) == ["default"] == default_saes("default", None, None)
    assert default_saes("default", None, ["blocks.2.residual"]) == []
    assert default_saes("dnatlas:x", None, None) == [] and default_saes(None, ["s"], None) == ["s"]
