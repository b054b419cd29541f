"""Import paths that moved in 0.2 (issue 21), kept working for one release.

``import dnatlas`` installs :class:`_MovedFinder`: importing an old module path (say
``dnatlas.model`` or ``dnatlas.baselines.kmer``) gives a small alias module whose attributes
are looked up in the new modules, each lookup emitting a :class:`DeprecationWarning` that
names the new path. No real module lives at an old path, and nothing in dnatlas imports one.

=================================  ==========================================================
old path                           new path
=================================  ==========================================================
``dnatlas.model[.X]``              ``dnatlas.architectures.dnatlas[.X]``
``dnatlas.model.weights_files``    ``dnatlas.model_files``
``dnatlas.baselines``              ``dnatlas.architectures.kmer``, ``.transformer``
``dnatlas.baselines.kmer``         ``dnatlas.architectures.kmer.model`` (+ ``.counts``, ``.files``)
``dnatlas.baselines.kmer_X``       ``dnatlas.architectures.kmer.X`` (counts, files, selection)
``dnatlas.baselines.transformer``  ``dnatlas.architectures.transformer``
``dnatlas.models.arch[.X]``        ``dnatlas.architectures[.X]``
``dnatlas.models.checkpoint_files`` ``dnatlas.model_files``
``dnatlas.sae.architectures``      ``dnatlas.sae.registry``, ``dnatlas.sae.archs.X``
=================================  ==========================================================
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

_DNATLAS = "dnatlas.architectures.dnatlas"
_SUBMODULES = ("activation", "config", "folded", "masking", "modeling", "rcps", "windowed_mlm")
_KMER = "dnatlas.architectures.kmer"

#: old module -> the new modules its names are looked up in, in order
MOVED: dict[str, tuple[str, ...]] = {
    "dnatlas.model": (_DNATLAS,),
    **{f"dnatlas.model.{m}": (f"{_DNATLAS}.{m}",) for m in _SUBMODULES},
    "dnatlas.model.weights_files": ("dnatlas.model_files",),
    "dnatlas.baselines": (_KMER, "dnatlas.architectures.transformer"),
    "dnatlas.baselines.kmer": (f"{_KMER}.model", f"{_KMER}.counts", f"{_KMER}.files"),
    "dnatlas.baselines.kmer_counts": (f"{_KMER}.counts",),
    "dnatlas.baselines.kmer_files": (f"{_KMER}.files",),
    "dnatlas.baselines.kmer_selection": (f"{_KMER}.selection",),
    "dnatlas.baselines.transformer": ("dnatlas.architectures.transformer",),
    "dnatlas.models.arch": ("dnatlas.architectures",),
    "dnatlas.models.arch.hyenadna": ("dnatlas.architectures.hyenadna",),
    "dnatlas.models.arch.nucleotide_transformer": ("dnatlas.architectures.nucleotide_transformer",),
    "dnatlas.models.checkpoint_files": ("dnatlas.model_files",),
    "dnatlas.sae.architectures": ("dnatlas.sae.registry", "dnatlas.sae.sparse_ops",
                                  "dnatlas.sae.autoencoder",
                                  *(f"dnatlas.sae.archs.{a}" for a in
                                    ("relu", "topk", "batchtopk", "jumprelu"))),
}
_PACKAGES = {"dnatlas.model", "dnatlas.baselines", "dnatlas.models.arch"}


def _alias(old: str) -> types.ModuleType:
    """A module at ``old`` whose attributes come from the modules of ``MOVED[old]``."""
    module = types.ModuleType(old, f"Moved: use {' or '.join(MOVED[old])}.")
    if old in _PACKAGES:
        module.__path__ = []  # submodules are found by _MovedFinder

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        for new in MOVED[old]:
            target = importlib.import_module(new)
            if hasattr(target, name):
                warnings.warn(f"{old}.{name} moved to {new}.{name}; the old path goes away "
                              "in the next release", DeprecationWarning, stacklevel=2)
                return getattr(target, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    module.__getattr__ = __getattr__
    return module


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec):
        warnings.warn(f"{spec.name} moved to {' or '.join(MOVED[spec.name])}; the old path "
                      "goes away in the next release", DeprecationWarning, stacklevel=4)
        return _alias(spec.name)

    def exec_module(self, module) -> None:
        pass


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths of :data:`MOVED` (and nothing else)."""

    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, _AliasLoader(), is_package=name in _PACKAGES)


def install() -> None:
    """Let the old paths import (once per process)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        # first: a folder left at an old path (say a stale __pycache__) must not shadow it
        sys.meta_path.insert(0, _MovedFinder())
