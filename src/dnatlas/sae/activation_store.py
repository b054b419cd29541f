"""Activations for SAE training: streamed through a shuffling buffer, or cached on disk.

Pipeline::

    token windows (B, L) uint8  ->  adapter.activations  ->  rows {key: (B*L, d)}
        ->  ShuffleBuffer (bounded memory)  ->  batches {key: (batch_size, d)}

Rows of all keys stay aligned: row r of every key comes from the same nucleotide.

:class:`ShuffleBuffer` holds at most ``capacity`` rows per key. It fills up, shuffles,
emits about half of the rows as batches and refills, so positions of one window (which
arrive together) are spread over many batches; with a capacity of many windows, two
positions of the same window rarely share a batch (paper 001's "global shuffle").

:func:`cache_activations` writes shards of activations (safetensors, float16/bfloat16/
float32) with a ``manifest.json``; shard i holds the windows of window batches
[i * batches_per_shard, (i + 1) * batches_per_shard), shuffled within the shard. Re-running
it skips the shards already written without running the model (the window iterator is
still advanced, which is cheap). :class:`CachedActivations` reads shards back in a shuffled
order through a :class:`ShuffleBuffer`.

Window sources: any iterable of uint8 arrays (B, L) with codes A=0 C=1 G=2 T=3 N=4, such as
:class:`dnatlas.genome.sampler.WindowSampler` (``iter(sampler)``), or
:func:`dnatlas.pipelines.windows.window_source`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from dnatlas.errors import InputError
from dnatlas.files import atomic_path, atomic_write_text, load_safetensors
from dnatlas.sae.shuffle_buffer import ResumableStream, ShuffleBuffer, n_rows

MANIFEST_NAME = "manifest.json"
CACHE_FORMAT = "dnatlas-sae-activation-shards"
CACHE_VERSION = 1
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

Rows = dict[str, torch.Tensor]
__all__ = ["ActivationStore", "CachedActivations", "ShuffleBuffer", "StreamGroup",
           "cache_activations", "read_manifest", "stream_seed", "window_rows"]


# --------------------------------------------------------------------------------------
# from windows to rows
# --------------------------------------------------------------------------------------


def window_rows(adapter, tokens: np.ndarray | torch.Tensor, keys: list[str], *,
                drop_n: bool = True, dtype: torch.dtype = torch.float32,
                device: str | torch.device = "cpu") -> Rows:
    """Per-nucleotide activations of one batch of windows, flattened to rows.

    Args:
        adapter: an :class:`~dnatlas.models.ModelAdapter`.
        tokens: codes, (B, L), A=0 C=1 G=2 T=3 N=4.
        keys: activation keys.
        drop_n: leave out positions whose nucleotide is N.

    Returns:
        {key: (n, d)} with n = B * L (minus N positions), in window-major order.
    """
    t = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    with torch.no_grad():
        acts = adapter.activations(t.to(adapter.device), keys)
    keep = (t != 4).reshape(-1) if drop_n else None
    out = {}
    for k in keys:
        a = acts[k].reshape(-1, acts[k].shape[-1])
        if keep is not None:
            a = a[keep.to(a.device)]
        out[k] = a.to(device=device, dtype=dtype)
    return out


#: window batches in a row without a single A, C, G or T before a stream gives up
MAX_EMPTY_BATCHES = 1000


class ActivationStore:
    """Shuffled batches of model activations streamed from token windows.

    Args:
        adapter: the model adapter.
        windows: iterable of code arrays (B, L).
        keys: activation keys to collect.
        batch_size: rows per batch.
        buffer_rows: shuffle buffer capacity (rows per key); memory is about
            ``buffer_rows * sum(d) * bytes(dtype)`` plus one window batch.
        seed: shuffle seed.
        dtype: dtype of the buffered rows (SAEs compute in float32 regardless).
        drop_n: leave out N positions.
        max_windows: stop after this many window batches (None: as long as windows last).

    Iterating yields ``{key: (batch_size, d)}`` (on ``device``).
    """

    def __init__(self, adapter, windows: Iterable[np.ndarray], keys: list[str], *,
                 batch_size: int = 4096, buffer_rows: int = 1 << 18, seed: int = 0,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 drop_n: bool = True, max_windows: int | None = None):
        self.adapter, self.windows, self.keys = adapter, windows, list(keys)
        self.batch_size, self.buffer_rows, self.seed = batch_size, buffer_rows, seed
        self.dtype, self.device, self.drop_n, self.max_windows = dtype, device, drop_n, max_windows

        self._stream: ResumableStream | None = None
        self._restore: dict | None = None

    def _windows(self) -> Iterator[np.ndarray]:
        windows = iter(self.windows)
        if self.max_windows is not None:
            windows = itertools.islice(windows, self.max_windows)
        return windows

    def _rows(self, tokens) -> Rows:
        rows = window_rows(self.adapter, tokens, self.keys, drop_n=self.drop_n,
                           dtype=self.dtype, device=self.device)
        if self.drop_n:  # windows of N only give no rows: refuse to wait for ever
            self._empty = 0 if n_rows(rows) else getattr(self, "_empty", 0) + 1
            if self._empty >= MAX_EMPTY_BATCHES:
                raise InputError(f"{MAX_EMPTY_BATCHES} window batches in a row held only N: "
                                 "the data has (almost) no A, C, G or T to compute on")
        return rows

    def __iter__(self) -> Iterator[Rows]:
        buffer = ShuffleBuffer(self.buffer_rows, self.batch_size, self.seed)
        self._stream = ResumableStream(self._windows, self._rows, buffer, self._restore)
        self._restore = None
        return self._stream

    def state_dict(self) -> dict:
        """Position of the current iteration (window batches consumed, shuffle buffer)."""
        if self._stream is None:
            raise RuntimeError("the store has not been iterated yet")
        return self._stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Make the next iteration continue from ``state`` without recomputing activations
        (the window source must be re-iterable from its start, like a seeded sampler)."""
        self._restore = state


