"""Canonical k-mers packed 2 bits per nucleotide into integers, vectorised with numpy.

A k-mer (k <= 32) over A=0 C=1 G=2 T=3 is packed most significant base first:
``value = sum(code[i] << 2 * (k - 1 - i))``, so numeric order is lexicographic order. Its
reverse complement is computed on the packed value (complement = bitwise NOT, then the
2-bit groups reversed). The canonical k-mer is the smaller of the two; ``is_rc`` tells
whether it is the reverse complement (the k-mer read on the minus strand). k-mers holding an
N (or any code > 3) are flagged invalid and must be skipped by callers.

Packing is done by doubling (values of length 2m from two of length m), so a k-mer array
costs about log2(k) array passes, not k.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MAX_K = 32
_SWAP_MASKS = {2: 0x3333333333333333, 4: 0x0F0F0F0F0F0F0F0F}


def check_k(k: int) -> int:
    """``k`` if 1 <= k <= 32 (the most that packs into a uint64), else ValueError."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    return int(k)


def key_dtype(k: int) -> np.dtype:
    """The dtype of packed k-mers: uint32 for k <= 16, else uint64."""
    return np.dtype(np.uint32) if check_k(k) <= 16 else np.dtype(np.uint64)


def pack_kmers(codes: np.ndarray, k: int) -> np.ndarray:
    """Forward k-mers of ``codes`` at every start: shape (max(L - k + 1, 0),), dtype
    :func:`key_dtype`. Codes above 3 (N) are packed as their low two bits; use
    :func:`valid_kmers` to drop them."""
    k = check_k(k)
    dtype = key_dtype(k)
    codes = np.asarray(codes)
    n = codes.shape[0] - k + 1
    if n <= 0:
        return np.zeros(0, dtype=dtype)
    blocks = {1: (codes & 3).astype(dtype)}  # m -> packed m-mers at every start, (L - m + 1,)
    m = 1
    while 2 * m <= k:
        prev = blocks[m]
        blocks[2 * m] = (prev[:-m] << dtype.type(2 * m)) | prev[m:]
        m *= 2
    acc, done = None, 0
    for size in sorted(blocks, reverse=True):
        if k - done >= size:
            block = blocks[size]
            if acc is None:
                acc = block
            else:
                acc = (acc[:block.shape[0] - done] << dtype.type(2 * size)) | block[done:]
            done += size
    return acc[:n]


def reverse_complement_kmers(values: np.ndarray, k: int) -> np.ndarray:
    """Packed reverse complements of packed k-mers ``values`` (dtype :func:`key_dtype`)."""
    k = check_k(k)
    dtype = key_dtype(k)
    x = ~np.asarray(values, dtype=dtype)  # complement of every 2-bit group (3 - c == c ^ 3)
    for shift, mask in _SWAP_MASKS.items():  # reverse the 2-bit groups inside each byte...
        mask, shift = dtype.type(mask & np.iinfo(dtype).max), dtype.type(shift)
        x = ((x >> shift) & mask) | ((x & mask) << shift)
    x = x.byteswap()  # ...then the bytes
    return x >> dtype.type(8 * dtype.itemsize - 2 * k)


def valid_kmers(codes: np.ndarray, k: int, stride: int = 1) -> np.ndarray:
    """Bool (ceil(n / stride),), n = max(L - k + 1, 0): the k-mer starting at
    ``0, stride, 2 * stride...`` holds only A, C, G, T."""
    codes = np.asarray(codes)
    n = codes.shape[0] - k + 1
    if n <= 0:
        return np.zeros(0, dtype=bool)
    bad = np.concatenate([[0], np.cumsum(codes > 3, dtype=np.int64)])
    return (bad[k:][::stride] - bad[:n][::stride]) == 0


def canonical_kmers(codes: np.ndarray, k: int, stride: int = 1
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical k-mers of ``codes`` (uint8, shape (L,)) starting at ``0, stride, ...``.

    Returns:
        values: (m,) of :func:`key_dtype`, m = ceil(max(L - k + 1, 0) / stride):
            min(forward, reverse complement);
        is_rc: bool (m,): the canonical k-mer is the reverse complement (ties: False);
        valid: bool (m,): no N in the k-mer.
    """
    forward = pack_kmers(codes, k)[::stride]
    reverse = reverse_complement_kmers(forward, k)
    is_rc = reverse < forward
    return np.where(is_rc, reverse, forward), is_rc, valid_kmers(codes, k, stride)


def iter_canonical(codes: np.ndarray, k: int, chunk: int = 1 << 21, stride: int = 1
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Valid canonical k-mers of a long sequence starting at ``0, stride, 2 * stride...``,
    about ``chunk`` starts at a time (bounded memory).

    Yields ``(starts, values, is_rc)`` per chunk: the int64 0-based starts of its valid
    k-mers, their canonical values (:func:`key_dtype`) and orientations (bool), shape (m,).
    """
    n = codes.shape[0] - k + 1
    chunk = max(stride, chunk - chunk % stride)
    for first in range(0, max(n, 0), chunk):
        piece = np.asarray(codes[first:min(first + chunk, n) + k - 1])
        values, is_rc, valid = canonical_kmers(piece, k, stride)
        keep = np.flatnonzero(valid)
        yield keep * stride + first, values[keep], is_rc[keep]


def sorted_unique(values: np.ndarray, return_counts: bool = False):
    """Distinct values, sorted (sort + run ends; faster than ``np.unique``'s hashing for
    large uint64 arrays), and with ``return_counts`` how often each occurs (int64)."""
    ordered = np.sort(np.asarray(values))
    if ordered.shape[0] == 0:
        return (ordered, np.zeros(0, dtype=np.int64)) if return_counts else ordered
    first = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    distinct = ordered[first]
    if not return_counts:
        return distinct
    starts = np.flatnonzero(first)
    return distinct, np.diff(np.append(starts, ordered.shape[0]))


def contains_sorted(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Bool (n,): whether each of ``needles`` occurs in the sorted array ``haystack``
    (``np.searchsorted``; sorted needles read ``haystack`` in order, which is faster)."""
    if haystack.shape[0] == 0:
        return np.zeros(needles.shape[0], dtype=bool)
    at = np.searchsorted(haystack, needles)
    return haystack[np.minimum(at, haystack.shape[0] - 1)] == needles
