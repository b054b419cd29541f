"""Register DNAtlas with ``transformers`` when (and only when) ``transformers`` is imported.

``import dnatlas`` calls :func:`register_when_imported`; it costs no import of torch,
transformers or the model layer. The classes themselves are in :mod:`dnatlas.models.hf`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys


def _register() -> None:
    # The one import of the model layer from the base layer, a documented exception in
    # tests/test_layers.py: it runs once the user imports transformers, never at
    # ``import dnatlas``.
    try:
        importlib.import_module("dnatlas.models.hf").register()
    except Exception:  # a broken or too old transformers must not break its own import
        pass


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of ``transformers`` so that registration follows its import."""

    def find_spec(self, name, path=None, target=None):
        if name != "transformers":
            return None
        # a lookup without an import (importlib.util.find_spec, e.g. dnatlas.extras asking
        # whether the hf extra is installed) must leave the hook in place: it goes away only
        # once transformers is actually executed
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            original(module)
            _register()

        spec.loader.exec_module = exec_module
        return spec


def register_when_imported() -> None:
    """Register now if ``transformers`` is imported, else as soon as it is."""
    if "transformers" in sys.modules:
        _register()
        return
    if importlib.util.find_spec("transformers") is None:
        return
    if not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())
