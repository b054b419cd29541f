"""Validation and test splits of a concept evaluation: disjoint genome regions.

Features are chosen on ``valid`` and reported on ``test`` (InterPLM); the two never share
a position. A split is a list of 1-based regions ``RECORD:START-END`` or whole records
``RECORD`` (whole genomes: list their records). By default each record is cut in halves:
the first half validates, the second tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dnatlas.errors import InputError
from dnatlas.genome.regions import format_region, parse_region

#: split name -> [(record, start, end)], 0-based half-open
Splits = dict[str, list[tuple[str, int, int]]]


def _regions(texts: Sequence[str], lengths: Mapping[str, int], split: str):
    out = []
    for text in texts:
        region = parse_region(text)
        if region.seqid not in lengths:
            raise InputError(f"{split} split: no record {region.seqid!r} in the genome "
                             f"(records: {', '.join(list(lengths)[:5])})")
        out.append((region.seqid, *region.bounds(lengths[region.seqid])))
    return out


def make_splits(lengths: Mapping[str, int], valid: Sequence[str] | None = None,
                test: Sequence[str] | None = None) -> Splits:
    """``{"valid": [...], "test": [...]}`` from region texts (see module doc).

    With neither given, each record's first half validates and its second half tests;
    with one given, the other is required.

    Raises:
        InputError: unknown records, regions outside a record, one split missing, or
            splits that overlap.
    """
    if not valid and not test:
        return {"valid": [(r, 0, n // 2) for r, n in lengths.items() if n >= 2],
                "test": [(r, n // 2, n) for r, n in lengths.items() if n >= 2]}
    if not valid or not test:
        raise InputError("give both valid and test regions (or neither: each record's "
                         "halves)", setting=("valid", "test"))
    splits = {"valid": _regions(valid, lengths, "valid"), "test": _regions(test, lengths, "test")}
    check_disjoint(splits)
    return splits


def check_disjoint(splits: Splits) -> None:
    """Raise InputError when two regions (of the same or different splits) overlap."""
    spans = sorted((record, start, end, name) for name, regions in splits.items()
                   for record, start, end in regions)
    for (r1, s1, e1, n1), (r2, s2, e2, n2) in zip(spans, spans[1:]):
        if r1 == r2 and s2 < e1:
            raise InputError(f"the {n1} region {format_region(r1, s1, e1)} overlaps the {n2} "
                             f"region {format_region(r2, s2, e2)}: splits must be disjoint")


def chunk_regions(regions: Sequence[tuple[str, int, int]], chunk: int):
    """``(record, a, b)`` chunks of at most ``chunk`` positions covering ``regions``."""
    for record, start, end in regions:
        for a in range(start, end, chunk):
            yield record, a, min(a + chunk, end)
