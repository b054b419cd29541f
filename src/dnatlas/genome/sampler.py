"""Random and tiled windows over a genome store.

:class:`WindowSampler` draws training windows. Its randomness is *counter-based*: there is
one global stream of draws g = 0, 1, 2, ..., and draw g is a pure function of (seed, g):
draws are generated in chunks of :data:`CHUNK` with ``np.random.default_rng([seed, g //
CHUNK])``. Each draw is a uniform integer over all valid window starts of the split, so
windows are sampled in proportion to segment length and never cross a segment boundary.

Rank r of W takes draws r, r + W, r + 2W, ...: ranks are disjoint and together take exactly
the single-process stream, so W ranks with batch b see the same windows as one process with
batch W*b. The sampler's state is the global position in the stream, identical on every
rank, so one rank's ``state_dict()`` resumes all of them (even with another world size).

:func:`tile_windows` walks the split in order with a fixed stride, for evaluation.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from dnatlas.errors import InputError
from dnatlas.genome.store import GenomeStore

CHUNK = 1 << 16  # draws generated per call to the random generator
STATE_VERSION = 1


class WindowBatch(NamedTuple):
    """A batch of windows and where they come from.

    Attributes:
        tokens: codes, shape (B, L), dtype uint8.
        segments: segment index of each window, shape (B,), int64.
        starts: 0-based start of each window within its segment, shape (B,), int64.
    """

    tokens: np.ndarray
    segments: np.ndarray
    starts: np.ndarray


def gather_windows(store: GenomeStore, segments: np.ndarray, starts: np.ndarray, window: int
                   ) -> np.ndarray:
    """Copy windows out of the store in one vectorised gather.

    Args:
        segments, starts: segment indices and 0-based starts within them, shape (B,).
        window: window length L in bases.

    Returns:
        Codes, shape (B, L), dtype uint8 (a new, writable array).
    """
    rows = np.lib.stride_tricks.sliding_window_view(store.tokens, window)
    return rows[store.offsets[segments] + starts]


def _distributed_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Fill in a missing rank / world size: from torch.distributed when it is initialised,
    else from the ``RANK`` / ``WORLD_SIZE`` environment variables that torchrun sets, else
    0 / 1.
    """
    dist = sys.modules.get("torch.distributed")  # never import torch just to ask
    if dist is not None and dist.is_available() and dist.is_initialized():
        found = dist.get_rank(), dist.get_world_size()
    else:
        found = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    return (found[0] if rank is None else rank), (found[1] if world_size is None else world_size)


