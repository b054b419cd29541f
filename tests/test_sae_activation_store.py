"""Activation store: shuffle buffer bounds and mixing, streaming, disk cache and resume."""

import functools
import itertools
import json

import numpy as np
import pytest
import torch

from dnatlas.errors import InputError
from dnatlas.sae.activation_store import (
    ActivationStore,
    CachedActivations,
    ShuffleBuffer,
    cache_activations,
    window_rows,
)


def tagged_chunks(n_chunks, rows):
    """Chunk c: rows with column 0 = c (the 'sequence'), column 1 = row id; key b = 2 * a."""
    for c in range(n_chunks):
        a = torch.stack([torch.full((rows,), float(c)), torch.arange(rows, dtype=torch.float32) + 1000 * c], 1)
        yield {"a": a, "b": 2 * a}


def test_shuffle_buffer_bounded_and_complete():
    buf = ShuffleBuffer(capacity=256, batch_size=32, seed=0)
    out = list(buf.shuffle(tagged_chunks(5, 300)))  # chunks larger than the buffer
    assert buf.peak_rows <= 256
    assert all(t.shape[0] == 256 for t in buf._buf.values())
    assert all(b["a"].shape == (32, 2) for b in out)
    ids = torch.cat([b["a"][:, 1] for b in out])
    assert len(ids) == 1500 // 32 * 32 and len(set(ids.tolist())) == len(ids)  # each row at most once
    for b in out:  # keys stay aligned
        assert torch.equal(b["b"], 2 * b["a"])
    keep_all = list(ShuffleBuffer(256, 32, seed=0, drop_last=False).shuffle(tagged_chunks(5, 300)))
    assert sum(b["a"].shape[0] for b in keep_all) == 1500


def test_shuffle_buffer_mixes_sequences():
    batches = list(ShuffleBuffer(capacity=4000, batch_size=50, seed=1).shuffle(tagged_chunks(60, 100)))
    distinct = [len(set(b["a"][:, 0].tolist())) for b in batches]
    share = [np.bincount(b["a"][:, 0].long().numpy()).max() / 50 for b in batches]
    assert np.mean(distinct) > 15       # sequential batching would give 1 (or 2)
    assert np.mean(share) < 0.15
    with pytest.raises(ValueError):
        ShuffleBuffer(capacity=10, batch_size=8)


class FakeAdapter:
    """Deterministic 'model': activation = one-hot of the nucleotide, position, window sum."""

    device = torch.device("cpu")

    def __init__(self):
        self.calls = 0

    def d(self, key):
        return 7

    def activations(self, tokens, keys):
        self.calls += 1
        t = tokens.long()
        B, L = t.shape
        onehot = torch.nn.functional.one_hot(t, 5).float()
        pos = torch.arange(L, dtype=torch.float32).expand(B, L)[..., None]
        total = t.sum(1, keepdim=True).float().expand(B, L)[..., None]
        base = torch.cat([onehot, pos, total], -1)
        return {k: base * (i + 1) for i, k in enumerate(keys)}


def windows(n, seed=0, B=4, L=16):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.integers(0, 5, size=(B, L)).astype(np.uint8)


def test_window_rows_and_drop_n():
    tokens = np.array([[0, 4, 2, 3]], dtype=np.uint8)
    rows = window_rows(FakeAdapter(), tokens, ["x"], drop_n=True)
    assert rows["x"].shape == (3, 7)
    assert rows["x"][:, 5].tolist() == [0.0, 2.0, 3.0]  # positions of A, G, T
    assert window_rows(FakeAdapter(), tokens, ["x"], drop_n=False)["x"].shape == (4, 7)


