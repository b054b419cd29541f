"""Per-nucleotide, strand-aware label tracks built from annotation intervals.

A track is a boolean array of shape ``(2, L)`` over one sequence of length L,
in forward coordinates: row 0 marks features on the + strand, row 1 features on
the - strand; unstranded features are marked on both rows. Standard tracks
(:data:`STANDARD_TRACKS`):

``CDS``
    coding sequences, stop codon included (GFF3/GenBank convention); pseudogenes
    are left out unless ``include_pseudo=True``.
``start_codon``, ``start_codon_2nd``
    the 3 nt of each CDS's start codon, and its 2nd nucleotide only (the target of
    the report's start-codon neuron). On the - strand the start codon is the
    CDS's last 3 nt in forward coordinates.
``stop_codon``, ``stop_codon_1st``
    the 3 nt of each stop codon, and its 1st nucleotide only (the target of the
    report's stop-codon neuron).
``tRNA``, ``rRNA``, ``ncRNA``, ``tmRNA``, ``terminator``
    features of that type.
``repeat_region``, ``REP``, ``CRISPR``, ``mobile_element``
    all repeat regions; REP/RIP elements (``rpt_family`` or note naming REP);
    CRISPR arrays (type ``CRISPR`` or ``rpt_family=CRISPR``); mobile genetic
    elements (IS elements, transposons).

Any other feature type in the intervals can be asked for by name; BED files'
types (their names) are tracks by default. Codons are not labelled at an end
that the annotation marks as incomplete (``start_range``/``end_range``, or a
nonzero phase at the 5' end).

:class:`LabelTracks` also carries ``codon_phase`` (int8, ``(2, L)``): -1 outside
CDS, else the position 0/1/2 within the codon, counted in the CDS's own reading
direction (so on row 1, phase 0 is a codon's highest forward coordinate). Where
CDSs on one strand overlap (e.g. ``ATGA``: a stop codon inside the next gene's
start), the CDS whose 5' end is further downstream gives the phase, so every
start codon reads 0, 1, 2 but an overlapped stop codon may not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from dnatlas.annotation.intervals import Interval, codon_phases, group_features
from dnatlas.errors import InputError

Rule = Callable[[Interval], bool]


def _type_is(*types: str) -> Rule:
    return lambda interval: interval.type in types


_REP_WORDS = re.compile(r"\b(?:REP|RIP)\d*\b|repetitive extragenic palindromic", re.IGNORECASE)
_CRISPR_WORD = re.compile("CRISPR", re.IGNORECASE)


def _attributes_match(interval: Interval, keys: Sequence[str], pattern: re.Pattern) -> bool:
    return any(pattern.search(interval.attributes.get(key, "")) for key in keys)


def is_rep(interval: Interval) -> bool:
    """A REP/RIP element: a repeat region whose ``rpt_family`` or note names REP or RIP."""
    return interval.type == "repeat_region" and _attributes_match(
        interval, ("rpt_family", "Note", "note"), _REP_WORDS)


def is_crispr(interval: Interval) -> bool:
    """A CRISPR array: type ``CRISPR``, or any repeat feature with ``rpt_family=CRISPR``."""
    return interval.type == "CRISPR" or _attributes_match(
        interval, ("rpt_family",), _CRISPR_WORD)


def is_pseudo(interval: Interval) -> bool:
    """A pseudogene: ``pseudo=true`` (GFF3), ``/pseudo`` or ``/pseudogene`` (GenBank)."""
    attributes = interval.attributes
    return attributes.get("pseudo", "").lower() == "true" or "pseudogene" in attributes


#: Tracks of features selected by a rule on each interval (CDS is handled apart: pseudo).
FEATURE_TRACKS: dict[str, Rule] = {
    "tRNA": _type_is("tRNA"),
    "rRNA": _type_is("rRNA"),
    "ncRNA": _type_is("ncRNA"),
    "tmRNA": _type_is("tmRNA"),
    "REP": is_rep,
    "repeat_region": _type_is("repeat_region"),
    "terminator": _type_is("terminator"),
    "CRISPR": is_crispr,
    "mobile_element": _type_is("mobile_genetic_element", "mobile_element",
                               "insertion_sequence", "transposable_element"),
}
CODON_TRACKS = ("start_codon", "start_codon_2nd", "stop_codon", "stop_codon_1st")
STANDARD_TRACKS = ("CDS", *CODON_TRACKS, *FEATURE_TRACKS)


class LabelTracks(Mapping[str, np.ndarray]):
    """Named boolean label tracks of one sequence (or region), plus CDS codon phase.

    ``tracks[name]`` is a bool array of shape ``(2, L)`` (row 0: + strand, row 1:
    - strand, forward coordinates); ``codon_phase`` is int8 ``(2, L)``, -1 outside CDS.
    """

    def __init__(self, labels: Mapping[str, np.ndarray], codon_phase: np.ndarray):
        self._labels = dict(labels)
        self.codon_phase = codon_phase
        shape = codon_phase.shape
        if len(shape) != 2 or shape[0] != 2 or codon_phase.dtype != np.int8:
            raise ValueError("codon_phase must be int8 of shape (2, L), "
                             f"got {codon_phase.dtype} {shape}")
        for name, label in self._labels.items():
            if label.shape != shape or label.dtype != bool:
                raise ValueError(f"track {name!r} must be bool of shape {shape}, "
                                 f"got {label.dtype} {label.shape}")

    def __getitem__(self, name: str) -> np.ndarray:
        return self._labels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelTracks):
            return NotImplemented
        return (self.names == other.names
                and np.array_equal(self.codon_phase, other.codon_phase)
                and all(np.array_equal(self[name], other[name]) for name in self.names))

    def __repr__(self) -> str:
        return f"LabelTracks(length={self.length}, names={list(self.names)})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._labels)

    @property
    def length(self) -> int:
        return self.codon_phase.shape[1]

    def any_strand(self, name: str) -> np.ndarray:
        """Bool array (L,): the feature is on either strand."""
        return self._labels[name].any(axis=0)

    def slice(self, start: int, end: int) -> LabelTracks:
        """Tracks of the region ``[start, end)`` (views into these arrays)."""
        if not 0 <= start <= end <= self.length:
            raise ValueError(f"region [{start}, {end}) is outside [0, {self.length})")
        return LabelTracks({name: label[:, start:end] for name, label in self.items()},
                           self.codon_phase[:, start:end])

    def reverse_complement(self) -> LabelTracks:
        """Tracks aligned with the reverse complement of the sequence.

        Position ``i`` maps to ``L - 1 - i`` and the strands swap; codon phase keeps
        its values, being counted in each CDS's own reading direction.
        """
        return LabelTracks({name: label[::-1, ::-1].copy() for name, label in self.items()},
                           self.codon_phase[::-1, ::-1].copy())


def default_track_names(intervals: Iterable[Interval]) -> list[str]:
    """:data:`STANDARD_TRACKS` then one track per type of the BED intervals, sorted."""
    bed_types = {iv.type for iv in intervals if iv.attributes.get("source") == "BED"}
    return [*STANDARD_TRACKS, *sorted(bed_types - set(STANDARD_TRACKS))]


def label_tracks(intervals: Iterable[Interval], seqid: str, length: int,
                 tracks: Sequence[str] | None = None,
                 include_pseudo: bool = False) -> LabelTracks:
    """Label the ``length`` nucleotides of sequence ``seqid`` with the given tracks.

    Args:
        intervals: features of any sequences; those of ``seqid`` are used.
        seqid: the sequence to label.
        length: its length L.
        tracks: track names, standard (:data:`STANDARD_TRACKS`) or feature types
            present in ``intervals``; default :func:`default_track_names`.
        include_pseudo: keep pseudogene CDS in ``CDS``, the codon tracks and ``codon_phase``.

    Returns:
        :class:`LabelTracks` with one ``(2, L)`` bool array per track.

    Raises:
        InputError: a track name is unknown, or a feature of ``seqid`` ends past ``length``.
    """
    intervals = list(intervals)
    names = default_track_names(intervals) if tracks is None else list(tracks)
    rules = {name: _rule(name, intervals) for name in names}
    on_sequence = [iv for iv in intervals if iv.seqid == seqid]
    _check_bounds(on_sequence, seqid, length)
    cds = [iv for iv in on_sequence
           if iv.type == "CDS" and (include_pseudo or not is_pseudo(iv))]
    codons = _codon_intervals(cds) if set(names) & set(CODON_TRACKS) else {}
    labels = {}
    for name, rule in rules.items():
        if name in CODON_TRACKS:
            labels[name] = paint(*codons[name], length)
        else:
            selected = cds if name == "CDS" else [iv for iv in on_sequence if rule(iv)]
            labels[name] = paint(*_columns(selected), length)
    return LabelTracks(labels, _codon_phase(cds, length))


def codon_track_intervals(intervals: Iterable[Interval],
                          include_pseudo: bool = False) -> dict[str, list[Interval]]:
    """The codons of every CDS as intervals, per codon track (:data:`CODON_TRACKS`).

    The same codons as :func:`label_tracks` paints (complete 5'/3' ends only), as
    ``Interval(type=track)`` pieces with an ``ID`` per codon, for concept labels that
    count elements.
    """
    cds = [iv for iv in intervals if iv.type == "CDS" and (include_pseudo or not is_pseudo(iv))]
    out: dict[str, list[Interval]] = {name: [] for name in CODON_TRACKS}
    for seqid in sorted({iv.seqid for iv in cds}):
        codons = _codon_intervals([iv for iv in cds if iv.seqid == seqid])
        for name, (starts, ends, strands) in codons.items():
            out[name] += [Interval(seqid, int(a), int(b), int(st), name,
                                   attributes={"ID": f"{name}:{seqid}:{a}:{st}"})
                          for a, b, st in zip(starts.tolist(), ends.tolist(), strands.tolist(),
                                              strict=True)]
    return out


def _rule(name: str, intervals: list[Interval]) -> Rule | None:
    if name in FEATURE_TRACKS:
        return FEATURE_TRACKS[name]
    if name == "CDS" or name in CODON_TRACKS:
        return None
    if any(iv.type == name for iv in intervals):
        return _type_is(name)
    raise InputError(f"unknown track {name!r}: neither a standard track "
                     f"({', '.join(STANDARD_TRACKS)}) nor a feature type of the annotation")


def _check_bounds(intervals: list[Interval], seqid: str, length: int) -> None:
    beyond = [iv for iv in intervals if iv.end > length]
    if beyond:
        iv = beyond[0]
        raise InputError(f"{iv.type} {iv.name!r} at [{iv.start}, {iv.end}) ends past the "
                         f"sequence length {length} (annotation of another assembly?)",
                         record=seqid)


def _columns(intervals: Sequence[Interval]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, ends and strands of intervals as three int64 arrays."""
    table = np.array([(iv.start, iv.end, iv.strand) for iv in intervals],
                     dtype=np.int64).reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def paint(starts: np.ndarray, ends: np.ndarray, strands: np.ndarray, length: int) -> np.ndarray:
    """Bool (2, L): positions covered by some ``[start, end)`` on each strand row.

    Strand 0 paints both rows. Vectorised: a difference array over the sorted
    breakpoints, its cumulative sum (the coverage depth of each run between
    breakpoints), and ``np.repeat`` to expand the runs to L positions.
    """
    starts, ends, strands = (np.asarray(a, dtype=np.int64) for a in (starts, ends, strands))
    labels = np.empty((2, length), dtype=bool)
    for row, on_row in enumerate((strands >= 0, strands <= 0)):
        labels[row] = _paint_row(starts[on_row], ends[on_row], length)
    return labels


