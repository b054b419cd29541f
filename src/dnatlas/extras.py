"""Optional extras (``pip install 'dnatlas[EXTRA]'``): which modules each one brings, and
the one check every command makes before it starts working.

* :func:`require` (what the user asked for): a missing extra is one line, ``dnatlas: error:
  COMMAND needs the analysis extra (matplotlib missing): pip install 'dnatlas[analysis]'``,
  exit code 2, before any work; never a ``ModuleNotFoundError`` after minutes of compute.
* :func:`optional` (something the command can do without): a missing extra is a warning
  on stderr naming what is left out, and the command goes on.

Modules are looked up with :func:`importlib.util.find_spec`, which imports nothing.
"""

from __future__ import annotations

import importlib.util
import sys

from dnatlas.errors import InputError

#: extra -> the modules it installs that dnatlas imports (pip name differs for sklearn)
EXTRAS: dict[str, tuple[str, ...]] = {
    "analysis": ("matplotlib", "scipy", "sklearn"),
    "annotate": ("pyrodigal", "pyaragorn", "pybarrnap"),
    "train": ("tensorboard",),
    "hf": ("transformers",),
    "motifs": ("lightmotif", "pyjaspar"),
    "atlas": ("duckdb", "pyarrow"),
    "explorer": ("duckdb", "pyarrow", "fastapi", "uvicorn", "pydantic"),
    "sae": ("sae_lens",),
}


def _present(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: blocked (tests simulate a bare install)
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or only ``modules`` of it) that are not installed."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}")
    return [m for m in (modules or EXTRAS[extra]) if not _present(m)]


def _message(extra: str, absent: list[str]) -> str:
    return (f"the {extra} extra ({', '.join(absent)} missing): "
            f"pip install 'dnatlas[{extra}]'")


def require(*extras: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Refuse to start ``what`` (e.g. ``"dnatlas neurons"``) without ``extras``.

    Raises:
        InputError: one line naming the first missing extra and how to install it.
    """
    for extra in extras:
        absent = missing(extra, modules)
        if absent:
            raise InputError(f"{what} needs {_message(extra, absent)}")


def optional(extra: str, left_out: str, modules: tuple[str, ...] | None = None) -> bool:
    """Whether ``extra`` is installed; if not, warn on stderr that ``left_out`` is skipped."""
    absent = missing(extra, modules)
    if absent:
        print(f"dnatlas: warning: {left_out} skipped: it needs {_message(extra, absent)}",
              file=sys.stderr)
    return not absent
