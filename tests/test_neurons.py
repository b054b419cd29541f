import csv
import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from dnatlas.analysis.catalog import NeuronCatalog, write_top_windows
from dnatlas.analysis.neurons import (
    GenomeLabels,
    catalog_track_names,
    footnote6_names,
    pr_curve,
    scan_neurons,
)
from dnatlas.annotation.intervals import Interval
from dnatlas.annotation.tracks import label_tracks
from dnatlas.genome.alphabet import encode, reverse_complement

FILLER = "ACGGACCAGCAGGCCA"  # no T: contains neither ATG nor CAT



pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _genome():
    """A record with one gene per strand and no other ATG or CAT.

    + gene: ATG GGG GGG TAA at [20, 32); − gene at [50, 62), whose reverse complement is
    ATG CCC CCC TAA, so on the forward strand it reads TTA GGG GGG CAT.
    """
    plus_gene = "ATG" + "GGG" * 2 + "TAA"
    minus_gene = "TTA" + "GGG" * 2 + "CAT"
    text = FILLER + "ACGG" + plus_gene + FILLER + "GG" + minus_gene + FILLER + "AC" * 5
    assert text.count("ATG") == 1 and text.count("CAT") == 1
    seq = encode(text)
    genes = [Interval("r1", 20, 32, 1, "CDS", "plusA", {"ID": "cds1"}),
             Interval("r1", 50, 62, -1, "CDS", "minusB", {"ID": "cds2"})]
    return seq, genes


def _detector_acts(seq):
    """Neuron 0 fires on the middle of ATG; neuron 1 (its RC partner) on the middle of CAT.

    Neuron 2 is noise, neuron 3 its partner: an RCPS-consistent set with perm [1, 0, 3, 2].
    """
    s = np.asarray(seq)
    atg = np.zeros(len(s), np.float32)
    cat = np.zeros(len(s), np.float32)
    mid = np.arange(1, len(s) - 1)
    atg[mid] = (s[mid - 1] == 0) & (s[mid] == 3) & (s[mid + 1] == 2)
    cat[mid] = (s[mid - 1] == 1) & (s[mid] == 0) & (s[mid + 1] == 3)
    rng = np.random.default_rng(0)
    noise = rng.random((2, len(s))).astype(np.float32)
    return np.stack([atg, cat, noise[0], noise[1]]).astype(np.float16), np.array([1, 0, 3, 2])


def test_detector_is_rc_consistent():
    seq, _ = _genome()
    acts, perm = _detector_acts(seq)
    rc_acts, _ = _detector_acts(reverse_complement(seq))
    # activations on the reverse complement = partner on the forward strand, flipped
    np.testing.assert_array_equal(rc_acts[:2], acts[perm[:2]][:, ::-1])


def test_strand_alignment_start_codon_2nd():
    seq, genes = _genome()
    tracks = label_tracks(genes, "r1", len(seq))
    labels = GenomeLabels.from_tracks({"r1": tracks}, footnote6=True)
    assert "start_codon_2nd" in labels.names and "start_codon" not in labels.names
    acts, perm = _detector_acts(seq)
    auprc, windows = scan_neurons([acts], labels, perm, seqs=[seq], top_k=3, half_window=4,
                                  progress=False)
    t = labels.names.index("start_codon_2nd")
    # the ATG detector finds the start codons' 2nd nucleotides on both strands perfectly
    assert auprc[0, t] == 1.0
    # its partner reads the same motif on the opposite strand, i.e. detects the start
    # codon's reverse complement on its own strand: not a start-codon neuron
    assert auprc[1, t] < 0.05
    assert labels.chance[t] == pytest.approx(2 / (2 * len(seq)))
    # top windows read 5'->3' on their strand: the centre is ATG on both strands
    tops = windows[0][:2]  # the third is some zero-activation window
    assert {w.strand for w in tops} == {1, -1}
    for w in tops:
        assert w.sequence[3:6] == "ATG"
        assert w.values[4] == pytest.approx(1.0)
    minus = next(w for w in tops if w.strand == -1)
    assert minus.position == 60  # middle of the CAT at [59, 62) on the forward strand
    assert auprc[0, labels.names.index("CDS")] < 0.5


