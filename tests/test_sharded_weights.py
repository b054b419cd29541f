"""Sharded model folders: ``DNAtlas.save_pretrained(max_shard_size=...)`` writes
transformers-style shards + index, and every loader (``DNAtlas.from_pretrained``, the model
layer's ``load_model``) reads them back exactly."""

import copy
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dnatlas.architectures.dnatlas import DNAtlas
from dnatlas.errors import InputError
from dnatlas.model_files import WEIGHTS_INDEX, WEIGHTS_NAME, greedy_shards, parse_size
from dnatlas.models import load_model
from tests.helpers import tiny_model

LIMIT = 60_000  # bytes: the tiny model's ~0.35 MB of fp32 tensors in about 6 shards


def _nbytes(t):
    return t.numel() * t.element_size()


def _shard_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("model-*-of-*.safetensors"))


def _tokens(n=2, length=300, seed=1):
    return torch.randint(0, 4, (n, length), generator=torch.Generator().manual_seed(seed))


def test_shards_respect_the_limit_and_the_index_covers_every_tensor(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path, max_shard_size=LIMIT)
    state = model.state_dict()
    files = _shard_files(tmp_path)
    n = len(files)
    assert n >= 3
    assert files == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert not (tmp_path / WEIGHTS_NAME).exists()
    index = json.loads((tmp_path / WEIGHTS_INDEX).read_text())
    assert set(index["weight_map"]) == set(state)
    assert set(index["weight_map"].values()) == set(files)
    assert index["metadata"]["total_size"] == sum(_nbytes(t) for t in state.values())
    for name in files:
        with safe_open(str(tmp_path / name), "pt") as fh:
            keys = list(fh.keys())
            size = sum(_nbytes(fh.get_tensor(k)) for k in keys)
        assert sorted(keys) == sorted(k for k, v in index["weight_map"].items() if v == name)
        assert size <= LIMIT or len(keys) == 1  # a tensor above the limit gets its own shard


def test_sharded_folder_loads_exactly_through_the_model_and_the_model_layer(tmp_path):
    model = tiny_model().eval()
    model.save_pretrained(tmp_path, max_shard_size="60KB")
    back = DNAtlas.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    tokens = _tokens()
    with torch.no_grad():
        want = model(tokens).logits
        assert torch.equal(back(tokens).logits, want)
    adapter = load_model(str(tmp_path), device="cpu")
    assert adapter.kind == "dnatlas"
    assert torch.equal(adapter.logits(tokens), want)
    assert adapter.fingerprint() == load_model(f"dnatlas:{tmp_path}", device="cpu").fingerprint()


