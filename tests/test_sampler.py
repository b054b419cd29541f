import sys
import time
import types

import numpy as np
import pytest

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import decode
from dnatlas.genome.sampler import (
    CHUNK,
    WindowSampler,
    gather_windows,
    tile_coordinates,
    tile_windows,
)
from dnatlas.genome.store_build import build_store

L = 32
RECORD_LENGTHS = {"train": [40, 100, 9, 300, 31], "val": [64, 20, 50]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store whose train split has segments of 40, 100, 9, 300 and 31 bases (val: 64, 20, 50)."""
    folder = tmp_path_factory.mktemp("sampler")
    rng = np.random.default_rng(0)
    inputs = []
    for split, lengths in RECORD_LENGTHS.items():
        path = folder / f"{split}_genome.fa"
        path.write_text("".join(f">{split}{i}\n{decode(rng.integers(0, 5, n))}\n"
                                for i, n in enumerate(lengths)))
        inputs.append(path)
    return build_store(inputs, folder / "store", val_genomes=["val_genome"], progress=False)


def coords(sampler, steps):
    return [tuple(map(tuple, sampler.coordinates(step))) for step in steps]


def test_batches_have_the_right_shape_and_come_from_the_store(store):
    sampler = WindowSampler(store, window=L, batch_size=16, seed=1)
    batch = sampler.next_batch()
    assert batch.shape == (16, L) and batch.dtype == np.uint8
    segments, starts = sampler.coordinates(sampler.step - 1)
    for row, seg, start in zip(batch, segments, starts):
        assert np.array_equal(row, store.segment_tokens(seg)[start:start + L])
    assert next(iter(sampler)).shape == (16, L) and sampler.step == 2


def test_deterministic_for_a_seed_and_different_for_another(store):
    a = [WindowSampler(store, window=L, batch_size=8, seed=5).next_batch() for _ in range(2)]
    assert np.array_equal(a[0], a[1])
    other = WindowSampler(store, window=L, batch_size=8, seed=6).next_batch()
    assert not np.array_equal(a[0], other)


def test_draws_follow_the_counter_based_definition(store):
    sampler = WindowSampler(store, window=L, batch_size=4, seed=11)
    g = np.arange(CHUNK - 5, CHUNK + 5)
    expected = np.concatenate([
        np.random.default_rng([11, c]).integers(0, sampler.n_starts, CHUNK, dtype=np.int64)
        for c in (0, 1)])[g]
    assert np.array_equal(sampler.draws(g), expected)


def test_resume_from_state_equals_uninterrupted(store):
    sampler = WindowSampler(store, window=L, batch_size=8, seed=2)
    for _ in range(5):
        sampler.next_batch()
    state = sampler.state_dict()
    expected = [sampler.next_batch() for _ in range(3)]
    resumed = WindowSampler(store, window=L, batch_size=8, seed=2)
    resumed.load_state_dict(state)
    assert all(np.array_equal(a, b) for a, b in zip(expected, [resumed.next_batch()
                                                             for _ in range(3)]))


def test_ranks_are_disjoint_and_their_union_is_the_single_process_stream(store):
    world, b = 3, 4
    ranks = [WindowSampler(store, window=L, batch_size=b, seed=9, rank=r, world_size=world)
             for r in range(world)]
    single = WindowSampler(store, window=L, batch_size=world * b, seed=9)
    for step in [0, 1, 2, 17, CHUNK // (world * b)]:  # the last batch spans two chunks
        draws = [set(s.draw_indices(step).tolist()) for s in ranks]
        assert sum(map(len, draws)) == world * b == len(set.union(*draws))  # disjoint
        assert set.union(*draws) == set(single.draw_indices(step).tolist())
        per_rank = sorted(pair for s in ranks for pair in zip(*map(list, s.coordinates(step))))
        assert per_rank == sorted(zip(*map(list, single.coordinates(step))))
        tokens = np.concatenate([s.batch(step).tokens for s in ranks])
        assert sorted(map(bytes, tokens)) == sorted(map(bytes, single.batch(step).tokens))


def test_rank_state_resumes_any_world_size(store):
    ranks = [WindowSampler(store, window=L, batch_size=4, seed=3, rank=r, world_size=2)
             for r in range(2)]
    for _ in range(6):
        for s in ranks:
            s.next_batch()
    state = ranks[1].state_dict()
    assert state == ranks[0].state_dict()
    single = WindowSampler(store, window=L, batch_size=8, seed=3)
    single.load_state_dict(state)
    assert single.step == 6
    together = sorted(map(tuple, np.concatenate([s.next_batch() for s in ranks])))
    assert together == sorted(map(tuple, single.next_batch()))


def test_load_state_validates(store):
    state = WindowSampler(store, window=L, batch_size=4, seed=3).state_dict()
    with pytest.raises(InputError, match="seed"):
        WindowSampler(store, window=L, batch_size=4, seed=4).load_state_dict(state)
    with pytest.raises(InputError, match="window"):
        WindowSampler(store, window=L + 1, batch_size=4, seed=3).load_state_dict(state)
    with pytest.raises(InputError, match="multiple"):
        WindowSampler(store, window=L, batch_size=3, seed=3).load_state_dict(
            {**state, "position": 4})
    with pytest.raises(InputError, match="version"):
        WindowSampler(store, window=L, batch_size=4, seed=3).load_state_dict({})


def test_windows_never_cross_segments_and_short_segments_are_skipped(store):
    sampler = WindowSampler(store, window=L, batch_size=5000, seed=0)
    segments, starts = sampler.coordinates(0)
    lengths = store.lengths[segments]
    assert (starts >= 0).all() and (starts + L <= lengths).all()
    train = store.segment_indices("train")
    assert set(segments.tolist()) == {int(i) for i in train if store.lengths[i] >= L}
    assert sampler.n_skipped_segments == 2 and sampler.skipped_length == 9 + 31
    assert sampler.n_starts == sum(n - L + 1 for n in RECORD_LENGTHS["train"] if n >= L)


def test_val_split_uses_only_val_segments(store):
    sampler = WindowSampler(store, split="val", window=L, batch_size=500, seed=0)
    segments, _ = sampler.coordinates(0)
    assert {store.segments[i].split for i in segments} == {"val"}
    assert sampler.n_skipped_segments == 1


def test_sampling_is_uniform_over_valid_starts(store):
    sampler = WindowSampler(store, window=L, batch_size=200_000, seed=4)
    segments, starts = sampler.coordinates(0)
    valid = store.lengths[sampler.segment_ids] - L + 1
    first = np.concatenate([[0], np.cumsum(valid)])[np.searchsorted(sampler.segment_ids, segments)]
    flat = first + starts
    counts = np.bincount(flat, minlength=sampler.n_starts)
    expected = segments.size / sampler.n_starts
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = sampler.n_starts - 1  # 367: chi2 has mean dof and sd sqrt(2 dof) ~ 27
    assert abs(chi2 - dof) < 5 * np.sqrt(2 * dof)
    per_segment = np.bincount(segments, minlength=len(store.segments))[sampler.segment_ids]
    share = valid / sampler.n_starts
    assert np.allclose(per_segment / segments.size, share, atol=0.01)


def test_no_valid_window_is_an_input_error(store):
    with pytest.raises(InputError, match="at least 400 bases"):
        WindowSampler(store, window=400)


def test_rank_and_world_size_come_from_torch_distributed(store, monkeypatch):
    fake = types.SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True,
                                 get_rank=lambda: 2, get_world_size=lambda: 4)
    monkeypatch.setitem(sys.modules, "torch.distributed", fake)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    sampler = WindowSampler(store, window=L, batch_size=2)
    assert (sampler.rank, sampler.world_size) == (2, 4)
    assert WindowSampler(store, window=L, rank=0, world_size=1).world_size == 1


def test_rank_and_world_size_come_from_torchrun_environment(store, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch.distributed", raising=False)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    sampler = WindowSampler(store, window=L, batch_size=2)
    assert (sampler.rank, sampler.world_size) == (1, 2)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert (WindowSampler(store, window=L).rank, WindowSampler(store, window=L).world_size) == \
        (0, 1)


def test_gather_windows(store):
    tokens = gather_windows(store, np.array([3, 3, 0]), np.array([0, 268, 8]), L)
    assert np.array_equal(tokens[1], store.segment_tokens(3)[268:300])
    assert np.array_equal(tokens[2], store.segment_tokens(0)[8:40])
    assert tokens.flags.writeable


def test_tile_windows_cover_the_split_in_order(store):
    segments, starts = tile_coordinates(store, "train", L)
    # train segments: 40 -> 1 window, 100 -> 3, 9 -> 0, 300 -> 9, 31 -> 0
    assert segments.tolist() == [0] + [1] * 3 + [3] * 9
    assert starts.tolist() == [0] + [0, 32, 64] + [32 * i for i in range(9)]
    batches = list(tile_windows(store, "train", L, batch_size=5))
    assert [b.tokens.shape[0] for b in batches] == [5, 5, 3]
    tokens = np.concatenate([b.tokens for b in batches])
    assert np.array_equal(tokens[4], store.segment_tokens(3)[:L])
    strided, _ = tile_coordinates(store, "train", L, stride=L // 2)
    assert strided.size == 1 + 5 + 17  # (n - 32) // 16 + 1 for n = 40, 100, 300


def test_sampler_is_fast(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "big.fa"
    path.write_text(f">big\n{decode(rng.integers(0, 4, 2_000_000))}\n")
    big = build_store([path], tmp_path / "store", progress=False)
    sampler = WindowSampler(big, window=4096, batch_size=96)
    sampler.next_batch()
    start = time.perf_counter()
    for _ in range(20):
        sampler.next_batch()
    assert 20 * 96 / (time.perf_counter() - start) > 10_000  # windows per second
