"""Codons: the triplet index, its reverse complement, and genetic codes.

A triplet (codon) is indexed ``16*first + 4*middle + last`` over A, C, G, T (design.md);
the amino acids are :data:`AMINO_ACIDS`, ``*`` for stop.
"""

from __future__ import annotations

import numpy as np

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY*"


def triplet_rc_permutation() -> np.ndarray:
    """P (64,) int64: ``P[t]`` is the index of the reverse complement of triplet ``t``;
    RC(abc) = comp(c) comp(b) comp(a)."""
    t = np.arange(64, dtype=np.int64)
    a, b, c = t // 16, (t // 4) % 4, t % 4
    return 16 * (3 - c) + 4 * (3 - b) + (3 - a)


def amino_acid_index(table: int = 11) -> np.ndarray:
    """(64,) int64: index into :data:`AMINO_ACIDS` of each codon under NCBI genetic code
    ``table`` (Biopython's tables)."""
    from Bio.Data.CodonTable import unambiguous_dna_by_id

    t = unambiguous_dna_by_id[table]
    out = np.empty(64, dtype=np.int64)
    for i in range(64):
        codon = "ACGT"[i // 16] + "ACGT"[(i // 4) % 4] + "ACGT"[i % 4]
        out[i] = AMINO_ACIDS.index("*" if codon in t.stop_codons else t.forward_table[codon])
    return out
