"""User-facing errors.

Every problem caused by a user's input is raised as :class:`InputError`. The CLI
prints it as one line (``dnatlas: error: FILE: record 'X': line N: message``) and
exits with code 2, without a traceback.

Messages name a setting as the library spells it (``window``, ``chunk_size``; a switch as
``force=True``) and list it in ``setting``: a notebook user reads ``window 5000 is longer
than...``, and the CLI spells each listed setting as its flag (``--window 5000 is longer
than...``; the one table of spellings is :mod:`dnatlas.cli.flags`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
        setting: the setting(s) the message names (a name, or several), each written in
            the message as a word (``window``), a switch as ``NAME=True`` (``force=True``);
            front ends respell them (:meth:`spelled`).
    """

    def __init__(self, message: str, path: str | Path | None = None,
                 record: str | None = None, line: int | None = None,
                 setting: str | Sequence[str] | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.record = record
        self.line = line
        self.settings: tuple[str, ...] = ((setting,) if isinstance(setting, str)
                                          else tuple(setting or ()))
        super().__init__(str(self))

    def spelled(self, spell: Callable[[str], str]) -> str:
        """``str(self)`` with each setting of ``settings`` written as ``spell(name)`` (the
        CLI: its flag), wherever the message names it as a word (``NAME`` or ``NAME=True``)."""
        message = self.message
        for name in self.settings:
            pattern = rf"(?<![\w.-]){re.escape(name)}(?:=True)?(?![\w-])"
            message = re.sub(pattern, lambda _m, n=name: spell(n), message)
        return self._join(message)

    def __str__(self) -> str:
        return self._join(self.message)

    def _join(self, message: str) -> str:
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if self.record is not None:
            parts.append(f"record {self.record!r}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        parts.append(message)
        return ": ".join(parts)
