"""Reading a model folder's ``config.json`` with one-line errors; weights: one file with
:func:`dnatlas.files.load_safetensors`, a folder's (one file or transformers-style shards)
with :func:`weights_file` and :func:`dnatlas.model.weights_files.load_weights`."""

from __future__ import annotations

import json
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.files import load_safetensors  # noqa: F401  (re-exported for the adapters)
from dnatlas.model.weights_files import WEIGHTS_INDEX, WEIGHTS_NAME, load_weights  # noqa: F401


def weights_file(directory: str | Path) -> Path:
    """The file that holds (or indexes) a folder's safetensors weights: ``model.safetensors``,
    else ``model.safetensors.index.json`` when the folder is sharded (for error messages)."""
    directory = Path(directory)
    single, index = directory / WEIGHTS_NAME, directory / WEIGHTS_INDEX
    return index if index.is_file() and not single.is_file() else single


def read_config(directory: str | Path) -> dict:
    """The parsed ``config.json`` of a model folder; it must be a JSON object."""
    directory = Path(directory)
    if not directory.exists():
        raise InputError("no such model folder", path=directory)
    if not directory.is_dir():
        raise InputError("a model is a folder (config.json + weights), not a file", path=directory)
    path = directory / "config.json"
    if not path.is_file():
        raise InputError("not a model folder (no config.json)", path=directory)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("config.json is not UTF-8 text", path=path) from None
    except ValueError as exc:
        raise InputError(f"invalid JSON: {exc}", path=path) from None
    if not isinstance(raw, dict):
        raise InputError(f"config.json must hold a JSON object, not a {type(raw).__name__}",
                         path=path)
    return raw
