"""Genomic intervals and their readers: GFF3, GenBank features and BED.

This is the entry point for annotations: :func:`load_annotations` reads a file, a bundled
annotation by name (``ecoli_k12_mg1655``: every bundled file of that genome) or a list of
them, as the union of their features. Every reader returns :class:`Interval`
objects in dnatlas coordinates: 0-based, half-open ``[start, end)``, strand
``+1``, ``-1`` or ``0`` (unstranded or unknown). A feature made of several
pieces (a GFF3 feature on several lines with one ``ID``, a GenBank ``join(...)``,
a BED12 line with blocks) becomes one interval per piece; the pieces share
``attributes["ID"]`` and :func:`group_features` puts them back together.

Compressed input (gzip) is detected from the file's first bytes, whatever its
name. Bad lines raise :class:`~dnatlas.errors.InputError` naming the file, the
line and the sequence ID. GFF3 lives in :mod:`~dnatlas.annotation.gff3`, BED in
:mod:`~dnatlas.annotation.bed`; both are re-exported here.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dnatlas.annotation.bed import bed_track_name, is_bed_header, load_bed, parse_bed_spec
from dnatlas.annotation.features import (
    SEQUENCE_TYPES,
    Interval,
    codon_phases,
    feature_name,
    group_features,
    open_text,
)
from dnatlas.annotation.gff3 import load_gff3, write_gff3
from dnatlas.errors import InputError

if TYPE_CHECKING:
    from dnatlas.genome.sources import AnnotationSource

__all__ = [
    "SEQUENCE_TYPES", "Interval", "annotation_format", "bed_track_name",
    "bundled_annotation_path", "codon_phases", "feature_name", "group_features",
    "load_annotations", "load_bed", "load_genbank_features", "load_gff3", "open_text",
    "parse_bed_spec", "restrict_to_genome", "write_gff3",
]

_GFF_SUFFIXES = frozenset({".gff", ".gff3"})
_GENBANK_SUFFIXES = frozenset({".gb", ".gbk", ".gbff", ".genbank"})
_BED_SUFFIXES = frozenset({".bed"})


def bundled_annotation_path() -> Path:
    """Path of the bundled RefSeq annotation of *E. coli* K-12 MG1655 (GFF3, gzip): one
    file of its annotation; ``load_annotations("ecoli_k12_mg1655")`` reads all of them
    (RefSeq, and TransTermHP terminators with pilercr CRISPR arrays).

    Its seqid is ``K-12-MG1655``, matching the bundled genome ``ecoli_k12_mg1655.fa.gz``.
    """
    from dnatlas import bundled

    return bundled.annotation_path(bundled.DEFAULT_ANNOTATION)


def load_annotations(source: AnnotationSource) -> list[Interval]:
    """The features of one or several annotations, as one list (their union).

    Args:
        source: a file (GFF3, GenBank or BED, chosen by extension, ``.gz`` ignored, or else
            by content; a pipe too), a bundled annotation name (``ecoli_k12_mg1655``: every
            bundled file of that genome, see :func:`dnatlas.bundled.annotation_paths`), or
            a list of either (:func:`dnatlas.genome.sources.resolve_bundled_annotations`).

    Returns:
        Each file's intervals, files in the order given. Where a later file uses a feature
        ``ID`` an earlier one has for the same seqid and type, its ID becomes
        ``FILE_NAME:ID``, so that features of different files are never grouped into one
        (:func:`group_features`).

    Raises:
        InputError: an item is neither a file nor a bundled name, or a file is invalid.
    """
    from dnatlas.genome.sources import resolve_bundled_annotations

    paths = resolve_bundled_annotations(source)
    if len(paths) == 1:
        return _load_file(paths[0])
    intervals: list[Interval] = []
    used: set[tuple[str, str, str]] = set()
    for number, path in enumerate(paths, 1):
        loaded = _load_file(path)
        keys = {_id_key(iv) for iv in loaded if iv.attributes.get("ID")}
        renamed = {}
        for key in sorted(keys & used):
            new = f"{path.name}:{key[2]}"
            if (key[0], key[1], new) in used | keys:
                new = f"{path.name}#{number}:{key[2]}"
            renamed[key] = new
        used |= keys | {(key[0], key[1], new) for key, new in renamed.items()}
        intervals += [replace(iv, attributes={**iv.attributes, "ID": renamed[_id_key(iv)]})
                      if iv.attributes.get("ID") and _id_key(iv) in renamed else iv
                      for iv in loaded]
    return intervals


def _id_key(interval: Interval) -> tuple[str, str, str]:
    return interval.seqid, interval.type, interval.attributes["ID"]


def _load_file(path: Path) -> list[Interval]:
    """Read one GFF3, GenBank or BED file (or pipe)."""
    readers = {"gff3": load_gff3, "genbank": load_genbank_features, "bed": load_bed}
    path = Path(path)
    if not _is_stream(path):
        return readers[annotation_format(path)](path)
    # A pipe (``<(zcat a.gff.gz)``) can be read only once: copy it, parse the copy, and
    # name the pipe in errors.
    with tempfile.TemporaryDirectory(prefix="dnatlas-") as folder:
        copy = Path(folder) / path.name
        with open(path, "rb") as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target)
        try:
            return readers[annotation_format(copy)](copy)
        except InputError as exc:
            exc.path = str(path)
            raise


def _is_stream(path: Path) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a folder (a pipe...)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def restrict_to_genome(intervals: Iterable[Interval], lengths: Mapping[str, int],
                       path: str | Path | None = None,
                       warn: Callable[[str], None] | None = None) -> list[Interval]:
    """The intervals that lie on the sequences of a genome.

    A genome may be only part of the annotated one (the chromosome without its plasmids,
    a few contigs): the features of the other sequences are dropped.

    Args:
        intervals: the annotation's features.
        lengths: the genome's record IDs -> lengths in nt.
        path: the annotation file, for messages.
        warn: receives one line naming the genome's records that have no feature
            (default: ``dnatlas: warning: ...`` on stderr).

    Raises:
        InputError: no feature lies on any record of the genome (the seqids differ), or a
            feature ends past its record (an annotation of another assembly).
    """
    intervals = list(intervals)
    seqids = {iv.seqid for iv in intervals}
    kept = [iv for iv in intervals if iv.seqid in lengths]
    if not kept:
        raise InputError(f"no feature lies on the genome's records: the annotation's seqids "
                         f"({_some(seqids)}) match none of the records ({_some(lengths)})",
                         path=path)
    beyond = next((iv for iv in kept if iv.end > lengths[iv.seqid]), None)
    if beyond is not None:
        raise InputError(f"{beyond.type} {beyond.name!r} at [{beyond.start}, {beyond.end}) ends "
                         f"past the record's length {lengths[beyond.seqid]} (an annotation of "
                         "another assembly?)", path=path, record=beyond.seqid)
    bare = [seqid for seqid in lengths if seqid not in seqids]
    if bare:
        message = (f"{len(bare)} of the genome's {len(lengths)} records have no annotated "
                   f"feature ({_some(bare)}); they are labelled as having none")
        if path is not None:
            message = f"{path}: {message}"
        (warn or _warn_stderr)(message)
    return kept


def _some(names: Iterable[str], shown: int = 3) -> str:
    names = sorted(names)
    text = ", ".join(repr(n) for n in names[:shown])
    return text + (f", ... ({len(names)} in all)" if len(names) > shown else "") if names else "none"


def _warn_stderr(message: str) -> None:
    print(f"dnatlas: warning: {message}", file=sys.stderr, flush=True)


def annotation_format(path: str | Path) -> str:
    """``"gff3"``, ``"genbank"`` or ``"bed"``, from the file name or its first data line."""
    path = Path(path)
    suffix = Path(path.name.removesuffix(".gz")).suffix.lower()
    for fmt, suffixes in (("gff3", _GFF_SUFFIXES), ("genbank", _GENBANK_SUFFIXES),
                          ("bed", _BED_SUFFIXES)):
        if suffix in suffixes:
            return fmt
    with open_text(path) as handle:
        for line in handle:
            if line.startswith("##gff-version"):
                return "gff3"
            if line.startswith("LOCUS"):
                return "genbank"
            if not line.strip() or is_bed_header(line):
                continue
            return "gff3" if len(line.rstrip("\r\n").split("\t")) == 9 else "bed"
    raise InputError("cannot tell the annotation format (expected GFF3, GenBank or BED)",
                     path=path)


def load_genbank_features(path: str | Path) -> list[Interval]:
    """Read the features of a GenBank file (plain or gzip) with Biopython.

    The seqid is the record's ``ACCESSION.VERSION`` (Biopython's ``record.id``).
    Qualifiers become comma-joined attributes; flag qualifiers such as
    ``/pseudo`` become ``"true"``. Each part of a ``join(...)`` location is one
    interval; parts share a generated ``ID`` and CDS parts carry their ``phase``
    (from ``/codon_start``). The ``source`` feature is skipped.
    """
    from Bio import SeqIO

    path = Path(path)
    with open_text(path) as handle, warnings.catch_warnings():
        # Biopython warns about what it repairs or drops (odd LOCUS lines, invalid
        # locations); a dropped location is reported below, the rest is harmless.
        warnings.simplefilter("ignore")
        try:
            records = list(SeqIO.parse(handle, "genbank"))
        except Exception as exc:  # Biopython raises ValueError, AssertionError...
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise InputError(f"invalid GenBank file: {detail}", path=path) from None
    if not records:
        raise InputError("no GenBank record found", path=path)
    intervals = []
    for record in records:
        for index, feature in enumerate(record.features, 1):
            if feature.type not in SEQUENCE_TYPES:
                intervals += _genbank_intervals(record.id, feature, index, path)
    return intervals


def _genbank_intervals(seqid: str, feature, index: int, path: Path) -> list[Interval]:
    if feature.location is None:
        raise InputError(f"{feature.type} feature #{index} has no valid location",
                         path=path, record=seqid)
    attributes = {key: ",".join(values) or "true" for key, values in feature.qualifiers.items()}
    attributes["ID"] = f"{feature.type}{index}"
    parts = feature.location.parts  # in biological (reading) order
    phases = [None] * len(parts)
    if feature.type == "CDS":
        codon_start = attributes.get("codon_start", "1")
        if codon_start.strip() not in ("1", "2", "3"):
            raise InputError(f"CDS feature #{index} ({feature_name(attributes)}): "
                             f"/codon_start={codon_start} is not 1, 2 or 3",
                             path=path, record=seqid)
        phases = codon_phases((len(part) for part in parts), int(codon_start) - 1)
    name = feature_name(attributes)
    intervals = []
    for part, phase in zip(parts, phases, strict=True):
        part_attributes = dict(attributes)
        if phase is not None:
            part_attributes["phase"] = str(phase)
        intervals.append(Interval(seqid, int(part.start), int(part.end), part.strand or 0,
                                  feature.type, name, part_attributes))
    return intervals
