"""A model folder on disk: its ``config.json`` and its weights, for every architecture.

The one reader of a model folder's ``config.json`` (:func:`read_config`, one-line errors)
and of its weights (:func:`load_weights`): one ``model.safetensors``, transformers-style
shards, or (for third-party checkpoints) the first of a list of other weight files. A base
module: the architectures and the model layer both read folders through it.

A sharded folder holds ``model-00001-of-0000N.safetensors`` ... and
``model.safetensors.index.json`` (``{"metadata": {"total_size": bytes}, "weight_map":
{tensor name: file}}``), as ``transformers``' ``save_pretrained(max_shard_size=...)``
writes them; the split is huggingface_hub's ``split_torch_state_dict_into_shards`` when it
is installed, else the same greedy split written here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from dnatlas.errors import InputError

__all__ = ["WEIGHTS_INDEX", "WEIGHTS_NAME", "load_weights", "read_config", "read_config_file", "save_weights",
           "split_shards", "weights_file"]

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20,
          "GIB": 2**30}


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def parse_size(size) -> int:
    """Bytes of ``size``: a positive int, or a string such as ``"16MB"`` (decimal units,
    as huggingface_hub reads them) or ``"16MiB"``. Raises ValueError otherwise."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(size))
        if not m or m.group(2).upper() not in _UNITS:
            raise ValueError(f"max_shard_size must be bytes or a size like '16MB', got {size!r}")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < 1:
        raise ValueError(f"max_shard_size must be positive, got {size!r}")
    return value


def split_shards(state: dict[str, torch.Tensor], max_shard_size) -> dict[str, list[str]]:
    """``{file name: [tensor names]}``: one ``model.safetensors`` when ``max_shard_size`` is
    None or everything fits, else shards of at most ``max_shard_size`` bytes of tensors."""
    if max_shard_size is None:
        return {WEIGHTS_NAME: list(state)}
    limit = parse_size(max_shard_size)
    try:
        from huggingface_hub import split_torch_state_dict_into_shards
    except ImportError:
        return greedy_shards(state, limit)
    split = split_torch_state_dict_into_shards(state, max_shard_size=limit)
    return {name: list(keys) for name, keys in split.filename_to_tensors.items()}


def greedy_shards(state: dict[str, torch.Tensor], limit: int) -> dict[str, list[str]]:
    """huggingface_hub's split without it: tensors in key order, a new shard whenever the
    next tensor would pass ``limit`` bytes; a tensor above ``limit`` gets a shard of its own
    (placed when it is met, the open shard staying open), as the hub does."""
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for key, t in state.items():
        if _nbytes(t) > limit:
            groups.append([key])
            continue
        if current and size + _nbytes(t) > limit:
            groups.append(current)
            current, size = [], 0
        current.append(key)
        size += _nbytes(t)
    if current:
        groups.append(current)
    if len(groups) == 1:
        return {WEIGHTS_NAME: groups[0]}
    n = len(groups)
    return {f"model-{i + 1:05d}-of-{n:05d}.safetensors": g for i, g in enumerate(groups)}


def save_weights(directory: Path, state: dict[str, torch.Tensor], max_shard_size=None,
                 metadata: dict[str, str] | None = None) -> list[str]:
    """Write ``state`` (contiguous CPU tensors) into ``directory`` atomically, one file or
    shards + index (see :func:`split_shards`); weights of the other layout left there by an
    earlier save are removed. Returns the names written."""
    from safetensors.torch import save_file

    from dnatlas.files import atomic_path, atomic_write_text

    shards = split_shards(state, max_shard_size)
    written = set(shards)
    for name, keys in shards.items():
        with atomic_path(directory / name) as tmp:
            save_file({k: state[k] for k in keys}, str(tmp), metadata=metadata)
    index = directory / WEIGHTS_INDEX
    if len(shards) > 1:
        doc = {"metadata": {"total_size": sum(_nbytes(t) for t in state.values())},
               "weight_map": {k: name for name, keys in shards.items() for k in keys}}
        atomic_write_text(index, json.dumps(doc, indent=2) + "\n")
        written.add(WEIGHTS_INDEX)
    for stale in [index, directory / WEIGHTS_NAME, *directory.glob("model-*-of-*.safetensors")]:
        if stale.name not in written and stale.is_file():
            stale.unlink()
    return sorted(written)


def read_config(directory: str | Path, *required: str, what: str | None = None) -> dict:
    """The parsed ``config.json`` of a model folder; it must be a JSON object.

    Args:
        required: other files the folder must hold (e.g. ``"counts.npz"``).
        what: the kind of saved folder, for the message when a file is missing
            (``not a saved {what} (missing file)``).
    """
    directory = Path(directory)
    if not directory.exists():
        raise InputError("no such model folder", path=directory)
    if not directory.is_dir():
        raise InputError("a model is a folder (config.json + weights), not a file", path=directory)
    for name in ("config.json", *required):
        if not (directory / name).is_file():
            if what is not None:
                raise InputError(f"not a saved {what} (missing file)", path=directory / name)
            raise InputError(f"not a model folder (no {name})", path=directory)
    return read_config_file(directory / "config.json")


def read_config_file(path: str | Path) -> dict:
    """The JSON object in the config file ``path`` (one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no config.json here", path=path)
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


def weights_file(directory: str | Path) -> Path:
    """The file that holds (or indexes) a folder's safetensors weights: ``model.safetensors``,
    else ``model.safetensors.index.json`` when the folder is sharded (for error messages)."""
    directory = Path(directory)
    single, index = directory / WEIGHTS_NAME, directory / WEIGHTS_INDEX
    return index if index.is_file() and not single.is_file() else single


def load_weights(directory: str | Path, device: str = "cpu", *, also: tuple[str, ...] = (),
                 weights_only: bool = True, missing: str | None = None
                 ) -> dict[str, torch.Tensor]:
    """The state dict of a model folder: ``model.safetensors``, or the shards named by
    ``model.safetensors.index.json`` (every shard read, every indexed tensor present).

    Third-party checkpoints: when the folder has neither, the first of the files ``also``
    (``pytorch_model.bin``, ``weights.ckpt``; read by :func:`dnatlas.files.load_weights_file`
    with ``weights_only``) that exists; ``missing`` is the message when none does.

    Raises:
        InputError: no weights, a damaged file, an index that is not valid JSON, names a
            file outside the folder or a missing shard, or disagrees with the shards.
    """
    from dnatlas.files import load_safetensors, load_weights_file

    directory = Path(directory)
    index = directory / WEIGHTS_INDEX
    if not (directory / WEIGHTS_NAME).is_file() and not index.is_file():
        for name in also:
            if (directory / name).is_file():
                return load_weights_file(directory / name, weights_only=weights_only)
        if missing is not None:
            raise InputError(missing, path=directory)
    if (directory / WEIGHTS_NAME).is_file() or not index.is_file():
        return load_safetensors(directory / WEIGHTS_NAME, device=device)
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise InputError("not a safetensors index (no JSON 'weight_map' of tensor -> file)",
                         path=index) from None
    if not files:
        raise InputError("the safetensors index lists no tensors", path=index)
    state: dict[str, torch.Tensor] = {}
    for name in files:
        if not isinstance(name, str) or Path(name).name != name:
            raise InputError(f"the index names a file outside the folder: {name!r}", path=index)
        shard = load_safetensors(directory / name, device=device)
        listed = {k for k, v in weight_map.items() if v == name}
        if set(shard) != listed:
            raise InputError(f"shard {name} holds {len(shard)} tensors, the index lists "
                             f"{len(listed)} (mismatched index and shards)", path=index)
        state.update(shard)
    return state
