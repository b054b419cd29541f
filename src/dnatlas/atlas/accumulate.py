"""The atlas's streaming interface: chunks of activations in, table rows out.

One pass of a model over a genome (both strands) produces, per chunk of one record and
one strand, the activations of every feature of every dictionary. Each dictionary has a
list of *accumulators* (one per part of the atlas: statistics, examples, concept counts,
landmark profiles, ...); the :class:`~dnatlas.atlas.build.Builder` feeds every chunk to
each of them, saves their states for resuming, merges the states of torchrun ranks, and
at the end asks each for its table rows, then runs the post-pass *finalizers* (motifs,
descriptions, rankings) on the tables.

Contract for an accumulator (:class:`Accumulator`):

- ``update(chunk, acts)``: ``acts`` is a float32 ``(chunk.end - chunk.start, F)`` numpy
  array or a ``scipy.sparse.csr_matrix`` (an SAE's positive activations; absent entries
  are 0). Row ``i`` is forward position ``chunk.start + i`` **as read on chunk.strand**
  (a ``-`` strand chunk's activations are already flipped into forward coordinates).
  Neurons can be negative. The chunks of one pass partition the (record, strand,
  position)s: each is seen once.
- Accumulators that need activations beyond the chunk (a peak-centred window, a local
  maximum test) set the class attribute ``halo = H`` (nt): they then get
  ``acts`` for forward positions ``[chunk.lo, chunk.hi)`` where ``lo = max(0, start -
  H)``, ``hi = min(record length, end + H)`` (the model read real context there). Rows
  ``chunk.start - chunk.lo`` .. are the chunk's own; only those are "seen".
- ``merge(other)``: add the state of an accumulator of the same dictionary that saw
  other chunks (another rank). The result must not depend on how chunks were split
  between accumulators: results of 2 ranks equal those of 1, bit for bit.
- ``state_dict()`` / ``load_state_dict(state)``: numpy arrays and scalars only (saved
  to ``.npz``-like files for resuming); a restored accumulator that goes on with the
  remaining chunks ends in the same state as one that never stopped.
- ``tables(context)``: ``{table: {column: list or array}}`` rows for the tables of
  :mod:`dnatlas.atlas.schema`. ``features`` rows may give only some columns plus
  ``dictionary`` and ``feature``; the builder joins them (a column given twice is an
  error) and fills the missing ones with NULL.

Adding a part: write an accumulator class and a factory ``(context) -> Accumulator |
None`` (None: nothing to do for this dictionary), and list it in the module's
``ACCUMULATORS`` list; post-pass steps ``(tables, contexts) -> tables`` go in
``FINALIZERS``. :mod:`dnatlas.atlas.build` collects them from the modules named in
``build.PARTS``.

This module is pure numpy: no torch, no model layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

STRANDS = ("+", "-")


@dataclass(frozen=True)
class Chunk:
    """One chunk of the pass: positions ``[start, end)`` of ``record`` read on ``strand``.

    Attributes:
        record: record id; start, end: 0-based forward coordinates, end exclusive.
        strand: ``'+'`` or ``'-'``, the strand the model read.
        seq: uint8 codes (A0 C1 G2 T3 N4) of the FORWARD strand over ``[lo, hi)``
            (``[start, end)`` when the chunk has no halo; see :attr:`own`).
        split: ``'valid'`` or ``'test'`` (the concept evaluation's splits).
        offset: the record's 0-based offset in the concatenated genome (records in the
            atlas's order).
        index: the chunk's index in the pass: stable across ranks and resumes (use it
            for deterministic sampling and ordering).
        lo, hi: the forward range the activations and ``seq`` cover (the chunk plus its
            halo, clipped to the record); default: ``[start, end)``.
        record_length: length of the record in nt (0: unknown).
    """

    record: str
    start: int
    end: int
    strand: str
    seq: np.ndarray
    split: str = "valid"
    offset: int = 0
    index: int = 0
    lo: int | None = None
    hi: int | None = None
    record_length: int = 0

    def __post_init__(self):
        if self.lo is None:
            object.__setattr__(self, "lo", self.start)
        if self.hi is None:
            object.__setattr__(self, "hi", self.end)
        if self.strand not in STRANDS:
            raise ValueError(f"strand must be '+' or '-', got {self.strand!r}")
        if not self.lo <= self.start <= self.end <= self.hi:
            raise ValueError(f"chunk range [{self.start}, {self.end}) not inside "
                             f"[{self.lo}, {self.hi})")

    @property
    def n(self) -> int:
        """Positions of the chunk itself."""
        return self.end - self.start

    @property
    def own(self) -> slice:
        """The rows of the chunk itself in halo-covering arrays (``acts``, ``seq``)."""
        return slice(self.start - self.lo, self.end - self.lo)

    @property
    def has_halo(self) -> bool:
        return self.lo != self.start or self.hi != self.end

    def without_halo(self) -> Chunk:
        """The same chunk with ``seq`` cut to ``[start, end)``."""
        if not self.has_halo:
            return self
        return Chunk(self.record, self.start, self.end, self.strand, self.seq[self.own],
                     self.split, self.offset, self.index, None, None, self.record_length)


@dataclass
class AtlasContext:
    """What an accumulator of one dictionary may know besides its chunks.

    Attributes:
        dictionary: the dictionary's name (``sae:NAME``, ``neurons:SITE``, prefixed
            ``random-init`` for the control model); kind: ``'sae'`` or ``'neurons'``.
        n_features: F; site: the model site read; control: read on the random-init model.
        codes: record id -> uint8 codes of the forward strand (the whole genome).
        records: record ids in the atlas's order; offsets: record id -> 0-based offset in
            the concatenated genome.
        bin_size: nt per Manhattan bin (:func:`manhattan_bin_size`).
        intervals: the annotation (:class:`dnatlas.annotation.intervals.Interval` list;
            empty without one).
        settings: the build settings as a plain dict (``AtlasSettings`` fields).
        extra: per-dictionary inputs computed before the pass: ``maxima`` (F,) float64
            feature maxima on the validation sample (the concept evaluation's
            normalisation), ``label_sets`` ({'real'|'shuffled': ConceptLabels}),
            ``decoder`` (F, d) float32 SAE decoder rows, ``rc_pairs``, ``source``...
    """

    dictionary: str
    n_features: int
    codes: Mapping[str, np.ndarray]
    records: Sequence[str]
    offsets: Mapping[str, int]
    bin_size: int = 1000
    kind: str = "sae"
    site: str = ""
    control: bool = False
    intervals: Sequence[Any] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def genome_length(self) -> int:
        return int(sum(len(self.codes[r]) for r in self.records))

    @property
    def n_bins(self) -> int:
        """Manhattan bins over the concatenated genome."""
        return max(1, -(-self.genome_length // self.bin_size))


def manhattan_bin_size(genome_length: int, min_bin: int = 1000, max_bins: int = 4096) -> int:
    """nt per Manhattan bin: ``max(min_bin, ceil(genome_length / max_bins))``, so that a
    feature's binned maxima take at most ``max_bins`` values whatever the genome."""
    return max(int(min_bin), -(-int(genome_length) // int(max_bins)))


@runtime_checkable
class Accumulator(Protocol):
    """One part of the atlas for one dictionary, fed chunk by chunk (module docstring)."""

    def update(self, chunk: Chunk, acts) -> None: ...

    def merge(self, other: Accumulator) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def tables(self, context: AtlasContext) -> dict[str, dict]: ...


#: ``(context) -> Accumulator | None``
AccumulatorFactory = Callable[[AtlasContext], "Accumulator | None"]
#: ``(tables, contexts) -> tables``: ``tables`` {table: pyarrow.Table}, ``contexts``
#: {dictionary: AtlasContext}; runs after the pass, in the order of ``build.PARTS``.
Finalizer = Callable[[dict, dict], dict]


def dense(acts) -> np.ndarray:
    """``acts`` as a dense float32 numpy array (for accumulators that need one)."""
    if hasattr(acts, "toarray"):
        return acts.toarray().astype(np.float32, copy=False)
    return np.asarray(acts, dtype=np.float32)


def forward_to_read(values: np.ndarray, strand: str) -> np.ndarray:
    """Forward-coordinate values (first axis) in the order the strand reads them."""
    return values[::-1] if strand == "-" else values


_COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
_LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)


def read_sequence(codes: np.ndarray, strand: str) -> str:
    """Forward codes as the string read on ``strand`` (5'->3'; reverse complement on -)."""
    codes = np.asarray(codes, dtype=np.uint8)
    if strand == "-":
        codes = _COMPLEMENT[np.minimum(codes, 4)][::-1]
    return _LETTERS[np.minimum(codes, 4)].tobytes().decode()
