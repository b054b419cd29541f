"""The SAE architectures, by name: the one list every command, config and file reader uses.

Each architecture is one module of :mod:`dnatlas.sae.archs` holding its
:class:`~dnatlas.sae.autoencoder.SparseAutoencoder` subclass, which names its config class
(a :class:`~dnatlas.sae.config.SAEConfig` dataclass with its own fields and checks), its
inference (``activation``), its training forward pass with its sparse path
(``_train_codes``) and how it is saved as a SAELens folder. Adding an architecture is one
new module there and one line in :data:`_MODULES`.

Here too: :func:`make_config` (the config of an architecture named at run time) and the
flat record a saved folder keeps (:func:`saved_record`, :func:`config_from_record`).
Names are known without importing an architecture (the command line lists them as
``--arch`` choices); its module is imported when it is first used.
"""

from __future__ import annotations

import importlib
from dataclasses import MISSING, fields
from functools import cache
from typing import TYPE_CHECKING, Any

from dnatlas.sae.config import SAVED_FIELDS, SAEConfig

if TYPE_CHECKING:
    from dnatlas.sae.autoencoder import SparseAutoencoder

__all__ = ["ARCHITECTURES", "architecture", "build_sae", "config_from_record", "make_config",
           "saved_defaults", "saved_record"]

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


def make_config(arch: str, d_in: int, d_sae: int | None = None, *,
                expansion: float | None = None, **kwargs: Any) -> SAEConfig:
    """The config of architecture ``arch`` with ``d_sae`` features (or ``expansion * d_in``).

    ``kwargs`` are its fields; fields only other architectures have (``k`` given to a ReLU
    SAE, say) are ignored, as a saved record holds them all; other names are refused
    (TypeError). The architecture's own checks raise ValueError.
    """
    if (d_sae is None) == (expansion is None):
        raise TypeError("give d_sae or expansion (one of them)")
    if d_sae is None:
        d_sae = int(expansion * d_in)
    cls = architecture(arch).config_class
    own = {f.name for f in fields(cls)}
    unknown = sorted(k for k in kwargs if k not in own and k not in saved_defaults())
    if unknown:
        raise TypeError(f"no SAE architecture has the field(s) {', '.join(unknown)}")
    return cls(d_in, d_sae, **{k: v for k, v in kwargs.items() if k in own})


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


def saved_record(cfg: SAEConfig) -> dict[str, Any]:
    """The flat record ``cfg.json`` keeps of ``cfg``: :data:`~dnatlas.sae.config.SAVED_FIELDS`
    (a field of another architecture at that architecture's default), then the
    architecture's own other fields."""
    own = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    record = {"arch": cfg.arch}
    defaults = saved_defaults()
    for name in SAVED_FIELDS[1:]:
        record[name] = own.pop(name) if name in own else defaults.get(name)
    return {**record, **own}


def config_from_record(record: dict[str, Any]) -> SAEConfig:
    """The config of a :func:`saved_record`; fields it does not have are ignored."""
    kw = dict(record)
    arch, d_in, d_sae = kw.pop("arch"), kw.pop("d_in"), kw.pop("d_sae")
    own = {f.name for f in fields(architecture(arch).config_class)}
    return make_config(arch, d_in, d_sae, **{k: v for k, v in kw.items() if k in own})
