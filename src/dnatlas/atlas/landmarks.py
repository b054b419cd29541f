"""Landmark profiles: each feature's mean activation against the distance to a landmark.

Landmarks (:data:`dnatlas.atlas.schema.LANDMARKS`), each a single nucleotide on one strand:

- ``cds_start``: the first nucleotide of a CDS (the start codon's first base);
- ``cds_end``: its last nucleotide (the stop codon's last base);
- ``trna_end``, ``rrna_end``: the 3' end (last nucleotide) of a tRNA or an rRNA;
- ``tss``: a transcription start site, the 5' end of each interval of a user's BED or GFF
  (:func:`landmark_sites` ``tss=``); absent unless given.

A multi-piece feature (pieces sharing an ``ID``) is one landmark at its outer end;
pseudogenes and unstranded intervals are skipped. **Copies** are dropped: a landmark
whose 33 nt (itself and 16 nt each side, read on its strand) repeat those of an earlier
landmark of its kind is the copy of a repeated element (the 7 rRNA operons, IS elements),
one observation rather than several (:func:`drop_copies`).

Offsets run in the landmark's own 5'->3' direction, from ``-flank`` to ``+flank``
(default 100): offset ``-10`` of a ``-`` strand CDS start is the forward position 10 nt
to its right. **Sense** is what the model read on the landmark's own strand,
**antisense** on the other. The profile at offset ``d`` is the mean activation over the
landmarks whose position ``landmark + d`` was read in the pass (``n`` counts them, so a
landmark near a record end or crossing chunk borders is averaged exactly where it was
read).

The accumulator gathers, per chunk, a sparse (offsets x positions) incidence matrix of
the landmark+offset positions falling in the chunk and multiplies it into the chunk's
activations (dense or CSR): O(landmarks in the chunk x offsets x F) work.

**Peaks.** A (landmark, orientation, offset) is a peak of a feature when at least
``min_n`` (20) landmarks were averaged there and
(1) the profile is at least ``min_ratio`` (2) times the feature's genome-wide mean;
(2) its excess over that mean is at least ``min_z`` (6) standard errors (the feature's
genome-wide standard deviation over the square root of ``n``: the spread a mean of ``n``
random positions would have);
(3) the feature fired (activation > 0) at at least ``MIN_FIRES`` (5) of those landmarks,
more often than its genome-wide firing rate allows: the one-sided binomial p-value of
that count, times the number of (landmark, orientation, offset) cells tested
(Bonferroni), is below ``MAX_P`` (1e-3). (3) keeps a sparse feature's two or three
chance hits at one offset from making a peak, which (1) and (2) alone would not;
(4) the profile there is at least ``min_local`` (2) times its own level on either side:
the mean over the offsets of the same frame (``offset mod 3``) beyond 3 nt to the left,
and to the right (:func:`side_baseline`; at least 5 such offsets each side, so peaks
within about 15 nt of the window's ends are not called). A step (a feature firing inside
genes, seen from their starts) and firing locked to the codon phase (repeating every
3 nt) are no peaks; a site at a fixed distance is.
``best_landmark`` is the peak with the highest ratio, written ``landmark/orientation``
(e.g. ``cds_start/sense``), with its ``landmark_offset`` and ``landmark_ratio``; all three
are NULL without a peak.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from dnatlas.annotation.features import Interval, group_features
from dnatlas.annotation.tracks import is_pseudo
from dnatlas.atlas import schema

DEFAULT_FLANK = 100
MIN_N, MIN_RATIO, MIN_Z, MIN_FIRES, MAX_P, MIN_LOCAL = 20, 2.0, 6.0, 5, 1e-3, 2.0
COPY_CONTEXT = 16
#: landmark -> (feature types, end): 'start' the 5' end, 'end' the 3' end
LANDMARK_RULES = {"cds_start": (("CDS",), "start"), "cds_end": (("CDS",), "end"),
                  "trna_end": (("tRNA",), "end"), "rrna_end": (("rRNA",), "end")}
TSS_TYPES = frozenset({"TSS", "tss", "transcription_start_site"})

Sites = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]


def landmark_sites(intervals: Iterable[Interval], tss: Iterable[Interval] = (),
                   codes=None) -> Sites:
    """``{landmark: {record: (positions, strands)}}``: 0-based forward positions (sorted,
    int64) and strands (+1/-1, int8) of every landmark. Intervals of a TSS type
    (``TSS``, ``transcription_start_site``) count as TSSs, as do those of ``tss``. With
    ``codes`` ({record: uint8 codes}), copies are dropped (:func:`drop_copies`)."""
    found: dict[str, dict[str, list[tuple[int, int]]]] = {name: {} for name in schema.LANDMARKS}
    intervals = list(intervals)
    for group in group_features(intervals):
        first = group[0]
        if first.strand == 0 or is_pseudo(first):
            continue
        lo, hi = min(iv.start for iv in group), max(iv.end for iv in group)
        if hi <= lo:
            continue
        five, three = (lo, hi - 1) if first.strand > 0 else (hi - 1, lo)
        for name, (types, end) in LANDMARK_RULES.items():
            if first.type in types:
                pos = five if end == "start" else three
                found[name].setdefault(first.seqid, []).append((pos, first.strand))
        if first.type in TSS_TYPES:
            found["tss"].setdefault(first.seqid, []).append((five, first.strand))
    for iv in tss:
        if iv.strand != 0 and iv.end > iv.start:
            five = iv.start if iv.strand > 0 else iv.end - 1
            found["tss"].setdefault(iv.seqid, []).append((five, iv.strand))
    sites: Sites = {}
    for name, records in found.items():
        sites[name] = {}
        for record, items in records.items():
            arr = np.array(sorted(set(items)), dtype=np.int64).reshape(-1, 2)
            sites[name][record] = (arr[:, 0], arr[:, 1].astype(np.int8))
    return sites if codes is None else drop_copies(sites, codes)


def drop_copies(sites: Sites, codes, context: int = COPY_CONTEXT) -> Sites:
    """``sites`` without the landmarks whose ``2 * context + 1`` nt, read on their own
    strand, repeat those of an earlier landmark of the same kind (records in order, then
    positions): the copies of a repeated element (rRNA operons, IS elements) are one
    observation, not several."""
    complement = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
    out: Sites = {}
    for name, records in sites.items():
        seen: set[bytes] = set()
        out[name] = {}
        for record, (pos, strand) in records.items():
            seq = codes.get(record) if hasattr(codes, "get") else None
            keep = np.ones(len(pos), dtype=bool)
            if seq is not None:
                seq = np.asarray(seq, dtype=np.uint8)
                for i, (p, s) in enumerate(zip(pos.tolist(), strand.tolist(), strict=True)):
                    if p - context < 0 or p + context + 1 > len(seq):
                        continue
                    window = seq[p - context:p + context + 1]
                    if s < 0:
                        window = complement[np.minimum(window, 4)][::-1]
                    key = window.tobytes()
                    keep[i] = key not in seen
                    seen.add(key)
            out[name][record] = (pos[keep], strand[keep])
    return out


def side_baseline(prof: np.ndarray, min_side: int = 5) -> np.ndarray:
    """Per offset ``d`` of ``prof`` (axis 2 = offsets), the larger of the mean profile
    over the offsets of the same frame (``d mod 3``) left of ``d - 3`` and right of
    ``d + 3``; +inf where a side has fewer than ``min_side`` such offsets (near the
    window's ends a peak cannot be told from a trend). NaN offsets are skipped."""
    out = np.full(prof.shape, np.inf)
    for r in range(3):
        g = prof[:, :, r::3]
        m = g.shape[2]
        valid = ~np.isnan(g)
        cs = np.cumsum(np.where(valid, g, 0.0), axis=2)
        cn = np.cumsum(valid, axis=2)
        total, total_n = cs[:, :, -1:], cn[:, :, -1:]
        zeros = np.zeros_like(cs[:, :, :2])
        left_s = np.concatenate([zeros, cs[:, :, :-2]], axis=2)
        left_n = np.concatenate([zeros, cn[:, :, :-2]], axis=2)
        right_s = total - np.concatenate([cs[:, :, 1:], np.repeat(total, 1, axis=2)], axis=2)
        right_n = total_n - np.concatenate([cn[:, :, 1:], np.repeat(total_n, 1, axis=2)],
                                           axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            left = np.where(left_n >= min_side, left_s / left_n, np.inf)
            right = np.where(right_n >= min_side, right_s / right_n, np.inf)
        out[:, :, r::3] = np.maximum(left, right)[:, :, :m]
    return out


def _positive(acts):
    return acts.maximum(0) if sp.issparse(acts) else np.maximum(acts, 0)


class LandmarkAccumulator:
    """Landmark profiles of one dictionary's F features (the :class:`Accumulator`
    protocol of :mod:`dnatlas.atlas.accumulate`)."""

    def __init__(self, dictionary: str, n_features: int, sites: Sites,
                 flank: int = DEFAULT_FLANK, min_n: int = MIN_N, min_ratio: float = MIN_RATIO,
                 min_z: float = MIN_Z, min_local: float = MIN_LOCAL):
        self.dictionary, self.n_features, self.sites = dictionary, int(n_features), sites
        self.flank, self.min_n, self.min_ratio, self.min_z = int(flank), min_n, min_ratio, min_z
        self.min_local = min_local
        self.offsets = np.arange(-self.flank, self.flank + 1, dtype=np.int64)
        shape = (len(schema.LANDMARKS), 2, len(self.offsets))
        self.sums = np.zeros(shape + (self.n_features,))
        self.counts = np.zeros(shape, dtype=np.int64)
        self.fires = np.zeros(shape + (self.n_features,), dtype=np.int64)
        self.n_fire = np.zeros(self.n_features, dtype=np.int64)   # positions with acts > 0
        self.total = np.zeros(self.n_features)        # sum of activations, all positions
        self.total_sq = np.zeros(self.n_features)
        self.positions = 0

    # -- the pass --------------------------------------------------------------------------
    def update(self, chunk, acts) -> None:
        length = chunk.end - chunk.start
        if acts.shape[0] != length:       # a halo given anyway: keep the chunk's own rows
            acts = acts[chunk.own]
        if acts.shape != (length, self.n_features):
            raise ValueError(f"activations {acts.shape} for a chunk of {length} nt and "
                             f"{self.n_features} features")
        read = 1 if chunk.strand == "+" else -1
        self.positions += length
        if sp.issparse(acts):
            acts = acts.tocsr()
            fired = (acts > 0).astype(np.float64)
            self.total += np.asarray(acts.sum(axis=0)).ravel()
            self.total_sq += np.asarray(acts.multiply(acts).sum(axis=0)).ravel()
        else:
            acts = np.asarray(acts)
            fired = (acts > 0).astype(np.float64)
            self.total += acts.sum(axis=0, dtype=np.float64)
            self.total_sq += np.einsum("ij,ij->j", acts, acts, dtype=np.float64)
        self.n_fire += np.asarray(fired.sum(axis=0), dtype=np.int64).ravel()
        width = len(self.offsets)
        all_rows, all_cols = [], []
        for li, name in enumerate(schema.LANDMARKS):
            found = self.sites.get(name, {}).get(chunk.record)
            if found is None:
                continue
            pos, strand = found
            lo = np.searchsorted(pos, chunk.start - self.flank)
            hi = np.searchsorted(pos, chunk.end + self.flank)
            if hi <= lo:
                continue
            for oi, same in enumerate((True, False)):
                keep = (strand[lo:hi] == read) if same else (strand[lo:hi] != read)
                p, s = pos[lo:hi][keep], strand[lo:hi][keep].astype(np.int64)
                if not len(p):
                    continue
                idx = p[:, None] + s[:, None] * self.offsets[None, :] - chunk.start
                ok = (idx >= 0) & (idx < length)
                if not ok.any():
                    continue
                cell = (li * 2 + oi) * width
                all_rows.append(cell + np.broadcast_to(np.arange(width), idx.shape)[ok])
                all_cols.append(idx[ok])
                self.counts[li, oi] += ok.sum(axis=0)
        if not all_rows:
            return
        # one (landmarks x orientations x offsets, positions) incidence matrix per chunk
        rows, cols = np.concatenate(all_rows), np.concatenate(all_cols)
        gather = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                               shape=(len(schema.LANDMARKS) * 2 * width, length))
        used = np.unique(rows)
        gather = gather[used]
        shape = (len(schema.LANDMARKS) * 2 * width, self.n_features)
        for target, values in ((self.sums, acts), (self.fires, fired)):
            got = gather @ values
            got = got.toarray() if sp.issparse(got) else np.asarray(got)
            flat = target.reshape(shape)
            flat[used] += got if target.dtype.kind == "f" else np.rint(got).astype(np.int64)

    def merge(self, other: LandmarkAccumulator) -> None:
        self.sums += other.sums
        self.counts += other.counts
        self.fires += other.fires
        self.n_fire += other.n_fire
        self.total += other.total
        self.total_sq += other.total_sq
        self.positions += other.positions

    def state_dict(self) -> dict:
        return {"sums": self.sums, "counts": self.counts, "fires": self.fires,
                "n_fire": self.n_fire, "total": self.total,
                "total_sq": self.total_sq, "positions": np.int64(self.positions),
                "flank": np.int64(self.flank)}

    def load_state_dict(self, state: dict) -> None:
        if int(state["flank"]) != self.flank or state["sums"].shape != self.sums.shape:
            raise ValueError("landmark state of another shape (flank or feature count)")
        self.sums = np.array(state["sums"], dtype=np.float64)
        self.counts = np.array(state["counts"], dtype=np.int64)
        self.fires = np.array(state["fires"], dtype=np.int64)
        self.n_fire = np.array(state["n_fire"], dtype=np.int64)
        self.total = np.array(state["total"], dtype=np.float64)
        self.total_sq = np.array(state["total_sq"], dtype=np.float64)
        self.positions = int(state["positions"])

    # -- results ---------------------------------------------------------------------------
    def profiles(self) -> np.ndarray:
        """Float64 (landmarks, 2, offsets, F): mean activation (NaN where nothing read)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts[..., None]

    def peaks(self) -> dict[str, np.ndarray]:
        """Per feature: ``landmark`` (index into LANDMARKS, -1: no peak), ``orientation``
        (0 sense, 1 antisense), ``offset`` (nt) and ``ratio`` (NaN: no peak)."""
        f = self.n_features
        out = {"landmark": np.full(f, -1), "orientation": np.zeros(f, dtype=np.int64),
               "offset": np.zeros(f, dtype=np.int64), "ratio": np.full(f, np.nan)}
        if self.positions == 0:
            return out
        mean = self.total / self.positions
        sd = np.sqrt(np.maximum(self.total_sq / self.positions - mean ** 2, 0.0))
        prof = self.profiles()
        n = self.counts[..., None].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = prof / mean
            z = (prof - mean) / (sd / np.sqrt(n))
        ok = (n >= self.min_n) & (ratio >= self.min_ratio) & (z >= self.min_z) & (mean > 0)
        ok &= self.fires >= MIN_FIRES
        with np.errstate(invalid="ignore"):
            ok &= prof >= self.min_local * side_baseline(prof)
        if ok.any():
            from scipy.stats import binom

            cells = max(1, int((self.counts >= self.min_n).sum()))
            rate = np.broadcast_to(self.n_fire / self.positions, ok.shape)[ok]
            nn = np.broadcast_to(self.counts[..., None], ok.shape)[ok]
            logp = binom.logsf(self.fires[ok] - 1, nn, rate) + np.log(cells)
            ok[ok] = logp < np.log(MAX_P)
        score = np.where(ok, ratio, -np.inf).reshape(-1, f)
        best = score.argmax(axis=0)
        has = np.isfinite(score[best, np.arange(f)])
        li, oi, di = np.unravel_index(best, prof.shape[:3])
        out["landmark"] = np.where(has, li, -1)
        out["orientation"] = oi
        out["offset"] = self.offsets[di]
        out["ratio"] = np.where(has, score[best, np.arange(f)], np.nan)
        return out

    def tables(self, context=None) -> dict[str, dict]:
        prof = self.profiles()
        rows: dict[str, list] = {c: [] for c in schema.columns("landmarks")}
        for li, name in enumerate(schema.LANDMARKS):
            for oi, orientation in enumerate(schema.ORIENTATIONS):
                n = int(self.counts[li, oi].max())
                if n == 0:
                    continue
                for feature in range(self.n_features):
                    p = prof[li, oi, :, feature]
                    rows["dictionary"].append(self.dictionary)
                    rows["feature"].append(feature)
                    rows["landmark"].append(name)
                    rows["orientation"].append(orientation)
                    rows["offset_min"].append(-self.flank)
                    rows["profile"].append(p.astype(np.float32))   # NaN: offset never read
                    rows["n"].append(n)
        peaks = self.peaks()
        has = peaks["landmark"] >= 0
        features = {
            "dictionary": [self.dictionary] * self.n_features,
            "feature": list(range(self.n_features)),
            "best_landmark": [
                f"{schema.LANDMARKS[li]}/{schema.ORIENTATIONS[oi]}" if h else None
                for li, oi, h in zip(peaks["landmark"], peaks["orientation"], has, strict=True)],
            "landmark_offset": [int(d) if h else None
                                for d, h in zip(peaks["offset"], has, strict=True)],
            "landmark_ratio": [float(r) if h else None
                               for r, h in zip(peaks["ratio"], has, strict=True)],
        }
        return {"landmarks": rows, "features": features}


def tss_intervals(settings) -> list[Interval]:
    """The TSSs a user gave (``settings['tss']``: a BED or GFF3 file), or none."""
    path = (settings or {}).get("tss")
    if not path:
        return []
    from dnatlas.annotation.intervals import load_annotations

    return load_annotations(path)


def landmark_factory(context) -> LandmarkAccumulator | None:
    """The accumulator of ``context``'s dictionary; None without any landmark.
    Settings read: ``tss`` (a BED/GFF3 of TSSs), ``landmark_flank`` (nt, default 100)."""
    settings = context.settings or {}
    sites = landmark_sites(context.intervals, tss_intervals(settings), context.codes)
    if not any(sites[name] for name in sites):
        return None
    return LandmarkAccumulator(context.dictionary, context.n_features, sites,
                               flank=int(settings.get("landmark_flank") or DEFAULT_FLANK))


ACCUMULATORS = [landmark_factory]
FINALIZERS: list = []
