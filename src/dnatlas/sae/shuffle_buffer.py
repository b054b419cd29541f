"""Bounded-memory shuffling of aligned activation rows, with a checkpointable state.

:class:`ShuffleBuffer` holds at most ``capacity`` rows per key. It fills up, shuffles, moves
half of its rows (in batches) to a queue of ready batches and keeps the rest, so positions
of one window (which arrive together) are spread over many batches (paper 001's "global
shuffle"). Its whole state (held rows, ready batches, RNG) is a :meth:`state_dict`, so an SAE
run resumes exactly where it stopped without recomputing activations.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import torch

Rows = dict[str, torch.Tensor]


def n_rows(rows: Rows) -> int:
    """Row count of aligned rows (every key must have the same)."""
    sizes = {v.shape[0] for v in rows.values()}
    if len(sizes) != 1:
        raise ValueError(f"keys have different row counts: {sizes}")
    return sizes.pop()


class ShuffleBuffer:
    """Bounded-memory shuffling of aligned rows.

    Args:
        capacity: rows held per key (at least 2 * batch_size).
        batch_size: rows per emitted batch.
        seed: seed of the shuffles.
        drop_last: drop the final incomplete batch when the input ends.

    Attributes:
        peak_rows: the most rows ever held (never above ``capacity``).
    """

    def __init__(self, capacity: int, batch_size: int, seed: int = 0, drop_last: bool = True):
        if capacity < 2 * batch_size:
            raise ValueError(f"buffer capacity {capacity} must be at least twice the batch "
                             f"size {batch_size}")
        self.capacity, self.batch_size, self.drop_last = capacity, batch_size, drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.peak_rows = 0
        self.ready: deque[Rows] = deque()
        self._buf: Rows = {}
        self._n = 0

    @property
    def half(self) -> int:
        """Rows moved to the ready queue each time the buffer is full."""
        return (self.capacity // 2 // self.batch_size) * self.batch_size

    def _allocate(self, rows: Rows) -> None:
        self._buf = {k: torch.empty((self.capacity, *v.shape[1:]), dtype=v.dtype, device=v.device)
                     for k, v in rows.items()}

    def _emit(self, n_emit: int) -> None:
        """Shuffle the held rows, queue n_emit of them as batches, keep the rest at the front."""
        perm = torch.randperm(self._n, generator=self.generator)
        for start in range(0, n_emit, self.batch_size):
            idx = perm[start:start + self.batch_size]
            self.ready.append({k: v.index_select(0, idx.to(v.device)) for k, v in self._buf.items()})
        keep = perm[n_emit:self._n]
        for v in self._buf.values():
            v[:keep.numel()] = v.index_select(0, keep.to(v.device))
        self._n = keep.numel()

    def push(self, chunk: Rows) -> None:
        """Add aligned rows {key: (n, ...)}; full buffers queue shuffled batches."""
        n = n_rows(chunk)
        if not self._buf:
            self._allocate(chunk)
        pos = 0
        while pos < n:
            take = min(n - pos, self.capacity - self._n)
            for k, v in chunk.items():
                self._buf[k][self._n:self._n + take] = v[pos:pos + take]
            self._n += take
            pos += take
            self.peak_rows = max(self.peak_rows, self._n)
            if self._n == self.capacity:
                self._emit(self.half)

    def finish(self) -> None:
        """The input ended: queue what is left (whole batches only when ``drop_last``)."""
        if self._n:
            full = (self._n // self.batch_size) * self.batch_size
            self._emit(self._n if not self.drop_last else full)
        self._n = 0

    def shuffle(self, chunks: Iterable[Rows]) -> Iterator[Rows]:
        """Batches {key: (batch_size, ...)} from chunks {key: (n, ...)} of aligned rows."""
        for chunk in chunks:
            self.push(chunk)
            while self.ready:
                yield self.ready.popleft()
        self.finish()
        while self.ready:
            yield self.ready.popleft()

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: held rows, ready batches, RNG state."""
        return {"held": {k: v[:self._n].clone() for k, v in self._buf.items()},
                "ready": list(self.ready), "rng": self.generator.get_state(),
                "peak_rows": self.peak_rows}

    def load_state_dict(self, state: dict) -> None:
        held = state["held"]
        self._buf, self._n = {}, 0
        if held:
            self._allocate(held)
            self._n = n_rows(held)
            for k, v in held.items():
                self._buf[k][:self._n] = v
        self.ready = deque(state["ready"])
        self.generator.set_state(state["rng"])
        self.peak_rows = int(state["peak_rows"])


class ResumableStream:
    """Shuffled batches from an iterator of chunks, whose position can be saved and restored.

    Args:
        make_windows: returns a fresh iterator of window batches (cheap to advance: no model).
        rows_of: window batch -> aligned rows (runs the model).
        buffer: the :class:`ShuffleBuffer`.

    :meth:`state_dict` records the buffer and how many window batches were consumed; a
    stream restored from it skips those windows without running the model on them.
    """

    def __init__(self, make_windows, rows_of, buffer: ShuffleBuffer, state: dict | None = None):
        self.buffer, self.rows_of = buffer, rows_of
        self.windows = make_windows()
        self.consumed = 0
        if state is not None:
            for _ in range(int(state["windows_consumed"])):
                next(self.windows)
            self.consumed = int(state["windows_consumed"])
            buffer.load_state_dict(state["buffer"])
        self._ended = False

    def __iter__(self) -> ResumableStream:
        return self

    def __next__(self) -> Rows:
        while not self.buffer.ready:
            if self._ended:
                raise StopIteration
            try:
                tokens = next(self.windows)
            except StopIteration:
                self._ended = True
                self.buffer.finish()
                continue
            self.consumed += 1
            self.buffer.push(self.rows_of(tokens))
        return self.buffer.ready.popleft()

    def state_dict(self) -> dict:
        return {"windows_consumed": self.consumed, "buffer": self.buffer.state_dict()}
