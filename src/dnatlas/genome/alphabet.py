"""Nucleotide alphabet and reverse-complement helpers.

Encoding (uint8): A=0, C=1, G=2, T=3, N=4. The model adds MASK=5 (see
:mod:`dnatlas.architectures.dnatlas`). Every IUPAC ambiguity code (R Y S W K M B D H V N) maps
to N, and lowercase reads as uppercase. The complement of code ``x < 4`` is
``3 - x``; N (and MASK) are their own complements.
"""

from __future__ import annotations

import hashlib

import numpy as np

A, C, G, T, N = 0, 1, 2, 3, 4
MASK = 5
NUCLEOTIDES = "ACGT"
IUPAC = "ACGTURYSWKMBDHVN"  # U is read as T (RNA input); '-' and '.' are not accepted

#: byte -> code lookup; 255 marks a byte that is not an IUPAC nucleotide code.
ENCODE_TABLE = np.full(256, 255, dtype=np.uint8)
for _ch in IUPAC:
    _code = {"A": A, "C": C, "G": G, "T": T, "U": T}.get(_ch, N)
    ENCODE_TABLE[ord(_ch)] = _code
    ENCODE_TABLE[ord(_ch.lower())] = _code
INVALID = 255
TRANSLATE_TABLE = ENCODE_TABLE.tobytes()  # for bytes.translate: byte -> code, 255 if invalid
INVALID_BYTE = bytes([INVALID])

DECODE_TABLE = np.frombuffer(b"ACGTN*", dtype=np.uint8)
#: code -> complement code (A<->T, C<->G, N->N, MASK->MASK)
COMPLEMENT = np.array([T, G, C, A, N, MASK], dtype=np.uint8)


def encode(seq: str | bytes) -> np.ndarray:
    """Encode a nucleotide string as codes, shape (L,), dtype uint8.

    Raises ``ValueError`` naming the first invalid character and its 0-based index.
    """
    raw = np.frombuffer(seq.encode("ascii", "replace") if isinstance(seq, str) else bytes(seq),
                        dtype=np.uint8)
    codes = ENCODE_TABLE[raw]
    bad = np.flatnonzero(codes == INVALID)
    if bad.size:
        i = int(bad[0])
        char = seq[i] if isinstance(seq, str) else chr(raw[i])  # str: one '?' per non-ASCII char
        raise ValueError(f"invalid nucleotide {char!r} at position {i}")
    return codes


def decode(codes: np.ndarray) -> str:
    """Decode codes (any int dtype, shape (L,)) to a string over ``ACGTN*`` (``*`` = MASK)."""
    return DECODE_TABLE[np.asarray(codes, dtype=np.intp)].tobytes().decode("ascii")


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of encoded sequence(s) along the last axis; works for numpy arrays."""
    return COMPLEMENT[np.asarray(codes)][..., ::-1].copy()


def reverse_complement_str(seq: str) -> str:
    """Reverse complement of a nucleotide string (IUPAC ambiguity codes become N)."""
    return decode(reverse_complement(encode(seq)))


def reverse_complement_tokens(tokens):
    """Reverse complement of a torch LongTensor of tokens, shape (..., L). MASK maps to MASK."""
    import torch

    comp = torch.as_tensor(COMPLEMENT, device=tokens.device)[tokens.long()]
    return comp.flip(-1).to(tokens.dtype)


def gc_content(codes: np.ndarray) -> float:
    """Fraction of G+C among unambiguous bases (A, C, G, T); NaN if there are none."""
    counts = np.bincount(np.asarray(codes).ravel(), minlength=5)[:4]
    total = counts.sum()
    return float((counts[C] + counts[G]) / total) if total else float("nan")


def sequence_sha256(codes: np.ndarray) -> str:
    """sha256 of a sequence's uint8 codes: what keys caches and atlases to a record."""
    return hashlib.sha256(np.ascontiguousarray(codes, dtype=np.uint8).tobytes()).hexdigest()
