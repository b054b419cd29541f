"""Sequence-only motif detectors: the reference a neuron has to beat."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from dnatlas.analysis.motifs import CODON_MOTIFS, codon_match_auprc, motif_scores, motif_track_auprc
from dnatlas.annotation.intervals import Interval
from dnatlas.annotation.tracks import label_tracks
from dnatlas.genome.alphabet import encode, reverse_complement


def test_plus_strand_match_at_the_anchor():
    seq = encode("CCATGCCGTGCC")
    scores = motif_scores(seq, {"ATG": 2.0, "GTG": 1.0}, anchor=1)
    assert scores.shape == (2, 12)
    assert scores[0].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0]
    assert scores[1].tolist() == [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # CAT at [1, 4) is ATG on -


def test_minus_strand_reads_the_reverse_complement_in_forward_coordinates():
    # CAT on + is ATG on -, read right to left: A at forward 4, T at 3, G at 2.
    seq = encode("CCCATCC")
    scores = motif_scores(seq, {"ATG": 1.0}, anchor=1)
    assert scores[1].tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert motif_scores(seq, {"ATG": 1.0}, anchor=0)[1].tolist() == [0, 0, 0, 0, 1, 0, 0]
    assert motif_scores(seq, {"ATG": 1.0}, anchor=2)[1].tolist() == [0, 0, 1, 0, 0, 0, 0]


def test_scores_are_strand_symmetric():
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 4, 500).astype(np.uint8)
    fwd = motif_scores(seq, {"TAA": 3.0, "TGA": 1.0}, anchor=0)
    rev = motif_scores(reverse_complement(seq), {"TAA": 3.0, "TGA": 1.0}, anchor=0)
    np.testing.assert_array_equal(fwd[0], rev[1][::-1])
    np.testing.assert_array_equal(fwd[1], rev[0][::-1])


def test_n_and_edges_never_match():
    seq = encode("ATNATG")
    assert motif_scores(seq, {"ATG": 1.0}, anchor=0)[0].tolist() == [0, 0, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="ACGT"):
        motif_scores(seq, {"ATR": 1.0})
    with pytest.raises(ValueError, match="length"):
        motif_scores(seq, {"ATG": 1.0, "AT": 1.0})
    with pytest.raises(ValueError, match="anchor"):
        motif_scores(seq, {"ATG": 1.0}, anchor=3)


def test_codon_baseline_matches_sklearn_on_both_strands():
    rng = np.random.default_rng(1)
    seq = rng.integers(0, 4, 3000).astype(np.uint8)
    seq[100:112] = encode("ATGAAAGGGTAA")               # + gene [100, 112)
    seq[2000:2012] = reverse_complement(encode("ATGCCCAAATAG"))  # - gene [2000, 2012)
    genes = [Interval("r", 100, 112, 1, "CDS"), Interval("r", 2000, 2012, -1, "CDS")]
    tracks = label_tracks(genes, "r", len(seq), tracks=["start_codon_2nd", "stop_codon_1st"])
    for track in ("start_codon_2nd", "stop_codon_1st"):
        scores = motif_scores(seq, *CODON_MOTIFS[track])
        expected = average_precision_score(tracks[track].ravel(), scores.ravel())
        assert motif_track_auprc(seq, tracks[track], track) == pytest.approx(expected)
        assert scores[tracks[track]].min() > 0  # every true codon is matched


def test_codon_motifs_cover_the_codon_tracks():
    assert set(CODON_MOTIFS) == {"start_codon", "start_codon_2nd", "stop_codon",
                                 "stop_codon_1st"}
    with pytest.raises(KeyError):
        motif_track_auprc(encode("ACGT"), np.zeros((2, 4), bool), "tRNA")


def test_without_anchor_every_nucleotide_of_a_match_scores():
    seq = encode("CATGCCAT")
    scores = motif_scores(seq, {"ATG": 1.0}, anchor=None)
    assert scores[0].tolist() == [0, 1, 1, 1, 0, 0, 0, 0]
    assert scores[1].tolist() == [1, 1, 1, 0, 0, 1, 1, 1]


def test_codon_match_over_two_records_pools_them():
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, 4, n).astype(np.uint8) for n in (800, 1200)]
    genes = [Interval("a", 90, 300, 1, "CDS"), Interval("b", 400, 700, -1, "CDS")]
    tracks = [label_tracks(genes, sid, len(s), tracks=["CDS", "stop_codon_1st"])
              for sid, s in zip("ab", seqs)]
    got = codon_match_auprc(seqs, tracks, ["CDS", "stop_codon_1st"])
    assert list(got) == ["stop_codon_1st"]
    scores = np.concatenate([motif_scores(s, *CODON_MOTIFS["stop_codon_1st"]) for s in seqs], 1)
    y = np.concatenate([t["stop_codon_1st"] for t in tracks], 1)
    assert got["stop_codon_1st"] == pytest.approx(average_precision_score(y.ravel(), scores.ravel()))
