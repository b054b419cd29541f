"""Opening sequence files as bytes or text: gzip/bgzip by magic bytes, pipes read once.

Split from :mod:`dnatlas.genome.readers`. :class:`GzipReader` streams gzip (and multi-member
bgzip) and hands out every byte decompressed before a truncation or corruption, so the
parsers can say in which record and line the data stops.
"""

from __future__ import annotations

import io
import os
import stat
import zlib
from pathlib import Path
from typing import BinaryIO

from dnatlas.errors import InputError
from dnatlas.files import GZIP_MAGIC

GZIP_INPUT_BYTES = 1 << 20  # compressed bytes read at a time...
GZIP_STEP_BYTES = 1 << 14  # ...and decompressed in steps of this size
#: what reading corrupt or truncated gzip data raises
DECOMPRESSION_ERRORS = (EOFError, zlib.error)


#: Content of the pipes being read (``<(zcat g.fa.gz)``, ``/dev/stdin``): a pipe can be
#: read only once, and the parsers open their file more than once (to sniff the format,
#: and on the error path to locate a problem).
IN_MEMORY: dict[Path, bytes] = {}


def hold_if_stream(path: Path) -> bool:
    """Read a pipe or other non-regular file into memory (once); whether it was."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # open_binary reports it
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or path in IN_MEMORY:
        return False
    try:
        with open(path, "rb") as fh:
            IN_MEMORY[path] = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    return True


def release_stream(path: Path) -> None:
    """Forget the content held by :func:`hold_if_stream`."""
    IN_MEMORY.pop(path, None)


def open_binary(path: Path) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing gzip/bgzip (detected by magic bytes)."""
    try:
        fh = io.BytesIO(IN_MEMORY[path]) if path in IN_MEMORY else open(path, "rb")
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a sequence file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror}", path=path) from None
    if fh.read(2) == GZIP_MAGIC:
        fh.seek(0)
        return GzipReader(fh)
    fh.seek(0)
    return fh


class GzipReader(io.RawIOBase):
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


def open_latin1_text(path: Path) -> io.TextIOWrapper:
    """Open ``path`` (plain, gzip or bgzip) as latin-1 text, for GenBank."""
    fh = open_binary(path)
    if isinstance(fh, GzipReader):
        fh = io.BufferedReader(fh)
    return io.TextIOWrapper(fh, encoding="latin-1")


def read_or_fail(fh: BinaryIO, size: int, path: Path, record: str | None, line: int) -> bytes:
    """``fh.read(size)``, turning corrupt or truncated gzip data into an InputError."""
    try:
        return fh.read(size)
    except DECOMPRESSION_ERRORS as exc:
        raise InputError(f"truncated or corrupt gzip data ({exc})", path=path,
                         record=record, line=line) from None