# --------------------------------------------------------------------------------------
# disk cache
# --------------------------------------------------------------------------------------


def _write_json_atomic(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"not an activation cache (no {MANIFEST_NAME})", path=directory)
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if manifest.get("format") != CACHE_FORMAT:
        raise InputError("not a dnatlas activation cache", path=path)
    return manifest


def cache_activations(rows_of: Callable[[np.ndarray], Rows], windows: Iterable[np.ndarray],
                      out_dir: str | Path, *, n_shards: int, batches_per_shard: int,
                      dtype: str = "float16", seed: int = 0,
                      info: dict[str, Any] | None = None, progress: bool | None = None) -> Path:
    """Write (or finish writing) a shard cache of activations.

    Args:
        rows_of: window batch (B, L) -> rows {key: (n, d)}, e.g.
            ``functools.partial(window_rows, adapter, keys=keys)``.
        windows: the window batches, deterministic (re-running must give the same ones).
        out_dir: cache folder.
        n_shards: shards to have in the end.
        batches_per_shard: window batches per shard.
        dtype: ``float16``, ``bfloat16`` or ``float32``.
        seed: seed of the within-shard shuffles.
        info: extra fields stored in the manifest (model, keys...).

    Returns:
        ``out_dir``. Shards already listed in an existing manifest with the same settings
        are skipped (their window batches are drawn but the model is not run).

    Raises:
        InputError: an existing cache was written with other settings.
    """
    from dnatlas.progress import progress as progress_bar

    if dtype not in DTYPES:
        raise InputError(f"unsupported cache dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"batches_per_shard": batches_per_shard, "dtype": dtype, "seed": seed,
                "info": info or {}}
    manifest: dict[str, Any] = {"format": CACHE_FORMAT, "version": CACHE_VERSION, **settings,
                                "keys": {}, "shards": [], "n_shards": n_shards, "complete": False}
    if (out / MANIFEST_NAME).exists():
        old = read_manifest(out)
        for name, value in settings.items():
            if old.get(name) != value:
                raise InputError(f"existing cache has {name}={old.get(name)!r}, "
                                 f"not {value!r}", path=out / MANIFEST_NAME)
        manifest.update(keys=old["keys"], shards=old["shards"])
    done = {s["index"] for s in manifest["shards"] if (out / s["file"]).exists()}
    manifest["shards"] = [s for s in manifest["shards"] if s["index"] in done]
    windows = iter(windows)
    bar = progress_bar(total=n_shards, initial=len(done), desc="cache", unit="shard",
                       disable=progress is False)
    for index in range(n_shards):
        batch_list = list(itertools.islice(windows, batches_per_shard))
        if len(batch_list) < batches_per_shard:
            break
        if index in done:
            continue
        parts = [rows_of(tokens) for tokens in batch_list]
        rows = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        n = n_rows(rows)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + index))
        tensors = {k: v.index_select(0, perm.to(v.device)).to("cpu", DTYPES[dtype]).contiguous()
                   for k, v in rows.items()}
        name = f"shard_{index:05d}.safetensors"
        with atomic_path(out / name) as tmp:
            save_file(tensors, str(tmp))
        manifest["keys"] = {k: int(v.shape[1]) for k, v in tensors.items()}
        manifest["shards"].append({"index": index, "file": name, "rows": n})
        manifest["shards"].sort(key=lambda s: s["index"])
        _write_json_atomic(out / MANIFEST_NAME, manifest)
        bar.update(1)
    bar.close()
    manifest["complete"] = len(manifest["shards"]) == n_shards
    _write_json_atomic(out / MANIFEST_NAME, manifest)
    return out


