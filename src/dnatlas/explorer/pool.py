"""Model work on a bounded worker pool: ``workers`` threads, at most ``queue`` requests
waiting; beyond that :class:`Busy` (the app answers 503 with Retry-After). Identical
requests in flight share one computation (igv repeats queries while panning)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor


class Busy(Exception):
    """The pool is full."""


class ModelPool:
    def __init__(self, workers: int, queue: int):
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="dnatlas-model")
        self._pending = 0
        self._inflight: dict = {}

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, key, fn, *args):
        """``fn(*args)`` on the pool (``key`` None: never shared); raises :class:`Busy`."""
        if key is not None and key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        if self._pending >= self.capacity:
            raise Busy(f"the model is busy ({self._pending} requests queued); retry shortly")
        self._pending += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, fn, *args)
        if key is not None:
            self._inflight[key] = future

        def done(f):   # counted until the work ends, even if the client went away
            self._pending -= 1
            if key is not None and self._inflight.get(key) is f:
                del self._inflight[key]

        future.add_done_callback(done)
        return await asyncio.shield(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
