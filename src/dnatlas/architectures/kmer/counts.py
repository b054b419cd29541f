"""Context keys and sorted count tables of the k-mer context model.

The counting half of :class:`~dnatlas.architectures.kmer.model.KmerContextModel` (whose
module docstring defines the context codes and keys), public to it and to
:mod:`.selection`: packing windows into ``uint64`` keys, their reverse-strand keys, counting sorted keys,
aggregating an order from the one above and merging tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnatlas.genome.alphabet import MASK, N

MAX_K = 15  # 4k context bits + 2 centre bits must fit in uint64

_D_MIN = 0.01
U64 = np.uint64


def context_code(left: Sequence[int], right: Sequence[int]) -> int:
    """Context code ``ctx_j`` of the bases ``left = x[p-j:p]`` and ``right = x[p+1:p+j+1]``."""
    if len(left) != len(right):
        raise ValueError("left and right contexts must have the same length")
    code = 0
    for d in range(1, len(left) + 1):
        code = code * 16 + 4 * int(left[-d]) + int(right[d - 1])
    return code


def as_codes(seq, name: str) -> np.ndarray:
    """1-D uint8 codes with 5 (MASK) folded into N, validated."""
    x = np.asarray(seq)
    if x.ndim != 1 or (x.size and x.dtype.kind not in "iub"):
        raise ValueError(f"{name}: expected a 1-D integer array of codes, got {x.dtype} {x.shape}")
    if x.size and (x.min() < 0 or x.max() > MASK):
        raise ValueError(f"{name}: codes must be in 0..5 (A C G T N MASK)")
    return np.minimum(x, N).astype(np.uint8)


def concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=U64)


def window_keys(x: np.ndarray, start: int, stop: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Order-``K`` keys and largest clean order of centre positions ``start..stop-1`` of ``x``.

    Returns:
        keys: uint64 (n,), ``4 * ctx_K + centre`` with unknown bases read as A (only the
            innermost ``order`` pairs of a key are meaningful).
        order: int64 (n,), the largest ``j <= K`` whose window holds only A/C/G/T, or -1 if
            the centre itself is N.
    """
    pad, n = K + 1, stop - start
    lo, hi = start - pad, stop + pad
    seg = np.full(hi - lo, N, dtype=np.uint8)
    a, b = max(lo, 0), min(hi, x.size)
    seg[a - lo:b - lo] = x[a:b]
    valid = seg < 4
    idx = np.arange(seg.size)
    last_bad = np.maximum.accumulate(np.where(valid, -1, idx))
    next_bad = np.minimum.accumulate(np.where(valid, seg.size, idx)[::-1])[::-1]
    c = np.arange(pad, pad + n)
    left_run = (c - 1) - last_bad[c - 1]
    right_run = next_bad[c + 1] - (c + 1)
    order = np.minimum(np.minimum(left_run, right_run), K)
    order[~valid[c]] = -1

    base = np.where(valid, seg, 0).astype(U64)
    ctx = np.zeros(n, dtype=U64)
    tmp = np.empty(n, dtype=U64)
    for d in range(1, K + 1):
        ctx <<= U64(4)
        np.left_shift(base[pad - d:pad - d + n], U64(2), out=tmp)
        ctx |= tmp
        ctx |= base[pad + d:pad + d + n]
    ctx <<= U64(2)
    ctx |= base[pad:pad + n]
    return ctx, order


def with_rc(keys: np.ndarray, j: int, strand_symmetric: bool) -> np.ndarray:
    return np.concatenate([keys, _rc_keys(keys, j)]) if strand_symmetric else keys


def truncate_keys(keys: np.ndarray, j_from: int, j_to: int) -> np.ndarray:
    """Order-``j_to`` keys from order-``j_from`` keys (drop the outer pairs)."""
    ctx = (keys >> U64(2)) >> U64(4 * (j_from - j_to))
    return (ctx << U64(2)) | (keys & U64(3))


