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

**Threads.** dnatlas leaves torch's defaults: one intra-op thread per core
(``torch.get_num_threads()``, OpenMP/MKL; set ``OMP_NUM_THREADS`` to share a machine) and
its inter-op pool unused. Every matmul and fused kernel runs on all cores.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

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