def test_activation_store_streams_shuffled_batches():
    store = ActivationStore(FakeAdapter(), windows(20), ["k1", "k2"], batch_size=16, buffer_rows=128,
                            seed=0, drop_n=False)
    batches = list(store)
    assert len(batches) == 20 * 64 // 16
    assert all(b["k1"].shape == (16, 7) for b in batches)
    for b in batches:
        assert torch.equal(b["k2"], 2 * b["k1"])
    positions = batches[0]["k1"][:, 5]
    assert not torch.equal(positions, torch.sort(positions).values)  # not in window order


def run_cache(out, adapter, stop=None, n_shards=3):
    ws = windows(6)
    if stop is not None:
        def interrupted():
            for i, w in enumerate(windows(6)):
                if i == stop:
                    raise KeyboardInterrupt
                yield w
        ws = interrupted()
    rows_of = functools.partial(window_rows, adapter, keys=["k"], drop_n=False)
    return cache_activations(rows_of, ws, out, n_shards=n_shards, batches_per_shard=2,
                             dtype="float16", seed=3, info={"model": "fake"}, progress=False)


def test_disk_cache_resume_skips_written_shards(tmp_path):
    full = FakeAdapter()
    run_cache(tmp_path / "full", full)
    assert full.calls == 6

    cut = FakeAdapter()
    with pytest.raises(KeyboardInterrupt):
        run_cache(tmp_path / "cut", cut, stop=5)
    manifest = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert [s["index"] for s in manifest["shards"]] == [0, 1] and not manifest["complete"]
    again = FakeAdapter()
    run_cache(tmp_path / "cut", again)
    assert again.calls == 2  # only shard 2 was computed
    m_full = json.loads((tmp_path / "full" / "manifest.json").read_text())
    m_cut = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert m_full == m_cut and m_cut["complete"] and m_cut["keys"] == {"k": 7}
    for shard in m_full["shards"]:
        assert (tmp_path / "full" / shard["file"]).read_bytes() == (tmp_path / "cut" / shard["file"]).read_bytes()
    with pytest.raises(InputError, match="dtype"):
        cache_activations(lambda t: {}, windows(1), tmp_path / "cut", n_shards=3, batches_per_shard=2,
                          dtype="float32", seed=3, info={"model": "fake"})


def test_cached_activations_read_back(tmp_path):
    run_cache(tmp_path / "c", FakeAdapter())
    cached = CachedActivations(tmp_path / "c", batch_size=16, seed=0, loop=False)
    assert cached.n_rows == 6 * 64 and cached.d("k") == 7
    batches = list(cached)
    assert len(batches) == 6 * 64 // 16 and batches[0]["k"].dtype == torch.float32
    got = torch.cat([b["k"] for b in batches])
    ref = torch.cat([window_rows(FakeAdapter(), w, ["k"], drop_n=False)["k"] for w in windows(6)]).half().float()
    key = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert key(got) == key(ref)
    # looping epochs and skipping for resume
    looping = CachedActivations(tmp_path / "c", batch_size=16, seed=0)
    first = [b["k"] for _, b in zip(range(30), looping)]
    skipped = [b["k"] for _, b in zip(range(10), looping.batches(20))]
    for a, b in zip(first[20:], skipped):
        assert torch.equal(a, b)
    with pytest.raises(InputError):
        CachedActivations(tmp_path / "c", keys=["nope"])


def test_fasta_windows(tmp_path):
    from dnatlas.pipelines.windows import window_source

    fa = tmp_path / "x.fa"
    fa.write_text(">r1 desc\nACGTACGTAC\nGGGG\n>short\nAC\n>r2\nTTTTTTTTTTTTTTTTNNNN\n")
    batch = next(window_source(fa, "val", window=12, batch=8, seed=0))
    assert batch.shape == (8, 12) and batch.dtype == np.uint8 and batch.max() <= 4
    with pytest.raises(InputError):
        next(window_source(fa, "train", window=100, batch=2))
    bad = tmp_path / "bad.fa"
    bad.write_text(">r\nACGX\n")
    with pytest.raises(InputError, match="record 'r'"):
        next(window_source(bad, "train", window=2, batch=1))