class CachedActivations:
    """Shuffled batches read back from a shard cache.

    Args:
        directory: the cache folder.
        batch_size: rows per batch.
        keys: keys to read (None: all).
        seed: seed of the shard order and of the shuffle buffer.
        buffer_rows: shuffle buffer capacity (None: two shards' worth).
        loop: start another epoch (new shard order) when the shards are exhausted.
        dtype: dtype of the yielded rows (None: as stored).
        device: where batches are yielded.
        part, parts: read only shards ``part, part + parts, ...`` (one data-parallel
            stream of ``parts``; see :class:`StreamGroup`).

    Iterating yields ``{key: (batch_size, d)}``. ``batches(start)`` skips the first
    ``start`` batches (for trainer resume).
    """

    def __init__(self, directory: str | Path, batch_size: int = 4096, *,
                 keys: list[str] | None = None, seed: int = 0, buffer_rows: int | None = None,
                 loop: bool = True, dtype: torch.dtype | None = torch.float32,
                 device: str | torch.device = "cpu", part: int = 0, parts: int = 1):
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        if not self.manifest["shards"]:
            raise InputError("the activation cache has no shard", path=self.directory)
        if len(self.manifest["shards"]) < parts:
            raise InputError(f"the activation cache has {len(self.manifest['shards'])} "
                             f"shard(s), fewer than the {parts} data-parallel streams",
                             path=self.directory)
        self.manifest["shards"] = self.manifest["shards"][part::parts]
        self.keys = list(self.manifest["keys"]) if keys is None else list(keys)
        missing = [k for k in self.keys if k not in self.manifest["keys"]]
        if missing:
            raise InputError(f"the activation cache has no key {missing[0]!r} "
                             f"(it has {', '.join(self.manifest['keys'])})", path=self.directory)
        self.batch_size, self.seed, self.loop = batch_size, seed, loop
        self.dtype, self.device = dtype, device
        largest = max(s["rows"] for s in self.manifest["shards"])
        self.buffer_rows = buffer_rows or max(2 * largest, 2 * batch_size)

    def d(self, key: str) -> int:
        return int(self.manifest["keys"][key])

    @property
    def n_rows(self) -> int:
        return sum(s["rows"] for s in self.manifest["shards"])

    def _chunks(self) -> Iterator[Rows]:
        shards = self.manifest["shards"]
        for epoch in itertools.count():
            order = torch.randperm(len(shards), generator=torch.Generator().manual_seed(
                self.seed * 7919 + epoch)).tolist()
            for i in order:
                tensors = load_safetensors(self.directory / shards[i]["file"])
                yield {k: tensors[k].to(self.device, self.dtype or tensors[k].dtype)
                       for k in self.keys}
            if not self.loop:
                return

    def batches(self, start: int = 0) -> Iterator[Rows]:
        it = ShuffleBuffer(self.buffer_rows, self.batch_size, self.seed).shuffle(self._chunks())
        return itertools.islice(it, start, None)

    def __iter__(self) -> Iterator[Rows]:
        return self.batches(0)


# --------------------------------------------------------------------------------------
# data-parallel streams
# --------------------------------------------------------------------------------------


def stream_seed(seed: int, stream: int) -> int:
    """Shuffle seed of data-parallel stream ``stream`` (stream 0 keeps ``seed``)."""
    return seed + 1_000_003 * stream


class StreamGroup:
    """Several data-parallel streams read as one: batch t is the row-wise concatenation of
    each stream's batch t, in stream order.

    S streams of ``batch_size / S`` rows (each its own windows and shuffle buffer) give
    the same global batches whether one process reads all S or torchrun's W ranks read
    S / W each: rank r's rows are rows ``[r B / W, (r + 1) B / W)`` of the global batch.
    Checkpointable (``state_dict``) when every part is, resumable by ``batches(start)``
    when every part is (:class:`CachedActivations`).
    """

    def __init__(self, parts: list):
        self.parts = list(parts)
        if all(callable(getattr(p, "batches", None)) for p in self.parts):
            self.batches = lambda start=0: self._concat([p.batches(start) for p in self.parts])
        if all(callable(getattr(p, "state_dict", None)) for p in self.parts):
            self.state_dict = lambda: [p.state_dict() for p in self.parts]
            self.load_state_dict = lambda states: [p.load_state_dict(s)
                                                   for p, s in zip(self.parts, states)]

    @staticmethod
    def _concat(iterables) -> Iterator[Rows]:
        for batches in zip(*iterables):
            yield {k: torch.cat([b[k] for b in batches]) for k in batches[0]}

    def __iter__(self) -> Iterator[Rows]:
        return self._concat([iter(p) for p in self.parts])
