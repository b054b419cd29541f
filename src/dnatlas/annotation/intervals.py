"""Genomic intervals and their readers: GFF3, GenBank features and BED.

This is the entry point for annotations. Every reader returns :class:`Interval`
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

from importlib import resources
from pathlib import Path

from dnatlas.annotation.bed import bed_track_name, load_bed, parse_bed_spec
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

__all__ = [
    "SEQUENCE_TYPES", "Interval", "annotation_format", "bed_track_name",
    "bundled_annotation_path", "codon_phases", "feature_name", "group_features",
    "load_annotations", "load_bed", "load_genbank_features", "load_gff3", "open_text",
    "parse_bed_spec", "write_gff3",
]

_GFF_SUFFIXES = frozenset({".gff", ".gff3"})
_GENBANK_SUFFIXES = frozenset({".gb", ".gbk", ".gbff", ".genbank"})
_BED_SUFFIXES = frozenset({".bed"})
_BUNDLED_ANNOTATION = "ecoli_k12_mg1655.refseq.gff3.gz"


def bundled_annotation_path() -> Path:
    """Path of the bundled RefSeq annotation of *E. coli* K-12 MG1655 (GFF3, gzip).

    Its seqid is ``K-12-MG1655``, matching the bundled genome ``ecoli_k12_mg1655.fa.gz``.
    """
    return Path(str(resources.files("dnatlas") / "bundled" / "annotations" / _BUNDLED_ANNOTATION))


def load_annotations(path: str | Path) -> list[Interval]:
    """Read GFF3, GenBank or BED, chosen by extension (``.gz`` ignored) or else by content."""
    readers = {"gff3": load_gff3, "genbank": load_genbank_features, "bed": load_bed}
    return readers[annotation_format(path)](path)


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
            if not line.strip() or line.startswith(("#", "track", "browser")):
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
    with open_text(path) as handle:
        try:
            records = list(SeqIO.parse(handle, "genbank"))
        except ValueError as exc:
            raise InputError(f"invalid GenBank file: {exc}", path=path) from None
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
        first_phase = int(attributes.get("codon_start", "1")) - 1
        phases = codon_phases((len(part) for part in parts), first_phase)
    name = feature_name(attributes)
    intervals = []
    for part, phase in zip(parts, phases, strict=True):
        part_attributes = dict(attributes)
        if phase is not None:
            part_attributes["phase"] = str(phase)
        intervals.append(Interval(seqid, int(part.start), int(part.end), part.strand or 0,
                                  feature.type, name, part_attributes))
    return intervals
