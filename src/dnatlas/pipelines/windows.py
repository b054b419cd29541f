"""Batches of nucleotide windows from a genome store folder or a FASTA/GenBank file.

One sampler serves both: a genome file is first packed into a temporary genome store (the
same reader and the same :class:`~dnatlas.genome.sampler.WindowSampler` as training), which
is removed when the process exits.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError


def _store_of(path: Path):
    """The genome store of ``path``: the folder itself, or a temporary one built from a file."""
    from dnatlas.genome.store import GenomeStore
    from dnatlas.genome.store_build import build_store

    if path.is_dir():
        return GenomeStore.open(path), None
    tmp = Path(tempfile.mkdtemp(prefix="dnatlas-windows-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return build_store([path], tmp / "store", progress=False), "train"


def check_split(store, split: str, path: str | Path) -> None:
    """Refuse an unknown or empty split, and one without a single A, C, G or T (all N:
    nothing to compute, and a sampler that drops N positions would wait forever)."""
    from dnatlas.genome.store import SPLITS

    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}", path=path)
    segments = store.segment_indices(split)
    if segments.size == 0:
        raise InputError(f"the store has no {split!r} split", path=path)
    step = 1 << 22
    for i in segments:
        tokens = store.segment_tokens(int(i))
        for start in range(0, tokens.shape[0], step):
            if bool((tokens[start:start + step] < 4).any()):
                return
    raise InputError(f"the {split!r} split holds only N: no nucleotide to compute on",
                     path=path)


def window_source(data: str | Path, split: str, window: int, batch: int, seed: int = 0,
                  rank: int | None = None, world_size: int | None = None
                  ) -> Iterator[np.ndarray]:
    """Endless batches (batch, window) uint8 of random windows of ``data``.

    Args:
        data: a genome store folder (``dnatlas data build``) or a FASTA/GenBank file, whose
            records are all used (``split`` is then ignored).
        split: the store's split (``train`` or ``val``).
        window: nucleotides per window; batch: windows per batch; seed: the sampler's seed.
        rank, world_size: take draws rank, rank + world_size, ... of the seed's stream (see
            :class:`~dnatlas.genome.sampler.WindowSampler`; None: from torch.distributed).
    """
    from dnatlas.genome.sampler import WindowSampler

    path = Path(data)
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    store, forced_split = _store_of(path)
    split = forced_split or split
    check_split(store, split, path)
    try:
        return iter(WindowSampler(store, split, window, batch, seed, rank, world_size))
    except ValueError as exc:
        raise InputError(str(exc), path=path) from None
