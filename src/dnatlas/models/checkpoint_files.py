"""Reading a model folder's files with one-line errors: ``config.json`` and safetensors."""

from __future__ import annotations

import json
from pathlib import Path

from dnatlas.errors import InputError


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


def load_safetensors(path: str | Path, device: str = "cpu") -> dict:
    """All tensors of a safetensors file (truncated, empty or foreign files: InputError)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError("missing weights file", path=path)
    if path.stat().st_size == 0:
        raise InputError("weights file is empty", path=path)
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"damaged or not a safetensors file ({first})", path=path) from None
