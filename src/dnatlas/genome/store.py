"""The packed genome store: many genomes in one memory-mapped token array (reading it).

A store is a directory with three files:

``tokens.npy``
    All sequence as one uint8 array of nucleotide codes (A=0 C=1 G=2 T=3 N=4), shape (N,),
    records concatenated in input order. Open it with ``np.load(path, mmap_mode="r")``.
``segments.tsv``
    One row per contiguous segment: ``genome``, ``record``, ``record_start`` (0-based offset of
    the segment in its record), ``offset`` (into ``tokens.npy``), ``length``, ``split``
    (``train``/``val``) and ``taxonomy``. Segments tile ``tokens.npy`` in order.
``store.json``
    Format version, build parameters, the genomes (ID, source path, sha256 of the source
    file, records, length, base counts per split) and totals.

:class:`GenomeStore` opens and checks a store; :mod:`dnatlas.genome.store_build` builds one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError

FORMAT = "dnatlas-genome-store"
FORMAT_VERSION = 1
SPLITS = ("train", "val")
SEGMENT_COLUMNS = ("genome", "record", "record_start", "offset", "length", "split", "taxonomy")
BASES = "ACGTN"
TOKENS_FILE, SEGMENTS_FILE, META_FILE = "tokens.npy", "segments.tsv", "store.json"
GENOME_KEYS = ("id", "path", "sha256", "n_records", "length", "held_out", "taxonomy", "metadata",
               "counts", "records")  # of each genome in store.json


@dataclass(frozen=True)
class Segment:
    """A contiguous stretch of one record, stored at ``tokens[offset:offset + length]``.

    ``record_start`` is the 0-based position of the segment's first base in its record.
    """

    genome: str
    record: str
    record_start: int
    offset: int
    length: int
    split: str
    taxonomy: str = ""


class GenomeStore:
    """A genome store opened for reading (see the module docstring for the format).

    Attributes:
        path: the store directory.
        tokens: all sequence, read-only memmap, shape (N,), dtype uint8.
        segments: the segments, in ``tokens`` order.
        genomes: per-genome metadata from ``store.json`` (dicts, in input order).
        meta: the whole of ``store.json``.
        offsets, lengths: int64 arrays, shape (n_segments,), of the segments' offsets into
            ``tokens`` and lengths.
    """

    def __init__(self, path: Path, meta: dict, segments: list[Segment], tokens: np.ndarray):
        self.path = path
        self.meta = meta
        self.genomes: list[dict] = meta["genomes"]
        self.segments = segments
        self.tokens = tokens
        self.offsets = np.array([s.offset for s in segments], dtype=np.int64)
        self.lengths = np.array([s.length for s in segments], dtype=np.int64)
        self._records = _record_index(segments)

    @classmethod
    def open(cls, path: str | Path) -> GenomeStore:
        """Open a store directory; tokens are memory-mapped, not read.

        Raises:
            InputError: the directory is missing, lacks a file, or its files are corrupt or
                inconsistent with each other.
        """
        path = Path(path)
        if not path.is_dir():
            raise InputError("not a genome store (no such directory)", path=path)
        meta = _load_meta(path / META_FILE)
        segments = _load_segments(path / SEGMENTS_FILE)
        tokens = _load_tokens(path / TOKENS_FILE)
        _check_consistency(path, meta, segments, tokens)
        return cls(path, meta, segments, tokens)

    def __len__(self) -> int:
        """Total number of bases."""
        return int(self.tokens.shape[0])

    def segment_indices(self, split: str) -> np.ndarray:
        """Indices (int64, shape (n,)) of the segments of ``split``, in store order."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.array([i for i, s in enumerate(self.segments) if s.split == split],
                        dtype=np.int64)

    def segment_tokens(self, i: int) -> np.ndarray:
        """Codes of segment ``i``: a read-only view, shape (length,), dtype uint8."""
        segment = self.segments[i]
        return self.tokens[segment.offset:segment.offset + segment.length]

    def fetch(self, genome: str, record: str, start: int = 0, end: int | None = None
              ) -> np.ndarray:
        """Codes of ``record[start:end]`` (0-based, half-open), whatever its splits.

        Returns a read-only view, shape (end - start,), dtype uint8.

        Raises:
            InputError: unknown genome/record, or coordinates outside the record.
        """
        key = (genome, record)
        if key not in self._records:
            raise InputError(f"no record {record!r} of genome {genome!r} in the store",
                             path=self.path, record=record)
        offset, length = self._records[key]
        end = length if end is None else end
        if not 0 <= start <= end <= length:
            raise InputError(f"coordinates [{start}, {end}) outside the record (length {length})",
                             path=self.path, record=record)
        return self.tokens[offset + start:offset + end]

    def info(self) -> dict:
        """Summary numbers: totals, per split and per genome (lengths, records, GC, N count).

        A record split by region counts in both splits. GC is the fraction of G+C among A,
        C, G, T (None when there are none).
        """
        genomes = []
        split_counts = {split: np.zeros(len(BASES), dtype=np.int64) for split in SPLITS}
        for g in self.genomes:
            counts = {split: np.array([g["counts"][split][b] for b in BASES]) for split in SPLITS}
            for split in SPLITS:
                split_counts[split] += counts[split]
            total = sum(counts.values())
            genomes.append({
                "id": g["id"], "taxonomy": g["taxonomy"], "n_records": g["n_records"],
                "length": g["length"], "gc": _gc(total), "n_count": int(total[4]),
                "held_out": g["held_out"],
                "splits": {split: int(counts[split].sum()) for split in SPLITS},
            })
        total = sum(split_counts.values())
        n_segments = {split: sum(s.split == split for s in self.segments) for split in SPLITS}
        n_records = {split: len({(s.genome, s.record) for s in self.segments if s.split == split})
                     for split in SPLITS}
        return {
            "path": str(self.path),
            "n_genomes": len(self.genomes),
            "n_records": sum(g["n_records"] for g in self.genomes),
            "n_segments": len(self.segments),
            "length": len(self),
            "gc": _gc(total),
            "n_count": int(total[4]),
            "splits": {split: {"length": int(split_counts[split].sum()),
                               "n_records": n_records[split],
                               "n_segments": n_segments[split],
                               "gc": _gc(split_counts[split]),
                               "n_count": int(split_counts[split][4])} for split in SPLITS},
            "build": self.meta["build"],
            "genomes": genomes,
        }