def test_plus_strand_only_without_perm_and_pr_curve():
    seq, genes = _genome()
    tracks = label_tracks(genes, "r1", len(seq))
    labels = GenomeLabels.from_tracks({"r1": tracks}, names=["start_codon_2nd", "CDS"])
    acts, perm = _detector_acts(seq)
    auprc, windows = scan_neurons([acts], labels, None, progress=False)
    assert windows == {}
    expected = average_precision_score(tracks["start_codon_2nd"][0], acts[0].astype(float))
    assert auprc[0, 0] == pytest.approx(expected)
    precision, recall, _ = pr_curve([acts], labels, "start_codon_2nd", 0, perm)
    assert recall[0] == 1 and precision[-1] == 1


def test_two_records_and_subset_match_sklearn():
    rng = np.random.default_rng(1)
    tracks, acts, seqs = {}, [], []
    for name, length in (("a", 300), ("b", 200)):
        seq = rng.integers(0, 4, length).astype(np.uint8)
        genes = [Interval(name, 30, 120, 1, "CDS", "g", {"ID": name + "1"}),
                 Interval(name, 150, 195, -1, "CDS", "h", {"ID": name + "2"})]
        tracks[name] = label_tracks(genes, name, length)
        acts.append(rng.random((6, length)).astype(np.float16))
        seqs.append(seq)
    labels = GenomeLabels.from_tracks(tracks)
    perm = np.array([3, 4, 5, 0, 1, 2])
    auprc, windows = scan_neurons(acts, labels, perm, seqs=seqs, neurons=[4, 1], top_k=2,
                                  half_window=3, progress=False)
    t = labels.names.index("CDS")
    y = np.r_[tracks["a"]["CDS"][0], tracks["b"]["CDS"][0], tracks["a"]["CDS"][1],
              tracks["b"]["CDS"][1]]
    for row, n in enumerate([4, 1]):
        s = np.r_[acts[0][n], acts[1][n], acts[0][perm[n]], acts[1][perm[n]]].astype(float)
        assert auprc[row, t] == pytest.approx(average_precision_score(y, s))
    assert set(windows) == {4, 1}
    w = windows[4][0]
    assert w.seqid in ("a", "b") and w.end - w.start <= 7


def test_catalog_names_and_files(tmp_path):
    names = catalog_track_names(["CDS", "start_codon", "start_codon_2nd", "stop_codon",
                                 "stop_codon_1st", "tRNA"])
    assert names == ["CDS", "start_codon", "stop_codon", "tRNA"]
    assert catalog_track_names(["start_codon", "start_codon_2nd"], True) == ["start_codon_2nd"]
    assert footnote6_names(["CDS", "stop_codon"]) == ["CDS", "stop_codon_1st"]
    assert footnote6_names(["start_codon_2nd"], False) == ["start_codon_2nd"]
    catalog = NeuronCatalog("blocks.0.neurons", ["CDS", "tRNA"], np.array([0, 1, 2]),
                            np.array([[0.5, np.nan], [0.9, 0.1], [0.7, 0.2]]),
                            np.array([0.4, 0.001]), np.array([40, 1]), 100)
    assert catalog.best("CDS") == (1, 0.9)
    assert [n for n, _ in catalog.ranking("tRNA")] == [2, 1, 0]
    catalog.save(tmp_path, top=2, extra={"model": "toy"})
    rows = list(csv.DictReader(open(tmp_path / "catalog.csv")))
    assert len(rows) == 4 and rows[0]["neuron"] == "1" and rows[0]["track"] == "CDS"
    doc = json.loads((tmp_path / "catalog.json").read_text())
    assert doc["model"] == "toy" and doc["tracks"]["tRNA"]["ranking"][0]["neuron"] == 2
    assert np.load(tmp_path / "auprc.npz")["auprc"].shape == (3, 2)
    seq, genes = _genome()
    labels = GenomeLabels.from_tracks({"r1": label_tracks(genes, "r1", len(seq))})
    acts, perm = _detector_acts(seq)
    _, windows = scan_neurons([acts], labels, perm, seqs=[seq], neurons=[0], top_k=2,
                              progress=False)
    write_top_windows(windows, tmp_path / "top.csv")
    write_top_windows(windows, tmp_path / "top.json")
    assert len(list(csv.DictReader(open(tmp_path / "top.csv")))) == 2
    assert len(json.loads((tmp_path / "top.json").read_text())[0]["values"]) == 41


