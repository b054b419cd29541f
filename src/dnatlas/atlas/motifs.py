"""A motif from each feature's top windows (a finalizer, after the pass).

For each feature, its top windows (``examples`` rows of kind ``top``, each window as the
model read it, 5'->3'; identical windows were already collapsed) give **cores**: the
``2 * core + 1`` nt centred on the peak (default 21 nt). Windows at least 80% identical
to a stronger one (aligned on their peaks) are copies of one repeated element and count
once (:func:`distinct_windows`): a motif is what distinct sites share, not a repeat's
sequence.

1. **Seed.** Every k-mer (default k = 6) is counted once per core it occurs in, in the
   read orientation. Its expected share of cores is ``q = 1 - (1 - p)^m``, ``p`` its
   frequency in the genome (both strands, :func:`kmer_background`) and ``m`` the k-mer
   positions per core. ``enrichment = (cores with it / cores) / q``; its one-sided
   binomial p-value, times the ``4^k`` k-mers tried (Bonferroni), is its significance.
   The seed is the k-mer with the smallest p-value (ties: more cores).
2. **The rule.** A feature has a motif when its seed has a corrected p-value below
   ``1e-3``, an enrichment of at least 3, occurs in at least 20% of the cores and in at
   least 3 of them, with at least 5 top windows. Otherwise ``top_motif`` is NULL (and no
   ``motifs`` row): shuffled windows, or windows with nothing in common, give none.
3. **PWM.** Every window whose core holds the seed is aligned on the occurrence nearest
   its peak and extended ``ext`` (5) nt on each side (within the whole window);
   ``n_sites`` counts them. The position frequency matrix is the per-column base
   frequencies; columns at either end carrying under 0.3 bits of information are
   trimmed (never the seed's). The **consensus** writes a column's most frequent base
   where its frequency is at least 0.5, else ``N``.

The same finalizer writes ``gc_top``: the GC fraction of the A/C/G/T of the feature's top
windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnatlas.atlas import columns as tbl

K, CORE, EXT = 6, 10, 5
MIN_WINDOWS, MIN_COUNT, MIN_SHARE, MIN_ENRICHMENT, MAX_P = 5, 3, 0.2, 3.0, 1e-3
TRIM_BITS, CONSENSUS_FREQ, COPY_IDENTITY = 0.3, 0.5, 0.8
_LOOKUP = np.full(256, 4, dtype=np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _LOOKUP[_c] = _i
    _LOOKUP[ord(chr(_c).lower())] = _i
LETTERS = "ACGT"


@dataclass(frozen=True)
class Motif:
    kmer: str
    enrichment: float
    consensus: str
    pfm: np.ndarray        # (width, 4) frequencies, A C G T
    n_sites: int
    count: int             # cores holding the seed
    n_windows: int
    pvalue: float          # Bonferroni-corrected

    @property
    def width(self) -> int:
        return len(self.pfm)


def encode(seq: str) -> np.ndarray:
    """A DNA string as uint8 codes (A0 C1 G2 T3, anything else N4)."""
    return _LOOKUP[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


def kmer_ids(codes: np.ndarray, k: int) -> np.ndarray:
    """The k-mer index (base 4, first base most significant) at every position of
    ``codes`` whose k bases are all A/C/G/T."""
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    ids = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    for j in range(k):
        part = codes[j:j + n]
        ids = ids * 4 + np.minimum(part, 3)
        bad |= part > 3
    return ids[~bad]


def rc_ids(k: int) -> np.ndarray:
    """Index of each k-mer's reverse complement."""
    ids = np.arange(4 ** k)
    out = np.zeros_like(ids)
    for j in range(k):
        digit = (ids // 4 ** j) % 4
        out = out * 4 + (3 - digit)
    return out


def kmer_background(codes_by_record, k: int = K) -> np.ndarray:
    """Frequency of every k-mer among the k-mer positions of both strands."""
    counts = np.zeros(4 ** k, dtype=np.float64)
    for codes in codes_by_record:
        counts += np.bincount(kmer_ids(codes, k), minlength=4 ** k)
    counts = counts + counts[rc_ids(k)]
    return counts / max(counts.sum(), 1.0)


def information(pfm: np.ndarray) -> np.ndarray:
    """Bits per column of a frequency matrix (0 for an empty column)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pfm > 0, pfm * np.log2(pfm), 0.0)
    return np.where(pfm.sum(axis=1) > 0, 2.0 + terms.sum(axis=1), 0.0)


def identity(a: tuple[np.ndarray, int], b: tuple[np.ndarray, int]) -> float:
    """Share of identical A/C/G/T bases of two windows aligned on their peaks (over their
    overlap)."""
    (x, px), (y, py) = a, b
    lo = -min(px, py)
    hi = min(len(x) - px, len(y) - py)
    if hi <= lo:
        return 0.0
    u, v = x[px + lo:px + hi], y[py + lo:py + hi]
    both = (u < 4) & (v < 4)
    return float((u[both] == v[both]).mean()) if both.any() else 0.0


def distinct_windows(windows: list[tuple[np.ndarray, int]],
                     max_identity: float = COPY_IDENTITY) -> list[tuple[np.ndarray, int]]:
    """One window per group of copies: in order, a window at least ``max_identity`` (0.8)
    identical to a kept one (aligned on the peaks) is a copy of the same repeat, left
    out."""
    kept: list[tuple[np.ndarray, int]] = []
    for w in windows:
        if all(identity(w, k) < max_identity for k in kept):
            kept.append(w)
    return kept


def find_motif(windows: list[tuple[np.ndarray, int]], background: np.ndarray, k: int = K,
               core: int = CORE, ext: int = EXT) -> Motif | None:
    """The motif of ``windows`` (codes as read, peak index), or None (module docstring)."""
    from scipy.stats import binom

    windows = distinct_windows(windows)
    n = len(windows)
    if n < MIN_WINDOWS:
        return None
    present, positions = [], []
    for codes, peak in windows:
        lo = max(0, peak - core)
        ids = kmer_ids(codes[lo:peak + core + 1], k)
        present.append(np.unique(ids))
        positions.append(max(0, min(len(codes), peak + core + 1) - lo - k + 1))
    counts = np.bincount(np.concatenate(present), minlength=4 ** k) if present else None
    m = float(np.mean(positions))
    if counts is None or m <= 0:
        return None
    cand = np.nonzero(counts >= max(MIN_COUNT, MIN_SHARE * n))[0]
    if not len(cand):
        return None
    p = background[cand]
    q = np.clip(1.0 - (1.0 - p) ** m, 1e-12, 1.0)
    logp = binom.logsf(counts[cand] - 1, n, q) + np.log(4.0 ** k)
    enrichment = counts[cand] / n / q
    ok = (logp < np.log(MAX_P)) & (enrichment >= MIN_ENRICHMENT)
    if not ok.any():
        return None
    order = np.lexsort((-counts[cand][ok], logp[ok]))
    best = order[0]
    seed = int(cand[ok][best])
    seed_codes = np.array([(seed // 4 ** (k - 1 - j)) % 4 for j in range(k)])
    width = k + 2 * ext
    tally = np.zeros((width, 4))
    sites = 0
    for codes, peak in windows:
        lo, hi = max(0, peak - core), min(len(codes), peak + core + 1)
        starts = [s for s in range(lo, hi - k + 1)
                  if np.array_equal(codes[s:s + k], seed_codes)]
        if not starts:
            continue
        s = min(starts, key=lambda x: (abs(x + k // 2 - peak), x))
        for j in range(width):
            pos = s - ext + j
            if 0 <= pos < len(codes) and codes[pos] < 4:
                tally[j, codes[pos]] += 1
        sites += 1
    pfm = tally / np.maximum(tally.sum(axis=1, keepdims=True), 1)
    bits = information(pfm)
    a, b = 0, width
    while a < ext and bits[a] < TRIM_BITS:
        a += 1
    while b > ext + k and bits[b - 1] < TRIM_BITS:
        b -= 1
    pfm = pfm[a:b]
    consensus = "".join(LETTERS[int(np.argmax(row))] if row.max() >= CONSENSUS_FREQ else "N"
                        for row in pfm)
    return Motif("".join(LETTERS[c] for c in seed_codes), float(enrichment[ok][best]),
                 consensus, pfm, sites, int(counts[seed]), n, float(np.exp(logp[ok][best])))


def _peak_index(row: dict) -> int:
    """The peak's index in the window as read (1-based closed coordinates)."""
    if row["strand"] == "-":
        return int(row["end"]) - int(row["peak"])
    return int(row["peak"]) - int(row["start"])


def gc_fraction(sequences) -> float | None:
    codes = np.concatenate([encode(s) for s in sequences]) if sequences else np.zeros(0)
    acgt = codes[codes < 4]
    return float(np.isin(acgt, (1, 2)).mean()) if len(acgt) else None


_BACKGROUND: dict = {}


def _background(contexts, k: int) -> np.ndarray | None:
    for context in contexts.values():
        key = (id(context.codes), tuple(context.records), k)
        if key not in _BACKGROUND:
            _BACKGROUND.clear()
            _BACKGROUND[key] = (context.codes, kmer_background(
                (context.codes[r] for r in context.records), k))
        return _BACKGROUND[key][1]
    return None


def motif_finalizer(tables: dict, contexts: dict) -> dict:
    """Motifs and ``gc_top`` of every feature with top windows (module docstring).
    Settings read: ``motif_k`` (6), ``motif_core`` (10)."""
    settings = next(iter(contexts.values())).settings if contexts else {}
    k = int((settings or {}).get("motif_k") or K)
    core = int((settings or {}).get("motif_core") or CORE)
    background = _background(contexts, k)
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in tbl.rows(tables.get("examples"), ("dictionary", "feature", "kind", "start",
                                                 "end", "peak", "strand", "sequence")):
        if row["kind"] == "top" and row["sequence"]:
            groups.setdefault((row["dictionary"], int(row["feature"])), []).append(row)
    values: dict[tuple[str, int], dict] = {}
    new = {c: [] for c in ("dictionary", "feature", "kmer", "enrichment", "consensus", "pwm",
                           "width", "n_sites")}
    for key, group in sorted(groups.items()):
        values[key] = {"gc_top": gc_fraction([r["sequence"] for r in group])}
        if background is None:
            continue
        motif = find_motif([(encode(r["sequence"]), _peak_index(r)) for r in group],
                           background, k=k, core=core)
        if motif is None:
            continue
        values[key].update(top_motif=motif.consensus, motif_enrichment=motif.enrichment)
        for name, value in zip(new, (key[0], key[1], motif.kmer, motif.enrichment,
                                     motif.consensus, motif.pfm.ravel().tolist(), motif.width,
                                     motif.n_sites), strict=True):
            new[name].append(value)
    out = dict(tables)
    if "features" in out:
        out["features"] = tbl.update_features(out["features"], values,
                                              ("gc_top", "top_motif", "motif_enrichment"))
    out["motifs"] = tbl.append_rows("motifs", out.get("motifs"), new)
    return out


ACCUMULATORS: list = []
FINALIZERS = [motif_finalizer]
