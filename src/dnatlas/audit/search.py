"""Seed-and-extend search of queries against a :class:`~dnatlas.audit.index.KmerIndex`.

Every valid canonical k-mer of a query is looked up in the index (``np.searchsorted`` on the
sorted keys). A seed fixes a strand and a diagonal: on ``+`` the query as given lies at
record position ``d + j`` for query position ``j``; on ``-`` its reverse complement does.
Each distinct (query, strand, diagonal) is extended without gaps over the whole diagonal,
clipped to the record, and the best-scoring stretch is kept (match +1, mismatch or N -2,
blastn's megablast scores). ``identity = matches / aligned length``. All of this is
vectorised over candidates.

k-mers found more than ``max_occurrences`` times in the index (long low-complexity runs)
seed nothing and are counted in :attr:`SearchResult.skipped_kmers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dnatlas.audit.index import KmerIndex
from dnatlas.audit.kmers import canonical_kmers
from dnatlas.genome.alphabet import reverse_complement
from dnatlas.progress import progress as progress_bar

MATCH, MISMATCH = 1, -2
_CELLS = 1 << 22  # candidate rows x query length extended at a time
_OFF_RECORD = -(1 << 30)


@dataclass(frozen=True)
class Hit:
    """One ungapped local match of query ``query`` (an index into the queries).

    ``start``/``end``: 0-based half-open on the record's forward strand; ``strand`` +1 when
    the query as given reads there, -1 when its reverse complement does; ``qstart``/``qend``:
    0-based half-open on the query as given; ``split``: ``train``, ``val``, ``train+val`` or
    ``""`` (no splits).
    """

    query: int
    genome: str
    record: str
    start: int
    end: int
    strand: int
    qstart: int
    qend: int
    matches: int
    aligned: int
    split: str

    @property
    def identity(self) -> float:
        return self.matches / self.aligned


@dataclass
class SearchResult:
    """Hits of all queries, in query order then best first, and seeding counts."""

    hits: list[Hit] = field(default_factory=list)
    seeds: int = 0
    candidates: int = 0
    skipped_kmers: int = 0


def search(index: KmerIndex, queries: list[np.ndarray], min_identity: float = 0.9,
           min_length: int = 50, max_occurrences: int = 1000, progress: bool = True,
           batch: int = 256) -> SearchResult:
    """Find the queries (uint8 codes, each shape (L_i,)) in the index's target.

    Args:
        min_identity: keep hits with matches / aligned >= this (0..1).
        min_length: keep hits aligning at least ``min(min_length, L_i)`` nt.
        max_occurrences: k-mers occurring more often in the index seed nothing.
        batch: queries seeded and extended together.

    Returns:
        The hits, per query the best first (by score), overlapping weaker hits of the same
        query, record and strand dropped.
    """
    result = SearchResult()
    with progress_bar(total=len(queries), desc="audit search", unit="query",
                      disable=not progress) as bar:
        for first in range(0, len(queries), batch):
            part = queries[first:first + batch]
            _search_batch(index, part, first, min_identity, min_length, max_occurrences,
                          result)
            bar.update(len(part))
    return result


def _search_batch(index: KmerIndex, queries: list[np.ndarray], first: int, min_identity: float,
                  min_length: int, max_occurrences: int, result: SearchResult) -> None:
    k, target = index.k, index.target
    lengths = np.array([len(q) for q in queries], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    forward = np.concatenate([np.asarray(q, dtype=np.uint8) for q in queries])
    values, is_rc, valid = canonical_kmers(forward, k)  # over the joined queries...
    at = np.flatnonzero(valid)
    q_i = np.searchsorted(starts, at, side="right") - 1
    q_pos = at - starts[q_i]
    inside = q_pos + k <= lengths[q_i]  # ...keeping those inside one query
    q_i, q_pos, q_rc = q_i[inside], q_pos[inside], is_rc[at[inside]]
    q_key = values[at[inside]].astype(index.keys.dtype)
    if q_key.shape[0] == 0 or index.keys.shape[0] == 0:
        return
    order = np.argsort(q_key)  # sorted needles: local reads of a memory-mapped index
    lo, hi = np.empty_like(order), np.empty_like(order)
    lo[order] = np.searchsorted(index.keys, q_key[order], side="left")
    hi[order] = np.searchsorted(index.keys, q_key[order], side="right")
    count = hi - lo
    repetitive = count > max_occurrences
    result.skipped_kmers += int(repetitive.sum())
    count[repetitive] = 0
    total = int(count.sum())
    result.seeds += total
    if total == 0:
        return
    owner = np.repeat(np.arange(count.shape[0]), count)
    entry = lo[owner] + np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    packed = np.asarray(index.positions[entry]).astype(np.int64)
    db_pos, db_rc = packed >> 1, (packed & 1).astype(bool)
    qi, qpos = q_i[owner], q_pos[owner]
    minus = db_rc != q_rc[owner]
    diag = np.where(minus, db_pos - (lengths[qi] - k - qpos), db_pos - qpos)
    seg = target.segment_of(db_pos)
    rows = np.stack([qi, minus.astype(np.int64), diag, seg])
    rows = rows[:, np.lexsort(rows[::-1])]
    first_of_run = np.concatenate([[True], np.any(rows[:, 1:] != rows[:, :-1], axis=0)])
    cand = rows[:, first_of_run]  # distinct (query, strand, diagonal, segment)
    result.candidates += cand.shape[1]
    hits = _extend(target, forward, queries, lengths, cand, min_identity, min_length)
    result.hits.extend(_best_per_locus(hits, target, lengths, first))


def _extend(target, forward, queries, lengths, cand, min_identity, min_length) -> list[tuple]:
    """Ungapped best-scoring stretch of each candidate (rows of ``cand``: query, minus,
    diagonal, segment); returns ``(query, minus, db_lo, db_hi, qa, qb, matches, score,
    segment)`` tuples of those passing the filters (qa/qb on the oriented query)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    reverse = np.concatenate([reverse_complement(np.asarray(q, dtype=np.uint8))
                              for q in queries])
    both = np.concatenate([forward, reverse])
    n_tokens = target.tokens.shape[0]
    width = int(lengths.max())
    rows_at_once = max(1, _CELLS // width)
    cols = np.arange(width)
    out = []
    for r0 in range(0, cand.shape[1], rows_at_once):
        qi, minus, diag, seg = cand[:, r0:r0 + rows_at_once]
        length = lengths[qi]
        q_at = offsets[qi] + minus * forward.shape[0]
        db_at = diag[:, None] + cols
        inside = (cols < length[:, None]) & (db_at >= target.record_lo[seg][:, None]) \
            & (db_at < target.record_hi[seg][:, None])
        db = np.asarray(target.tokens[np.clip(db_at, 0, n_tokens - 1)])
        q = both[np.clip(q_at[:, None] + cols, 0, both.shape[0] - 1)]
        match = (db == q) & (q < 4) & inside
        score = np.where(match, MATCH, np.where(inside, MISMATCH, _OFF_RECORD))
        cum = np.zeros((score.shape[0], width + 1), dtype=np.int64)
        np.cumsum(score, axis=1, out=cum[:, 1:])
        lowest = np.minimum.accumulate(cum[:, :-1], axis=1)
        gain = cum[:, 1:] - lowest
        b = np.argmax(gain, axis=1) + 1
        rows = np.arange(score.shape[0])
        best = gain[rows, b - 1]
        # the last start a < b where the prefix sum is lowest: the shortest best stretch
        masked = np.where(cols[None, :] < b[:, None], cum[:, :-1], np.iinfo(np.int64).max)
        a = width - 1 - np.argmin(masked[:, ::-1], axis=1)
        n_match = np.concatenate([np.zeros((score.shape[0], 1), np.int64),
                                  np.cumsum(match, axis=1)], axis=1)
        matches = n_match[rows, b] - n_match[rows, a]
        aligned = b - a
        keep = (best > 0) & (matches >= min_identity * aligned) \
            & (aligned >= np.minimum(min_length, length))
        for j in np.flatnonzero(keep):
            out.append((int(qi[j]), bool(minus[j]), int(diag[j] + a[j]), int(diag[j] + b[j]),
                        int(a[j]), int(b[j]), int(matches[j]), int(best[j]), int(seg[j])))
    return out


def _best_per_locus(rows: list[tuple], target, lengths: np.ndarray, first: int) -> list[Hit]:
    """Hits from extension rows, best first per query; a hit overlapping a better one of the
    same query, record and strand by half of the shorter is dropped."""
    rows.sort(key=lambda row: (row[0], -row[7], row[2]))
    kept: list[Hit] = []
    taken: dict[tuple, list[tuple[int, int]]] = {}
    for qi, minus, lo, hi, qa, qb, matches, _, seg in rows:
        rec_lo = int(target.record_lo[seg])
        key = (qi, rec_lo, minus)
        if any(min(hi, h) - max(lo, g) >= 0.5 * min(hi - lo, h - g)
               for g, h in taken.get(key, [])):
            continue
        taken.setdefault(key, []).append((lo, hi))
        length = int(lengths[qi])
        qstart, qend = (length - qb, length - qa) if minus else (qa, qb)
        within = target.offset[seg] <= lo and hi <= target.offset[seg] + target.length[seg]
        split = target.split[seg] if within else target.splits_over(lo, hi)
        kept.append(Hit(first + qi, target.genome[seg], target.record[seg], lo - rec_lo,
                        hi - rec_lo, -1 if minus else 1, qstart, qend, matches, hi - lo, split))
    return kept
