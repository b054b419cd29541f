"""Import paths that moved in 0.2 still work for one release, with a DeprecationWarning."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def test_old_names_are_the_new_objects_with_a_warning(monkeypatch):
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
    from dnatlas.architectures.kmer import KmerContextModel
    from dnatlas.architectures.transformer import TransformerMLM
    from dnatlas.model_files import read_config

    for name in ("dnatlas.model", "dnatlas.baselines"):  # a fresh alias, which warns
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.warns(DeprecationWarning, match="dnatlas.model moved"):
        old = importlib.import_module("dnatlas.model")
    with pytest.warns(DeprecationWarning, match=r"dnatlas\.model\.DNAtlas moved to "
                                                r"dnatlas\.architectures\.dnatlas\.DNAtlas"):
        assert old.DNAtlas is DNAtlas
    with pytest.warns(DeprecationWarning):
        assert old.DNAtlasConfig is DNAtlasConfig
    with pytest.warns(DeprecationWarning, match="dnatlas.baselines moved"):
        baselines = importlib.import_module("dnatlas.baselines")
    with pytest.warns(DeprecationWarning, match="architectures.kmer"):
        assert baselines.KmerContextModel is KmerContextModel
    with pytest.warns(DeprecationWarning, match="architectures.transformer"):
        assert baselines.TransformerMLM is TransformerMLM
    with pytest.warns(DeprecationWarning):
        assert importlib.import_module("dnatlas.models.checkpoint_files").read_config is read_config


@pytest.mark.parametrize("statement", [
    "from dnatlas.model import DNAtlas, DNAtlasConfig",
    "from dnatlas.model.modeling import DNAtlas",
    "import dnatlas.model.windowed_mlm as w; w.windowed_mlm_loss",
    "from dnatlas.model.weights_files import load_weights",
    "from dnatlas.baselines import KmerContextModel, TransformerMLM, select_k",
    "from dnatlas.baselines.kmer import KmerContextModel, context_code",
    "from dnatlas.baselines.transformer import TransformerConfig",
    "from dnatlas.models.arch.hyenadna import HyenaDNA",
    "from dnatlas.models.checkpoint_files import read_config",
    "from dnatlas.models import load_model",
])
def test_old_import_statements_work_and_warn(statement):
    """In a fresh process: the statement runs, and warns unless nothing moved."""
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            f"try:\n    {statement}\nexcept DeprecationWarning as w:\n    print('warned', w)\n"
            "else:\n    print('silent')\n"
            "warnings.simplefilter('ignore', DeprecationWarning)\n"
            f"{statement}\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.returncode == 0, out.stderr
    expected = "silent" if statement.startswith("from dnatlas.models import") else "warned"
    assert out.stdout.startswith(expected), out.stdout


def test_our_code_imports_no_old_path():
    """Importing every dnatlas module (but the front ends being written) loads no alias of
    an old path."""
    code = ("import sys, pkgutil, importlib, dnatlas\n"
            "from dnatlas._moved import MOVED\n"
            "for m in pkgutil.walk_packages(dnatlas.__path__, 'dnatlas.'):\n"
            "    if m.name.split('.')[1] not in ('__main__', 'explorer', 'atlas'):\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(set(MOVED) & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
