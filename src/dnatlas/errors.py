"""User-facing errors.

Every problem caused by a user's input is raised as :class:`InputError`. The CLI
prints it as one line (``dnatlas: error: FILE: record 'X': line N: message``) and
exits with code 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DnatlasError(Exception):
    """Base class of errors that the CLI reports as one line and exit code 2."""


class InputError(DnatlasError):
    """Invalid user input, located as precisely as possible.

    Args:
        message: what is wrong, e.g. ``"invalid character 'X'"``.
        path: the offending file, if any.
        record: the record ID (FASTA/GenBank record, GFF seqid...), if any.
        line: 1-based line number in ``path``, if known.
    """

    def __init__(self, message: str, path: str | Path | None = None,
                 record: str | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.record = record
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if self.record is not None:
            parts.append(f"record {self.record!r}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        parts.append(self.message)
        return ": ".join(parts)
