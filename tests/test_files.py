"""dnatlas.files: the one mechanism for atomic writes, JSON, text opening and output checks."""

import gzip
import json
import os
import stat

import numpy as np
import pytest

from dnatlas.errors import InputError
from dnatlas.files import (
    atomic_path,
    atomic_write,
    check_output_dir,
    check_writable_file,
    open_text,
    write_json,
)


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    with atomic_write(path) as fh:
        fh.write("new")
    assert path.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_atomic_path_for_libraries_that_write_by_name(tmp_path):
    from safetensors.numpy import load_file, save_file

    path = tmp_path / "w.safetensors"
    with atomic_path(path) as tmp:
        save_file({"x": np.arange(3)}, str(tmp))
        assert not path.exists()
    assert list(load_file(str(path))["x"]) == [0, 1, 2]
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("crash")
    assert list(load_file(str(path))["x"]) == [0, 1, 2] and len(os.listdir(tmp_path)) == 1


def test_write_json_has_no_nan(tmp_path):
    write_json(tmp_path / "r.json", {"a": float("nan"), "b": [np.float32(1.5), float("inf")],
                                      "c": np.arange(2)})
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": [0, 1]}


def test_open_text_gzip_by_magic_and_errors(tmp_path):
    plain, packed = tmp_path / "a.txt", tmp_path / "b.weird"
    plain.write_text("x\ny\n")
    packed.write_bytes(gzip.compress(b"x\ny\n"))
    for path in (plain, packed):
        with open_text(path) as fh:
            assert fh.read() == "x\ny\n"
    with pytest.raises(InputError, match="no such file"):
        with open_text(tmp_path / "missing"):
            pass
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not utf-8 text"):
        with open_text(latin) as fh:
            fh.read()


def test_outputs_are_checked_before_work(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_output_dir(tmp_path / "f")
    with pytest.raises(InputError, match="under a file"):
        check_output_dir(tmp_path / "f" / "sub")
    with pytest.raises(InputError, match="is a folder"):
        check_writable_file(tmp_path)
    assert check_output_dir(tmp_path / "new" / "deep").is_dir()
