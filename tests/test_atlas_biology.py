"""The atlas's biology: landmark profiles and gene context equal brute-force loops."""

import numpy as np
import pytest
import scipy.sparse as sp

from dnatlas.annotation.features import Interval
from dnatlas.atlas import schema
from dnatlas.atlas.accumulate import Chunk
from dnatlas.atlas.gene_context import GeneContextAccumulator, Tracks, period3_share
from dnatlas.atlas.landmarks import LandmarkAccumulator, landmark_sites

LENGTHS = {"r1": 1500, "r2": 900}


def small_annotation(rng):
    """Non-overlapping CDSs per strand (the strands may overlap), tRNAs and rRNAs."""
    ivs = []
    for record, n in LENGTHS.items():
        for strand in (1, -1):
            pos = int(rng.integers(0, 40))
            while pos < n - 60:
                length = 3 * int(rng.integers(10, 60))
                end = min(pos + length, n)
                end -= (end - pos) % 3
                ivs.append(Interval(record, pos, end, strand, "CDS"))
                pos = end + int(rng.integers(5, 120))
        ivs.append(Interval(record, 30, 105, 1, "tRNA"))
        ivs.append(Interval(record, n - 200, n - 120, -1, "rRNA"))
    return ivs


def chunks_and_acts(rng, n_features, density=0.2, sparse=False):
    """A random partition of every (record, strand) into chunks, with activations."""
    out = []
    index = 0
    for record, n in LENGTHS.items():
        codes = rng.integers(0, 4, n).astype(np.uint8)
        for strand in "+-":
            cuts = np.sort(rng.choice(np.arange(1, n), 4, replace=False))
            for start, end in zip(np.r_[0, cuts], np.r_[cuts, n], strict=True):
                acts = rng.random((end - start, n_features)).astype(np.float32)
                acts[rng.random(acts.shape) > density] = 0
                acts[:, 0] -= 0.05          # a neuron-like column with negative values
                chunk = Chunk(record, int(start), int(end), strand, codes[start:end],
                              index=index)
                index += 1
                out.append((chunk, sp.csr_matrix(acts) if sparse else acts))
    return out


def seen_positions(data):
    seen = {}
    for chunk, acts in data:
        dense = acts.toarray() if sp.issparse(acts) else acts
        for i in range(chunk.end - chunk.start):
            seen[chunk.record, chunk.strand, chunk.start + i] = (dense[i], chunk.index)
    return seen


