"""Dependencies flow one way (docs/design.md, the ``dnatlas`` package docstring).

The checker reads every module under ``src/dnatlas`` with :mod:`ast` and sees every form of
import: ``import dnatlas.x``, ``from dnatlas.x import y``, ``from dnatlas import x``,
relative imports at any level (``from ..cli import main``, ``from . import x``), imports
inside functions, and ``importlib.import_module("dnatlas.x")`` with a literal name. It
checks three rules:

1. **Layer order**: a module imports only from its own layer or the layers above it in
   :data:`LAYERS`; the packages of one layer are siblings that import one another only
   where :data:`SIBLINGS_MAY_IMPORT` says so.
2. **The CLI parses flags and calls a pipeline**: ``dnatlas.cli`` imports only
   ``dnatlas.pipelines`` and the helpers in :data:`CLI_MAY_IMPORT`.
3. **Pipelines reach models through the model layer**: nothing in ``dnatlas.pipelines``
   imports ``dnatlas.architectures``.

An import that breaks a rule today and needs more than a move to fix is listed in
:data:`EXCEPTIONS` with the reason; an exception that is no longer needed fails the test,
so the list only shrinks. ``test_the_checker_catches_*`` prove that the checker fails on
each form of a backward import.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dnatlas"

#: top to bottom: a module may import from its own layer and the layers above it
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"dnatlas", "_version", "_moved", "hf_hook", "errors", "files", "progress",
              "devices", "distributed", "masked_scores", "runtime", "model_files",
              "bundled", "presets", "outputs", "extras"}),
    ("data", {"genome", "annotation", "motifs", "concepts", "audit"}),
    ("architectures", {"architectures"}),
    ("models", {"models"}),
    ("work", {"training", "analysis", "sae", "atlas"}),
    ("pipelines", {"pipelines"}),
    ("front ends", {"cli", "explorer"}),  # dnatlas.__main__ counts as the CLI
]
#: layers whose packages may import one another (the base and data packages build on each
#: other); in every other layer the packages are siblings that never do
SIBLINGS_MAY_IMPORT = {"base", "data"}

#: what ``dnatlas.cli`` may import besides itself and ``dnatlas.pipelines``: the base
#: helpers for errors, output folders (files, outputs), the extras a command needs,
#: progress, devices, versions, bundled data by name, and the ``RECORD:START-END`` region
#: grammar of the command line
CLI_MAY_IMPORT = {"dnatlas.errors", "dnatlas.files", "dnatlas.outputs", "dnatlas.extras",
                  "dnatlas.progress", "dnatlas.devices", "dnatlas.runtime",
                  "dnatlas._version", "dnatlas.bundled", "dnatlas.genome.regions"}

#: (importing module, imported module) -> why it is allowed for now. Each one is a known
#: debt: the fix is a new pipeline function (or a hook registry), not a move.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("dnatlas.cli.explore", "dnatlas.explorer.server"):
        "`dnatlas explore` starts the other front end (the explorer's server or static "
        "export); a pipeline cannot, being above the explorer",
    ("dnatlas.hf_hook", "dnatlas.models.hf"):
        "registers DNAtlas with transformers' Auto classes once the user imports "
        "transformers (never at `import dnatlas`; test_import_dnatlas_imports_no_layer)",
}


# ------------------------------------------------------------------------------ checker
def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """(dotted name, is a package) of the file ``path`` under the package folder ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every dnatlas module that ``source`` imports.

    ``from P import x`` counts as importing ``P.x`` (a submodule or a name in ``P``: the
    layer is the same either way, except for ``from dnatlas import x``, which must name the
    package ``x``); relative imports are resolved against ``module``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    raise ValueError(f"{module}:{node.lineno}: relative import beyond the top")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
            if any(a.name == "*" for a in node.names):
                found.append((node.lineno, base))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            found.append((node.lineno, node.args[0].value))
    return [(line, name) for line, name in found
            if name == "dnatlas" or name.startswith("dnatlas.")]


def unit(name: str) -> str:
    """The package or top-level module that places ``name`` in a layer
    (``dnatlas.genome.readers`` -> ``genome``; ``dnatlas`` -> ``dnatlas``)."""
    parts = name.split(".")
    if len(parts) == 1:
        return "dnatlas"
    return "cli" if parts[1] == "__main__" else parts[1]


