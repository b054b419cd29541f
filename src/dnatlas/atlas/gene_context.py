"""Gene context: codon phase, coding versus template strand, and 3-periodicity.

Per feature, from its firing mass (the sum of its positive activations; neurons can be
negative, their negative part is left out):

- ``phase``: the shares of the mass read **in a CDS on its own strand** (sense) that fall
  on codon positions 1, 2 and 3 (the CDS's reading frame, GFF3 ``phase`` honoured);
  positions where overlapping CDSs of one strand disagree on the frame are left out.
  ``phase_strength = max(phase) - 1/3`` (0: no preference, 2/3: one position only).
- ``coding_strand``: among positions inside a gene (a CDS, tRNA, rRNA, tmRNA or ncRNA)
  on exactly one strand, the share of the mass read on the gene's own strand (the coding
  strand) rather than the other (the template strand).
- ``periodicity3``: from the autocorrelation ``r(k)`` (the mean of ``a_i a_{i+k}`` over
  pairs of positions in the same sense CDS and chunk, ``k = 1..12``), linearly detrended,
  the share of its energy at period 3: ``2 |sum_k r(k) exp(-2 pi i k / 3)|^2 /
  (12 sum_k r(k)^2)``, in [0, 1] (Parseval: 12 lags are four whole periods). A signal
  repeating every 3 nt scores near 1; white noise about 2/12 on average; smooth decays
  low. Pairs crossing a chunk border are not counted (a few per chunk).

NULL where the feature never fired in a CDS / gene. Cost per chunk: one sparse
(5 x positions) indicator product and 12 lagged products over in-CDS rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from dnatlas.annotation.features import group_features
from dnatlas.annotation.tracks import is_pseudo

GENE_TYPES = frozenset({"CDS", "tRNA", "rRNA", "tmRNA", "ncRNA"})
LAGS = 12


class Tracks:
    """Per record and strand: CDS id (-1 none), codon position (0..2; -1 none or
    ambiguous) and gene membership, built once from the annotation."""

    def __init__(self, intervals, lengths: dict[str, int]):
        self.cds: dict[tuple[str, int], np.ndarray] = {}
        self.frame: dict[tuple[str, int], np.ndarray] = {}
        self.gene: dict[tuple[str, int], np.ndarray] = {}
        for record, n in lengths.items():
            for s in (1, -1):
                self.cds[record, s] = np.full(n, -1, dtype=np.int32)
                self.frame[record, s] = np.full(n, -1, dtype=np.int8)
                self.gene[record, s] = np.zeros(n, dtype=bool)
        cds_id = 0
        for group in group_features(intervals):
            first = group[0]
            key = (first.seqid, first.strand)
            if first.strand == 0 or key not in self.cds or first.type not in GENE_TYPES:
                continue
            n = len(self.cds[key])
            for iv in group:
                self.gene[key][min(iv.start, n):min(iv.end, n)] = True
            if first.type != "CDS" or is_pseudo(first):
                continue
            for iv in group:
                lo, hi = min(iv.start, n), min(iv.end, n)
                if hi <= lo:
                    continue
                phase = int(iv.attributes.get("phase", "0")) if iv.attributes.get(
                    "phase", ".") in ("0", "1", "2") else 0
                pos = np.arange(lo, hi)
                frame = ((pos - iv.start - phase) if iv.strand > 0
                         else (iv.end - 1 - pos - phase)) % 3
                old = self.frame[key][lo:hi]
                clash = (self.cds[key][lo:hi] >= 0) & (old != frame)
                self.frame[key][lo:hi] = np.where(clash | (old == -2), -2, frame)
                self.cds[key][lo:hi] = cds_id
            cds_id += 1
        for key in self.frame:
            self.frame[key][self.frame[key] < 0] = -1


def period3_share(r: np.ndarray) -> float | None:
    """Share of the energy of the linearly detrended sequence ``r`` (length a multiple
    of 3) at period 3; None when it is all zero/NaN."""
    r = np.asarray(r, dtype=np.float64)
    if not np.isfinite(r).all() or not r.any():
        return None
    k = np.arange(1, len(r) + 1, dtype=np.float64)
    x = r - np.polyval(np.polyfit(k, r, 1), k)
    energy = float((x ** 2).sum())
    if energy <= 1e-300 * len(r):
        return None
    coef = (x * np.exp(-2j * np.pi * k / 3)).sum()
    return float(min(1.0, 2 * abs(coef) ** 2 / (len(r) * energy)))


class GeneContextAccumulator:
    """Codon phase, strand and 3-periodicity of one dictionary's F features."""

    def __init__(self, dictionary: str, n_features: int, tracks: Tracks, lags: int = LAGS):
        self.dictionary, self.n_features, self.tracks = dictionary, int(n_features), tracks
        self.lags = int(lags)
        self.mass = np.zeros((5, self.n_features))   # codon 1, 2, 3, coding, template
        self.lagged = np.zeros((self.lags, self.n_features))
        self.pairs = np.zeros(self.lags, dtype=np.int64)

    def update(self, chunk, acts) -> None:
        length = chunk.end - chunk.start
        if acts.shape[0] != length:
            acts = acts[chunk.own]
        key_same = (chunk.record, 1 if chunk.strand == "+" else -1)
        key_other = (chunk.record, -key_same[1])
        if key_same not in self.cds_tracks:
            return
        a = acts.tocsr().maximum(0) if sp.issparse(acts) else np.maximum(
            np.asarray(acts, dtype=np.float32), 0)
        sl = slice(chunk.start, chunk.end)
        frame = self.tracks.frame[key_same][sl]
        cds = self.tracks.cds[key_same][sl]
        same, other = self.tracks.gene[key_same][sl], self.tracks.gene[key_other][sl]
        rows = np.concatenate([frame[frame >= 0], np.full((same & ~other).sum(), 3),
                               np.full((other & ~same).sum(), 4)]).astype(np.int64)
        cols = np.concatenate([np.nonzero(frame >= 0)[0], np.nonzero(same & ~other)[0],
                               np.nonzero(other & ~same)[0]])
        if len(rows):
            ind = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(5, length))
            got = ind @ a
            self.mass += got.toarray() if sp.issparse(got) else got
        if sp.issparse(a):
            self._lagged_sparse(a, cds, length)
            return
        for k in range(1, self.lags + 1):
            if length <= k:
                break
            valid = (cds[:-k] >= 0) & (cds[:-k] == cds[k:])
            n = int(valid.sum())
            if n:
                self.pairs[k - 1] += n
                self.lagged[k - 1] += np.einsum("i,ij,ij->j", valid.astype(a.dtype), a[:-k],
                                                a[k:], dtype=np.float64)

    def _lagged_sparse(self, a, cds: np.ndarray, length: int) -> None:
        """The lagged products from the CSR entries: entry (i, f) meets (i + k, f)."""
        coo = a.tocoo()
        keep = coo.data > 0
        row, col, val = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), \
            coo.data[keep].astype(np.float64)
        key = row * self.n_features + col
        order = np.argsort(key, kind="stable")
        key, row, col, val = key[order], row[order], col[order], val[order]
        for k in range(1, self.lags + 1):
            if length <= k:
                break
            valid = (cds[:-k] >= 0) & (cds[:-k] == cds[k:])
            self.pairs[k - 1] += int(valid.sum())
            src = (row + k < length)
            src[src] = valid[row[src]]
            if not src.any():
                continue
            want = key[src] + k * self.n_features
            at = np.minimum(np.searchsorted(key, want), len(key) - 1)
            hit = key[at] == want
            prod = val[src][hit] * val[at[hit]]
            self.lagged[k - 1] += np.bincount(col[src][hit], weights=prod,
                                              minlength=self.n_features)

    @property
    def cds_tracks(self):
        return self.tracks.cds

    def merge(self, other: GeneContextAccumulator) -> None:
        self.mass += other.mass
        self.lagged += other.lagged
        self.pairs += other.pairs

    def state_dict(self) -> dict:
        return {"mass": self.mass, "lagged": self.lagged, "pairs": self.pairs}

    def load_state_dict(self, state: dict) -> None:
        if np.shape(state["mass"]) != self.mass.shape:
            raise ValueError("gene-context state of another feature count")
        self.mass = np.array(state["mass"], dtype=np.float64)
        self.lagged = np.array(state["lagged"], dtype=np.float64)
        self.pairs = np.array(state["pairs"], dtype=np.int64)

    def results(self) -> dict[str, list]:
        """``phase`` (list of 3 or None), ``phase_strength``, ``coding_strand``,
        ``periodicity3`` per feature (None where undefined)."""
        out: dict[str, list] = {"phase": [], "phase_strength": [], "coding_strand": [],
                                "periodicity3": []}
        with np.errstate(invalid="ignore", divide="ignore"):
            r = self.lagged / self.pairs[:, None]
        for f in range(self.n_features):
            codon = self.mass[:3, f]
            total = codon.sum()
            share = codon / total if total > 0 else None
            out["phase"].append(None if share is None else [float(v) for v in share])
            out["phase_strength"].append(None if share is None
                                         else float(share.max() - 1 / 3))
            gene = self.mass[3, f] + self.mass[4, f]
            out["coding_strand"].append(float(self.mass[3, f] / gene) if gene > 0 else None)
            usable = self.lags - self.lags % 3
            out["periodicity3"].append(period3_share(r[:usable, f]) if usable else None)
        return out

    def tables(self, context=None) -> dict[str, dict]:
        return {"features": {"dictionary": [self.dictionary] * self.n_features,
                             "feature": list(range(self.n_features)), **self.results()}}


_CACHE: dict = {}


def gene_context_factory(context) -> GeneContextAccumulator | None:
    """The accumulator of ``context``'s dictionary; None without an annotated gene. The
    tracks are built once per annotation and genome, shared by the dictionaries."""
    if not any(getattr(iv, "type", "") in GENE_TYPES for iv in context.intervals):
        return None
    lengths = {r: len(context.codes[r]) for r in context.records}
    key = (id(context.intervals), tuple(lengths.items()))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = (context.intervals, Tracks(context.intervals, lengths))
    return GeneContextAccumulator(context.dictionary, context.n_features, _CACHE[key][1])


ACCUMULATORS = [gene_context_factory]
FINALIZERS: list = []
