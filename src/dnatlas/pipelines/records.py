"""Genome records and regions as the pipelines take them."""

from __future__ import annotations

from pathlib import Path

from dnatlas.errors import InputError


def records_of(fasta: str | Path, region: str | None = None):
    """``[(record, start, end)]`` (0-based, half-open): one region (1-based ``RECORD``,
    ``RECORD:START-END`` as in samtools/IGV), or every record of the file. ``fasta`` may be
    a bundled genome's short name (e.g. ``ecoli_k12_mg1655``)."""
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.regions import parse_region
    from dnatlas.genome.sources import resolve_bundled_genome

    fasta = resolve_bundled_genome(fasta)
    if region is None:
        return [(r, 0, len(r)) for r in read_records(fasta)]
    wanted = parse_region(region)
    ids = []
    for record in read_records(fasta):
        if record.id == wanted.seqid:
            try:
                start, end = wanted.bounds(len(record))
            except InputError as exc:
                raise InputError(exc.message, path=fasta, record=record.id,
                                 setting=exc.settings) from None
            return [(record, start, end)]
        ids.append(record.id)
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    raise InputError(f"no record {wanted.seqid!r} (records: {shown})", path=fasta)
