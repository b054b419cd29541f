"""Genomic regions as users write them: ``RECORD``, ``RECORD:START-END`` or ``RECORD:POS``.

On the command line and in figure titles regions are **1-based and closed**, as in samtools
and IGV (``chr:1,001-2,000`` is 1,000 nucleotides); commas and underscores are allowed in
numbers. Inside dnatlas they are 0-based and half-open: :func:`parse_region` converts, and
:func:`format_region` converts back. Lists of regions (comma-separated or repeated flags) go
through :func:`split_region_list`, which keeps the commas inside numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from dnatlas.errors import InputError

_REGION = re.compile(r"^(?P<id>.+?)(?::(?P<start>[\d,_]+)(?:-(?P<end>[\d,_]+))?)?$")


@dataclass(frozen=True)
class Region:
    """``seqid`` with 0-based half-open ``[start, end)``; start/end None: the whole record."""

    seqid: str
    start: int | None = None
    end: int | None = None

    def bounds(self, length: int) -> tuple[int, int]:
        """``(start, end)`` within a record of ``length``; InputError if it does not fit."""
        if self.start is None:
            return 0, length
        if self.end > length:
            raise InputError(f"region {format_region(self.seqid, self.start, self.end)} ends "
                             f"past the record's length {length:,}", record=self.seqid)
        return self.start, self.end

    def __str__(self) -> str:
        return self.seqid if self.start is None else format_region(self.seqid, self.start, self.end)


def _number(text: str, region: str) -> int:
    digits = text.replace(",", "").replace("_", "")
    if not digits.isdigit():
        raise InputError(f"invalid region {region!r}: {text!r} is not a position")
    return int(digits)


def parse_region(text: str) -> Region:
    """Parse a 1-based closed region (see module docstring) into a 0-based :class:`Region`.

    ``"chr:1,001-2,000"`` -> Region("chr", 1000, 2000); ``"chr:5"`` is the single nucleotide
    5; ``"chr"`` the whole record.
    """
    match = _REGION.match(str(text).strip())
    if not match or not match.group("id"):
        raise InputError(f"invalid region {text!r}: expected RECORD or RECORD:START-END "
                         "(1-based, inclusive, as in samtools and IGV)")
    seqid, start, end = match.group("id"), match.group("start"), match.group("end")
    if start is None:
        return Region(seqid)
    first = _number(start, text)
    last = first if end is None else _number(end, text)
    if first < 1:
        raise InputError(f"invalid region {text!r}: positions are 1-based (the first is 1)")
    if last < first:
        raise InputError(f"invalid region {text!r}: END is before START")
    return Region(seqid, first - 1, last)


def format_region(seqid: str, start: int, end: int) -> str:
    """0-based half-open ``[start, end)`` -> ``"seqid:START-END"``, 1-based closed, with commas."""
    return f"{seqid}:{start + 1:,}-{end:,}"


_THOUSANDS = re.compile(r"^\d{3}(?:-|$)")


def split_region_list(values: str | Iterable[str] | None) -> list[str]:
    """The regions of a list flag (``--valid``, ``--test``, ``--region``...): comma-separated
    and/or repeated, where commas inside numbers (``chr:1-100,000``) are thousands
    separators, not list separators. The one region-list parser of every command.

    ``"K-12:1-100,000,K-12:100,001-200,000"`` -> ``["K-12:1-100,000", "K-12:100,001-200,000"]``.
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    regions: list[str] = []
    for value in values:
        current: list[str] = []
        for part in str(value).split(","):
            part = part.strip()
            if current and ":" in current[-1] and _THOUSANDS.match(part) \
                    and current[-1][-1].isdigit():
                current[-1] += "," + part  # a thousands group of the number before it
            elif part:
                current.append(part)
        regions += current
    return regions


def parse_region_list(values: str | Iterable[str] | None) -> list[Region]:
    """:func:`split_region_list`, each parsed with :func:`parse_region`."""
    return [parse_region(text) for text in split_region_list(values)]