def layer_of(name: str) -> tuple[int, str] | None:
    for rank, (layer, units) in enumerate(LAYERS):
        if unit(name) in units:
            return rank, layer
    return None


def _known_target(target: str, modules: dict) -> str:
    """``target`` as a module: ``from dnatlas.x.y import name`` -> ``dnatlas.x.y``."""
    while target not in modules and target.count(".") > 1:
        target = target.rpartition(".")[0]
    return target


def violations(modules: dict[str, tuple[str, bool]]) -> tuple[list[str], set[tuple[str, str]]]:
    """(messages, exceptions used) for ``{module: (source, is_package)}``."""
    bad, used = [], set()
    for module, (source, is_package) in sorted(modules.items()):
        here = layer_of(module)
        if here is None:
            bad.append(f"{module}: in no layer; add its package to LAYERS (docs/design.md)")
            continue
        for line, target in imported_modules(source, module, is_package):
            target = _known_target(target, modules)
            if target == module or unit(target) == unit(module):
                continue
            there = layer_of(target)
            where = f"{module}:{line} imports {target}"
            problem = None
            if there is None:
                problem = f"{where}, which is in no layer"
            elif there[0] > here[0]:
                problem = f"{where}: {there[1]} is below {here[1]}"
            elif there[0] == here[0] and here[1] not in SIBLINGS_MAY_IMPORT:
                problem = f"{where}: sibling packages of layer {here[1]}"
            elif unit(module) == "cli" and unit(target) != "pipelines" \
                    and not any(target == a or target.startswith(a + ".") for a in CLI_MAY_IMPORT):
                problem = f"{where}: the CLI imports only pipelines and {sorted(CLI_MAY_IMPORT)}"
            elif unit(module) == "pipelines" and unit(target) == "architectures":
                problem = f"{where}: pipelines reach models through dnatlas.models"
            if problem is None:
                continue
            if (module, target) in EXCEPTIONS:
                used.add((module, target))
            else:
                bad.append(problem)
    return bad, used


def source_tree(root: Path = SRC) -> dict[str, tuple[str, bool]]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        name, is_package = module_name(path, root)
        out[name] = (path.read_text(encoding="utf-8"), is_package)
    return out


# ------------------------------------------------------------------------------ the rules
def test_no_module_imports_against_the_documented_direction():
    modules = source_tree()
    assert {"dnatlas", "dnatlas.__main__", "dnatlas.hf_hook", "dnatlas.cli"} <= set(modules)
    bad, used = violations(modules)
    assert not bad, "\n".join(bad)
    stale = set(EXCEPTIONS) - used
    assert not stale, f"exceptions no longer needed, remove them from EXCEPTIONS: {sorted(stale)}"


def test_every_package_on_disk_is_in_a_layer():
    on_disk = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    on_disk |= {p.stem for p in SRC.glob("*.py") if p.stem not in ("__init__", "__main__")}
    placed = set().union(*(units for _, units in LAYERS))
    assert on_disk <= placed, sorted(on_disk - placed)


