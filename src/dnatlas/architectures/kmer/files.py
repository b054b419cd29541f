"""The files of a fitted k-mer context model: a folder of ``config.json`` + ``counts.npz``.

:meth:`KmerContextModel.save <dnatlas.architectures.kmer.model.KmerContextModel.save>` and
:meth:`~dnatlas.architectures.kmer.model.KmerContextModel.load` call these; this module
knows the folder format, not the model.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.files import atomic_write, atomic_write_text
from dnatlas.model_files import read_config

FORMAT = "dnatlas-kmer-context"
FORMAT_VERSION = 1
COUNTS_NAME = "counts.npz"

#: (keys per order, counts per order) for orders 0..k
Tables = tuple[list[np.ndarray], list[np.ndarray]]


def write_counts(path: str | Path, config: dict, keys: list[np.ndarray],
                 counts: list[np.ndarray]) -> Path:
    """Write folder ``path``: ``counts.npz`` (``keys_j``, ``counts_j`` per order j) and
    ``config.json`` (``config`` plus the format and its version), each atomically."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for j, (k, c) in enumerate(zip(keys, counts)):
        arrays[f"keys_{j}"] = k
        arrays[f"counts_{j}"] = c
    with atomic_write(path / COUNTS_NAME, "wb") as fh:
        np.savez(fh, **arrays)
    doc = {"format": FORMAT, "version": FORMAT_VERSION, **config}
    atomic_write_text(path / "config.json", json.dumps(doc, indent=2) + "\n")
    return path


def read_counts(path: str | Path) -> tuple[dict, Path, Callable[[int], Tables]]:
    """``(config, config path, tables)`` of a folder written by :func:`write_counts`;
    ``tables(k)`` reads the count tables of orders 0..k.

    Raises:
        InputError: a missing file, another format, or unreadable counts.
    """
    path = Path(path)
    cfg_path, npz_path = path / "config.json", path / COUNTS_NAME
    cfg = read_config(path, COUNTS_NAME, what="k-mer context model")
    if cfg.get("format") != FORMAT or cfg.get("version") != FORMAT_VERSION:
        raise InputError(f"not a {FORMAT} v{FORMAT_VERSION} config", path=cfg_path)

    def tables(k: int) -> Tables:
        try:
            with np.load(npz_path) as z:
                return ([z[f"keys_{j}"] for j in range(k + 1)],
                        [z[f"counts_{j}"] for j in range(k + 1)])
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
            raise InputError(f"cannot read counts: {e}", path=npz_path) from None

    return cfg, cfg_path, tables