@pytest.mark.parametrize("sparse", [False, True])
def test_landmark_profile_equals_brute_force(sparse):
    rng = np.random.default_rng(0)
    ivs = small_annotation(rng)
    tss = [Interval("r1", 400, 401, -1, "TSS"), Interval("r2", 10, 20, 1, "TSS")]
    sites = landmark_sites(ivs, tss)
    f, flank = 3, 15
    data = chunks_and_acts(rng, f, sparse=sparse)
    acc = LandmarkAccumulator("d", f, sites, flank=flank)
    for chunk, acts in data:
        acc.update(chunk, acts)
    seen = seen_positions(data)
    sums = np.zeros((len(schema.LANDMARKS), 2, 2 * flank + 1, f))
    counts = np.zeros((len(schema.LANDMARKS), 2, 2 * flank + 1))
    fires = np.zeros_like(sums)
    for li, name in enumerate(schema.LANDMARKS):
        for record, (pos, strands) in sites[name].items():
            for p, s in zip(pos, strands, strict=True):
                for di, d in enumerate(range(-flank, flank + 1)):
                    for read in "+-":
                        oi = 0 if (read == "+") == (s > 0) else 1
                        key = (record, read, int(p) + int(s) * d)
                        if key in seen:
                            sums[li, oi, di] += seen[key][0]
                            fires[li, oi, di] += seen[key][0] > 0
                            counts[li, oi, di] += 1
    assert counts[schema.LANDMARKS.index("tss")].sum() > 0
    np.testing.assert_array_equal(acc.counts, counts)
    np.testing.assert_allclose(acc.sums, sums, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(acc.fires, fires)
    # the landmark positions themselves: + CDS start = interval start, - CDS start = end-1
    plus = [iv for iv in ivs if iv.type == "CDS" and iv.strand == 1 and iv.seqid == "r1"]
    minus = [iv for iv in ivs if iv.type == "CDS" and iv.strand == -1 and iv.seqid == "r1"]
    starts = set(sites["cds_start"]["r1"][0].tolist())
    assert {iv.start for iv in plus} | {iv.end - 1 for iv in minus} == starts
    # two ranks merged, and a resumed state, equal the single pass
    a, b = LandmarkAccumulator("d", f, sites, flank=flank), LandmarkAccumulator(
        "d", f, sites, flank=flank)
    for i, (chunk, acts) in enumerate(data):
        (a if i % 2 else b).update(chunk, acts)
    c = LandmarkAccumulator("d", f, sites, flank=flank)
    c.load_state_dict(b.state_dict())
    c.merge(a)
    np.testing.assert_array_equal(c.counts, acc.counts)
    np.testing.assert_allclose(c.sums, acc.sums, rtol=1e-12)
    np.testing.assert_array_equal(c.fires, acc.fires)
    tables = acc.tables()
    assert set(tables["landmarks"]) == set(schema.columns("landmarks"))
    assert len(tables["features"]["best_landmark"]) == f


def test_landmark_peak_names_the_landmark_and_offset():
    """A feature firing 12 nt upstream of + and - CDS starts, read on their strand."""
    rng = np.random.default_rng(1)
    ivs = small_annotation(rng)
    sites = landmark_sites(ivs)
    data = chunks_and_acts(rng, 2, density=0.02)
    for chunk, acts in data:
        acts[:, 1] = np.abs(acts[:, 1])
        pos, strand = sites["cds_start"].get(chunk.record, (np.zeros(0), np.zeros(0)))
        s = 1 if chunk.strand == "+" else -1
        for p in pos[strand == s] - 12 * s:
            if chunk.start <= p < chunk.end:
                acts[p - chunk.start, 1] = 5.0
    acc = LandmarkAccumulator("d", 2, sites, flank=30)
    for chunk, acts in data:
        acc.update(chunk, acts)
    feats = acc.tables()["features"]
    assert feats["best_landmark"][1] == "cds_start/sense"
    assert feats["landmark_offset"][1] == -12
    assert feats["landmark_ratio"][1] > 10
    assert feats["best_landmark"][0] is None        # noise: no peak


@pytest.mark.parametrize("sparse", [False, True])
def test_gene_context_equals_brute_force(sparse):
    rng = np.random.default_rng(2)
    ivs = small_annotation(rng)
    f = 3
    data = chunks_and_acts(rng, f, density=0.3, sparse=sparse)
    tracks = Tracks(ivs, LENGTHS)
    acc = GeneContextAccumulator("d", f, tracks)
    for chunk, acts in data:
        acc.update(chunk, acts)
    # brute force from the intervals
    frame, cds_of, gene = {}, {}, {}
    for n, iv in enumerate(ivs):
        for p in range(iv.start, iv.end):
            gene.setdefault((iv.seqid, iv.strand, p), True)
            if iv.type == "CDS":
                codon = (p - iv.start) % 3 if iv.strand > 0 else (iv.end - 1 - p) % 3
                frame[iv.seqid, iv.strand, p] = codon
                cds_of[iv.seqid, iv.strand, p] = n
    seen = seen_positions(data)
    mass = np.zeros((5, f))
    lagged, pairs = np.zeros((12, f)), np.zeros(12)
    for (record, read, p), (row, index) in seen.items():
        s = 1 if read == "+" else -1
        a = np.maximum(row, 0)
        if (record, s, p) in frame:
            mass[frame[record, s, p]] += a
        same, other = (record, s, p) in gene, (record, -s, p) in gene
        if same and not other:
            mass[3] += a
        if other and not same:
            mass[4] += a
        for k in range(1, 13):
            q = (record, read, p + k)
            c = cds_of.get((record, s, p))
            if q in seen and seen[q][1] == index and c is not None \
                    and cds_of.get((record, s, p + k)) == c:
                lagged[k - 1] += a * np.maximum(seen[q][0], 0)
                pairs[k - 1] += 1
    np.testing.assert_allclose(acc.mass, mass, rtol=1e-6)
    np.testing.assert_allclose(acc.lagged, lagged, rtol=1e-6)
    np.testing.assert_array_equal(acc.pairs, pairs)
    res = acc.results()
    np.testing.assert_allclose(res["phase"][1], mass[:3, 1] / mass[:3, 1].sum())
    assert res["coding_strand"][2] == pytest.approx(mass[3, 2] / (mass[3, 2] + mass[4, 2]))


def test_codon_position_feature_is_phased_and_3_periodic():
    rng = np.random.default_rng(3)
    ivs = small_annotation(rng)
    tracks = Tracks(ivs, LENGTHS)
    data = chunks_and_acts(rng, 2, density=0.3)
    for chunk, acts in data:
        s = 1 if chunk.strand == "+" else -1
        fr = tracks.frame[chunk.record, s][chunk.start:chunk.end]
        acts[:, 1] = np.where(fr == 2, 1.0, 0.0)      # codon position 3, sense only
    acc = GeneContextAccumulator("d", 2, tracks)
    for chunk, acts in data:
        acc.update(chunk, acts)
    res = acc.results()
    assert res["phase"][1] == pytest.approx([0, 0, 1])
    assert res["phase_strength"][1] == pytest.approx(2 / 3)
    assert res["coding_strand"][1] == pytest.approx(1.0)
    assert res["periodicity3"][1] > 0.9
    assert res["periodicity3"][0] < 0.6
    assert res["phase_strength"][0] < 0.05
    assert period3_share(np.tile([0.0, 0.0, 1.0], 4)) == pytest.approx(1.0, abs=0.05)
    assert period3_share(np.zeros(12)) is None


def test_copies_of_a_repeat_are_one_landmark():
    rng = np.random.default_rng(4)
    seq = rng.integers(0, 4, 2000).astype(np.uint8)
    seq[1000:1100] = seq[200:300]                        # a repeat: two identical tRNAs
    seq[1500:1600] = (3 - seq[200:300])[::-1]            # and a copy on the other strand
    ivs = [Interval("r", 220, 280, 1, "tRNA"), Interval("r", 1020, 1080, 1, "tRNA"),
           Interval("r", 1520, 1580, -1, "tRNA"), Interval("r", 600, 660, 1, "tRNA")]
    sites = landmark_sites(ivs, codes={"r": seq})
    assert sites["trna_end"]["r"][0].tolist() == [279, 659]
    assert len(landmark_sites(ivs)["trna_end"]["r"][0]) == 4


def test_codon_phase_locked_firing_is_no_landmark_peak():
    """Firing at every third position inside CDSs stands 3x above the feature's mean
    at the in-frame offsets of CDS ends, but not above its own profile: no peak."""
    rng = np.random.default_rng(5)
    ivs = small_annotation(rng)
    tracks = Tracks(ivs, LENGTHS)
    sites = landmark_sites(ivs)
    data = chunks_and_acts(rng, 1, density=0.0)
    for chunk, acts in data:
        s = 1 if chunk.strand == "+" else -1
        fr = tracks.frame[chunk.record, s][chunk.start:chunk.end]
        acts[:, 0] = np.where(fr == 1, 1.0, 0.0)
    acc = LandmarkAccumulator("d", 1, sites, flank=30, min_n=5)
    for chunk, acts in data:
        acc.update(chunk, acts)
    assert acc.tables()["features"]["best_landmark"] == [None]
    acc.min_local = 0.0                                   # without rule (4) it would be one
    assert acc.tables()["features"]["best_landmark"][0] is not None


def test_side_baseline_equals_a_loop():
    from dnatlas.atlas.landmarks import side_baseline

    rng = np.random.default_rng(6)
    prof = rng.random((2, 2, 31, 3))
    prof[0, 1, 7, 2] = np.nan
    got = side_baseline(prof)
    for idx in np.ndindex(2, 2):
        for d in range(31):
            for f in range(3):
                g = prof[idx[0], idx[1], :, f]
                left = [g[i] for i in range(d % 3, d - 3, 3) if not np.isnan(g[i])]
                right = [g[i] for i in range(d + 6, 31, 3) if not np.isnan(g[i])]
                want = max(np.mean(left) if len(left) >= 5 else np.inf,
                           np.mean(right) if len(right) >= 5 else np.inf)
                assert got[idx[0], idx[1], d, f] == pytest.approx(want), (d, f)
