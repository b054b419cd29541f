"""Data-parallel set-up for ``torchrun`` (DDP): NCCL on CUDA, gloo on CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dnatlas.devices import resolve_device

__all__ = ["DistInfo", "all_reduce_sum", "resolve_device", "setup", "teardown"]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> DistInfo:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    ``device`` is a user's ``--device`` (None: cuda when available); under torchrun each
    rank uses ``cuda:LOCAL_RANK``.

    Raises:
        InputError: an unknown device, or one this machine lacks (see
            :func:`dnatlas.devices.resolve_device`).
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank, local = int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    dev = resolve_device(device)
    use_cuda = dev.type == "cuda"
    if use_cuda and (world > 1 or dev.index is None):
        dev = torch.device(f"cuda:{local}")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def all_reduce_sum(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
