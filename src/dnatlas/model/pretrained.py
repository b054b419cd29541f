"""Locating and loading saved models: the bundled default or any ``save_pretrained`` folder."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from dnatlas.errors import InputError

DEFAULT_MODEL_NAME = "dnatlas-tiny-enterobacterales"


def default_model_path() -> Path:
    """Folder of the pretrained DNAtlas model shipped with the package."""
    return Path(str(resources.files("dnatlas.bundled").joinpath("models", DEFAULT_MODEL_NAME)))


def resolve_model_path(spec: str | Path | None) -> Path:
    """``None`` or ``"default"`` -> the bundled model; otherwise the given folder."""
    path = default_model_path() if spec in (None, "default") else Path(spec)
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise InputError("not a saved model folder (needs config.json and model.safetensors)",
                         path=path)
    return path


def load_model(spec: str | Path | None = None, map_location: str = "cpu"):
    """Load DNAtlas or the Transformer baseline from a folder (``model_type`` in config.json)."""
    path = resolve_model_path(spec)
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "dnatlas")
    except ValueError as exc:
        raise InputError(f"invalid JSON: {exc}", path=path / "config.json") from None
    if model_type == "dnatlas":
        from dnatlas.model.modeling import DNAtlas

        try:
            return DNAtlas.from_pretrained(path, map_location)
        except (ValueError, RuntimeError, OSError) as exc:
            raise InputError(f"cannot load model: {exc}", path=path) from None
    if "transformer" in model_type:
        from dnatlas.baselines.transformer import TransformerMLM

        return TransformerMLM.from_pretrained(path, map_location)
    raise InputError(f"unknown model_type {model_type!r}", path=path / "config.json")