def _paint_row(starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    n = len(starts)
    points = np.concatenate([[0], starts, ends, [length]])
    deltas = np.concatenate([[0], np.ones(n, np.int64), -np.ones(n, np.int64), [0]])
    order = np.argsort(points, kind="stable")
    points, depth = points[order], np.cumsum(deltas[order])
    # run i is [points[i], points[i + 1]) at depth[i]; runs between equal points are empty
    return np.repeat(depth[:-1] > 0, np.diff(points))


def _reading_order(pieces: list[Interval], strand: int) -> list[Interval]:
    return sorted(pieces, key=lambda iv: iv.start * strand)


def _open_ends(pieces: list[Interval], strand: int) -> tuple[bool, bool]:
    """(5' end incomplete, 3' end incomplete) of a stranded CDS made of ``pieces``."""
    low_open = any("start_range" in iv.attributes for iv in pieces)
    high_open = any("end_range" in iv.attributes for iv in pieces)
    five_open, three_open = (low_open, high_open) if strand == 1 else (high_open, low_open)
    first_phase = _reading_order(pieces, strand)[0].attributes.get("phase", "0")
    return five_open or first_phase != "0", three_open


def _codon_intervals(cds: list[Interval]) -> dict[str, tuple[np.ndarray, ...]]:
    """For each codon track, (starts, ends, strands) arrays of its codons / nucleotides.

    Stranded CDS of at least 6 nt only; the start codon is at the 5' end in the
    CDS's reading direction, the stop codon (included in the CDS) at the 3' end.
    """
    rows: dict[str, list[tuple[int, int, int]]] = {name: [] for name in CODON_TRACKS}
    for pieces in group_features(cds):
        strand = pieces[0].strand
        low, high = min(iv.start for iv in pieces), max(iv.end for iv in pieces)
        if strand == 0 or high - low < 6:
            continue
        five_open, three_open = _open_ends(pieces, strand)
        if strand == 1:
            start, stop = low, high - 3   # first forward coordinate of each codon
            start_2nd, stop_1st = low + 1, high - 3
        else:
            start, stop = high - 3, low
            start_2nd, stop_1st = high - 2, low + 2
        if not five_open:
            rows["start_codon"].append((start, start + 3, strand))
            rows["start_codon_2nd"].append((start_2nd, start_2nd + 1, strand))
        if not three_open:
            rows["stop_codon"].append((stop, stop + 3, strand))
            rows["stop_codon_1st"].append((stop_1st, stop_1st + 1, strand))
    tables = {name: np.array(r, dtype=np.int64).reshape(-1, 3) for name, r in rows.items()}
    return {name: (t[:, 0], t[:, 1], t[:, 2]) for name, t in tables.items()}


def _piece_phases(pieces_in_reading_order: list[Interval]) -> list[int]:
    """GFF3 phase of each CDS piece: its own ``phase`` attribute, else cumulative."""
    given = [iv.attributes.get("phase") for iv in pieces_in_reading_order]
    if all(p in ("0", "1", "2") for p in given):
        return [int(p) for p in given]
    first = int(given[0]) if given[0] in ("0", "1", "2") else 0
    return codon_phases((len(iv) for iv in pieces_in_reading_order), first)


def _codon_phase(cds: list[Interval], length: int) -> np.ndarray:
    """Int8 (2, L) codon position (-1 outside CDS) of stranded CDS.

    Where CDSs on one strand overlap, the one whose 5' end lies further downstream
    (in reading direction) wins. One numpy slice assignment per CDS piece.
    """
    phase = np.full((2, length), -1, dtype=np.int8)
    pattern = np.tile(np.arange(3, dtype=np.int8), length // 3 + 2)
    features = group_features(cds)
    for row, strand in enumerate((1, -1)):
        stranded = [_reading_order(f, strand) for f in features if f[0].strand == strand]
        stranded.sort(key=lambda pieces: pieces[0].start if strand == 1 else -pieces[0].end)
        for pieces in stranded:
            for piece, piece_phase in zip(pieces, _piece_phases(pieces), strict=True):
                offset = (-piece_phase) % 3
                values = pattern[offset:offset + len(piece)]
                phase[row, piece.start:piece.end] = values if strand == 1 else values[::-1]
    return phase
