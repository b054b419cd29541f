"""Extract any model's activations over a genome file to an activation folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnatlas.models import ModelAdapter, load_model
from dnatlas.pipelines.records import records_of


def extract_genome(model: str | ModelAdapter | None, fasta: str | Path, out: str | Path,
                   layers="all", site: str | None = None, region: str | None = None,
                   strand: str = "+", dtype: str = "float16", layout: str = "LC",
                   chunk_size: int = 1 << 15, batch_size: int = 1, device: str | None = None,
                   force: bool = False):
    """Activations of every record (or one 1-based ``region``) of ``fasta`` into ``out``.

    Returns the folder's :class:`~dnatlas.analysis.activation_files.Activations`.
    ``force`` first removes what an earlier extraction wrote into ``out``.
    """
    from dnatlas.analysis.extract import extract_to_dir

    adapter = model if isinstance(model, ModelAdapter) else load_model(model, device)
    acts = None
    for i, (record, start, end) in enumerate(records_of(fasta, region)):
        acts = extract_to_dir(adapter, record.seq, Path(out), layers, site, seqid=record.id,
                              start=start, end=end, strand=strand, chunk_size=chunk_size,
                              batch_size=batch_size, dtype=np.dtype(dtype), layout=layout,
                              force=force and i == 0)
    return acts
