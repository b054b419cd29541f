"""GenBank records through Biopython: each record's sequence encoded and checked.

Called by :func:`dnatlas.genome.readers.read_records` (the entry point). Problems raise :class:`dnatlas.errors.InputError` with the file, record and the
1-based line of the record's LOCUS line (or of the invalid base in its ORIGIN data).
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import INVALID_BYTE, TRANSLATE_TABLE
from dnatlas.genome.file_opening import DECOMPRESSION_ERRORS, open_latin1_text
from dnatlas.genome.record import Record


def read_genbank(path: Path) -> Iterator[Record]:
    """Parse a GenBank file with Biopython, then encode and check each record's sequence."""
    from Bio import SeqIO
    from Bio.Seq import UndefinedSequenceError

    seen: set[str] = set()
    with open_latin1_text(path) as text:
        records = SeqIO.parse(text, "genbank")
        for index in itertools.count():
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    rec = next(records)
                    raw = bytes(rec.seq)
            except StopIteration:
                return
            except DECOMPRESSION_ERRORS as exc:
                locus = _locate_locus(path, index)
                raise InputError(f"truncated or corrupt gzip data ({exc})", path=path,
                                 record=locus.name, line=locus.line) from None
            except UndefinedSequenceError:
                raise _no_sequence_error(path, index, rec.id) from None
            except Exception as exc:  # Biopython raises ValueError, AssertionError...
                raise _genbank_parse_error(path, index, exc) from None
            _check_sequence_warnings(path, index, rec.id, caught)
            yield _genbank_record(path, index, rec.id, rec.description, raw, seen)
            seen.add(rec.id)


def _check_sequence_warnings(path: Path, index: int, record_id: str, caught: list) -> None:
    """Raise on the Biopython warnings that mean a truncated or inconsistent sequence.

    Other parser warnings (a malformed LOCUS line, an odd feature location...) are ignored.
    """
    for warning in caught:
        message = " ".join(str(warning.message).split())
        if message.startswith("Premature end of file"):
            message = "truncated GenBank record: the file ends inside its sequence"
        elif message.startswith("Expected sequence length"):
            message = f"sequence length disagrees with the LOCUS line: {message}"
        else:
            continue
        raise InputError(message, path=path, record=record_id,
                         line=_locate_locus(path, index).line)


def _genbank_record(path: Path, index: int, record_id: str, description: str, raw: bytes,
                    seen: set[str]) -> Record:
    """Encode record ``index``'s sequence, checking that it is unique, non-empty and valid."""
    if record_id in seen:
        raise InputError("duplicate record ID", path=path, record=record_id,
                         line=_locate_locus(path, index).line)
    if not raw:
        raise _no_sequence_error(path, index, record_id)
    codes = bytearray(raw.translate(TRANSLATE_TABLE))
    bad = codes.find(INVALID_BYTE)
    if bad >= 0:
        line, column, char = _locate_origin_base(path, index, bad)
        raise InputError(f"invalid character {char!r} at column {column}", path=path,
                         record=record_id, line=line)
    return Record(record_id, description, np.frombuffer(codes, dtype=np.uint8))


def _no_sequence_error(path: Path, index: int, record_id: str | None = None) -> InputError:
    locus = _locate_locus(path, index)
    return InputError("GenBank record has no sequence (no ORIGIN data)", path=path,
                      record=record_id or locus.name, line=locus.line)


def _genbank_parse_error(path: Path, index: int, exc: Exception) -> InputError:
    """The InputError for a record that Biopython cannot parse, as one line."""
    locus = _locate_locus(path, index)
    if not locus.terminated:
        message = "truncated GenBank record: the file ends before its '//' line"
    elif not locus.has_origin:
        return _no_sequence_error(path, index)
    else:
        message = "invalid GenBank record: " + " ".join(str(exc).split())
    return InputError(message, path=path, record=locus.name, line=locus.line)


# Error path only: these helpers re-read the file to locate a problem.


class _Locus(NamedTuple):
    line: int | None  # 1-based line of the LOCUS line
    name: str | None  # the LOCUS name
    has_origin: bool  # whether the record has an ORIGIN line before its '//'
    terminated: bool  # whether the record ends with a '//' line


def _genbank_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) pairs of a possibly gzipped text file; stops at corruption."""
    try:
        with open_latin1_text(path) as text:
            yield from enumerate(text, start=1)
    except DECOMPRESSION_ERRORS:
        return


def _locate_locus(path: Path, index: int) -> _Locus:
    """Where record ``index`` (0-based) of a GenBank file starts, and whether it has ORIGIN."""
    count = -1
    line, name, has_origin = None, None, False
    for number, text in _genbank_lines(path):
        if text.startswith("LOCUS"):
            count += 1
            if count == index:
                words = text.split()
                line, name = number, (words[1] if len(words) > 1 else None)
        elif count == index and text.startswith("ORIGIN"):
            has_origin = True
        elif count == index and text.startswith("//"):
            return _Locus(line, name, has_origin, True)
    return _Locus(line, name, has_origin, False)


_ORIGIN_DATA = re.compile(r"^\s*\d+\s")


def _locate_origin_base(path: Path, index: int, base: int) -> tuple[int | None, int | None, str]:
    """(line, column, character) of the 0-based ``base`` of record ``index``'s ORIGIN data."""
    start = _locate_locus(path, index).line or 1
    seen = 0
    in_origin = False
    for number, text in _genbank_lines(path):
        if number < start:
            continue
        if text.startswith("ORIGIN"):
            in_origin = True
        elif in_origin and _ORIGIN_DATA.match(text):
            for column, char in enumerate(text.rstrip("\r\n"), start=1):
                if char.isdigit() or char.isspace():
                    continue
                if seen == base:
                    return number, column, char
                seen += 1
        elif in_origin:
            break
    return None, None, "?"
