"""Read genomes from FASTA and GenBank files into nucleotide codes.

Formats are recognised by content, never by file name:

* gzip (including bgzip, which is multi-member gzip) by its magic bytes ``1f 8b``;
* FASTA when the first non-blank line starts with ``>``;
* GenBank when the first non-blank line starts with ``LOCUS`` (parsed with Biopython).

Sequences are encoded with :data:`dnatlas.genome.alphabet.ENCODE_TABLE` (A=0 C=1 G=2 T=3,
every IUPAC ambiguity code -> N=4, lowercase as uppercase, U as T). FASTA is parsed in
large line-aligned chunks, each encoded by one ``bytes.translate`` table lookup, so a 5 Mb
genome reads in a few tens of milliseconds. Whitespace inside sequence lines (spaces, tabs,
``\\r``) is ignored.

Every problem with the input raises :class:`dnatlas.errors.InputError` naming the file,
the record and the 1-based line where it applies.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import stat
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import ENCODE_TABLE, INVALID

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 23  # at most 8 MiB of text per parsing step
GZIP_INPUT_BYTES = 1 << 20  # compressed bytes read at a time...
GZIP_STEP_BYTES = 1 << 14  # ...and decompressed in steps of this size
GENOME_SUFFIXES = (".fa", ".fasta", ".fna", ".gb", ".gbk", ".gbff")

_NEWLINE = ord("\n")
_WHITESPACE = b"\n\r \t"  # ignored inside sequence lines
_TRANSLATE = ENCODE_TABLE.tobytes()  # for bytes.translate: byte -> code, 255 if invalid
_INVALID_BYTE = bytes([INVALID])
_DECOMPRESSION_ERRORS = (EOFError, zlib.error)


@dataclass
class Record:
    """One sequence record.

    Attributes:
        id: the record ID (FASTA: first word of the header; GenBank: accession.version).
        description: the rest of the FASTA header, or the GenBank DEFINITION.
        seq: nucleotide codes, shape (L,), dtype uint8, values 0..4.
    """

    id: str
    description: str
    seq: np.ndarray

    def __len__(self) -> int:
        return int(self.seq.shape[0])


def read_records(path: str | Path) -> Iterator[Record]:
    """Yield the records of a FASTA or GenBank file (plain, gzip or bgzip), in file order.

    Raises:
        InputError: missing or unreadable file, unrecognised or binary content, invalid
            characters, empty records, duplicate IDs, truncated gzip data...
    """
    path = Path(path)
    held = _hold_if_stream(path)
    try:
        kind = _sniff_format(path)
        if kind == "fasta":
            yield from _read_fasta(path)
        else:
            yield from _read_genbank(path)
    finally:
        if held:
            _IN_MEMORY.pop(path, None)


def read_genome(path: str | Path) -> list[Record]:
    """All records of a FASTA or GenBank file as a list (see :func:`read_records`)."""
    return list(read_records(path))


def genome_id_from_path(path: str | Path) -> str:
    """The genome ID of a file: its name without ``.gz`` and a FASTA/GenBank suffix.

    >>> genome_id_from_path("data/ecoli_k12.fa.gz")
    'ecoli_k12'
    """
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    for suffix in GENOME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------- opening


#: Content of the pipes being read (``<(zcat g.fa.gz)``, ``/dev/stdin``): a pipe can be
#: read only once, and the parsers open their file more than once (to sniff the format,
#: and on the error path to locate a problem).
_IN_MEMORY: dict[Path, bytes] = {}


def _hold_if_stream(path: Path) -> bool:
    """Read a pipe or other non-regular file into memory (once); whether it was."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # _open_binary reports it
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or path in _IN_MEMORY:
        return False
    try:
        with open(path, "rb") as fh:
            _IN_MEMORY[path] = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    return True


