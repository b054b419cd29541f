"""The atlas builder on synthetic activations: statistics and examples equal a brute-force
computation over the whole genome; shards merge and resumed builds equal one
uninterrupted pass, bit for bit."""

import numpy as np
import pytest
import scipy.sparse as sp

from dnatlas.atlas import schema
from dnatlas.atlas.accumulate import AtlasContext, Chunk, manhattan_bin_size, read_sequence
from dnatlas.atlas.build import Builder
from dnatlas.atlas.examples import HALF, N_RANGES, RADIUS, RANGE_BINS, position_hash
from dnatlas.atlas.statistics import hist_bins

PARTS = ["dnatlas.atlas.statistics", "dnatlas.atlas.examples"]
LENGTHS = {"chrA": 5_000, "plasmid": 1_700}
CHUNK = 700
F_SAE, F_NEU = 12, 5


@pytest.fixture(scope="module")
def genome():
    """Codes (with repeats and Ns) and full activations {(dictionary, strand): (L, F)}."""
    rng = np.random.default_rng(3)
    codes = {r: rng.integers(0, 4, n).astype(np.uint8) for r, n in LENGTHS.items()}
    codes["chrA"][1000:1065] = codes["chrA"][3000:3065]       # an identical repeat
    codes["chrA"][200:210] = 4
    acts = {}
    for r, n in LENGTHS.items():
        for strand in "+-":
            dense = rng.exponential(1.0, (n, F_SAE)).astype(np.float32)
            dense[rng.random((n, F_SAE)) < 0.9] = 0                # sparse
            dense[:, 0] = np.round(dense[:, 0], 1)                 # ties
            dense[:, 1] = 0                                         # a dead feature
            if r == "chrA":
                dense[1032, 2] = dense[3032, 2] = 50.0              # the repeat peaks
            acts["sae", r, strand] = dense
            acts["neu", r, strand] = rng.normal(0, 1, (n, F_NEU)).astype(np.float32)
    return codes, acts


def _contexts(codes, settings=None):
    records = list(LENGTHS)
    offsets = dict(zip(records, np.cumsum([0] + [LENGTHS[r] for r in records[:-1]]).tolist(),
                       strict=True))
    total = sum(LENGTHS.values())
    bin_size = manhattan_bin_size(total, min_bin=1000)
    settings = {"top_k": 4, "top_pool": 8, "quantile_k": 3, **(settings or {})}
    return {name: AtlasContext(name, F, codes, records, offsets, bin_size, kind=kind,
                               settings=settings)
            for name, F, kind in (("sae", F_SAE, "sae"), ("neu", F_NEU, "neurons"))}


def _chunks(codes, halo=RADIUS):
    """Every chunk of the pass (both strands), in pass order."""
    offsets = _contexts(codes)["sae"].offsets
    index = 0
    out = []
    for r, n in LENGTHS.items():
        for a in range(0, n, CHUNK):
            b = min(n, a + CHUNK)
            for strand in "+-":
                lo, hi = max(0, a - halo), min(n, b + halo)
                out.append(Chunk(r, a, b, strand, codes[r][lo:hi], "valid", offsets[r], index,
                                 lo, hi, n))
                index += 1
    return out


def _feed(builder, chunks, acts):
    for c in chunks:
        if builder.is_done(c.index):
            continue
        block = {"sae": sp.csr_matrix(acts["sae", c.record, c.strand][c.lo:c.hi]),
                 "neu": acts["neu", c.record, c.strand][c.lo:c.hi]}
        builder.feed(c, block)


def _build(genome, chunks=None, **kw):
    codes, acts = genome
    b = Builder(_contexts(codes), parts=PARTS, **kw)
    _feed(b, _chunks(codes) if chunks is None else chunks, acts)
    return b


def _rows(table, **where):
    d = table.to_pydict()
    keep = [i for i in range(table.num_rows) if all(d[k][i] == v for k, v in where.items())]
    return [{k: d[k][i] for k in d} for i in keep]


# ------------------------------------------------------------------------ brute force


