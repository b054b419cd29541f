"""Genomic intervals: the :class:`Interval` record and helpers shared by the readers.

Coordinates are dnatlas's: 0-based, half-open ``[start, end)``, strand ``+1``,
``-1`` or ``0`` (unstranded or unknown). A feature made of several pieces (a GFF3
feature written on several lines with the same ``ID``, a GenBank ``join(...)``, a
BED12 line with blocks) is one interval per piece; the pieces share
``attributes["ID"]`` and :func:`group_features` puts them back together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas import files

#: Feature types that describe a whole sequence rather than a feature on it; readers skip them.
SEQUENCE_TYPES = frozenset({"region", "source", "chromosome", "contig", "scaffold", "supercontig"})


@dataclass(frozen=True, slots=True)
class Interval:
    """One contiguous feature (or piece of a feature) on one sequence.

    Attributes:
        seqid: sequence (record) ID, as in the genome file.
        start: 0-based first position.
        end: exclusive end; ``start <= end``.
        strand: ``+1``, ``-1`` or ``0`` (unstranded).
        type: feature type (``CDS``, ``tRNA``, ``repeat_region``... or a BED file's name).
        name: a human-readable name (gene name, BED name column), or ``""``.
        attributes: text attributes, percent-decoded (GFF3 attributes, GenBank
            qualifiers, and the GFF3 ``source``/``score``/``phase`` columns).
    """

    seqid: str
    start: int
    end: int
    strand: int = 0
    type: str = ""
    name: str = ""
    attributes: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid interval [{self.start}, {self.end})")
        if self.strand not in (-1, 0, 1):
            raise ValueError(f"invalid strand {self.strand!r}")

    def __len__(self) -> int:
        return self.end - self.start

    def reverse_complement(self, length: int) -> Interval:
        """The same feature on the reverse complement of a sequence of ``length`` nt.

        Coordinates are mirrored (``[L - end, L - start)``) and the strand flipped;
        the open-end markers ``start_range``/``end_range`` swap ends.
        """
        attributes = dict(self.attributes)
        low_open = attributes.pop("start_range", None) is not None
        high_open = attributes.pop("end_range", None) is not None
        start, end = length - self.end, length - self.start
        if high_open:
            attributes["start_range"] = f".,{start + 1}"
        if low_open:
            attributes["end_range"] = f"{end},."
        return Interval(self.seqid, start, end, -self.strand, self.type, self.name, attributes)


def group_features(intervals: Iterable[Interval]) -> list[list[Interval]]:
    """Group the pieces of multi-piece features, in order of first appearance.

    Pieces belong together when they share seqid, type and ``attributes["ID"]``;
    an interval without an ID is a feature on its own.
    """
    groups: dict[object, list[Interval]] = {}
    for interval in intervals:
        feature_id = interval.attributes.get("ID")
        key = (interval.seqid, interval.type, feature_id) if feature_id else id(interval)
        groups.setdefault(key, []).append(interval)
    return list(groups.values())


def codon_phases(lengths: Iterable[int], first_phase: int = 0) -> list[int]:
    """GFF3 phases of consecutive CDS pieces, given their lengths in reading order.

    The phase of a piece is the number of its leading nucleotides that end a codon
    begun in the previous piece: piece ``i`` starting at offset ``c_i`` in the
    spliced CDS has phase ``(first_phase - c_i) % 3``.
    """
    phases, offset = [], 0
    for length in lengths:
        phases.append((first_phase - offset) % 3)
        offset += length
    return phases


def feature_name(attributes: dict[str, str]) -> str:
    """The most readable name among the usual GFF3 attributes / GenBank qualifiers."""
    for key in ("gene", "Name", "locus_tag", "ID"):
        if attributes.get(key):
            return attributes[key]
    return ""


def open_text(path: str | Path):
    """An annotation file as text (gzip by magic bytes, pipes too; undecodable bytes are
    replaced): :func:`dnatlas.files.open_text`."""
    return files.open_text(path, errors="replace")


def parse_integer(text: str, what: str, fail) -> int:
    """``int(text)``, or the error made by ``fail(message)`` naming ``what``."""
    try:
        return int(text)
    except ValueError:
        raise fail(f"{what} {text!r} is not an integer") from None