def _open_binary(path: Path) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing gzip/bgzip (detected by magic bytes)."""
    try:
        fh = io.BytesIO(_IN_MEMORY[path]) if path in _IN_MEMORY else open(path, "rb")
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a sequence file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror}", path=path) from None
    if fh.read(2) == GZIP_MAGIC:
        fh.seek(0)
        return _GzipReader(fh)
    fh.seek(0)
    return fh


class _GzipReader(io.RawIOBase):
    """Streaming reader of gzip data, including multi-member gzip such as bgzip.

    Unlike :class:`gzip.GzipFile`, it hands out every byte decompressed before a truncation
    or corruption and only then raises (``EOFError`` or ``zlib.error``), so that the parser
    can say in which record and line the data stops.
    """

    def __init__(self, fh: BinaryIO):
        super().__init__()
        self._fh = fh
        self._inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        self._member_started = False
        self._pending = memoryview(b"")
        self._error: zlib.error | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` decompressed bytes (possibly fewer); ``b""`` at the end."""
        if size < 0:
            return self.readall()
        while not self._pending:
            if self._error is not None:
                raise self._error
            data = self._fh.read(GZIP_INPUT_BYTES)
            if not data:
                if self._member_started:
                    raise EOFError("the file ends inside a gzip member")
                return b""
            self._pending = memoryview(self._inflate(data))
        out = self._pending[:size].tobytes()
        self._pending = self._pending[size:]
        return out

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def _inflate(self, data: bytes) -> bytes:
        """Decompress ``data`` in small steps, keeping the output made before an error."""
        out = []
        try:
            for i in range(0, len(data), GZIP_STEP_BYTES):
                out.append(self._inflate_step(data[i:i + GZIP_STEP_BYTES]))
        except zlib.error as exc:
            self._error = exc
        return b"".join(out)

    def _inflate_step(self, data: bytes) -> bytes:
        """Decompress ``data``, starting a new gzip member after each one that ends."""
        out = []
        while data:
            if self._inflater.eof:
                self._inflater = zlib.decompressobj(wbits=31)
            out.append(self._inflater.decompress(data))
            data = self._inflater.unused_data if self._inflater.eof else b""
            self._member_started = not self._inflater.eof
        return b"".join(out)

    def close(self) -> None:
        self._fh.close()
        super().close()


def _open_text(path: Path) -> io.TextIOWrapper:
    """Open ``path`` (plain, gzip or bgzip) as latin-1 text, for GenBank."""
    fh = _open_binary(path)
    if isinstance(fh, _GzipReader):
        fh = io.BufferedReader(fh)
    return io.TextIOWrapper(fh, encoding="latin-1")


def _read_or_fail(fh: BinaryIO, size: int, path: Path, record: str | None, line: int) -> bytes:
    """``fh.read(size)``, turning corrupt or truncated gzip data into an InputError."""
    try:
        return fh.read(size)
    except _DECOMPRESSION_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip data ({exc})", path=path,
                         record=record, line=line) from None


def _sniff_format(path: Path) -> str:
    """Return ``"fasta"`` or ``"genbank"`` from the first non-blank line of the file."""
    with _open_binary(path) as fh:
        head = b""
        while b"\n" not in head.lstrip():
            block = _read_or_fail(fh, 1 << 16, path, None, head.count(b"\n") + 1)
            if not block:
                break
            head += block
    first = head.lstrip()
    if not first:
        raise InputError("file is empty", path=path)
    line = head.count(b"\n", 0, len(head) - len(first)) + 1
    first_line = first.split(b"\n", 1)[0]
    _check_no_nul(first_line, path, None, line)
    if first_line.startswith(b">"):
        return "fasta"
    if first_line.startswith(b"LOCUS"):
        return "genbank"
    if _INVALID_BYTE not in first_line.translate(_TRANSLATE, _WHITESPACE):
        raise InputError("sequence before the first '>' header", path=path, line=line)
    raise InputError("not a FASTA or GenBank file (expected a line starting with '>' or 'LOCUS')",
                     path=path, line=line)


def _check_no_nul(buf: bytes, path: Path, record: str | None, first_line: int) -> None:
    """Raise if ``buf`` holds a NUL byte, the mark of a binary (non-text) file."""
    pos = buf.find(b"\x00")
    if pos >= 0:
        raise InputError("binary data (NUL byte): not a text file", path=path, record=record,
                         line=first_line + buf.count(b"\n", 0, pos))


def _describe_byte(value: int) -> str:
    """A readable name for a byte: ``'X'`` for printable ASCII, else ``byte 0x..``."""
    return repr(chr(value)) if 32 <= value < 127 else f"byte 0x{value:02x}"


# --------------------------------------------------------------------------- FASTA