def _brute_stats(genome, name):
    codes, acts = genome
    ctx = _contexts(codes)[name]
    per = {s: np.concatenate([acts[name, r, s] for r in LENGTHS]).astype(np.float64)
           for s in "+-"}
    both = np.concatenate([per["+"], per["-"]])
    F = both.shape[1]
    manhattan = np.full((F, ctx.n_bins), -np.inf)
    for s in "+-":
        bins = np.arange(len(per[s])) // ctx.bin_size
        for b in range(ctx.n_bins):
            manhattan[:, b] = np.maximum(manhattan[:, b], per[s][bins == b].max(axis=0))
    hist = np.zeros((F, schema.HIST_BINS), np.int64)
    edges = np.array(schema.hist_edges())
    for f in range(F):
        v = both[:, f][both[:, f] > 0]
        # bin i holds (edges[i], edges[i+1]]
        hist[f] = np.bincount(np.searchsorted(edges, v, side="left") - 1,
                              minlength=schema.HIST_BINS)[:schema.HIST_BINS]
    return {"max": both.max(0), "mean": both.mean(0), "frac_active": (both > 0).mean(0),
            "max_plus": per["+"].max(0), "max_minus": per["-"].max(0),
            "mean_plus": per["+"].mean(0), "mean_minus": per["-"].mean(0),
            "frac_plus": (per["+"] > 0).mean(0), "frac_minus": (per["-"] > 0).mean(0),
            "hist": hist, "manhattan": manhattan, "both": both}


def _brute_top(genome, name, top_k=4, pool=8):
    """Peaks: positive, strictly above every earlier position within RADIUS and at least
    every later one, on the same record and strand; the pool strongest (ties: lower genome
    position, + first); identical windows collapsed."""
    codes, acts = genome
    ctx = _contexts(codes)[name]
    out = {}
    for f in range(ctx.n_features):
        peaks = []
        for r in LENGTHS:
            for si, s in enumerate("+-"):
                x = acts[name, r, s][:, f].astype(np.float64)
                for p in np.flatnonzero(x > 0):
                    left = x[max(0, p - RADIUS):p]
                    right = x[p + 1:p + RADIUS + 1]
                    if (left < x[p]).all() and (right <= x[p]).all():
                        peaks.append((-x[p], (ctx.offsets[r] + p) * 2 + si, r, p, s))
        peaks.sort()
        groups = {}
        for neg, _, r, p, s in peaks[:pool]:
            a, b = max(0, p - HALF), min(LENGTHS[r], p + HALF + 1)
            seq = read_sequence(codes[r][a:b], s)
            values = acts[name, r, s][a:b, f]
            groups.setdefault(seq, []).append((r, a + 1, b, p + 1, s, -neg,
                                               values[::-1] if s == "-" else values))
        out[f] = [(g[0], len(g)) for g in list(groups.values())[:top_k]]
    return out


def _brute_quantile(genome, name, k=3):
    codes, acts = genome
    ctx = _contexts(codes)[name]
    F = ctx.n_features
    samples = {}
    for r in LENGTHS:
        for si, s in enumerate("+-"):
            x = acts[name, r, s]
            rows, feats = np.nonzero(x > 0)
            v = x[rows, feats].astype(np.float64)
            gkey = (ctx.offsets[r] + rows) * 2 + si
            h = position_hash(gkey, feats, F)
            rng_ = hist_bins(v) // RANGE_BINS
            for f, g, hh, rr, p, val in zip(feats, gkey, h, rng_, rows, v, strict=True):
                samples.setdefault((int(f), int(rr)), []).append((int(hh), int(g), r, int(p),
                                                                  s, float(val)))
    out = {}
    for (f, rr), items in samples.items():
        items.sort()
        kept = sorted(items[:k], key=lambda t: (-t[5], t[1]))    # strongest first
        out[f, rr] = [(r, p + 1, s, val) for _, _, r, p, s, val in kept]
    return out


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", ["sae", "neu"])
def test_statistics_equal_brute_force(genome, name):
    tables = _build(genome).finish()
    feats = sorted(_rows(tables["features"], dictionary=name), key=lambda r: r["feature"])
    want = _brute_stats(genome, name)
    for col in ("max", "mean", "frac_active", "max_plus", "max_minus", "mean_plus",
                "mean_minus", "frac_plus", "frac_minus"):
        got = np.array([r[col] for r in feats], dtype=float)
        np.testing.assert_allclose(got, want[col], rtol=1e-9, atol=1e-9, err_msg=col)
    np.testing.assert_array_equal(np.array([r["hist"] for r in feats]), want["hist"])
    np.testing.assert_allclose(np.array([r["manhattan"] for r in feats]),
                               want["manhattan"].astype(np.float32))
    # quantiles within one histogram bin of the exact ones
    for f, r in enumerate(feats):
        v = want["both"][:, f][want["both"][:, f] > 0]
        if not len(v):
            assert r["q50"] is None
            continue
        for q, col in ((0.5, "q50"), (0.9, "q90"), (0.99, "q99")):
            exact = np.quantile(v, q)
            assert abs(np.log10(r[col]) - np.log10(exact)) <= 1.01 / schema.HIST_PER_DECADE, \
                (f, col, r[col], exact)


