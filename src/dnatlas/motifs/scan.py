"""Scan DNA for motif hits on both strands with lightmotif, chunk by chunk.

A motif of width w *hits* the window ``[start, start + w)`` on strand ``+1`` when its
log2-odds score (:func:`dnatlas.motifs.matrices.log_odds`, a float32 sum over the w
columns) is at least the motif's score threshold, and on strand ``-1`` when the reverse
complement matrix scores the same window at least that high. Windows holding an N are never
hits. The threshold is lightmotif's translation of the p-value (``ScoringMatrix.score``:
the score whose chance of being reached by a background sequence is the p-value, computed
on the matrix's score distribution under the same background).

Memory is bounded by the chunk: each chunk of ``chunk_size`` start positions is scanned
with ``max_width - 1`` following bases of overlap, so a window crossing a chunk edge is
scored once, in the chunk holding its start, and none is missed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import DECODE_TABLE, N
from dnatlas.motifs.matrices import Motif, check_background, log_odds

CHUNK_SIZE = 1 << 20  # start positions per chunk (about 1 Mb)
UNIFORM = (0.25, 0.25, 0.25, 0.25)


@dataclass
class PreparedMotif:
    """A motif ready to scan.

    Attributes:
        motif: the matrix it came from.
        scores: log2-odds, shape (4, w), float32, rows A C G T (strand +1).
        threshold: the float32 score a window must reach (from the p-value).
        plus, minus: lightmotif ``ScoringMatrix`` for strand +1 and its reverse complement.
    """

    motif: Motif
    scores: np.ndarray
    threshold: float
    plus: object
    minus: object

    @property
    def width(self) -> int:
        return int(self.scores.shape[1])


@dataclass
class HitBlock:
    """Hits of one chunk, sorted by (start, strand, motif); every array has shape (H,).

    Attributes:
        start: 0-based window starts in the record, int64 (end = start + motif width).
        motif: index into the prepared motif list, int32.
        strand: +1 or -1, int8.
        score: log2-odds score, float32.
    """

    start: np.ndarray
    motif: np.ndarray
    strand: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.start.shape[0])


def _lightmotif():
    try:
        import lightmotif
    except ImportError:
        raise InputError("motif scanning needs lightmotif: pip install 'dnatlas[motifs]'") from None
    return lightmotif


def prepare_motifs(motifs: Sequence[Motif], pvalue: float = 1e-4, pseudocount: float = 1.0,
                   background: Sequence[float] = UNIFORM) -> list[PreparedMotif]:
    """Scoring matrices and score thresholds for ``motifs`` (see the module docstring).

    Args:
        pvalue: per-window p-value threshold, in (0, 1).
        pseudocount: total pseudocount per column, spread by the background.
        background: A, C, G, T frequencies, used both for the log-odds and the p-value.
    """
    lm = _lightmotif()
    if not 0 < pvalue < 1:
        raise InputError(f"p-value must be between 0 and 1, got {pvalue}")
    if pseudocount < 0:
        raise InputError(f"pseudocount must be 0 or more, got {pseudocount}")
    bg = check_background(background)
    bg_dict = {letter: float(bg[i]) for i, letter in enumerate("ACGT")}
    prepared = []
    for motif in motifs:
        scores = log_odds(motif, pseudocount, bg)
        plus = lm.ScoringMatrix(dict(zip("ACGT", scores.tolist())), bg_dict)
        rc = scores[::-1, ::-1]  # rows A C G T -> T G C A is the complement; columns reversed
        minus = lm.ScoringMatrix(dict(zip("ACGT", rc.tolist())), bg_dict)
        threshold = float(np.float32(plus.score(pvalue)))
        prepared.append(PreparedMotif(motif, scores, threshold, plus, minus))
    return prepared


def scan_sequence(codes: np.ndarray, prepared: Sequence[PreparedMotif],
                  chunk_size: int = CHUNK_SIZE) -> Iterator[HitBlock]:
    """Hits of every prepared motif in one record, one :class:`HitBlock` per chunk.

    Args:
        codes: nucleotide codes, shape (L,), uint8 (A=0 C=1 G=2 T=3 N=4).
        chunk_size: start positions per chunk; blocks come in increasing start order.

    Yields:
        one block per chunk (possibly empty).
    """
    lm = _lightmotif()
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1, got {chunk_size}",
                         setting="chunk_size")
    codes = np.asarray(codes, dtype=np.uint8)
    length = int(codes.shape[0])
    if not prepared or length == 0:
        return
    overlap = max(p.width for p in prepared) - 1
    for first in range(0, length, chunk_size):
        last = min(length, first + chunk_size)  # starts scanned here: [first, last)
        piece = codes[first:min(length, last + overlap)]
        n_before = np.concatenate([[0], np.cumsum(piece >= N, dtype=np.int64)])
        striped = lm.EncodedSequence(DECODE_TABLE[np.minimum(piece, N)].tobytes().decode()).stripe()
        starts, motifs, strands, scores = [], [], [], []
        for index, prep in enumerate(prepared):
            width = prep.width
            if piece.shape[0] < width:
                continue
            for strand, matrix in ((1, prep.plus), (-1, prep.minus)):
                hits = [(h.position, h.score) for h in lm.scan(matrix, striped, threshold=prep.threshold)]
                if not hits:
                    continue
                pos = np.fromiter((h[0] for h in hits), dtype=np.int64, count=len(hits))
                val = np.fromiter((h[1] for h in hits), dtype=np.float32, count=len(hits))
                keep = (pos < last - first) & (pos + width <= piece.shape[0])
                pos, val = pos[keep], val[keep]
                keep = n_before[pos + width] == n_before[pos]  # no N in the window
                pos, val = pos[keep], val[keep]
                starts.append(pos + first)
                scores.append(val)
                motifs.append(np.full(pos.shape, index, dtype=np.int32))
                strands.append(np.full(pos.shape, strand, dtype=np.int8))
        yield _sorted_block(starts, motifs, strands, scores)


def _sorted_block(starts, motifs, strands, scores) -> HitBlock:
    if not starts:
        empty = np.zeros(0)
        return HitBlock(empty.astype(np.int64), empty.astype(np.int32), empty.astype(np.int8),
                        empty.astype(np.float32))
    start, motif = np.concatenate(starts), np.concatenate(motifs)
    strand, score = np.concatenate(strands), np.concatenate(scores)
    order = np.lexsort((motif, -strand, start))
    return HitBlock(start[order], motif[order], strand[order], score[order])


def genome_composition(path: str | Path) -> np.ndarray:
    """A, C, G, T frequencies of a genome (N excluded), shape (4,), float64.

    Raises:
        InputError: unreadable genome, or one with no A, C, G or T.
    """
    from dnatlas.genome.readers import read_records

    counts = np.zeros(4, dtype=np.int64)
    for record in read_records(path):
        counts += np.bincount(record.seq, minlength=5)[:4]
    if (counts == 0).any():
        raise InputError("cannot use the genome's composition as background: some of A, C, G, "
                         "T never occur (give background uniform)", path=path,
                         setting="background")
    return counts / counts.sum()
