"""Reading a model folder's ``config.json`` with one-line errors (weights: :func:`dnatlas.files.load_safetensors`)."""

from __future__ import annotations

import json
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.files import load_safetensors  # noqa: F401  (re-exported for the adapters)


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
