"""Audit queries: a feature's top windows (tables) or any sequences (FASTA).

Window tables are CSV or TSV (tab-separated when the header holds a tab) with a header row:

* the neuron catalog's ``top_windows.csv`` (:mod:`dnatlas.analysis.catalog`): ``neuron``,
  ``rank``, ``seqid``, ``strand``, ``start``, ``end`` and ``sequence`` (read 5'->3' on the
  window's strand);
* an SAE feature's top examples: ``feature``, ``record``, ``start``, ``end``, ``strand``
  (optionally ``genome``, ``sequence``, ``id``).

``neuron`` stands for ``feature`` and ``seqid`` for ``record``. Columns ``start_1based`` and
``end_1based`` (as the catalog's CSV names them) are 1-based closed; plain ``start`` and
``end`` are 0-based half-open (``one_based=True``: 1-based closed). Rows without a
``sequence`` get theirs from the searched sequences (:func:`fill_sequences`), reverse
complemented on ``-``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.files import open_text
from dnatlas.genome.alphabet import encode, reverse_complement
from dnatlas.genome.readers import genome_id_from_path, read_records
from dnatlas.genome.regions import format_region

ALIASES = {"neuron": "feature", "seqid": "record"}
STRANDS = {"+": 1, "+1": 1, "1": 1, "-": -1, "-1": -1}


@dataclass
class Query:
    """One query sequence.

    Attributes:
        id: a name unique in its input (``FEATURE#RANK`` for windows without an ``id``).
        feature: the feature (neuron, SAE latent) it belongs to; FASTA: the file's name.
        codes: uint8 (L,), read 5'->3' on ``strand``; None until :func:`fill_sequences`.
        record, genome: where it came from ("" if unknown); start/end 0-based half-open on
            the record's forward strand (None if unknown); strand +1/-1.
        line: its 1-based line in the input table (None for FASTA).
    """

    id: str
    feature: str
    codes: np.ndarray | None
    record: str = ""
    genome: str = ""
    start: int | None = None
    end: int | None = None
    strand: int = 1
    line: int | None = None

    @property
    def region(self) -> str:
        """``RECORD:START-END`` (1-based closed) of its origin, or ``""``."""
        return "" if self.start is None else format_region(self.record, self.start, self.end)


def read_windows(path: str | Path, one_based: bool = False) -> list[Query]:
    """Queries from a windows table (see the module docstring), in file order.

    Raises:
        InputError: missing file, no header or rows, a missing column (naming it), a bad
            number, strand or sequence (naming the line).
    """
    path = Path(path)
    with open_text(path) as fh:
        text = fh.read()
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("empty windows table (expected a header row)", path=path, line=1)
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in next(reader)]
    if {"start_1based", "end_1based"} <= set(header):  # coordinates that say they are 1-based
        header = [{"start_1based": "start", "end_1based": "end"}.get(h, h) for h in header]
        one_based = True
    column = {name: i for i, name in reversed(list(enumerate(header)))}
    coords = all(c in column for c in ("record", "start", "end"))
    missing = [c for c in ("feature",) if c not in column]
    if "sequence" not in column and not coords:
        missing += [c for c in ("record", "start", "end") if c not in column]
    if missing:
        raise InputError(f"windows table lacks column(s) {', '.join(missing)} (it needs "
                         "feature (or neuron) and either sequence or record (or seqid), "
                         "start, end)", path=path, line=1)
    queries, ordinal = [], {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"expected {len(header)} fields, found {len(row)}", path=path,
                             line=number)
        queries.append(_query(row, column, coords, one_based, ordinal, path, number))
    if not queries:
        raise InputError("windows table has no rows", path=path)
    return queries


def _query(row, column, coords, one_based, ordinal, path, number) -> Query:
    def get(name: str) -> str:
        return row[column[name]].strip() if name in column else ""

    feature = get("feature")
    if not feature:
        raise InputError("empty feature", path=path, line=number)
    strand_text = get("strand") or "+"
    if strand_text not in STRANDS:
        raise InputError(f"strand must be + or -, got {strand_text!r}", path=path, line=number)
    codes = None
    if get("sequence"):
        try:
            codes = encode(get("sequence"))
        except ValueError as exc:
            raise InputError(f"sequence: {exc}", path=path, line=number) from None
    start = end = None
    if coords and (get("start") or get("end")):
        try:
            start, end = int(get("start")) - int(one_based), int(get("end"))
        except ValueError:
            raise InputError(f"start/end must be integers, got {get('start')!r}, "
                             f"{get('end')!r}", path=path, line=number) from None
        if not 0 <= start < end:
            raise InputError(f"bad window [{get('start')}, {get('end')}] (needs 0 <= start < "
                             f"end{', 1-based' if one_based else ', 0-based half-open'})",
                             path=path, line=number)
    if codes is None and start is None:
        raise InputError("no sequence and no coordinates", path=path, line=number)
    ordinal[feature] = ordinal.get(feature, -1) + 1
    name = get("id") or f"{feature}#{get('rank') or ordinal[feature]}"
    return Query(name, feature, codes, get("record"), get("genome"), start, end,
                 STRANDS[strand_text], number)


def read_fasta_queries(path: str | Path) -> list[Query]:
    """One query per FASTA/GenBank record; its feature is the file's name (genome ID)."""
    feature = genome_id_from_path(path)
    queries = [Query(rec.id, feature, rec.seq) for rec in read_records(path)]
    return queries


def fill_sequences(queries: list[Query], target, path: str | Path | None = None) -> None:
    """Give each query without ``codes`` its window from ``target`` (a
    :class:`~dnatlas.audit.target.Target`), reverse complemented on ``-``.

    Raises:
        InputError: the record is not in the target, is in several genomes (add a
            ``genome`` column), or the window runs past its end.
    """
    todo = [q for q in queries if q.codes is None]
    if not todo:
        return
    where: dict[str, list[tuple[str, int, int]]] = {}
    for genome, record, lo, hi in target.records():
        where.setdefault(record, []).append((genome, lo, hi))
    for q in todo:
        places = [p for p in where.get(q.record, []) if not q.genome or p[0] == q.genome]
        if not places:
            raise InputError(f"record {q.record!r} is not in the searched sequences; give a "
                             "sequence column or search the sequences it came from",
                             path=path, line=q.line)
        if len(places) > 1:
            raise InputError(f"record {q.record!r} is in several genomes "
                             f"({', '.join(p[0] for p in places)}); add a genome column",
                             path=path, line=q.line)
        genome, lo, hi = places[0]
        if lo + q.end > hi:
            raise InputError(f"window {q.region} runs past the record's end ({hi - lo:,} nt)",
                             path=path, line=q.line)
        codes = np.asarray(target.tokens[lo + q.start:lo + q.end])
        q.codes = reverse_complement(codes) if q.strand < 0 else codes.copy()
        q.genome = genome
