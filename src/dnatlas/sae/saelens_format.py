"""Save and load SAEs as SAELens folders: ``cfg.json`` + ``sae_weights.safetensors``.

The weights file holds exactly the tensors SAELens' inference classes expect, float32:

    W_enc (d_in, d_sae), b_enc (d_sae,), W_dec (d_sae, d_in), b_dec (d_in,)
    threshold (d_sae,)             jumprelu, and batchtopk saved as jumprelu

``cfg.json`` follows the SAELens 6 schema: top-level ``architecture`` (``standard``,
``topk`` or ``jumprelu``), ``d_in``, ``d_sae``, ``dtype``, ``device``,
``apply_b_dec_to_input`` (true), ``normalize_activations`` (``none``: the input scale is
folded into the weights before saving), ``reshape_activations``, ``k`` and
``rescale_acts_by_decoder_norm`` (topk), and ``metadata`` with ``sae_lens_version``,
``model_name``, ``hook_name`` and friends. ``model_name``, ``hook_name`` and ``hook_layer``
are repeated at the top level for older readers. Our own architecture and hyperparameters
are kept in ``metadata["dnatlas"]`` so that :func:`load_sae` restores, e.g., a BatchTopK SAE
(not a plain JumpReLU) with its training config.

:func:`load_sae` also reads folders written by SAELens itself (standard, topk, jumprelu;
``normalize_activations`` none), folding decoder norms when a TopK SAE was trained with
``rescale_acts_by_decoder_norm``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from dnatlas.errors import InputError
from dnatlas.files import atomic_path, atomic_write_text, check_output_dir, load_safetensors
from dnatlas.sae.autoencoder import SparseAutoencoder
from dnatlas.sae.registry import (
    ARCHITECTURES,
    architecture,
    build_sae,
    config_from_record,
    saved_record,
)

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
#: the SAELens cfg schema version our files follow (SAELens reads >= 6.0 without conversion)
SAELENS_SCHEMA_VERSION = "6.0.0"
#: the tensors of every architecture (each adds its ``saved_tensors``)
SHARED_TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec")


def _hook_layer(hook_name: str) -> int:
    m = re.search(r"(?:blocks|layers)\.(\d+)\.", hook_name + ".")
    return int(m.group(1)) if m else -1


def saelens_cfg(sae: SparseAutoencoder, extra_metadata: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The cfg.json dictionary of ``sae`` (assumed folded: input scale 1)."""
    c = sae.cfg
    arch = type(sae).saelens_architecture
    metadata: dict[str, Any] = {
        "sae_lens_version": SAELENS_SCHEMA_VERSION,
        "sae_lens_training_version": None,
        "model_name": c.model_name,
        "hook_name": c.hook_name,
        "hook_head_index": None,
        "hook_layer": _hook_layer(c.hook_name),
        "prepend_bos": False,
        "context_size": None,
        "dataset_path": None,
        "model_from_pretrained_kwargs": {},
        "dnatlas": {"config": saved_record(c)},
    }
    if extra_metadata:
        metadata.update(extra_metadata)
    cfg: dict[str, Any] = {
        "architecture": arch,
        "d_in": c.d_in,
        "d_sae": c.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "model_name": c.model_name,
        "hook_name": c.hook_name,
        "hook_layer": metadata["hook_layer"],
        "metadata": metadata,
    }
    cfg.update(type(sae).saelens_fields(c))
    return cfg


def _weights(sae: SparseAutoencoder) -> dict[str, torch.Tensor]:
    tensors = {name: getattr(sae, name).detach()
               for name in (*SHARED_TENSORS, *type(sae).saved_tensors)}
    return {k: v.to("cpu", torch.float32).contiguous() for k, v in tensors.items()}


def save_sae(sae: SparseAutoencoder, directory: str | Path,
             extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write ``sae`` as a SAELens folder (input scale folded in); returns the folder.

    Each file is written atomically (fsynced temporary file, renamed into place), with
    the usual permissions.
    """
    out = check_output_dir(directory, "SAE folder")
    folded = sae.folded()
    with atomic_path(out / WEIGHTS_FILENAME) as tmp:
        save_file(_weights(folded), str(tmp), metadata={"format": "pt"})
    cfg = saelens_cfg(folded, extra_metadata)
    atomic_write_text(out / CFG_FILENAME, json.dumps(cfg, indent=2) + "\n")
    return out


def read_cfg(directory: str | Path) -> dict[str, Any]:
    """cfg.json of a SAELens folder, as a dict."""
    path = Path(directory) / CFG_FILENAME
    if not path.is_file():
        raise InputError(f"not an SAE folder (no {CFG_FILENAME})", path=directory)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None


def resolve_sae_path(spec: str | Path) -> Path:
    """An SAE folder from ``spec``: a path, ``default`` (the bundled model's bundled SAE) or
    the name of a bundled SAE (:func:`dnatlas.bundled.sae_names`)."""
    from dnatlas import bundled

    text = str(spec)
    if text == "default":
        return bundled.sae_path()
    if not Path(text).exists() and text in bundled.sae_names():
        return bundled.sae_path(text)
    return Path(text)


def load_sae(directory: str | Path, device: str | torch.device = "cpu") -> SparseAutoencoder:
    """Load a SAELens folder (ours or SAELens') as a :class:`SparseAutoencoder`.

    ``directory`` may also be ``default`` or a bundled SAE's name (:func:`resolve_sae_path`).
    """
    directory = resolve_sae_path(directory)
    cfg = read_cfg(directory)
    weights_path = directory / WEIGHTS_FILENAME
    if not weights_path.is_file():
        raise InputError(f"missing {WEIGHTS_FILENAME}", path=directory)
    tensors = {k: v.float() for k, v in load_safetensors(weights_path).items()}
    metadata = cfg.get("metadata") or {}
    ours = (metadata.get("dnatlas") or {}).get("config")
    arch = cfg.get("architecture", "standard")
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise InputError(f"normalize_activations={cfg['normalize_activations']!r} is not "
                         "supported; fold the normalisation into the weights first",
                         path=directory / CFG_FILENAME)
    if ours is not None:
        sae_cfg = config_from_record(ours)
    else:
        readers = {cls.saelens_architecture: cls for cls in map(architecture, ARCHITECTURES)
                   if cls.reads_saelens}
        if arch not in readers:
            raise InputError(f"unsupported SAE architecture {arch!r}", path=directory / CFG_FILENAME)
        sae_cfg, tensors = readers[arch].from_saelens(
            cfg, tensors, hook_name=str(metadata.get("hook_name") or cfg.get("hook_name") or ""),
            model_name=str(metadata.get("model_name") or cfg.get("model_name") or ""))
    sae = build_sae(sae_cfg)
    expected = {"W_enc": (sae_cfg.d_in, sae_cfg.d_sae), "b_enc": (sae_cfg.d_sae,),
                "W_dec": (sae_cfg.d_sae, sae_cfg.d_in), "b_dec": (sae_cfg.d_in,)}
    expected.update({name: tuple(getattr(sae, name).shape) for name in type(sae).saved_tensors})
    for name, shape in expected.items():
        if name not in tensors:
            raise InputError(f"{WEIGHTS_FILENAME} has no tensor {name!r}", path=directory)
        if tuple(tensors[name].shape) != shape:
            raise InputError(f"{name} has shape {tuple(tensors[name].shape)}, expected {shape}",
                             path=directory / WEIGHTS_FILENAME)
    with torch.no_grad():
        for name in expected:
            getattr(sae, name).copy_(tensors[name])
    sae.after_load()
    return sae.to(device)