class WindowSampler:
    """Uniformly random windows of a split, as batches of shape (batch_size, window).

    Args:
        store: the genome store.
        split: ``"train"`` or ``"val"``.
        window: window length L in bases; segments shorter than L are skipped.
        batch_size: windows per batch on this rank.
        seed: seed of the global draw stream.
        rank, world_size: this process's place among data-parallel ranks; None reads them
            from torch.distributed when it is initialised, else from the ``RANK`` and
            ``WORLD_SIZE`` environment variables, else 0 and 1.

    Attributes:
        step: number of batches this rank has drawn (the next batch's index).
        segment_ids: indices of the usable segments, int64, shape (S,).
        n_skipped_segments, skipped_length: segments of the split shorter than the window.
        n_starts: number of valid window starts in the split.

    Raises:
        InputError: no segment of the split is at least ``window`` long.
    """

    def __init__(self, store: GenomeStore, split: str = "train", window: int = 4096,
                 batch_size: int = 96, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None):
        self.rank, self.world_size = _distributed_rank(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")
        if window < 1 or batch_size < 1:
            raise ValueError("window and batch_size must be positive")
        self.store, self.split, self.window = store, split, window
        self.batch_size, self.seed = batch_size, seed
        self.step = 0
        split_ids = store.segment_indices(split)
        long_enough = store.lengths[split_ids] >= window
        self.segment_ids = split_ids[long_enough]
        self.n_skipped_segments = int((~long_enough).sum())
        self.skipped_length = int(store.lengths[split_ids[~long_enough]].sum())
        # cumulative count of valid starts: segment_ids[k] owns [_cum[k], _cum[k + 1])
        self._cum = np.concatenate([[0], np.cumsum(store.lengths[self.segment_ids] - window + 1)])
        self.n_starts = int(self._cum[-1])
        if self.n_starts == 0:
            raise InputError(f"no segment of split {split!r} is at least {window} bases long",
                             path=store.path)
        self._chunks: dict[int, np.ndarray] = {}

    def draws(self, g: np.ndarray) -> np.ndarray:
        """Global draws ``g`` (int64, any shape) as indices into all valid starts, same shape."""
        g = np.asarray(g, dtype=np.int64)
        chunk_ids = g // CHUNK
        out = np.empty(g.shape, dtype=np.int64)
        for c in np.unique(chunk_ids):
            where = chunk_ids == c
            out[where] = self._chunk(int(c))[g[where] % CHUNK]
        return out

    def _chunk(self, c: int) -> np.ndarray:
        """Draws ``c * CHUNK`` to ``(c + 1) * CHUNK - 1``, int64; caches the last two chunks."""
        if c not in self._chunks:
            rng = np.random.default_rng([self.seed, c])
            self._chunks[c] = rng.integers(0, self.n_starts, size=CHUNK, dtype=np.int64)
            for old in sorted(self._chunks)[:-2]:
                del self._chunks[old]
        return self._chunks[c]

    def draw_indices(self, step: int) -> np.ndarray:
        """Global draw numbers g of this rank's batch ``step``: int64, shape (batch_size,).

        Rank r takes draws r, r + W, r + 2W...: batch ``step`` holds its local draws
        ``step * batch_size`` to ``(step + 1) * batch_size - 1``.
        """
        local = step * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        return self.rank + self.world_size * local

    def coordinates(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the windows of this rank's batch ``step`` are (a pure function of step).

        Returns:
            (segments, starts): segment indices into ``store.segments`` and 0-based starts
            within them, both int64, shape (batch_size,).
        """
        flat = self.draws(self.draw_indices(step))
        k = np.searchsorted(self._cum, flat, side="right") - 1
        return self.segment_ids[k], flat - self._cum[k]

    def batch(self, step: int) -> WindowBatch:
        """This rank's batch ``step`` with its coordinates; does not advance the sampler."""
        segments, starts = self.coordinates(step)
        return WindowBatch(gather_windows(self.store, segments, starts, self.window),
                           segments, starts)

    def next_batch(self) -> np.ndarray:
        """The next batch, shape (batch_size, window), dtype uint8.

        Its coordinates are ``self.coordinates(self.step - 1)`` afterwards.
        """
        tokens = self.batch(self.step).tokens
        self.step += 1
        return tokens

    def __iter__(self) -> Iterator[np.ndarray]:
        """Endless batches (see :meth:`next_batch`)."""
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        """The sampler's position and parameters; the same on every rank."""
        return {
            "version": STATE_VERSION,
            "position": self.step * self.batch_size * self.world_size,
            "seed": self.seed,
            "split": self.split,
            "window": self.window,
            "n_starts": self.n_starts,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict`; the next batch continues the global stream.

        The batch size and world size may differ from the saved ones as long as the
        position is a whole number of (batch_size * world_size) draws.

        Raises:
            InputError: the state is from another kind of sampler, another seed, split,
                window or store, or its position does not fall on a batch boundary.
        """
        if state.get("version") != STATE_VERSION:
            raise InputError(f"sampler state version {state.get('version')!r} is not supported")
        for key in ("seed", "split", "window", "n_starts"):
            if state.get(key) != getattr(self, key):
                raise InputError(f"sampler state has {key}={state.get(key)!r} but this sampler "
                                 f"has {key}={getattr(self, key)!r}")
        per_step = self.batch_size * self.world_size
        position = state.get("position")
        if not isinstance(position, (int, np.integer)) or position < 0 or position % per_step:
            raise InputError(f"sampler state position {position!r} is not a multiple of "
                             f"batch_size * world_size = {per_step}")
        self.step = int(position) // per_step


def tile_coordinates(store: GenomeStore, split: str, window: int, stride: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """All windows of ``split`` at starts 0, stride, 2*stride... of each segment, in order.

    A window never crosses a segment boundary; segments shorter than ``window`` and tails
    shorter than a window are left out. ``stride`` defaults to ``window`` (no overlap).

    Returns:
        (segments, starts), both int64, shape (n_windows,).
    """
    stride = window if stride is None else stride
    if window < 1 or stride < 1:
        raise ValueError("window and stride must be positive")
    ids = store.segment_indices(split)
    counts = np.maximum((store.lengths[ids] - window) // stride + 1, 0)
    segments = np.repeat(ids, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)  # index of each segment's 1st window
    starts = (np.arange(segments.size, dtype=np.int64) - first) * stride
    return segments, starts


def tile_windows(store: GenomeStore, split: str, window: int, stride: int | None = None,
                 batch_size: int = 64) -> Iterator[WindowBatch]:
    """Batches of the windows of :func:`tile_coordinates`, in order; the last may be smaller.

    Each batch has tokens of shape (b, window), uint8, with b <= batch_size.
    """
    segments, starts = tile_coordinates(store, split, window, stride)
    for i in range(0, segments.size, batch_size):
        seg, start = segments[i:i + batch_size], starts[i:i + batch_size]
        yield WindowBatch(gather_windows(store, seg, start, window), seg, start)