class CountingModel:
    """Wraps a model adapter and counts forward passes."""

    def __init__(self, adapter):
        self.adapter, self.calls = adapter, 0
        self.device = adapter.device

    def activations(self, tokens, keys):
        self.calls += 1
        return self.adapter.activations(tokens, keys)


class SeededWindows:
    """A re-iterable, seeded source of window batches (like a genome sampler)."""

    def __iter__(self):
        rng = np.random.default_rng(11)
        while True:
            yield rng.integers(0, 4, (2, 48)).astype(np.uint8)


def _store(model):
    return ActivationStore(model, SeededWindows(), ["blocks.1.residual"], batch_size=32,
                           buffer_rows=256, seed=3)


def test_store_resumes_exactly_without_recomputing_activations():
    from dnatlas.models import load_model

    adapter = load_model("dnatlas:tiny:random-init")
    full = list(itertools.islice(iter(_store(CountingModel(adapter))), 40))
    first_model = CountingModel(adapter)
    first = _store(first_model)
    it = iter(first)
    head = [next(it) for _ in range(15)]
    state = first.state_dict()
    resumed_model = CountingModel(adapter)
    resumed = _store(resumed_model)
    resumed.load_state_dict(state)
    it = iter(resumed)
    tail = [next(it) for _ in range(25)]
    for a, b in zip(head + tail, full):
        assert torch.equal(a["blocks.1.residual"], b["blocks.1.residual"])
    # the resumed stream ran the model only on windows the first one had not consumed
    assert resumed_model.calls + first_model.calls == forward_passes_for(adapter, 40)


def forward_passes_for(adapter, n_batches):
    model = CountingModel(adapter)
    list(itertools.islice(iter(_store(model)), n_batches))
    return model.calls


class InterruptedStore(ActivationStore):
    """An activation stream that stops the run (as a kill would) before batch ``stop``."""

    def __init__(self, *args, stop: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop = stop

    def __iter__(self):
        stream = super().__iter__()

        def batches():
            for i, batch in enumerate(stream):
                if i == self.stop:
                    raise KeyboardInterrupt
                yield batch

        return batches()


def test_sae_training_resumes_from_the_stream_state(tmp_path):
    """A killed run resumed from its checkpoint equals the uninterrupted run exactly, and
    the resume runs the model only on windows the killed run had not consumed."""
    from dnatlas.models import load_model
    from dnatlas.sae import make_config
    from dnatlas.sae.trainer import SAESpec, SAETrainer, SAETrainingConfig

    adapter = load_model("dnatlas:tiny:random-init")
    spec = SAESpec(None, "blocks.1.residual",
                   make_config("topk", adapter.d("blocks.1.residual"), expansion=2, k=4))
    cfg = SAETrainingConfig(steps=14, batch_size=32, checkpoint_every=4, norm_batches=3,
                            lr_warmup_frac=0.3, lr_decay_frac=0.5, progress=False)
    whole = SAETrainer([spec], cfg, tmp_path / "whole")
    whole.fit(_store(CountingModel(adapter)))
    killed_model = CountingModel(adapter)
    killed = InterruptedStore(killed_model, SeededWindows(), ["blocks.1.residual"],
                              batch_size=32, buffer_rows=256, seed=3, stop=11)
    with pytest.raises(KeyboardInterrupt):
        SAETrainer([spec], cfg, tmp_path / "part").fit(killed)
    saved = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    assert 4 <= saved["step"] < 14 and saved["data_state"]["stream"]["windows_consumed"] > 0
    resumed_model = CountingModel(adapter)
    trainer = SAETrainer([spec], cfg, tmp_path / "part")
    trainer.fit(_store(resumed_model), resume=True)
    assert trainer.step == 14
    for a, b in zip(trainer.slots[0].sae.state_dict().values(),
                    whole.slots[0].sae.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed_model.calls < forward_passes_for(adapter, 14)