def _rc_keys(keys: np.ndarray, j: int) -> np.ndarray:
    """Keys of the same windows read on the reverse strand.

    Reverse-complementing a window swaps left and right and complements: the pair
    ``(l, r)`` becomes ``(3 - r, 3 - l)`` and the centre ``c`` becomes ``3 - c``.
    """
    ctx, centre = keys >> U64(2), keys & U64(3)
    m33 = U64(int("3" * j, 16) if j else 0)  # 0b0011 in every 4-bit pair
    swapped = ((ctx & m33) << U64(2)) | ((ctx >> U64(2)) & m33)
    ctx_rc = swapped ^ U64((1 << (4 * j)) - 1)
    return (ctx_rc << U64(2)) | (U64(3) - centre)


def run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Indices where a new value starts in a sorted array."""
    new = np.empty(sorted_keys.size, dtype=bool)
    new[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    return np.flatnonzero(new)


def runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique keys and their multiplicities (int64) of a sorted array."""
    starts = run_starts(sorted_keys)
    return sorted_keys[starts], np.diff(starts, append=sorted_keys.size).astype(np.int64)


def aggregate_down(keys: np.ndarray, counts: np.ndarray, chunk: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Order-``j`` table from the sorted order-``j+1`` table, in linear time.

    The order-``j+1`` keys are sorted by ``ctx_{j+1} = 16 * ctx_j + outer``, so they are
    grouped by ``ctx_j``; within each group the centres are summed with a bincount. Work is
    done in chunks of whole groups (about ``chunk`` keys each) to bound memory.
    """
    out_keys, out_counts = [], []
    a = 0
    while a < keys.size:
        b = min(a + chunk, keys.size)
        if b < keys.size:  # extend to the end of the last group
            b = int(np.searchsorted(keys, ((keys[b - 1] >> U64(6)) + U64(1)) << U64(6)))
        parent = keys[a:b] >> U64(6)
        new_group = np.empty(parent.size, dtype=bool)
        new_group[0] = True
        np.not_equal(parent[1:], parent[:-1], out=new_group[1:])
        starts = np.flatnonzero(new_group)
        slot = np.cumsum(new_group) - 1
        slot *= 4
        slot += (keys[a:b] & U64(3)).astype(np.int64)
        sums = np.bincount(slot, weights=counts[a:b], minlength=4 * starts.size)
        nz = np.flatnonzero(sums)
        out_keys.append((parent[starts[nz >> 2]] << U64(2)) | (nz & 3).astype(U64))
        out_counts.append(np.rint(sums[nz]).astype(np.int64))
        a = b
    if not out_keys:
        return keys, counts.astype(np.int64)
    return np.concatenate(out_keys), np.concatenate(out_counts)


def merge_sorted(keys: np.ndarray, counts: np.ndarray, add_keys: np.ndarray,
                  add_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge a small sorted unique table into a large one, summing counts of equal keys."""
    counts = counts.astype(np.int64)  # a copy unless already int64 (then updated in place)
    if add_keys.size == 0:
        return keys, counts
    pos = np.searchsorted(keys, add_keys)
    hit = pos < keys.size
    hit[hit] = keys[pos[hit]] == add_keys[hit]
    counts[pos[hit]] += add_counts[hit]
    miss = ~hit
    if not miss.any():
        return keys, counts
    size = keys.size + int(miss.sum())
    inserted = np.zeros(size, dtype=bool)
    inserted[pos[miss] + np.arange(int(miss.sum()))] = True
    out_keys, out_counts = np.empty(size, dtype=keys.dtype), np.empty(size, dtype=np.int64)
    out_keys[inserted], out_counts[inserted] = add_keys[miss], add_counts[miss]
    out_keys[~inserted], out_counts[~inserted] = keys, counts
    return out_keys, out_counts


def compact_counts(counts: np.ndarray) -> np.ndarray:
    return counts.astype(np.uint32 if counts.size == 0 or counts.max() < 2**32 else np.uint64)


def ney_discount(counts: np.ndarray) -> float:
    """Absolute discount ``n1 / (n1 + 2 n2)`` from the count-of-counts, clipped to [0.01, 1]."""
    n1 = int(np.count_nonzero(counts == 1))
    n2 = int(np.count_nonzero(counts == 2))
    d = n1 / (n1 + 2 * n2) if n1 + n2 else _D_MIN
    return float(min(max(d, _D_MIN), 1.0))