def test_fp16_shards_are_half_the_bytes_and_load_as_rounded_weights(tmp_path):
    model = tiny_model()
    fp32 = sum(_nbytes(t) for t in model.state_dict().values())
    copy.deepcopy(model).half().save_pretrained(tmp_path, max_shard_size=LIMIT // 2)
    index = json.loads((tmp_path / WEIGHTS_INDEX).read_text())
    assert index["metadata"]["total_size"] * 2 == fp32
    back = DNAtlas.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        got = back.state_dict()[key]
        assert got.dtype == value.dtype
        assert torch.equal(got, value.half().to(value.dtype)), key


def test_huggingface_hub_split_and_the_fallback_agree():
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import split_torch_state_dict_into_shards

    state = {k: v.contiguous() for k, v in tiny_model().state_dict().items()}
    for limit in (1, 5_000, LIMIT, 10**9):
        hub = split_torch_state_dict_into_shards(state, max_shard_size=limit)
        ours = greedy_shards(state, limit)
        assert {k: list(v) for k, v in hub.filename_to_tensors.items()} == ours, limit


def test_without_huggingface_hub_the_same_files_are_written(tmp_path, monkeypatch):
    with_hub = tmp_path / "hub"
    tiny_model().save_pretrained(with_hub, max_shard_size=LIMIT)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ImportError):
        import huggingface_hub  # noqa: F401
    without = tmp_path / "without"
    tiny_model().save_pretrained(without, max_shard_size=LIMIT)
    assert _shard_files(without) == _shard_files(with_hub)
    assert json.loads((without / WEIGHTS_INDEX).read_text()) == \
        json.loads((with_hub / WEIGHTS_INDEX).read_text())
    for name in _shard_files(without):
        a, b = load_file(str(without / name)), load_file(str(with_hub / name))
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_one_file_when_it_fits_and_a_resave_removes_the_other_layout(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path, max_shard_size="1GB")
    assert (tmp_path / WEIGHTS_NAME).is_file() and not (tmp_path / WEIGHTS_INDEX).exists()
    model.save_pretrained(tmp_path, max_shard_size=LIMIT)
    assert not (tmp_path / WEIGHTS_NAME).exists() and _shard_files(tmp_path)
    model.save_pretrained(tmp_path, max_shard_size=LIMIT * 2)  # fewer shards: old ones go
    index = json.loads((tmp_path / WEIGHTS_INDEX).read_text())
    assert _shard_files(tmp_path) == sorted(set(index["weight_map"].values()))
    model.save_pretrained(tmp_path)
    assert (tmp_path / WEIGHTS_NAME).is_file()
    assert not (tmp_path / WEIGHTS_INDEX).exists() and not _shard_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", WEIGHTS_NAME]


@pytest.mark.parametrize("size,bytes_", [(100, 100), ("16MB", 16_000_000), ("1.5KB", 1500),
                                         ("2MiB", 2 * 2**20), (" 7 kib ", 7 * 1024)])
def test_shard_sizes_parse(size, bytes_):
    assert parse_size(size) == bytes_


@pytest.mark.parametrize("size", [0, -5, "lots", "16XB", True, "MB"])
def test_bad_shard_size_is_refused_before_writing(tmp_path, size):
    with pytest.raises(ValueError, match="max_shard_size"):
        tiny_model().save_pretrained(tmp_path / "m", max_shard_size=size)
    assert not list((tmp_path / "m").glob("*.safetensors"))


def _damage(folder: Path, how: str) -> None:
    index = folder / WEIGHTS_INDEX
    doc = json.loads(index.read_text())
    first = sorted(set(doc["weight_map"].values()))[0]
    if how == "missing shard":
        (folder / first).unlink()
    elif how == "truncated shard":
        data = (folder / first).read_bytes()
        (folder / first).write_bytes(data[: len(data) // 2])
    elif how == "not json":
        index.write_text("{weight_map: ")
    elif how == "outside":
        doc["weight_map"][next(iter(doc["weight_map"]))] = "../elsewhere.safetensors"
        index.write_text(json.dumps(doc))
    elif how == "tensor missing from index":  # from a shard that holds others too
        files = list(doc["weight_map"].values())
        del doc["weight_map"][next(k for k, v in doc["weight_map"].items() if files.count(v) > 1)]
        index.write_text(json.dumps(doc))
    elif how == "empty map":
        index.write_text(json.dumps({"weight_map": {}}))


@pytest.mark.parametrize("how,message", [
    ("missing shard", "missing weights file"), ("truncated shard", "damaged"),
    ("not json", "not a safetensors index"), ("outside", "outside the folder"),
    ("tensor missing from index", "mismatched index"), ("empty map", "lists no tensors")])
def test_damaged_sharded_folders_are_one_line_errors(tmp_path, how, message):
    tiny_model().save_pretrained(tmp_path, max_shard_size=LIMIT)
    _damage(tmp_path, how)
    for load in (lambda: load_model(str(tmp_path), device="cpu"),
                 lambda: DNAtlas.from_pretrained(tmp_path)):
        with pytest.raises(InputError, match=message) as info:
            load()
        assert "\n" not in str(info.value)
