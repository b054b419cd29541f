"""Example windows of each feature, streamed: the top activations and samples drawn from
each activation range (as Neuronpedia and SAEDashboard show them).

**Top examples.** A *peak* of a feature is a position (on one strand) whose activation
is positive and the strongest within ±``RADIUS`` (64) nt on that strand (ties: the
lower forward position wins), so two peaks are always more than 64 nt apart and their
windows (the peak ±``HALF`` = 32 nt, 65 nt, clipped at record ends) never overlap. The
stream keeps, per feature, the ``pool`` strongest peaks (ties broken by the lower
genome position, then + before -); at the end, peaks whose windows read the same
sequence (identical repeats, e.g. REP elements or rRNA operons) are collapsed into the
first of them, ``copies`` counting the peaks of the pool with that sequence, and the
first ``top_k`` distinct windows are the feature's top examples.

**Quantile examples.** Every positive activation falls in one *range* of the fixed
histogram edges, half a decade wide (``RANGE_BINS`` histogram bins). Per (feature,
range) the stream keeps a bottom-``quantile_k`` sketch on a hash of (position, strand,
feature): the ``quantile_k`` positions with the smallest hashes, a uniform sample of the
positions in that range. Sketches merge exactly, so shards and resumed builds draw the
same examples as one uninterrupted pass. Each non-empty range is one ``quantile``
group, ``bin`` 0 the strongest; windows are centred on the sampled position.

Activations of a window are kept as the model read them (the accumulator has a halo of
``RADIUS`` nt: it sees the activations around the chunk). Rows are written 1-based and
closed, ``sequence``/``activations`` 5'->3' on the strand read.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import maximum_filter1d

from dnatlas.atlas import schema
from dnatlas.atlas.accumulate import STRANDS, AtlasContext, Chunk, read_sequence
from dnatlas.atlas.statistics import hist_bins

HALF = 32
WIDTH = 2 * HALF + 1
RADIUS = 2 * HALF
RANGE_BINS = schema.HIST_PER_DECADE // 2
N_RANGES = -(-schema.HIST_BINS // RANGE_BINS)
_U64 = np.uint64


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def position_hash(gkey: np.ndarray, feature: np.ndarray, n_features: int) -> np.ndarray:
    """The sketch hash of (genome key, feature): uint64, deterministic."""
    with np.errstate(over="ignore"):
        return _splitmix64(np.asarray(gkey, dtype=_U64) * _U64(n_features)
                           + np.asarray(feature, dtype=_U64))


class _Pool:
    """A flat set of kept windows, sorted by group then by preference."""

    def __init__(self):
        self.group = np.zeros(0, np.int64)
        self.act = np.zeros(0, np.float64)
        self.gkey = np.zeros(0, np.int64)
        self.hash = np.zeros(0, _U64)
        self.win = np.zeros((0, WIDTH), np.float32)

    FIELDS = ("group", "act", "gkey", "hash", "win")

    def add(self, group, act, gkey, hash_, win, k: int, by_hash: bool) -> None:
        group = np.r_[self.group, group]
        act = np.r_[self.act, act]
        gkey = np.r_[self.gkey, gkey]
        hash_ = np.r_[self.hash, hash_].astype(_U64)
        win = np.concatenate([self.win, win]) if len(win) else self.win
        # unique (group, gkey): an entry offered twice (cannot happen in one pass) once
        if by_hash:
            order = np.lexsort((gkey, hash_, group))
        else:
            order = np.lexsort((gkey, -act, group))
        group = group[order]
        start = np.r_[0, np.flatnonzero(group[1:] != group[:-1]) + 1]
        rank = np.arange(len(group)) - np.repeat(start, np.diff(np.r_[start, len(group)]))
        keep = order[rank < k]
        self.group, self.act, self.gkey = group[rank < k], act[keep], gkey[keep]
        self.hash, self.win = hash_[keep], win[keep]

    def bound(self, n_groups: int, k: int, by_hash: bool) -> np.ndarray:
        """Per group, the value a new entry must beat (the k-th kept; open if fewer)."""
        count = np.bincount(self.group, minlength=n_groups)
        last = np.r_[np.flatnonzero(self.group[1:] != self.group[:-1]), len(self.group) - 1] \
            if len(self.group) else np.zeros(0, np.int64)
        if by_hash:
            out = np.full(n_groups, np.iinfo(np.uint64).max, dtype=_U64)
            full = count[self.group[last]] >= k
            out[self.group[last][full]] = self.hash[last][full]
        else:
            out = np.full(n_groups, -np.inf)
            full = count[self.group[last]] >= k
            out[self.group[last][full]] = self.act[last][full]
        return out

    def state(self, prefix: str) -> dict:
        return {f"{prefix}{f}": getattr(self, f) for f in self.FIELDS}

    def load(self, state: dict, prefix: str) -> None:
        for f in self.FIELDS:
            setattr(self, f, np.array(state[f"{prefix}{f}"], dtype=getattr(self, f).dtype))


def _range_max(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(values[a_i:b_i]) per i (-inf where empty)."""
    if not len(a):
        return np.zeros(0)
    x = np.r_[values, -np.inf]
    idx = np.empty(2 * len(a), dtype=np.int64)
    idx[0::2], idx[1::2] = a, b
    out = np.maximum.reduceat(x, idx)[0::2]
    return np.where(b > a, out, -np.inf)


