"""Extract any model's activations over a genome file to an activation folder.

This module only assembles the job (the model, the records or region of a file) and hands
it to the extraction engine, :func:`dnatlas.analysis.extract_folder.extract_records`, which
under ``torchrun`` shares the work among the ranks (see its module docstring and
docs/distributed.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnatlas import distributed
from dnatlas.analysis.extract_folder import extract_records
from dnatlas.models import ModelAdapter, resolve_model
from dnatlas.pipelines.records import records_of


def extract_genome(model: str | ModelAdapter | None, fasta: str | Path, out: str | Path,
                   layers="all", site: str | None = None, region: str | None = None,
                   strand: str = "+", dtype: str = "float16", layout: str = "LC",
                   chunk_size: int = 1 << 15, batch_size: int = 1, device: str | None = None,
                   force: bool = False):
    """:func:`_extract_genome` (arguments as it takes them) holding the activation folder's
    lock (:mod:`dnatlas.outputs`): a second run into ``out`` fails at once. Another span
    of a record and layer the folder holds is not replaced without ``force``."""
    from dnatlas.files import check_output_dir
    from dnatlas.outputs import lock_folder

    if distributed.env_world()[0] != 0:  # rank 0 owns the folder
        return _extract_genome(model, fasta, out, layers, site, region, strand, dtype, layout,
                               chunk_size, batch_size, device, force)
    check_output_dir(out, "activation folder")
    with lock_folder(out, "activation folder"):
        return _extract_genome(model, fasta, out, layers, site, region, strand, dtype, layout,
                               chunk_size, batch_size, device, force)


def _refuse_other_spans(out, items, keys) -> None:
    """``extract`` into a folder holding another span of the same record and layer would
    replace it: refused without ``force`` (the same span is extracted again in place)."""
    from dnatlas.analysis.activation_files import read_meta, sequence_sha256
    from dnatlas.errors import InputError
    from dnatlas.genome.regions import format_region

    old = read_meta(Path(out)) if Path(out).is_dir() else None
    if old is None:
        return
    held = {(a["seqid"], a["layer"]): a for a in old.get("arrays", [])}
    for seqid, seq, start, end in items:
        for key in keys:
            a = held.get((seqid, key))
            if a is not None and (a["start"], a["end"], a.get("sequence_sha256")) != (
                    start, end, sequence_sha256(seq)):
                raise InputError(
                    f"the folder holds {key} of {format_region(seqid, a['start'], a['end'])}; "
                    f"extracting {format_region(seqid, start, end)} would replace it: give "
                    "another out, or force=True to replace it", path=out,
                    setting=("out", "force"))


def _extract_genome(model: str | ModelAdapter | None, fasta: str | Path, out: str | Path,
                    layers="all", site: str | None = None, region: str | None = None,
                    strand: str = "+", dtype: str = "float16", layout: str = "LC",
                    chunk_size: int = 1 << 15, batch_size: int = 1, device: str | None = None,
                    force: bool = False):
    """Activations of every record (or one 1-based ``region``) of ``fasta`` into ``out``.

    Returns the folder's :class:`~dnatlas.analysis.activation_files.Activations`.
    ``force`` first removes what an earlier extraction wrote into ``out``. Under torchrun
    each rank extracts its share (module docstring) on its own device.
    """
    with distributed.session(device) as info:
        adapter = resolve_model(model, info.device)
        items = [(r.id, r.seq, start, end) for r, start, end in records_of(fasta, region)]
        if not force:
            distributed.on_main(_refuse_other_spans, out, items,
                                adapter.select_keys(layers, site))
        return extract_records(adapter, items, out, layers, site, strand=strand,
                               dtype=np.dtype(dtype), layout=layout, chunk_size=chunk_size,
                               batch_size=batch_size, force=force)