def _gc(counts: np.ndarray) -> float | None:
    """G+C fraction from counts of A, C, G, T, N; None without unambiguous bases."""
    acgt = int(counts[:4].sum())
    return float(counts[1] + counts[2]) / acgt if acgt else None


def _record_index(segments: Sequence[Segment]) -> dict[tuple[str, str], tuple[int, int]]:
    """(genome, record) -> (offset of the record's first base, record length)."""
    index: dict[tuple[str, str], tuple[int, int]] = {}
    for s in segments:
        key = (s.genome, s.record)
        offset, length = index.get(key, (s.offset - s.record_start, 0))
        index[key] = (offset, length + s.length)
    return index


def _load_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("missing: not a genome store", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"corrupt store metadata: {exc.msg}", path=path, line=exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read store metadata: {exc}", path=path) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError("not a dnatlas genome store", path=path)
    if meta.get("version") != FORMAT_VERSION:
        raise InputError(f"store format version {meta.get('version')} is not supported "
                         f"(this dnatlas reads version {FORMAT_VERSION})", path=path)
    for key in ("build", "genomes", "totals"):
        if key not in meta:
            raise InputError(f"corrupt store metadata: no {key!r}", path=path)
    for number, genome in enumerate(meta["genomes"], start=1):
        missing = [key for key in GENOME_KEYS if key not in genome]
        if missing:
            raise InputError(f"corrupt store metadata: genome {number} lacks "
                             f"{', '.join(missing)}", path=path)
    return meta


def _load_segments(path: Path) -> list[Segment]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("missing: the store is incomplete", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read segments: {exc}", path=path) from None
    if not lines or tuple(lines[0].split("\t")) != SEGMENT_COLUMNS:
        raise InputError(f"corrupt segments: header must be {' '.join(SEGMENT_COLUMNS)}",
                         path=path, line=1)
    return [_parse_segment(line, path, number)
            for number, line in enumerate(lines[1:], start=2)]


def _parse_segment(line: str, path: Path, number: int) -> Segment:
    """One row of ``segments.tsv`` (at 1-based line ``number``) as a Segment."""
    try:
        genome, record, record_start, offset, length, split, taxonomy = line.split("\t")
        segment = Segment(genome, record, int(record_start), int(offset), int(length), split,
                          taxonomy)
    except ValueError:
        raise InputError("corrupt segments row", path=path, line=number) from None
    if split not in SPLITS or segment.length <= 0 or min(segment.offset,
                                                         segment.record_start) < 0:
        raise InputError("corrupt segments row", path=path, line=number)
    return segment


def _load_tokens(path: Path) -> np.ndarray:
    try:
        tokens = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise InputError("missing: the store is incomplete", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"corrupt token array: {exc}", path=path) from None
    if tokens.dtype != np.uint8 or tokens.ndim != 1:
        raise InputError(f"corrupt token array: expected 1-D uint8, found {tokens.ndim}-D "
                         f"{tokens.dtype}", path=path)
    return tokens


def _check_consistency(path: Path, meta: dict, segments: list[Segment], tokens: np.ndarray
                       ) -> None:
    """The segments must tile ``tokens`` in order and match the totals in ``store.json``."""
    offsets = np.array([s.offset for s in segments], dtype=np.int64)
    lengths = np.array([s.length for s in segments], dtype=np.int64)
    expected = np.concatenate([[0], np.cumsum(lengths)])
    if not np.array_equal(offsets, expected[:-1]) or expected[-1] != tokens.shape[0]:
        raise InputError(f"segments do not tile the {tokens.shape[0]} tokens: the store is "
                         "corrupt", path=path / SEGMENTS_FILE)
    if meta["totals"].get("length") != tokens.shape[0]:
        raise InputError("total length disagrees with tokens.npy: the store is corrupt",
                         path=path / META_FILE)