def _side_maxima(x: np.ndarray):
    """Per row and column: max of the RADIUS rows before it, and of the RADIUS after."""
    def trailing(y):   # max over rows [p - RADIUS, p - 1]
        m = maximum_filter1d(y, size=RADIUS, axis=0, origin=(RADIUS - 1) // 2,
                             mode="constant", cval=-np.inf)   # rows [p - RADIUS + 1, p]
        return np.concatenate([np.full((1, y.shape[1]), -np.inf, dtype=y.dtype), m[:-1]])

    return trailing(x), trailing(x[::-1])[::-1]


class _Entries:
    """One chunk's activations (halo included), read as needed: positive entries of own
    rows, peak tests and windows. Sparse chunks are read column-wise (CSC, entries sorted
    by (feature, row)); dense chunks in place."""

    def __init__(self, acts, n_rows: int, own0: int, own1: int):
        self.n_rows, self.own0, self.own1 = n_rows, own0, own1
        self.sparse = sp.issparse(acts)
        if self.sparse:
            csc = sp.csc_matrix(acts)
            csc.sum_duplicates()
            csc.sort_indices()
            self.indptr, self.rows, self.data = csc.indptr, csc.indices.astype(np.int64), \
                csc.data.astype(np.float32, copy=False)
            self.feature = np.repeat(np.arange(csc.shape[1]), np.diff(csc.indptr))
            self._key = None
        else:
            self.acts = np.asarray(acts, dtype=np.float32)

    @property
    def key(self) -> np.ndarray:
        """feature * (n_rows + 1) + row of each entry (ascending)."""
        if self._key is None:
            self._key = self.feature * (self.n_rows + 1) + self.rows
        return self._key

    def own_positive(self):
        """(values float64, feature, row) of the positive entries of the chunk's rows."""
        if self.sparse:
            keep = (self.data > 0) & (self.rows >= self.own0) & (self.rows < self.own1)
            return (self.data[keep].astype(np.float64), self.feature[keep], self.rows[keep])
        own = self.acts[self.own0:self.own1]
        row, feature = np.nonzero(own > 0)
        return own[row, feature].astype(np.float64), feature, row + self.own0

    def candidates(self, bound: np.ndarray):
        """Own positive entries at least ``bound[feature]``: (values, feature, row, index
        into the sparse entries or None)."""
        if self.sparse:
            sel = np.flatnonzero((self.data > 0) & (self.data >= bound[self.feature])
                                 & (self.rows >= self.own0) & (self.rows < self.own1))
            return self.data[sel].astype(np.float64), self.feature[sel], self.rows[sel], sel
        own = self.acts[self.own0:self.own1]
        row, feature = np.nonzero((own > 0) & (own >= bound[None, :].astype(np.float32)))
        return own[row, feature].astype(np.float64), feature, row + self.own0, None

    def peaks(self, values, feature, row, index) -> np.ndarray:
        """Bool: each candidate is above every position within RADIUS before it and at
        least every one within RADIUS after it (same feature)."""
        if self.sparse:
            base = feature * (self.n_rows + 1)
            a = np.searchsorted(self.key, base + np.maximum(row - RADIUS, 0))
            b = np.searchsorted(self.key, base + np.minimum(row + RADIUS, self.n_rows - 1),
                                "right")
            data = self.data.astype(np.float64)
            left = _range_max(data, a, index)
            right = _range_max(data, index + 1, b)
            return (values > left) & (values >= right)
        x = self.acts
        if len(row) * (2 * RADIUS + 1) < x.size:      # few candidates: read their windows
            offsets = np.arange(-RADIUS, RADIUS + 1)
            rows = row[:, None] + offsets[None, :]
            inside = (rows >= 0) & (rows < self.n_rows)
            w = np.where(inside, x[np.clip(rows, 0, self.n_rows - 1), feature[:, None]],
                         -np.inf).astype(np.float64)
            left = w[:, :RADIUS].max(axis=1)
            right = w[:, RADIUS + 1:].max(axis=1)
        else:
            left_max, right_max = _side_maxima(x)
            left, right = left_max[row, feature], right_max[row, feature]
        return (values > left) & (values >= right)

    def windows(self, feature: np.ndarray, row: np.ndarray) -> np.ndarray:
        """(m, WIDTH) float32 values of ``feature`` at rows ``row - HALF .. row + HALF``
        (NaN outside the chunk's rows, i.e. beyond the record)."""
        m = len(feature)
        offsets = np.arange(-HALF, HALF + 1)
        rows = row[:, None] + offsets[None, :]
        inside = (rows >= 0) & (rows < self.n_rows)
        if not self.sparse:
            out = self.acts[np.clip(rows, 0, self.n_rows - 1), feature[:, None]]
            return np.where(inside, out, np.nan).astype(np.float32)
        out = np.where(inside, 0.0, np.nan).astype(np.float32)
        if not m:
            return out
        base = feature * (self.n_rows + 1)
        a = np.searchsorted(self.key, base + np.maximum(row - HALF, 0))
        b = np.searchsorted(self.key, base + np.minimum(row + HALF, self.n_rows - 1), "right")
        length = b - a
        which = np.repeat(np.arange(m), length)
        entry = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length) \
            + np.repeat(a, length)
        out[which, self.rows[entry] - row[which] + HALF] = self.data[entry]
        return out


