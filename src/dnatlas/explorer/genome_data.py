"""The genome side of the explorer, in memory: sequences, igv's indexed FASTA (served with
HTTP Range from memory), annotation intervals and concept labels by region, gene search.

Coordinates: queries are 1-based closed (the API's); the igv feature lists this returns
are 0-based, end-exclusive (igv's JSON convention).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from dnatlas.errors import InputError

FASTA_LINE = 80
_ASCII = np.frombuffer(b"ACGTNN", dtype=np.uint8)
_STRAND = {1: "+", -1: "-", 0: "."}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def genome_name(path_or_name) -> str:
    """A URL-safe short name of a genome file (``ecoli_k12_mg1655.fa.gz`` -> ``ecoli_k12_mg1655``)."""
    name = str(path_or_name).replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    return _SAFE_NAME.sub("_", name) or "genome"


class IndexedFasta:
    """A FASTA text and its ``.fai`` built once from the codes, read by byte ranges."""

    def __init__(self, codes: dict[str, np.ndarray], width: int = FASTA_LINE):
        parts, fai, offset = [], [], 0
        for rid, seq in codes.items():
            head = f">{rid}\n".encode()
            text = _ASCII[np.minimum(seq, 5)].tobytes()
            body = b"".join(text[i:i + width] + b"\n" for i in range(0, len(text), width))
            fai.append(f"{rid}\t{len(seq)}\t{offset + len(head)}\t{width}\t{width + 1}\n")
            parts += [head, body]
            offset += len(head) + len(body)
        self.fasta = b"".join(parts)
        self.fai = "".join(fai).encode()


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range: bytes=a-b`` -> (a, b) inclusive, None for no/unsupported range; raises
    ValueError when unsatisfiable (416)."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m[1] and not m[2]):
        return None                                   # multi-range etc.: the whole file
    if m[1]:
        a = int(m[1])
        b = min(int(m[2]), size - 1) if m[2] else size - 1
    else:
        n = int(m[2])
        a, b = max(0, size - n), size - 1
    if a >= size or a > b:
        raise ValueError("unsatisfiable range")
    return a, b


@dataclass
class _Spans:
    """Sorted intervals of one record: 0-based starts/ends, and per-row payload."""

    starts: np.ndarray
    ends: np.ndarray
    rows: list
    longest: int

    @classmethod
    def build(cls, items: list[tuple[int, int, object]]) -> _Spans:
        items.sort(key=lambda t: (t[0], t[1]))
        starts = np.array([t[0] for t in items], dtype=np.int64)
        ends = np.array([t[1] for t in items], dtype=np.int64)
        return cls(starts, ends, [t[2] for t in items],
                   int((ends - starts).max()) if len(items) else 0)

    def overlapping(self, a: int, b: int) -> np.ndarray:
        """Indices of the intervals overlapping 0-based [a, b)."""
        lo = int(np.searchsorted(self.starts, a - self.longest, side="left"))
        hi = int(np.searchsorted(self.starts, b, side="left"))
        idx = np.arange(lo, hi)
        return idx[self.ends[lo:hi] > a]


class GenomeData:
    """Records, the indexed FASTA, annotation and label tracks of one genome."""

    def __init__(self, codes: dict[str, np.ndarray], intervals=(), name: str = "genome",
                 concepts: list[str] | None = None):
        self.codes = codes
        self.name = name
        self.lengths = {r: len(c) for r, c in codes.items()}
        self._intervals = list(intervals)
        self._concepts = concepts
        self._fasta: IndexedFasta | None = None
        self._labels: dict[str, _Spans] | None = None
        self._lock = threading.Lock()
        from dnatlas.annotation.features import SEQUENCE_TYPES

        by_record: dict[str, list] = {}
        self._genes: dict[str, list] = {}
        for iv in self._intervals:
            if iv.type in SEQUENCE_TYPES or iv.seqid not in codes:
                continue
            by_record.setdefault(iv.seqid, []).append((iv.start, iv.end, iv))
            for key in {iv.name, iv.attributes.get("locus_tag", ""),
                        iv.attributes.get("gene", "")} - {""}:
                self._genes.setdefault(key.lower(), []).append(iv)
        self._annotation = {r: _Spans.build(items) for r, items in by_record.items()}

    # -- records -------------------------------------------------------------------------
    def check_region(self, chr: str, start: int, end: int, max_nt: int,
                     what: str = "region", clip: bool = True) -> tuple[int, int]:
        """1-based closed ``start..end`` of ``chr`` -> 0-based half-open, checked (the end
        clipped to the record with ``clip``); KeyError for an unknown record."""
        if chr not in self.lengths:
            raise KeyError(f"no record {chr!r} in this genome")
        n = self.lengths[chr]
        if start < 1 or end < start:
            raise InputError(f"{what}: need 1 <= start <= end, got {start}-{end}")
        if start > n or (end > n and not clip):
            raise InputError(f"{what}: {chr} has {n:,} nt, got {start:,}-{end:,}")
        end = min(end, n)
        if end - start + 1 > max_nt:
            raise InputError(f"{what}: at most {max_nt:,} nt, got {end - start + 1:,}")
        return start - 1, end

    @property
    def fasta(self) -> IndexedFasta:
        with self._lock:
            if self._fasta is None:
                self._fasta = IndexedFasta(self.codes)
            return self._fasta

    # -- annotation ----------------------------------------------------------------------
    def annotation(self, chr: str, a: int, b: int) -> list[dict]:
        """igv features (0-based, end-exclusive) of the annotation overlapping [a, b)."""
        spans = self._annotation.get(chr)
        if spans is None:
            return []
        out = []
        for i in spans.overlapping(a, b):
            iv = spans.rows[i]
            out.append({"chr": chr, "start": iv.start, "end": iv.end,
                        "name": iv.name or iv.attributes.get("ID", "") or iv.type,
                        "strand": _STRAND[iv.strand], "type": iv.type})
        return out

    def intervals(self, chr: str, a: int, b: int) -> list:
        """The annotation's Interval objects overlapping 0-based [a, b)."""
        spans = self._annotation.get(chr)
        return [] if spans is None else [spans.rows[i] for i in spans.overlapping(a, b)]

    def labels(self, chr: str, a: int, b: int) -> list[dict]:
        """igv features of the concept labels overlapping [a, b) (``type``: the concept)."""
        spans = self._label_spans().get(chr)
        if spans is None:
            return []
        out = []
        for i in spans.overlapping(a, b):
            concept, strand, element = spans.rows[i]
            out.append({"chr": chr, "start": int(spans.starts[i]), "end": int(spans.ends[i]),
                        "name": f"{concept} #{element}", "strand": _STRAND[strand],
                        "type": concept})
        return out

    def _label_spans(self) -> dict[str, _Spans]:
        with self._lock:
            if self._labels is None:
                self._labels = self._build_labels()
            return self._labels

    def _build_labels(self) -> dict[str, _Spans]:
        from dnatlas.concepts.label_sources import LabelSpec, build_labels

        if not self._intervals:
            return {}
        labels, _ = build_labels(self._intervals, self.codes, LabelSpec(nucleotides=False))
        keep = set(self._concepts or ()) & set(labels.names)
        by_record: dict[str, list] = {}
        for c, name in enumerate(labels.names):
            if keep and name not in keep:
                continue
            for rec, s, e, strand, element, _layer in labels.pieces[c].tolist():
                by_record.setdefault(labels.records[rec], []).append(
                    (s, e, (name, strand, element)))
        return {r: _Spans.build(items) for r, items in by_record.items()}

    # -- search --------------------------------------------------------------------------
    def genes(self, query: str, limit: int = 20) -> list[dict]:
        """Annotation features named ``query`` (gene, Name, locus_tag; case-insensitive,
        exact first, then prefix) as 1-based regions."""
        q = query.strip().lower()
        if len(q) < 2:
            return []
        found = list(self._genes.get(q, []))
        if len(found) < limit:
            found += [iv for name in sorted(self._genes) if name.startswith(q) and name != q
                      for iv in self._genes[name]][:limit]
        hits, seen = [], set()
        for iv in found:
            key = (iv.seqid, iv.start, iv.end, iv.name)
            if key in seen:
                continue
            seen.add(key)
            hits.append({"type": "gene", "record": iv.seqid, "start": iv.start + 1,
                         "end": iv.end, "name": iv.name or iv.attributes.get("locus_tag"),
                         "strand": _STRAND[iv.strand]})
        return hits[:limit]


def load_genome(fasta, annotations=None, concepts=None) -> GenomeData:
    """Read ``fasta`` (a path or a bundled genome's name) and ``annotations``."""
    from dnatlas.annotation.intervals import load_annotations, restrict_to_genome
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import resolve_bundled_genome

    path = resolve_bundled_genome(fasta)
    codes = {r.id: r.seq for r in read_records(path)}
    intervals = []
    if annotations:
        intervals = restrict_to_genome(load_annotations(annotations), {
            r: len(c) for r, c in codes.items()})
    return GenomeData(codes, intervals, genome_name(path), concepts)
