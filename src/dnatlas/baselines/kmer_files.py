"""Saving and loading a fitted k-mer context model: ``config.json`` + ``counts.npz`` folders.

Split from :mod:`dnatlas.baselines.kmer`; :meth:`KmerContextModel.save` and
:meth:`KmerContextModel.load` call these.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dnatlas.baselines.saved_folder import read_folder_config
from dnatlas.errors import InputError
from dnatlas.files import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from dnatlas.baselines.kmer import KmerContextModel

FORMAT = "dnatlas-kmer-context"
FORMAT_VERSION = 1


def save_model(model: KmerContextModel, path: str | Path) -> Path:
    """Write a fitted ``model`` into folder ``path``: ``config.json`` and ``counts.npz``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for j in range(model.k + 1):
        arrays[f"keys_{j}"] = model._keys[j]
        arrays[f"counts_{j}"] = model._counts[j]
    with atomic_write(path / "counts.npz", "wb") as fh:
        np.savez(fh, **arrays)
    config = {"format": FORMAT, "version": FORMAT_VERSION, "k": model.k,
              "smoothing": model.smoothing, "alpha": model.alpha,
              "strand_symmetric": model.strand_symmetric,
              "max_marginal": model.max_marginal, "n_positions": model.n_positions,
              "discounts": [float(d) for d in model.discounts]}
    atomic_write_text(path / "config.json", json.dumps(config, indent=2) + "\n")
    return path


def load_model(cls: type[KmerContextModel], path: str | Path) -> KmerContextModel:
    """Read a folder written by :func:`save_model` as a ``cls``; :class:`InputError` if not one."""
    path = Path(path)
    cfg_path, npz_path = path / "config.json", path / "counts.npz"
    cfg = read_folder_config(cfg_path, npz_path, what="k-mer context model")
    if cfg.get("format") != FORMAT or cfg.get("version") != FORMAT_VERSION:
        raise InputError(f"not a {FORMAT} v{FORMAT_VERSION} config", path=cfg_path)
    try:
        model = cls(cfg["k"], cfg["smoothing"], cfg["alpha"], cfg["strand_symmetric"],
                    cfg["max_marginal"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"invalid config: {e}", path=cfg_path) from None
    try:
        with np.load(npz_path) as z:
            model._keys = [z[f"keys_{j}"] for j in range(model.k + 1)]
            model._counts = [z[f"counts_{j}"] for j in range(model.k + 1)]
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise InputError(f"cannot read counts: {e}", path=npz_path) from None
    model.discounts = np.asarray(cfg["discounts"], dtype=np.float64)
    model.n_positions = int(cfg["n_positions"])
    return model
