"""Per-feature statistics of the atlas, streamed: maxima, means, firing fractions (whole
genome and per strand), the log-binned histogram of positive activations, quantiles read
from it, and the binned maxima along the genome (the Manhattan track).

Every position of every record is counted on each strand read (N included). Sums are
kept as int64 fixed point (units of 2**-20 of the dictionary's activation unit) after
summing each chunk in float64, so that adding the chunks of several ranks in any order
gives the same bits as one process; maxima, counts and histograms are exact.

Quantiles ``q50/q90/q99`` are of the positive activations, interpolated log-linearly
inside the histogram bin that holds them (so within one bin, a factor 10**0.1, of the
exact value) and clipped to the maximum.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from dnatlas.atlas import schema
from dnatlas.atlas.accumulate import STRANDS, AtlasContext, Chunk

FIXED_POINT = 2.0 ** 20
_LOG_SCALE = schema.HIST_PER_DECADE


def hist_bins(values: np.ndarray) -> np.ndarray:
    """The histogram bin (0 .. HIST_BINS-1) of each positive value (schema edges: bin 0
    holds (0, 10**HIST_LOG10_MIN], the last is open above)."""
    with np.errstate(divide="ignore"):
        x = np.ceil((np.log10(np.asarray(values, dtype=np.float64)) - schema.HIST_LOG10_MIN)
                    * _LOG_SCALE - 1e-9)
    return np.clip(x, 0, schema.HIST_BINS - 1).astype(np.int64)


def hist_quantiles(hist: np.ndarray, qs, maximum: np.ndarray | None = None) -> np.ndarray:
    """(F, len(qs)) quantiles of the positive activations from (F, HIST_BINS) counts
    (NaN where a feature never fires), interpolated log-linearly inside the bin."""
    hist = np.asarray(hist, dtype=np.float64)
    edges = np.asarray(schema.hist_edges(), dtype=np.float64)
    lower = edges[:-1].copy()
    lower[0] = 10.0 ** (schema.HIST_LOG10_MIN - 1 / _LOG_SCALE)
    upper = edges[1:].copy()
    upper[-1] = 10.0 ** (schema.HIST_LOG10_MAX + 1 / _LOG_SCALE)
    cum = hist.cumsum(axis=1)
    total = cum[:, -1]
    out = np.full((len(hist), len(qs)), np.nan)
    for j, q in enumerate(qs):
        target = q * total
        b = np.minimum((cum < target[:, None]).sum(axis=1), schema.HIST_BINS - 1)
        before = np.where(b > 0, cum[np.arange(len(hist)), np.maximum(b - 1, 0)], 0.0)
        inside = hist[np.arange(len(hist)), b]
        frac = np.clip(np.where(inside > 0, (target - before) / np.where(inside > 0, inside, 1),
                                1.0), 0.0, 1.0)
        lo, hi = lower[b], upper[b]
        value = lo * (hi / lo) ** frac
        if maximum is not None:
            value = np.minimum(value, maximum)
        out[:, j] = np.where(total > 0, value, np.nan)
    return out


def _column_entries(acts: sp.spmatrix):
    """(csc data, feature of each entry, row of each entry, indptr) of a sparse chunk,
    entries sorted by (feature, row)."""
    csc = sp.csc_matrix(acts)
    csc.sum_duplicates()
    csc.sort_indices()
    feature = np.repeat(np.arange(csc.shape[1]), np.diff(csc.indptr))
    return csc.data.astype(np.float64), feature, csc.indices.astype(np.int64), csc.indptr


class StatisticsAccumulator:
    """Statistics of one dictionary (module docstring)."""

    def __init__(self, context: AtlasContext):
        F = context.n_features
        self.F, self.bin_size, self.n_bins = F, context.bin_size, context.n_bins
        self.sparse_zero = context.kind == "sae"
        self.n = np.zeros(2, dtype=np.int64)
        self.sum = np.zeros((2, F), dtype=np.int64)
        self.active = np.zeros((2, F), dtype=np.int64)
        self.max = np.full((2, F), -np.inf)
        self.hist = np.zeros((F, schema.HIST_BINS), dtype=np.int64)
        self.manhattan = np.full((F, self.n_bins), -np.inf, dtype=np.float32)

    # -- streaming -----------------------------------------------------------------------
    def update(self, chunk: Chunk, acts) -> None:
        s = STRANDS.index(chunk.strand)
        n, F = chunk.n, self.F
        self.n[s] += n
        g0 = chunk.offset + chunk.start
        first_bin, last_bin = g0 // self.bin_size, (g0 + n - 1) // self.bin_size
        if sp.issparse(acts):
            data, feature, row, indptr = _column_entries(acts)
            chunk_sum = np.bincount(feature, weights=data, minlength=F)
            nnz = np.diff(indptr)
            nonempty = np.flatnonzero(nnz)
            chunk_max = np.full(F, -np.inf)
            if len(nonempty):
                chunk_max[nonempty] = np.maximum.reduceat(data, indptr[:-1][nonempty])
            chunk_max = np.where(nnz < n, np.maximum(chunk_max, 0.0), chunk_max)
            positive = data > 0
            self.active[s] += np.bincount(feature[positive], minlength=F)
            self.hist += np.bincount(feature[positive] * schema.HIST_BINS
                                     + hist_bins(data[positive]),
                                     minlength=F * schema.HIST_BINS).reshape(F, -1)
            # Manhattan: entries sorted by (feature, row) are sorted by (feature, bin)
            gbin = (g0 + row) // self.bin_size
            if len(data):
                key = feature * (last_bin - first_bin + 1) + (gbin - first_bin)
                starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
                best = np.maximum.reduceat(data, starts).astype(np.float32)
                f, b = feature[starts], gbin[starts]
                self.manhattan[f, b] = np.maximum(self.manhattan[f, b], best)
            if self.sparse_zero:   # absent entries are zeros
                block = self.manhattan[:, first_bin:last_bin + 1]
                np.maximum(block, 0, out=block)
        else:
            acts = np.asarray(acts, dtype=np.float32)
            chunk_sum = acts.sum(axis=0, dtype=np.float64)
            chunk_max = acts.max(axis=0).astype(np.float64) if n else np.full(F, -np.inf)
            rows, feature = np.nonzero(acts > 0)
            self.active[s] += np.bincount(feature, minlength=F)
            self.hist += np.bincount(feature * schema.HIST_BINS
                                     + hist_bins(acts[rows, feature]),
                                     minlength=F * schema.HIST_BINS).reshape(F, -1)
            gbin = (g0 + np.arange(n)) // self.bin_size
            starts = np.flatnonzero(np.r_[True, gbin[1:] != gbin[:-1]])
            best = np.maximum.reduceat(acts, starts, axis=0)         # (bins, F)
            b = gbin[starts]
            self.manhattan[:, b] = np.maximum(self.manhattan[:, b], best.T)
        self.sum[s] += np.rint(chunk_sum * FIXED_POINT).astype(np.int64)
        self.max[s] = np.maximum(self.max[s], chunk_max)

    def merge(self, other: StatisticsAccumulator) -> None:
        self.n += other.n
        self.sum += other.sum
        self.active += other.active
        self.hist += other.hist
        np.maximum(self.max, other.max, out=self.max)
        np.maximum(self.manhattan, other.manhattan, out=self.manhattan)

    _STATE = ("n", "sum", "active", "max", "hist", "manhattan")

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        for name in self._STATE:
            setattr(self, name, np.array(state[name], dtype=getattr(self, name).dtype))

    # -- results -------------------------------------------------------------------------
    def tables(self, context: AtlasContext) -> dict[str, dict]:
        n = np.maximum(self.n, 1)[:, None]
        total = max(int(self.n.sum()), 1)
        sums = self.sum.astype(np.float64) / FIXED_POINT
        mx = np.where(np.isfinite(self.max), self.max, np.nan)
        both_max = np.nanmax(np.where(np.isfinite(mx), mx, -np.inf), axis=0)
        both_max = np.where(np.isfinite(both_max), both_max, np.nan)
        q = hist_quantiles(self.hist, (0.5, 0.9, 0.99), both_max)
        manhattan = np.where(np.isfinite(self.manhattan), self.manhattan, np.nan)
        rows = {
            "dictionary": [context.dictionary] * self.F,
            "feature": np.arange(self.F, dtype=np.int32),
            "max": both_max,
            "mean": sums.sum(axis=0) / total,
            "frac_active": self.active.sum(axis=0) / total,
            "max_plus": mx[0], "max_minus": mx[1],
            "mean_plus": sums[0] / n[0], "mean_minus": sums[1] / n[1],
            "frac_plus": self.active[0] / n[0], "frac_minus": self.active[1] / n[1],
            "q50": q[:, 0], "q90": q[:, 1], "q99": q[:, 2],
            "hist": list(self.hist),
            "manhattan": list(manhattan.astype(np.float32)),
        }
        return {"features": rows}


def statistics_factory(context: AtlasContext) -> StatisticsAccumulator:
    return StatisticsAccumulator(context)


ACCUMULATORS = [statistics_factory]
FINALIZERS: list = []