@pytest.mark.slow
def test_cli_neurons(tmp_path, capsys):
    from dnatlas.cli import main
    from tests.helpers import write_inputs

    model, fasta, gff = write_inputs(tmp_path)
    out = tmp_path / "neurons"
    args = ["neurons", "--model", str(model), "--genome", str(fasta), "--annotations", str(gff),
            "--layer", "2", "--footnote6", "--windows", "3", "--half-window", "10",
            "--manhattan", "0,5", "--out", str(out)]
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert "start_codon_2nd" in summary and "tRNA" in summary
    doc = json.loads((out / "catalog.json").read_text())
    assert doc["records"] == ["chrA", "chrB"] and doc["footnote6"] is True
    chance = doc["tracks"]["start_codon_2nd"]["chance"]
    assert chance == pytest.approx(3 / (2 * 3300))
    for name in ("catalog.csv", "auprc.npz", "top_windows.csv", "top_windows.json",
                 "pr/start_codon_2nd.png", "pr/codons.png", "manhattan/neuron_5.png",
                 "windows/neuron_0.png"):
        assert (out / name).exists(), name
    assert main([*args[:-2], "--manhattan", "9999", "--out", str(out)]) == 2
    # a second run reuses the extracted activations
    mtime = (out / "acts" / "meta.json").stat().st_mtime
    assert main(args) == 0
    assert (out / "acts" / "meta.json").stat().st_mtime == mtime


def test_cli_neurons_several_layers_in_one_pass(tmp_path, capsys):
    from dnatlas.cli import main
    from tests.helpers import write_inputs

    model, fasta, gff = write_inputs(tmp_path)
    out = tmp_path / "neurons"
    args = ["neurons", "--model", str(model), "--genome", str(fasta), "--annotations", str(gff),
            "--layers", "0,2", "--footnote6", "--windows", "2", "--tracks", "CDS,start_codon",
            "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "best_layer" in printed and "start_codon_2nd" in printed and "codon_match" in printed
    rows = list(csv.DictReader(open(out / "layers.csv")))
    assert [(r["track"], r["layer"]) for r in rows] == [
        ("CDS", "blocks.0.neurons"), ("CDS", "blocks.2.neurons"),
        ("start_codon_2nd", "blocks.0.neurons"), ("start_codon_2nd", "blocks.2.neurons")]
    for layer in ("blocks.0.neurons", "blocks.2.neurons"):
        doc = json.loads((out / layer / "catalog.json").read_text())
        best = doc["tracks"]["start_codon_2nd"]["ranking"][0]
        assert set(doc["codon_match_auprc"]) == {"start_codon_2nd"}
        assert 0 < doc["codon_match_auprc"]["start_codon_2nd"] <= 1
        row = next(r for r in rows if r["layer"] == layer and r["track"] == "start_codon_2nd")
        assert int(row["neuron"]) == best["neuron"]
        assert float(row["auprc"]) == pytest.approx(best["auprc"], rel=1e-5)
    best = [r for r in rows if r["best_layer"] == "True"]
    assert len(best) == 2
    meta = json.loads((out / "acts" / "meta.json").read_text())
    assert {a["layer"] for a in meta["arrays"]} == {"blocks.0.neurons", "blocks.2.neurons"}
    # the same weights in another folder are the same model: its activations are reused
    other = ["neurons", "--model", str(tmp_path / "elsewhere"), *args[3:]]
    (tmp_path / "elsewhere").mkdir()
    for name in ("config.json", "model.safetensors"):
        (tmp_path / "elsewhere" / name).write_bytes((model / name).read_bytes())
    before = (out / "acts" / "meta.json").stat().st_mtime_ns
    assert main(other) == 0
    assert (out / "acts" / "meta.json").stat().st_mtime_ns == before
    capsys.readouterr()
    # a model retrained at the same path is another model: its activations are not reused
    import torch

    from dnatlas.architectures.dnatlas import DNAtlas

    torch.manual_seed(123)
    DNAtlas(DNAtlas.from_pretrained(model).config).save_pretrained(model)
    assert main(args) == 2
    assert "another model_fingerprint" in capsys.readouterr().err