class _FastaParser:
    """Incremental FASTA parser fed with line-aligned chunks of bytes.

    ``feed(buf)`` returns the records completed by ``buf``; ``finish()`` returns the last.
    """

    def __init__(self, path: Path):
        self.path = path
        self.line = 1  # line number of the first line of the next chunk
        self.seen: dict[str, int] = {}  # record ID -> header line
        self.record_id: str | None = None
        self.description = ""
        self.header_line = 0
        self.sequence = bytearray()  # codes of the open record

    def feed(self, buf: bytes) -> list[Record]:
        done = []
        pos = 0
        line = self.line  # line number at ``pos``
        for header in _header_positions(buf):
            self._add_sequence(buf, pos, header)
            line += buf.count(b"\n", pos, header)
            if self.record_id is not None:
                done.append(self._finish_record())
            end = buf.find(b"\n", header)
            end = len(buf) if end < 0 else end
            self._start_record(buf[header + 1:end], line)
            pos = end + 1
            line += 1
        self._add_sequence(buf, pos, len(buf))
        self.line += buf.count(b"\n")
        return done

    def finish(self) -> list[Record]:
        return [] if self.record_id is None else [self._finish_record()]

    def _start_record(self, header: bytes, line: int) -> None:
        _check_no_nul(header, self.path, None, line)
        try:
            text = header.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InputError("header is not UTF-8 text", path=self.path, line=line) from None
        if not text:
            raise InputError("header has no record ID", path=self.path, line=line)
        record_id, _, description = text.replace("\t", " ").partition(" ")
        if record_id in self.seen:
            raise InputError(f"duplicate record ID (first at line {self.seen[record_id]})",
                             path=self.path, record=record_id, line=line)
        self.seen[record_id] = line
        self.record_id, self.description, self.header_line = record_id, description.strip(), line
        self.sequence = bytearray()

    def _add_sequence(self, buf: bytes, start: int, end: int) -> None:
        """Encode the sequence bytes ``buf[start:end]`` and append them to the open record."""
        if start >= end:
            return
        codes = buf[start:end].translate(_TRANSLATE, _WHITESPACE)
        if _INVALID_BYTE in codes:
            self._raise_invalid(buf, start, end)
        self.sequence += codes

    def _raise_invalid(self, buf: bytes, start: int, end: int) -> None:
        """Raise an InputError locating the first invalid byte of ``buf[start:end]``."""
        span = np.frombuffer(buf, dtype=np.uint8, count=end - start, offset=start)
        codes = ENCODE_TABLE[span]
        codes[np.isin(span, np.frombuffer(_WHITESPACE, dtype=np.uint8))] = 0
        pos = start + int(np.flatnonzero(codes == INVALID)[0])
        line = self.line + buf.count(b"\n", 0, pos)
        _check_no_nul(buf[pos:pos + 1], self.path, self.record_id, line)
        column = pos - (buf.rfind(b"\n", 0, pos) + 1) + 1
        raise InputError(f"invalid character {_describe_byte(buf[pos])} at column {column}",
                         path=self.path, record=self.record_id, line=line)

    def _finish_record(self) -> Record:
        if not self.sequence:
            raise InputError("record has no sequence", path=self.path, record=self.record_id,
                             line=self.header_line)
        record = Record(self.record_id, self.description,
                        np.frombuffer(self.sequence, dtype=np.uint8))
        self.record_id, self.sequence = None, bytearray()
        return record


def _header_positions(buf: bytes) -> list[int]:
    """Byte offsets of every ``>`` that starts a line of ``buf``."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    gt = np.flatnonzero(arr == ord(">"))
    at_line_start = (gt == 0) | (arr[np.maximum(gt - 1, 0)] == _NEWLINE)
    return gt[at_line_start].tolist()


def _read_fasta(path: Path) -> Iterator[Record]:
    """Parse a FASTA file chunk by chunk; each chunk ends at a line boundary."""
    parser = _FastaParser(path)
    with _open_binary(path) as fh:
        rest = b""
        while True:
            block = _read_or_fail(fh, CHUNK_BYTES, path, parser.record_id, parser.line)
            if not block:
                break
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest += block
                continue
            chunk, rest = rest + block[:cut], block[cut:]
            yield from parser.feed(chunk)
        yield from parser.feed(rest)
    yield from parser.finish()


# --------------------------------------------------------------------------- GenBank


def _read_genbank(path: Path) -> Iterator[Record]:
    """Parse a GenBank file with Biopython, then encode and check each record's sequence."""
    from Bio import SeqIO
    from Bio.Seq import UndefinedSequenceError

    seen: set[str] = set()
    with _open_text(path) as text:
        records = SeqIO.parse(text, "genbank")
        for index in itertools.count():
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    rec = next(records)
                    raw = bytes(rec.seq)
            except StopIteration:
                return
            except _DECOMPRESSION_ERRORS as exc:
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
    codes = bytearray(raw.translate(_TRANSLATE))
    bad = codes.find(_INVALID_BYTE)
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
        with _open_text(path) as text:
            yield from enumerate(text, start=1)
    except _DECOMPRESSION_ERRORS:
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
