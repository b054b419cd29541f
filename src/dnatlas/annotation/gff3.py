"""GFF3 reading and writing.

GFF3's 1-based closed coordinates become 0-based half-open :class:`Interval` objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote

from dnatlas.annotation.features import (
    SEQUENCE_TYPES,
    Interval,
    feature_name,
    open_text,
    parse_integer,
)
from dnatlas.errors import InputError
from dnatlas.files import atomic_write_text

#: GFF3 columns stored in ``Interval.attributes`` under these keys (when not ``.``).
COLUMN_ATTRIBUTES = ("source", "score", "phase")

_GFF_STRANDS = {"+": 1, "-": -1, ".": 0, "?": 0}
_GFF_PHASES = frozenset({".", "0", "1", "2"})
# Characters left as they are when writing (everything else is percent-encoded).
_SEQID_SAFE = "a-zA-Z0-9.:^*$@!+_?-|"
_ATTRIBUTE_SAFE = " !\"#$'()*+,-./:<>?@[\\]^_`{|}~"


def load_gff3(path: str | Path) -> list[Interval]:
    """Read the features of a GFF3 file (plain or gzip).

    Coordinates go from GFF3's 1-based closed to 0-based half-open. Comments and
    directives are skipped, reading stops at ``##FASTA`` (or a ``>`` line), and
    whole-sequence features (:data:`SEQUENCE_TYPES`, e.g. ``region`` with
    ``Is_circular``) are skipped. Attribute values are percent-decoded; multiple
    values stay comma-joined. Columns 2, 6 and 8 are kept as the attributes
    ``source``, ``score`` and ``phase``.
    """
    path = Path(path)
    intervals = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if line.startswith(("##FASTA", ">")):
                break
            if not line.strip() or line.startswith("#"):
                continue
            interval = _parse_gff3_line(line, path, number)
            if interval is not None:
                intervals.append(interval)
    return intervals


def _parse_gff3_line(line: str, path: Path, number: int) -> Interval | None:
    columns = line.split("\t")
    seqid = unquote(columns[0])

    def fail(message: str) -> InputError:
        return InputError(message, path=path, record=seqid, line=number)

    if len(columns) != 9:
        raise fail(f"expected 9 tab-separated columns, found {len(columns)}")
    source, ftype, start, end, score, strand, phase, attribute_text = columns[1:]
    ftype = unquote(ftype)
    if ftype in SEQUENCE_TYPES:
        return None
    start, end = parse_integer(start, "start", fail), parse_integer(end, "end", fail)
    if start < 1:
        raise fail(f"start {start} is below 1 (GFF3 is 1-based)")
    if start > end:
        raise fail(f"start {start} > end {end}")
    if strand not in _GFF_STRANDS:
        raise fail(f"invalid strand {strand!r} (expected +, -, . or ?)")
    if phase not in _GFF_PHASES:
        raise fail(f"invalid phase {phase!r} (expected 0, 1, 2 or .)")
    attributes = _parse_attributes(attribute_text, fail)
    for key, value in zip(COLUMN_ATTRIBUTES, (unquote(source), score, phase), strict=True):
        if value != ".":
            attributes[key] = value
    return Interval(seqid, start - 1, end, _GFF_STRANDS[strand], ftype,
                    feature_name(attributes), attributes)


def _parse_attributes(text: str, fail) -> dict[str, str]:
    attributes: dict[str, str] = {}
    if text.strip() in ("", "."):
        return attributes
    for item in text.split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise fail(f"attribute {item.strip()!r} is not key=value (GTF is not GFF3)")
        attributes[unquote(key.strip())] = unquote(value)
    return attributes


def write_gff3(path: str | Path, intervals: Iterable[Interval],
               sequence_lengths: dict[str, int]) -> None:
    """Write intervals as GFF3 (``##gff-version 3``, one ``##sequence-region`` per sequence).

    The attributes ``source``, ``score`` and ``phase`` fill their columns (``.``
    when absent); the other attributes are percent-encoded where GFF3 requires.
    Pieces of one feature are written as lines sharing their ``ID``. The file is written
    atomically (a temporary file next to it, renamed when complete).
    """
    lines = ["##gff-version 3"]
    lines += [f"##sequence-region {_escape_seqid(seqid)} 1 {length}"
              for seqid, length in sequence_lengths.items()]
    lines += [_gff3_line(interval) for interval in intervals]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _gff3_line(interval: Interval) -> str:
    attributes = dict(interval.attributes)
    source, score, phase = (attributes.pop(key, ".") for key in COLUMN_ATTRIBUTES)
    strand = {1: "+", -1: "-", 0: "."}[interval.strand]
    attribute_text = ";".join(f"{_escape_attribute(key)}={_escape_attribute(value)}"
                              for key, value in attributes.items()) or "."
    return "\t".join([_escape_seqid(interval.seqid), _escape_attribute(source),
                      _escape_attribute(interval.type), str(interval.start + 1),
                      str(interval.end), score, strand, phase, attribute_text])


def _escape_seqid(seqid: str) -> str:
    return re.sub(f"[^{_SEQID_SAFE}]", lambda m: quote(m.group()), seqid)


def _escape_attribute(text: str) -> str:
    return quote(text, safe=_ATTRIBUTE_SAFE)
