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

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import ENCODE_TABLE, INVALID, INVALID_BYTE, TRANSLATE_TABLE
from dnatlas.genome.file_opening import hold_if_stream, open_binary, read_or_fail, release_stream
from dnatlas.genome.genbank import read_genbank
from dnatlas.genome.record import Record

CHUNK_BYTES = 1 << 23  # at most 8 MiB of text per parsing step
GENOME_SUFFIXES = (".fa", ".fasta", ".fna", ".gb", ".gbk", ".gbff")

_NEWLINE = ord("\n")
_WHITESPACE = b"\n\r \t"  # ignored inside sequence lines


def read_records(path: str | Path) -> Iterator[Record]:
    """Yield the records of a FASTA or GenBank file (plain, gzip or bgzip), in file order.

    Raises:
        InputError: missing or unreadable file, unrecognised or binary content, invalid
            characters, empty records, duplicate IDs, truncated gzip data...
    """
    path = Path(path)
    held = hold_if_stream(path)
    try:
        kind = _sniff_format(path)
        if kind == "fasta":
            yield from _read_fasta(path)
        else:
            yield from read_genbank(path)  # Biopython is loaded only for GenBank input
    finally:
        if held:
            release_stream(path)


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


def _sniff_format(path: Path) -> str:
    """Return ``"fasta"`` or ``"genbank"`` from the first non-blank line of the file."""
    with open_binary(path) as fh:
        head = b""
        while b"\n" not in head.lstrip():
            block = read_or_fail(fh, 1 << 16, path, None, head.count(b"\n") + 1)
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
    if INVALID_BYTE not in first_line.translate(TRANSLATE_TABLE, _WHITESPACE):
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
        codes = buf[start:end].translate(TRANSLATE_TABLE, _WHITESPACE)
        if INVALID_BYTE in codes:
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
    with open_binary(path) as fh:
        rest = b""
        while True:
            block = read_or_fail(fh, CHUNK_BYTES, path, parser.record_id, parser.line)
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
