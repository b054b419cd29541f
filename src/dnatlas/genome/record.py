"""One sequence record, as every genome reader yields it (:mod:`.readers`, :mod:`.genbank`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Record:
    """One sequence record.

    Attributes:
        id: the record ID (FASTA: first word of the header; GenBank: accession.version).
        description: the rest of the FASTA header, or the GenBank DEFINITION.
        seq: nucleotide codes, shape (L,), dtype uint8, values 0..4.
    """

    id: str
    description: str
    seq: np.ndarray

    def __len__(self) -> int:
        return int(self.seq.shape[0])
