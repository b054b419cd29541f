"""Process settings for throughput on CPU: the memory allocator (and the thread counts used).

**Allocator.** glibc serves every allocation above its mmap threshold (at most 32 MiB) with
a fresh ``mmap``: each such tensor is zero-filled page by page by the kernel on first touch,
and returned to the system when freed. Training and extraction allocate tensors of that
size at every step (an SAE's (4096, 4096) float32 codes are 64 MiB; a ``small`` model's
(8, 2048, 768) activations 48 MiB), so an out-of-place elementwise op over them costs 4-5x
an in-place one (a ReLU over 64 MiB: 90 ms against 22 ms on the 2-core CPU of
``docs/benchmarks.md``). :func:`tune_allocator` raises the mmap threshold to 1 GiB and keeps
freed memory in the heap, so such buffers are reused from one step to the next; the
process then keeps its peak memory instead of returning it. It is a no-op off glibc and
when the environment sets ``DNATLAS_MALLOC_TUNING=0``.

**Threads.** dnatlas uses torch's thread count, one per core by default
(``torch.get_num_threads()``; ``OMP_NUM_THREADS`` or ``torch.set_num_threads`` change it),
in two ways. Training runs every operation on all of them (OpenMP/MKL intra-op threads).
Inference of DNAtlas (extraction, the SAE activation stream, evaluation) instead runs,
inside :func:`worker_threads`, with one intra-op thread per operation and hands
independent pieces of work (tiles of positions, blocks of rows to convert) to that many
worker threads (:func:`parallel`). Pieces are handed out one at a time, so a worker whose
core is shared with another process just takes fewer of them; an intra-op parallel
operation instead waits at a barrier for its slowest thread, every operation: on the 2-core
machine of ``docs/benchmarks.md`` shared with one other job, the tiny model's inference ran
2-5x slower with 2 OpenMP threads than with 1, and as fast as with 1 using 2 workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_log = logging.getLogger(__name__)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Let glibc reuse large freed blocks instead of re-mapping them (once per process).

    Returns whether the allocator is tuned. See the module docstring.
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if os.environ.get("DNATLAS_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return _tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        ok = False
    if not ok:
        _log.info("could not tune the memory allocator (not glibc); large tensors are mmap'd")
    _tuned = ok
    return _tuned


_pool: ThreadPoolExecutor | None = None
_local = threading.local()


@contextlib.contextmanager
def worker_threads(device=None):
    """Run the calling thread with one intra-op thread, and :func:`parallel` in as many
    worker threads as torch had intra-op threads (CPU only; nested calls, other devices and
    a single thread change nothing). See the module docstring."""
    import torch

    n = torch.get_num_threads()
    if (device is not None and torch.device(device).type != "cpu") or n < 2 \
            or getattr(_local, "workers", 1) > 1:
        yield
        return
    _local.workers = n
    torch.set_num_threads(1)
    try:
        yield
    finally:
        _local.workers = 1
        torch.set_num_threads(n)


def parallel(fn: Callable, items: list) -> None:
    """``fn(item)`` for every item (results dropped), in the worker threads of an enclosing
    :func:`worker_threads`, else in order in the calling thread. Workers run with one
    intra-op thread and the caller's grad mode (inference mode or no grad); ``fn`` must
    write disjoint outputs."""
    import torch

    global _pool
    n = getattr(_local, "workers", 1)
    if n < 2 or len(items) < 2:
        for item in items:
            fn(item)
        return
    if _pool is None or _pool._max_workers != n:
        _pool = ThreadPoolExecutor(n, thread_name_prefix="dnatlas-worker")
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def task(item):
        if getattr(_local, "threads", 0) != 1:
            torch.set_num_threads(1)  # this worker's OpenMP and MKL threads
            _local.threads = 1
        mode = torch.inference_mode() if inference else torch.set_grad_enabled(grad)
        with mode:
            fn(item)

    for _ in _pool.map(task, items):
        pass