def test_import_dnatlas_imports_no_layer():
    """The package root is base: ``import dnatlas`` loads no torch and no other layer."""
    code = ("import sys, dnatlas; print(sorted(m for m in sys.modules if m == 'torch' or "
            "m.startswith('dnatlas.') and m.split('.')[1] not in "
            "('_version', '_moved', 'hf_hook')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(SRC.parent), "PATH": ""})
    assert out.stdout.strip() == "[]", out.stdout


def test_docs_name_the_same_layers():
    """docs/design.md and the package docstring list every package of LAYERS."""
    design = (SRC.parents[1] / "docs" / "design.md").read_text()
    docstring = (SRC / "__init__.py").read_text()
    for _, units in LAYERS:
        for name in units - {"dnatlas", "_moved", "hf_hook", "presets"}:
            word = re.compile(rf"(?<![\w.]){re.escape(name)}(?![\w])")
            assert word.search(design), f"docs/design.md does not place {name}"
            assert word.search(docstring), f"the dnatlas docstring does not place {name}"


# ------------------------------------------------------------------------------ the checker
def _tree(**sources: str) -> dict[str, tuple[str, bool]]:
    """Synthetic modules: keyword ``a__b__init`` is package ``dnatlas.a.b``, ``a__c`` module
    ``dnatlas.a.c``."""
    out = {}
    for key, source in sources.items():
        parts = key.split("__")
        is_package = parts[-1] == "init"
        name = ".".join(["dnatlas", *(parts[:-1] if is_package else parts)])
        out[name] = (textwrap.dedent(source), is_package)
    return out


BASE = dict(errors="", genome__init="", genome__readers="", architectures__init="",
            architectures__dnatlas="", models__init="", models__registry="",
            training__init="", analysis__init="", pipelines__init="", pipelines__gram="",
            cli__init="", cli__gram="")


@pytest.mark.parametrize("module,source", [
    ("genome__readers", "import dnatlas.models.registry"),
    ("genome__readers", "from dnatlas.models.registry import load_model"),
    ("genome__readers", "from dnatlas.models import registry"),
    ("genome__readers", "from dnatlas import models"),
    ("genome__readers", "from ..models import registry"),
    ("genome__readers", "from ..models.registry import load_model"),
    ("genome__readers", "def f():\n    from dnatlas.pipelines.gram import gram\n"),
    ("genome__readers", "class A:\n    def f(self):\n        import dnatlas.cli\n"),
    ("genome__readers", "import importlib\nimportlib.import_module('dnatlas.models')\n"),
    ("genome__init", "from . import readers\nfrom ..training import x\n"),
    ("errors", "from dnatlas.genome.readers import read_records"),
    ("errors", "import dnatlas.genome"),
    ("pipelines__init", "from .. import cli"),
    ("models__registry", "from dnatlas.training import trainer"),
    ("training__init", "from dnatlas.analysis import gram"),
    ("cli__gram", "from dnatlas.genome.readers import read_records"),
    ("cli__gram", "from dnatlas.models import load_model"),
    ("cli__gram", "from ..architectures import dnatlas"),
    ("pipelines__gram", "from dnatlas.architectures.dnatlas import DNAtlas"),
    ("pipelines__gram", "def f():\n    from ..architectures import dnatlas\n"),
    ("pipelines__gram", "from dnatlas import architectures"),
])
def test_the_checker_catches_every_backward_import_form(module, source):
    tree = _tree(**{**BASE, module: source})
    bad, _ = violations(tree)
    assert bad, f"missed: {source!r} in {module}"


@pytest.mark.parametrize("module,source", [
    ("genome__readers", "from dnatlas.errors import InputError"),
    ("genome__init", "from . import readers"),
    ("models__registry", "from dnatlas.architectures.dnatlas import DNAtlas\nimport numpy"),
    ("pipelines__gram", "from dnatlas.models import load_model\nfrom ..analysis import x"),
    ("cli__gram", "from dnatlas.pipelines.gram import gram\nfrom ..errors import InputError"),
    ("cli__init", "from . import gram\nfrom dnatlas._version import __version__"),
])
def test_the_checker_passes_forward_imports(module, source):
    bad, _ = violations(_tree(**{**BASE, "_version": "", module: source}))
    assert not bad, bad


def test_the_checker_refuses_a_module_in_no_layer():
    bad, _ = violations(_tree(**{**BASE, "newthing__init": ""}))
    assert bad and "in no layer" in bad[0]


def test_the_checker_fails_on_a_planted_import_in_a_copy_of_the_tree(tmp_path):
    """The real tree, copied, with one backward import planted in a real module."""
    import shutil

    copy = tmp_path / "dnatlas"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    (copy / "bundled").mkdir()
    (copy / "bundled" / "__init__.py").write_text("")
    target = copy / "genome" / "alphabet.py"
    target.write_text(target.read_text() + "\n\ndef _late():\n    from ..cli import main\n")
    bad, _ = violations(source_tree(copy))
    assert any("dnatlas.genome.alphabet" in b and "dnatlas.cli" in b for b in bad), bad


# ------------------------------------------------------------------------------ size
#: modules over 450 lines that predate the limit, with the size they may not grow past
KNOWN_LONG: dict[str, int] = {}


def test_no_source_module_is_over_about_400_lines():
    long = {}
    for path in SRC.rglob("*.py"):
        name, n = str(path.relative_to(SRC)), len(path.read_text().splitlines())
        if n > KNOWN_LONG.get(name, 450):
            long[name] = n
    assert not long, long
