"""BED reading (BED3 to BED12).

BED is already 0-based half-open; each line (or BED12 block) becomes an :class:`Interval`.
"""

from __future__ import annotations

import re
from pathlib import Path

from dnatlas.annotation.features import Interval, open_text, parse_integer
from dnatlas.errors import InputError

_BED_STRANDS = {"+": 1, "-": -1, ".": 0}


def load_bed(path: str | Path, type: str | None = None) -> list[Interval]:
    """Read a BED3 to BED12 file (plain or gzip; tab- or space-separated).

    ``type`` (default: the file name without ``.gz`` and ``.bed``) becomes every
    interval's type, the name column its ``name``, the strand column its strand
    (``.`` or absent: 0). A BED12 line with blocks gives one interval per block.
    Every interval has ``attributes["source"] == "BED"`` and an ``ID``
    (``TYPE:LINE``); the score and thick start/end columns are kept as attributes.
    ``track``/``browser`` lines and ``#`` comments are skipped.
    """
    path = Path(path)
    ftype = type or bed_track_name(path)
    intervals = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or is_bed_header(line):
                continue
            intervals += _parse_bed_line(line, path, number, ftype)
    return intervals


def is_bed_header(line: str) -> bool:
    """Whether a BED line is a comment or a ``track``/``browser`` line: by its exact first
    word, so that a sequence named ``track1`` or ``browser_x`` is data."""
    if line.startswith("#"):
        return True
    words = line.split(None, 1)
    return bool(words) and words[0] in ("track", "browser")


def bed_track_name(path: str | Path) -> str:
    """The default track name of a BED file: its name without ``.gz`` and ``.bed``."""
    return Path(path).name.removesuffix(".gz").removesuffix(".bed")


def parse_bed_spec(spec: str) -> tuple[str, Path]:
    """Split a ``--bed`` argument, ``NAME=PATH`` or ``PATH``, into (track name, path)."""
    name, sep, path = spec.partition("=")
    if sep and name and not Path(spec).exists() and re.fullmatch(r"[\w.+-]+", name):
        return name, Path(path)
    return bed_track_name(spec), Path(spec)


def _parse_bed_line(line: str, path: Path, number: int, ftype: str) -> list[Interval]:
    columns = line.split("\t") if "\t" in line else line.split()
    seqid = columns[0]

    def fail(message: str) -> InputError:
        return InputError(message, path=path, record=seqid, line=number)

    if not 3 <= len(columns) <= 12:
        raise fail(f"expected 3 to 12 columns (BED3 to BED12), found {len(columns)}")
    start, end = parse_integer(columns[1], "start", fail), parse_integer(columns[2], "end", fail)
    if start < 0:
        raise fail(f"start {start} is negative")
    if start > end:
        raise fail(f"start {start} > end {end}")
    name = columns[3] if len(columns) > 3 and columns[3] != "." else ""
    strand_text = columns[5] if len(columns) > 5 else "."
    if strand_text not in _BED_STRANDS:
        raise fail(f"invalid strand {strand_text!r} (expected +, - or .)")
    attributes = {"source": "BED", "ID": f"{ftype}:{number}"}
    for index, key in ((4, "score"), (6, "thickStart"), (7, "thickEnd")):
        if len(columns) > index and columns[index] != ".":
            attributes[key] = columns[index]
    blocks = _bed_blocks(columns, start, end, fail) if len(columns) == 12 else [(start, end)]
    return [Interval(seqid, block_start, block_end, _BED_STRANDS[strand_text], ftype, name,
                     dict(attributes)) for block_start, block_end in blocks]


def _bed_blocks(columns: list[str], start: int, end: int, fail) -> list[tuple[int, int]]:
    """The blocks of a BED12 line as absolute ``[start, end)`` pairs."""
    count = parse_integer(columns[9], "blockCount", fail)
    sizes = [parse_integer(x, "blockSizes", fail) for x in columns[10].rstrip(",").split(",")]
    offsets = [parse_integer(x, "blockStarts", fail) for x in columns[11].rstrip(",").split(",")]
    if not count == len(sizes) == len(offsets):
        raise fail(f"blockCount {count} does not match {len(sizes)} blockSizes "
                   f"and {len(offsets)} blockStarts")
    blocks = [(start + offset, start + offset + size)
              for offset, size in zip(offsets, sizes, strict=True)]
    if any(b_start < start or b_end < b_start or b_end > end for b_start, b_end in blocks):
        raise fail(f"a block lies outside [{start}, {end})")
    return blocks
