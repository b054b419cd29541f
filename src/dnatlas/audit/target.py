"""The sequences an audit searches: a genome store (split-aware) or a set of FASTA files.

A :class:`Target` is one uint8 code array (A=0 C=1 G=2 T=3 N=4) tiled by segments, as in a
genome store (:mod:`dnatlas.genome.store`): each segment is a stretch of one record of one
genome with its split (``train``/``val``; ``""`` for FASTA files, which have none). The
segments of a record are consecutive, so a record is one contiguous stretch of ``tokens``.

Its ``source`` names where the sequences came from and their sha256 (of the store's
``segments.tsv`` and ``tokens.npy``, or of every FASTA file), the key a saved index is
checked against (:mod:`dnatlas.audit.index`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.files import file_digest
from dnatlas.genome.readers import genome_id_from_path, read_records
from dnatlas.genome.store import SEGMENTS_FILE, TOKENS_FILE, GenomeStore

SEGMENT_HEADER = ("genome", "record", "record_start", "offset", "length", "split")


def _combined_sha256(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass
class Target:
    """Sequences to search, tiled by segments (see the module docstring).

    Attributes:
        tokens: uint8 codes, shape (N,) (a read-only memmap for a store).
        genome, record, split: per segment, lists of str (length S).
        record_start, offset, length: per segment, int64 arrays (S,): 0-based start of the
            segment in its record, offset into ``tokens``, length.
        source: ``{"kind": "store", "path", "sha256"}`` or ``{"kind": "fasta", "files":
            [{"path", "genome", "sha256"}], "sha256"}``.
    """

    tokens: np.ndarray
    genome: list[str]
    record: list[str]
    record_start: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    split: list[str]
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        self.record_start = np.asarray(self.record_start, dtype=np.int64)
        self.offset = np.asarray(self.offset, dtype=np.int64)
        self.length = np.asarray(self.length, dtype=np.int64)
        #: per segment: offset of its record's first base and one past its last, (S,) each
        self.record_lo = self.offset - self.record_start
        ends: dict[tuple[str, str], int] = {}
        for g, r, o, n in zip(self.genome, self.record, self.offset, self.length):
            ends[(g, r)] = max(ends.get((g, r), 0), int(o + n))
        self.record_hi = np.array([ends[(g, r)] for g, r in zip(self.genome, self.record)],
                                  dtype=np.int64)

    @property
    def sha256(self) -> str:
        return self.source.get("sha256", "")

    @property
    def has_splits(self) -> bool:
        """Whether segments carry train/val splits (a store) rather than none (FASTA)."""
        return any(self.split)

    def records(self) -> list[tuple[str, str, int, int]]:
        """``(genome, record, lo, hi)`` of every record: its stretch ``tokens[lo:hi]``."""
        seen, out = set(), []
        for g, r, lo, hi in zip(self.genome, self.record, self.record_lo, self.record_hi):
            if (g, r) not in seen:
                seen.add((g, r))
                out.append((g, r, int(lo), int(hi)))
        return out

    def segment_of(self, positions: np.ndarray) -> np.ndarray:
        """Index (int64) of the segment holding each global position (int array)."""
        return np.searchsorted(self.offset, np.asarray(positions), side="right") - 1

    def splits_over(self, lo: int, hi: int) -> str:
        """The split(s) of ``tokens[lo:hi]`` (one record), ``"train"``, ``"val"``,
        ``"train+val"``, or ``""`` without splits."""
        first, last = self.segment_of(np.array([lo, max(hi - 1, lo)]))
        names = {self.split[i] for i in range(int(first), int(last) + 1)} - {""}
        return "+".join(sorted(names))

    def segments_tsv(self) -> str:
        """The segments as TSV text with a :data:`SEGMENT_HEADER` header row."""
        rows = ["\t".join(SEGMENT_HEADER)]
        for i in range(len(self.genome)):
            rows.append("\t".join(map(str, (self.genome[i], self.record[i], self.record_start[i],
                                            self.offset[i], self.length[i], self.split[i]))))
        return "\n".join(rows) + "\n"


def store_sha256(path: str | Path) -> str:
    """The key of a store's content: sha256 over its ``segments.tsv`` and ``tokens.npy``."""
    path = Path(path)
    return _combined_sha256([file_digest(path / SEGMENTS_FILE), file_digest(path / TOKENS_FILE)])


def target_from_store(path: str | Path) -> Target:
    """The sequences of a genome store (both splits), memory-mapped, keyed by sha256."""
    store = GenomeStore.open(path)
    s = store.segments
    return Target(store.tokens, [x.genome for x in s], [x.record for x in s],
                  [x.record_start for x in s], store.offsets, store.lengths,
                  [x.split for x in s],
                  {"kind": "store", "path": str(Path(path).resolve()),
                   "sha256": store_sha256(path)})


def fasta_source(paths: list[str | Path]) -> dict:
    """The ``source`` of FASTA/GenBank files: each one's path, genome ID and sha256.

    Raises:
        InputError: a file is missing, or two files give the same genome ID.
    """
    files, seen = [], {}
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError("no such file" if not path.exists() else "not a file", path=path)
        genome = genome_id_from_path(path)
        if genome in seen:
            raise InputError(f"genome ID {genome!r} given twice (also {seen[genome]})",
                             path=path)
        seen[genome] = path
        files.append({"path": str(path.resolve()), "genome": genome,
                      "sha256": file_digest(path)})
    if not files:
        raise InputError("no genome files given")
    return {"kind": "fasta", "files": files,
            "sha256": _combined_sha256([f"{f['genome']}\t{f['sha256']}" for f in files])}


def target_from_fasta(paths: list[str | Path]) -> Target:
    """FASTA/GenBank files (plain or gzip) read into one Target; genome ID = file name."""
    source = fasta_source(paths)
    seqs, genome, record, offset = [], [], [], []
    total = 0
    for entry in source["files"]:
        for rec in read_records(entry["path"]):
            seqs.append(rec.seq)
            genome.append(entry["genome"])
            record.append(rec.id)
            offset.append(total)
            total += len(rec)
    tokens = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.uint8)
    lengths = [len(s) for s in seqs]
    return Target(tokens, genome, record, [0] * len(seqs), offset, lengths, [""] * len(seqs),
                  source)


def target_from_sequences(names: list[str], seqs: list[np.ndarray], genome: str = ""
                          ) -> Target:
    """A Target of in-memory sequences (each its own record of ``genome``); no sha256."""
    offset = np.concatenate([[0], np.cumsum([len(s) for s in seqs], dtype=np.int64)])
    tokens = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.uint8)
    return Target(tokens.astype(np.uint8), [genome] * len(seqs), list(names),
                  [0] * len(seqs), offset[:-1], [len(s) for s in seqs], [""] * len(seqs),
                  {"kind": "memory"})


def read_segments_tsv(path: Path) -> tuple[list[str], list[str], list[int], list[int],
                                           list[int], list[str]]:
    """Columns of a segments TSV written by :meth:`Target.segments_tsv`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != SEGMENT_HEADER:
        raise InputError("corrupt index segments: bad header", path=path, line=1)
    cols: tuple[list, ...] = ([], [], [], [], [], [])
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != len(SEGMENT_HEADER):
            raise InputError("corrupt index segments row", path=path, line=number)
        for col, value, kind in zip(cols, parts, (str, str, int, int, int, str)):
            col.append(kind(value))
    return cols
