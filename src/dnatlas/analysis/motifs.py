"""Sequence-only motif detectors: the reference a neuron has to beat.

A neuron that fires on every ATG already has an AUPRC for annotated start codons far
above the chance rate, without knowing anything about genes. :func:`motif_scores` builds
such a detector for both strands, aligned like the label tracks, so that a neuron
catalog can report, next to each codon track's best neuron, what an exact codon match
scores (:func:`motif_track_auprc`).

Strands follow :mod:`dnatlas.annotation.tracks`: row 0 is the + strand, row 1 the − strand,
both in forward coordinates; a motif on − is its reverse complement on the forward
sequence, and its anchor (the motif's ``anchor``-th nucleotide, 5'→3' on −) sits at the
forward coordinate of that nucleotide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dnatlas.analysis.auprc import average_precision
from dnatlas.genome.alphabet import NUCLEOTIDES, encode, reverse_complement_str

__all__ = ["CODON_MOTIFS", "codon_match_auprc", "motif_scores", "motif_track_auprc"]

_START = {"ATG": 3.0, "GTG": 2.0, "TTG": 1.0}  # by use as start codons in E. coli
_STOP = {"TAA": 3.0, "TGA": 2.0, "TAG": 1.0}

#: Codon track -> (motif weights, anchor) of its exact-match detector; anchors follow the
#: footnote-6 tracks (start at its 2nd, stop at its 1st nucleotide), None labels all three.
CODON_MOTIFS: dict[str, tuple[dict[str, float], int | None]] = {
    "start_codon": (_START, None),
    "start_codon_2nd": (_START, 1),
    "stop_codon": (_STOP, None),
    "stop_codon_1st": (_STOP, 0),
}


def _kmer_codes(seq: np.ndarray, k: int) -> np.ndarray:
    """(N,) base-4 code of the k-mer starting at each position; -1 where it has an N or
    runs past the end."""
    n = len(seq)
    codes = np.full(n, -1, dtype=np.int64)
    if n < k:
        return codes
    valid = seq < 4
    value = np.zeros(n - k + 1, dtype=np.int64)
    ok = np.ones(n - k + 1, dtype=bool)
    for j in range(k):
        value = value * 4 + np.minimum(seq[j:n - k + 1 + j], 3)
        ok &= valid[j:n - k + 1 + j]
    codes[:n - k + 1] = np.where(ok, value, -1)
    return codes


def _code(motif: str) -> int:
    """Base-4 code of an ACGT motif, as :func:`_kmer_codes` numbers k-mers."""
    return int(_kmer_codes(encode(motif), len(motif))[0])


def motif_scores(seq: np.ndarray, motifs: Mapping[str, float], anchor: int | None = 0
                 ) -> np.ndarray:
    """Exact-match detector of weighted motifs on both strands.

    Args:
        seq: (N,) uint8 nucleotide codes (A=0, C=1, G=2, T=3, N=4).
        motifs: ``{motif: weight}``, motifs of one length k over ACGT, weights > 0.
        anchor: which nucleotide of a match (0-based, 5'→3' on its strand) gets the
            score; None scores every nucleotide of the match.

    Returns:
        (2, N) float32 scores: row 0 for matches read on +, row 1 on −, both in forward
        coordinates; 0 where nothing matches, the largest weight where matches overlap.

    Raises:
        ValueError: a motif with letters other than ACGT, motifs of several lengths, an
            anchor outside the motif.
    """
    lengths = {len(m) for m in motifs}
    if len(lengths) != 1:
        raise ValueError(f"motifs must have one length, got lengths {sorted(lengths)}")
    bad = [m for m in motifs if set(m) - set(NUCLEOTIDES)]
    if bad:
        raise ValueError(f"motifs must be over ACGT, got {bad[0]!r}")
    (k,) = lengths
    if anchor is not None and not 0 <= anchor < k:
        raise ValueError(f"anchor {anchor} is outside motifs of length {k}")
    n = len(seq)
    codes = _kmer_codes(np.asarray(seq, dtype=np.uint8), k)
    table = np.zeros(4 ** k + 1, dtype=np.float32)  # last entry: invalid k-mers (-1)
    rc_table = np.zeros_like(table)
    for motif, weight in motifs.items():
        table[_code(motif)] = weight
        rc_table[_code(reverse_complement_str(motif))] = weight
    plus_start, minus_start = table[codes], rc_table[codes]  # scores by match start
    out = np.zeros((2, n), dtype=np.float32)
    offsets = range(k) if anchor is None else [anchor]
    for a in offsets:
        # + strand: nucleotide a of a match starting at j is at j + a;
        # − strand: a match occupying forward [j, j+k) has its a-th nucleotide at j+k-1-a.
        _shift_max(out[0], plus_start, a)
        _shift_max(out[1], minus_start, k - 1 - a)
    return out


def _shift_max(row: np.ndarray, by_start: np.ndarray, shift: int) -> None:
    """``row[j + shift] = max(row[j + shift], by_start[j])`` for all valid j."""
    n = len(row)
    np.maximum(row[shift:], by_start[:n - shift], out=row[shift:])


def codon_match_auprc(seqs: Sequence[np.ndarray], labels: Sequence[Mapping[str, np.ndarray]],
                      tracks: Sequence[str]) -> dict[str, float]:
    """AUPRC of the exact codon-match detector for every codon track among ``tracks``.

    Args:
        seqs: (N_r,) nucleotide codes of each record.
        labels: per record, ``{track: (2, N_r) bool}`` (e.g. a ``LabelTracks``).
        tracks: track names; those not in :data:`CODON_MOTIFS` are skipped.

    Returns:
        ``{track: AP}`` over all records and both strands, as a neuron is scored.
    """
    out = {}
    for track in tracks:
        if track not in CODON_MOTIFS:
            continue
        motifs, anchor = CODON_MOTIFS[track]
        scores = np.concatenate([motif_scores(s, motifs, anchor) for s in seqs], axis=1)
        y = np.concatenate([np.asarray(lab[track]) for lab in labels], axis=1)
        out[track] = float(average_precision(scores.reshape(-1, 1), y.reshape(-1, 1))[0, 0])
    return out


def motif_track_auprc(seq: np.ndarray, labels: np.ndarray, track: str) -> float:
    """AUPRC of the exact codon-match detector of a codon track (:data:`CODON_MOTIFS`).

    Args:
        seq: (N,) nucleotide codes of one record.
        labels: (2, N) bool label track (row 0 +, row 1 −) of ``track`` on that record.
        track: a key of :data:`CODON_MOTIFS`.

    Returns:
        the average precision over both strands (2N samples), as for a neuron.
    """
    if track not in CODON_MOTIFS:
        raise KeyError(f"no codon motif for track {track!r}")
    return codon_match_auprc([seq], [{track: labels}], [track])[track]
