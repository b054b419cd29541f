"""The SAE architectures, by name: the one list every command, config and file reader uses.

Each architecture is one module of :mod:`dnatlas.sae.archs` holding its
:class:`~dnatlas.sae.autoencoder.SparseAutoencoder` subclass, which names its config class
(a :class:`~dnatlas.sae.config.SAEConfig` dataclass with its own fields and checks), its
inference (``activation``), its training forward pass with its sparse path
(``_train_codes``) and how it is saved as a SAELens folder. Adding an architecture is one
new module there and one line in :data:`_MODULES`.

Names are known without importing torch (the command line lists them as ``--arch``
choices); an architecture's module is imported when it is first used.
"""

from __future__ import annotations

import importlib
from dataclasses import MISSING, fields
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dnatlas.sae.autoencoder import SparseAutoencoder
    from dnatlas.sae.config import SAEConfig

__all__ = ["ARCHITECTURES", "architecture", "build_sae", "saved_defaults"]

#: architecture name -> the module that defines it (its ``ARCHITECTURE`` class)
_MODULES = {
    "relu": "dnatlas.sae.archs.relu",
    "topk": "dnatlas.sae.archs.topk",
    "batchtopk": "dnatlas.sae.archs.batchtopk",
    "jumprelu": "dnatlas.sae.archs.jumprelu",
}

#: the registered architecture names, in the order commands list them
ARCHITECTURES = tuple(_MODULES)


def architecture(name: str) -> type[SparseAutoencoder]:
    """The SAE class of architecture ``name`` (ValueError for an unknown name)."""
    if name not in _MODULES:
        raise ValueError(f"unknown SAE architecture {name!r}; "
                         f"choose from {', '.join(ARCHITECTURES)}")
    return importlib.import_module(_MODULES[name]).ARCHITECTURE


def build_sae(cfg: SAEConfig) -> SparseAutoencoder:
    """A freshly initialised SAE of ``cfg.arch``."""
    return architecture(cfg.arch)(cfg)


@cache
def saved_defaults() -> dict[str, Any]:
    """Every registered config field with its default (None where it has none): what a
    saved record holds for the fields of other architectures."""
    defaults: dict[str, Any] = {}
    for name in ARCHITECTURES:
        for f in fields(architecture(name).config_class):
            if f.name not in defaults:
                defaults[f.name] = None if f.default is MISSING else f.default
    return defaults