def _first_per_group(group: np.ndarray, k: int, *keys) -> np.ndarray:
    """Indices of the first ``k`` entries of each group, ordered by ``keys`` (most
    significant first)."""
    order = np.lexsort((*keys[::-1], group))
    g = group[order]
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    rank = np.arange(len(g)) - np.repeat(start, np.diff(np.r_[start, len(g)]))
    return order[rank < k]


class ExamplesAccumulator:
    """Top and quantile examples of one dictionary (module docstring)."""

    halo = RADIUS

    def __init__(self, context: AtlasContext):
        settings = context.settings
        self.F = context.n_features
        self.top_k = int(settings.get("top_k", 20))
        self.pool_size = int(settings.get("top_pool", 2 * self.top_k))
        self.quantile_k = int(settings.get("quantile_k", 4))
        self.top = _Pool()
        self.quantile = _Pool()

    # -- streaming -----------------------------------------------------------------------
    def update(self, chunk: Chunk, acts) -> None:
        s = STRANDS.index(chunk.strand)
        g0 = chunk.offset + chunk.lo        # genome position of row 0
        entries = _Entries(acts, chunk.hi - chunk.lo, chunk.start - chunk.lo,
                           chunk.end - chunk.lo)
        if self.pool_size:
            bound = self.top.bound(self.F, self.pool_size, False)
            v, f, r, index = entries.candidates(bound)
            if len(v):
                peak = entries.peaks(v, f, r, index)
                v, f, r = v[peak], f[peak], r[peak]
                gkey = (g0 + r) * 2 + s
                sel = _first_per_group(f, self.pool_size, -v, gkey)
                self.top.add(f[sel], v[sel], gkey[sel], np.zeros(len(sel), _U64),
                             entries.windows(f[sel], r[sel]), self.pool_size, False)
        if self.quantile_k:
            v, f, r = entries.own_positive()
            gkey = (g0 + r) * 2 + s
            h = position_hash(gkey, f, self.F)
            group = f * N_RANGES + hist_bins(v) // RANGE_BINS
            bound = self.quantile.bound(self.F * N_RANGES, self.quantile_k, True)
            keep = np.flatnonzero(h < bound[group])
            if len(keep):
                sel = keep[_first_per_group(group[keep], self.quantile_k, h[keep], gkey[keep])]
                self.quantile.add(group[sel], v[sel], gkey[sel], h[sel],
                                  entries.windows(f[sel], r[sel]), self.quantile_k, True)

    def merge(self, other: ExamplesAccumulator) -> None:
        o = other.top
        self.top.add(o.group, o.act, o.gkey, o.hash, o.win, self.pool_size, False)
        o = other.quantile
        self.quantile.add(o.group, o.act, o.gkey, o.hash, o.win, self.quantile_k, True)

    def state_dict(self) -> dict:
        return {**self.top.state("top_"), **self.quantile.state("quantile_")}

    def load_state_dict(self, state: dict) -> None:
        self.top.load(state, "top_")
        self.quantile.load(state, "quantile_")

    # -- results -------------------------------------------------------------------------
    def tables(self, context: AtlasContext) -> dict[str, dict]:
        rows = {c: [] for c in schema.columns("examples")}
        bounds = np.array([context.offsets[r] for r in context.records], dtype=np.int64)
        gc = np.full(self.F, np.nan)
        gc_num = np.zeros(self.F)
        gc_den = np.zeros(self.F)

        def window(gkey, win):
            gpos, s = gkey // 2, int(gkey % 2)
            i = int(np.searchsorted(bounds, gpos, "right") - 1)
            record = context.records[i]
            pos = int(gpos - bounds[i])
            a = max(0, pos - HALF)
            b = min(len(context.codes[record]), pos + HALF + 1)
            values = win[a - (pos - HALF): WIDTH - ((pos + HALF + 1) - b)]
            strand = STRANDS[s]
            seq_codes = context.codes[record][a:b]
            if strand == "-":
                values = values[::-1]
            return record, pos, a, b, strand, read_sequence(seq_codes, strand), values, seq_codes

        def add(feature, kind, bin_, rank, act, copies, w):
            record, pos, a, b, strand, seq, values, _ = w
            for col, val in (("dictionary", context.dictionary), ("feature", int(feature)),
                             ("kind", kind), ("bin", int(bin_)), ("rank", int(rank)),
                             ("record", record), ("start", a + 1), ("end", b),
                             ("peak", pos + 1), ("strand", strand), ("activation", float(act)),
                             ("sequence", seq),
                             ("activations", np.asarray(values, dtype=np.float32)),
                             ("copies", int(copies))):
                rows[col].append(val)

        top = self.top
        starts = np.r_[0, np.flatnonzero(top.group[1:] != top.group[:-1]) + 1] \
            if len(top.group) else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], len(top.group)]
        for a, b in zip(starts, ends, strict=True):
            feature = int(top.group[a])
            seen: dict[str, list] = {}
            for j in range(a, b):
                w = window(int(top.gkey[j]), top.win[j])
                seen.setdefault(w[5], []).append((j, w))
            for rank, (_, group) in enumerate(list(seen.items())[:self.top_k]):
                j, w = group[0]
                add(feature, "top", 0, rank, top.act[j], len(group), w)
                codes = w[7]
                gc_num[feature] += np.isin(codes, (1, 2)).sum()
                gc_den[feature] += (codes < 4).sum()
        gc = np.where(gc_den > 0, gc_num / np.maximum(gc_den, 1), gc)

        q = self.quantile
        feature_of = q.group // N_RANGES
        for f in np.unique(feature_of):
            mine = np.flatnonzero(feature_of == f)
            ranges = sorted(set((q.group[mine] % N_RANGES).tolist()), reverse=True)
            for bin_, rng in enumerate(ranges):
                sel = mine[q.group[mine] % N_RANGES == rng]
                sel = sel[np.lexsort((q.gkey[sel], -q.act[sel]))]
                for rank, j in enumerate(sel):
                    add(f, "quantile", bin_, rank, q.act[j], 1, window(int(q.gkey[j]), q.win[j]))
        features = {"dictionary": [context.dictionary] * self.F,
                    "feature": np.arange(self.F, dtype=np.int32), "gc_top": gc}
        return {"examples": rows, "features": features}


def examples_factory(context: AtlasContext) -> ExamplesAccumulator:
    return ExamplesAccumulator(context)


ACCUMULATORS = [examples_factory]
FINALIZERS: list = []
