"""The atlas's motif finder: a planted motif is recovered, shuffled windows give none."""

import numpy as np
import pytest

from dnatlas.atlas.accumulate import AtlasContext
from dnatlas.atlas.columns import rows
from dnatlas.atlas.motifs import (
    encode,
    find_motif,
    information,
    kmer_background,
    kmer_ids,
    motif_finalizer,
    rc_ids,
)

PLANT = "TAAGGAGGT"


def windows(rng, n=30, plant=True, width=41):
    out = []
    for _ in range(n):
        codes = rng.integers(0, 4, width).astype(np.uint8)
        peak = int(rng.integers(15, 26))
        if plant:
            at = peak - 8 + int(rng.integers(-1, 2))
            codes[at:at + len(PLANT)] = encode(PLANT)
        out.append((codes, peak))
    return out


def test_kmer_helpers():
    assert kmer_ids(encode("ACGTN"), 2).tolist() == [1, 6, 11]
    rc = rc_ids(3)
    assert rc[0] == 63 and rc[rc].tolist() == list(range(64))       # AAA <-> TTT
    bg = kmer_background([encode("AAAA")], 2)
    assert bg[0] == pytest.approx(0.5) and bg[15] == pytest.approx(0.5)   # AA and TT
    assert information(np.array([[1.0, 0, 0, 0], [0.25] * 4])).tolist() == [2.0, 0.0]


def test_planted_motif_is_recovered():
    rng = np.random.default_rng(0)
    bg = kmer_background([rng.integers(0, 4, 200_000).astype(np.uint8)])
    motif = find_motif(windows(rng), bg)
    assert motif is not None
    assert motif.kmer in PLANT and len(motif.kmer) == 6
    assert motif.consensus == PLANT               # extended from the seed, trimmed to it
    assert motif.n_sites == 30 and motif.count == 30
    assert motif.enrichment > 20 and motif.pvalue < 1e-10
    assert motif.pfm.shape == (motif.width, 4)
    np.testing.assert_allclose(motif.pfm.sum(axis=1), 1.0)


def test_no_motif_in_shuffled_or_random_windows():
    rng = np.random.default_rng(1)
    bg = kmer_background([rng.integers(0, 4, 200_000).astype(np.uint8)])
    planted = windows(rng)
    shuffled = [(rng.permutation(codes), peak) for codes, peak in planted]
    assert find_motif(shuffled, bg) is None
    for seed in range(5):
        assert find_motif(windows(np.random.default_rng(10 + seed), plant=False), bg) is None
    assert find_motif(planted[:3], bg) is None            # too few windows


def test_finalizer_writes_motifs_and_gc_top():
    rng = np.random.default_rng(2)
    genome = rng.integers(0, 4, 100_000).astype(np.uint8)
    context = AtlasContext("d", 2, {"r": genome}, ["r"], {"r": 0})
    examples = {c: [] for c in ("dictionary", "feature", "kind", "bin", "rank", "record",
                                "start", "end", "peak", "strand", "activation", "sequence",
                                "activations", "copies")}
    for feature, plant in ((0, True), (1, False)):
        for rank, (codes, peak) in enumerate(windows(rng, plant=plant)):
            seq = "".join("ACGT"[c] for c in codes)
            strand = "+-"[rank % 2]
            start = 1000 * rank + 1
            end = start + len(seq) - 1
            row = dict(dictionary="d", feature=feature, kind="top", bin=0, rank=rank,
                       record="r", start=start, end=end, strand=strand,
                       peak=start + peak if strand == "+" else end - peak, activation=1.0,
                       sequence=seq, activations=[0.0] * len(seq), copies=1)
            for c in examples:
                examples[c].append(row[c])
    features = {"dictionary": ["d", "d"], "feature": [0, 1]}
    out = motif_finalizer({"examples": examples, "features": features}, {"d": context})
    f = rows(out["features"])
    assert "AGGAGG" in f[0]["top_motif"] and f[0]["motif_enrichment"] > 20
    assert f[1]["top_motif"] is None
    assert 0.3 < f[1]["gc_top"] < 0.7
    m = rows(out["motifs"])
    assert len(m) == 1 and m[0]["feature"] == 0 and m[0]["n_sites"] == 30
    assert len(m[0]["pwm"]) == 4 * m[0]["width"]


def test_copies_of_a_repeat_are_one_window():
    rng = np.random.default_rng(3)
    bg = kmer_background([rng.integers(0, 4, 200_000).astype(np.uint8)])
    repeat = rng.integers(0, 4, 41).astype(np.uint8)
    copies = []
    for _ in range(30):
        codes = repeat.copy()
        codes[rng.integers(0, 41, 3)] = rng.integers(0, 4, 3)     # near-identical copies
        copies.append((codes, 20))
    assert find_motif(copies, bg) is None
    planted = windows(rng)
    assert find_motif(copies[:5] + planted, bg).n_sites == 30
