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
    """Activations of every record (or one 1-based ``region``) of ``fasta`` into ``out``.

    Returns the folder's :class:`~dnatlas.analysis.activation_files.Activations`.
    ``force`` first removes what an earlier extraction wrote into ``out``. Under torchrun
    each rank extracts its share (module docstring) on its own device.
    """
    with distributed.session(device) as info:
        adapter = resolve_model(model, info.device)
        items = [(r.id, r.seq, start, end) for r, start, end in records_of(fasta, region)]
        return extract_records(adapter, items, out, layers, site, strand=strand,
                               dtype=np.dtype(dtype), layout=layout, chunk_size=chunk_size,
                               batch_size=batch_size, force=force)