@pytest.mark.parametrize("name", ["sae", "neu"])
def test_top_examples_equal_brute_force(genome, name):
    tables = _build(genome).finish()
    want = _brute_top(genome, name)
    for f, expected in want.items():
        rows = sorted(_rows(tables["examples"], dictionary=name, feature=f, kind="top"),
                      key=lambda r: r["rank"])
        assert len(rows) == len(expected), f
        for row, ((r, a, b, p, s, act, values), copies) in zip(rows, expected, strict=True):
            assert (row["record"], row["start"], row["end"], row["peak"], row["strand"]) == \
                (r, a, b, p, s)
            assert row["activation"] == pytest.approx(act)
            assert row["copies"] == copies
            assert row["sequence"] == read_sequence(genome[0][r][a - 1:b], s)
            np.testing.assert_array_equal(np.array(row["activations"], np.float32), values)
    if name == "sae":   # the planted repeat: one window, two copies
        rows = _rows(tables["examples"], dictionary="sae", feature=2, kind="top", rank=0)
        assert rows[0]["copies"] == 2 and rows[0]["activation"] == 50.0


def test_quantile_examples_equal_brute_force(genome):
    tables = _build(genome).finish()
    want = _brute_quantile(genome, "sae")
    for f in range(F_SAE):
        ranges = sorted({rr for (ff, rr) in want if ff == f}, reverse=True)
        for bin_, rr in enumerate(ranges):
            rows = sorted(_rows(tables["examples"], dictionary="sae", feature=f,
                                kind="quantile", bin=bin_), key=lambda r: r["rank"])
            got = [(r["record"], r["peak"], r["strand"], r["activation"]) for r in rows]
            assert [g[:3] for g in got] == [w[:3] for w in want[f, rr]], (f, rr)
    assert N_RANGES * RANGE_BINS >= schema.HIST_BINS


def _equal_tables(a, b):
    assert set(a) == set(b)
    for name in a:
        assert a[name].equals(b[name]), name


def test_shards_merge_exactly(genome):
    codes, _ = genome
    chunks = _chunks(codes)
    one = _build(genome).finish()
    # 3 shards, uneven, interleaved
    shards = [_build(genome, chunks=chunks[i::3]) for i in range(3)]
    shards[2].merge(shards[0])
    shards[2].merge(shards[1].state_dict())
    _equal_tables(one, shards[2].finish())


def test_resumed_build_equals_uninterrupted(genome, tmp_path):
    codes, acts = genome
    chunks = _chunks(codes)
    one = _build(genome).finish()
    first = Builder(_contexts(codes), parts=PARTS, checkpoint=tmp_path, key={"k": 1},
                    checkpoint_every=5)
    _feed(first, chunks[:13], acts)            # "killed" after 13 chunks: saved at 10
    resumed = Builder(_contexts(codes), parts=PARTS, checkpoint=tmp_path, key={"k": 1},
                      checkpoint_every=5)
    assert resumed.resumed and len(resumed.done) == 10
    _feed(resumed, chunks, acts)
    _equal_tables(one, resumed.finish())
    # another key does not resume
    other = Builder(_contexts(codes), parts=PARTS, checkpoint=tmp_path, key={"k": 2})
    assert not other.resumed and not other.done
