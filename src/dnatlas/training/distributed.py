"""Data-parallel set-up for ``torchrun`` (DDP): kept for importers; the mechanism is
:mod:`dnatlas.distributed`, shared with ``extract``, ``neurons`` and ``sae train``."""

from __future__ import annotations

from dnatlas.distributed import DistInfo, all_reduce_sum, resolve_device, setup, teardown

__all__ = ["DistInfo", "all_reduce_sum", "resolve_device", "setup", "teardown"]
