"""One mechanism for running a dnatlas job on several processes under ``torchrun``.

``torchrun`` starts one process per GPU (or per CPU share) and tells each its place through
the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``). A job
made parallel with this module follows one pattern::

    from dnatlas import distributed

    with distributed.session(device) as info:       # init (NCCL on CUDA, gloo on CPU)
        mine = distributed.shard(records, weights=len)     # this rank's share, balanced
        parts = distributed.all_gather_object(work(mine))  # every rank's results, by rank
        total = distributed.all_reduce_array(counts)       # numpy arrays summed over ranks
        distributed.on_main(write_outputs, result)         # rank 0 writes; errors reach all

Without torchrun (``WORLD_SIZE`` unset or 1) every function is the single-process identity:
``shard`` returns all items, ``all_gather_object(x)`` returns ``[x]``, reductions return
their input, and :func:`on_main` just calls the function, so a pipeline has one code path.

Shards are contiguous runs of the items in their given order, cut where the cumulative
weight crosses ``r / W`` of the total (:func:`shard_owners`), so rank 0 holds the first
items, and concatenating the ranks' results in rank order restores the single-process
order. Everything here is deterministic: every rank computes the same partition.

Used by ``dnatlas train`` (DDP), ``extract``, ``neurons`` and ``sae train``; see
docs/distributed.md for launching on one or several nodes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dnatlas.devices import resolve_device
from dnatlas.errors import InputError

__all__ = ["DistInfo", "all_gather_object", "all_reduce_", "all_reduce_array", "all_reduce_sum",
           "average_gradients", "barrier", "broadcast_object", "env_world", "gather_object",
           "is_main", "launched", "mean_over_ranks", "on_main", "rank", "resolve_device",
           "session", "setup", "shard", "shard_owners", "teardown", "world_size"]


@dataclass
class DistInfo:
    """This process's place: ``rank`` of ``world_size``, ``local_rank`` on its node, and the
    device it computes on (``cuda:LOCAL_RANK`` under torchrun on GPUs)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` as torchrun's environment sets them (0, 1, 0 without)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _dist():
    """``torch.distributed`` when a process group is initialised, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def launched() -> bool:
    """Whether this process is one of several (a process group, or torchrun's environment)."""
    return world_size() > 1 or env_world()[1] > 1


def rank() -> int:
    """This process's rank in the initialised group (0 without one)."""
    dist = _dist()
    return dist.get_rank() if dist else 0


_group_rank = rank  # for functions whose ``rank`` argument hides it


def world_size() -> int:
    """Processes in the initialised group (1 without one)."""
    dist = _dist()
    return dist.get_world_size() if dist else 1


def is_main() -> bool:
    """Whether this process writes the outputs (rank 0, or the only process)."""
    return rank() == 0


# ------------------------------------------------------------------------ set-up, teardown


def setup(device: str | None = None) -> DistInfo:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    ``device`` is a user's ``--device`` (None: cuda when available); under torchrun each
    rank uses ``cuda:LOCAL_RANK`` and the NCCL backend, on CPU the gloo backend.

    Raises:
        InputError: an unknown device, or one this machine lacks (see
            :func:`dnatlas.devices.resolve_device`).
    """
    import torch
    import torch.distributed as dist

    rank_, world, local = env_world()
    dev = resolve_device(device)
    use_cuda = dev.type == "cuda"
    if use_cuda and (world > 1 or dev.index is None):
        dev = torch.device(f"cuda:{local}")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank_, world, local, dev)


def teardown(info: DistInfo) -> None:
    """Wait for every rank, then destroy the process group (a no-op for one process)."""
    dist = _dist()
    if info.enabled and dist:
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device: str | None = None) -> Iterator[DistInfo]:
    """The process group of a job, initialised on first use when torchrun launched several
    processes, and kept for the process's lifetime (destroyed at exit), so that a script
    calling several pipelines rendezvouses once.

    Yields a :class:`DistInfo`. With one process nothing is initialised and
    ``info.device`` is ``device`` as given (None stays None, so a job keeps its own
    default); under torchrun it is this rank's resolved device (see :func:`setup`). The
    ranks leave the block together (a barrier); an exception leaves at once (the group
    stays: an :class:`InputError` that every rank raised may be caught and the next job
    run; a rank that fails alone exits, and torchrun stops the others).
    """
    if env_world()[1] <= 1 and _dist() is None:
        yield DistInfo(device=device)
        return
    if _dist() is None:
        info = setup(device)
        atexit.register(_destroy)
    else:
        info = DistInfo(rank(), world_size(), env_world()[2], setup(device).device)
    yield info
    barrier()


def _destroy() -> None:
    dist = _dist()
    if dist is not None:
        dist.destroy_process_group()


# ------------------------------------------------------------------------ partitioning


def shard_owners(weights: Sequence[float] | np.ndarray, world: int | None = None) -> np.ndarray:
    """The rank owning each item: int64 (n,), non-decreasing, so shards are contiguous.

    Item i goes to the rank whose slice ``[r, r + 1) * total / W`` of the cumulative weight
    holds the item's start: each rank's load is within one item's weight of ``total / W``,
    and rank 0 always holds the first item. All-zero weights are split by count.
    """
    world = world_size() if world is None else int(world)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size and (w < 0).any():
        raise ValueError("shard weights must be non-negative")
    if w.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not w.sum() > 0:
        w = np.ones_like(w)
    starts = np.cumsum(w) - w
    return np.minimum((world * starts / w.sum()).astype(np.int64), world - 1)


def shard(items: Sequence | int, rank: int | None = None, world: int | None = None,
          weights: Sequence[float] | Callable[[Any], float] | None = None) -> list:
    """This rank's share of ``items``: a contiguous run, balanced by weight.

    Args:
        items: work items in their single-process order, or an int n for ``range(n)``.
        rank, world: default this process's (:func:`rank`, :func:`world_size`).
        weights: the cost of each item, a sequence or a function of an item (``len``); by
            default ``len(item)`` for ``range`` items (genome spans) and 1 otherwise.

    Returns:
        The items rank ``rank`` of ``world`` takes, in order. The shards of ranks 0..W-1,
        concatenated, are ``items``; every rank computes the same partition.
    """
    items = list(range(items)) if isinstance(items, int) else list(items)
    rank_ = _group_rank() if rank is None else int(rank)
    if weights is None:
        weights = [len(x) if isinstance(x, range) else 1 for x in items]
    elif callable(weights):
        weights = [weights(x) for x in items]
    owners = shard_owners(weights, world)
    return [x for x, owner in zip(items, owners) if owner == rank_]


# ------------------------------------------------------------------------ collectives


def _device():
    """Where the backend's tensors live: this rank's GPU for NCCL, else the CPU."""
    import torch

    dist = _dist()
    if dist and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}


def all_reduce_(tensor, op: str = "sum"):
    """Reduce a torch tensor over all ranks in place (``sum``, ``max`` or ``min``); returns it."""
    dist = _dist()
    if dist and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, _OPS[op]))
    return tensor


def all_reduce_sum(x, info: DistInfo | None = None):
    """Sum a torch tensor over all ranks in place (``dnatlas train``'s loss counts)."""
    return all_reduce_(x, "sum")


def all_reduce_array(array: np.ndarray, op: str = "sum") -> np.ndarray:
    """A numpy array reduced over all ranks (``sum``, ``max``, ``min``); same shape and
    dtype (bool arrays: ``max`` is any, ``min`` all). One process: the array itself."""
    if world_size() == 1:
        return array
    import torch

    a = np.asarray(array)
    t = torch.from_numpy(np.ascontiguousarray(a.astype(np.uint8) if a.dtype == bool else a))
    t = all_reduce_(t.to(_device()), op).cpu().numpy()
    return t.astype(bool) if a.dtype == bool else t


def mean_over_ranks(values: dict) -> dict:
    """``{name: scalar tensor}`` averaged over ranks (one collective); order and devices kept."""
    if world_size() == 1 or not values:
        return values
    import torch

    names = list(values)
    stacked = torch.stack([values[n].detach().to(_device(), torch.float64).reshape(()) for n in names])
    all_reduce_(stacked).div_(world_size())
    return {n: stacked[i].to(values[n].device, values[n].dtype) for i, n in enumerate(names)}


def average_gradients(parameters) -> None:
    """Replace each parameter's gradient by its mean over ranks (one flat collective), as
    DDP does: with equal local batches this is the gradient of the global batch's mean loss."""
    if world_size() == 1:
        return
    import torch

    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    all_reduce_(flat).div_(world_size())
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def all_gather_object(obj) -> list:
    """Every rank's ``obj`` (picklable: arrays, dicts, dataclasses), in rank order."""
    dist = _dist()
    if not dist or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_object(obj) -> list | None:
    """Every rank's ``obj`` in rank order on rank 0; None on the other ranks."""
    dist = _dist()
    if not dist or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank."""
    dist = _dist()
    if not dist or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait until every rank reaches this point (a no-op for one process)."""
    dist = _dist()
    if dist and dist.get_world_size() > 1:
        dist.barrier()


def on_main(fn: Callable, *args, **kwargs):
    """Run ``fn`` on rank 0 only (writing files, checking an output folder) and return its
    (picklable) result on every rank.

    The other ranks wait for it. An :class:`InputError` raised by ``fn`` is raised on every
    rank, so all ranks stop with the same one-line message instead of hanging; any other
    exception is re-raised on rank 0 and becomes a ``RuntimeError`` on the others.
    """
    if world_size() == 1:
        return fn(*args, **kwargs)
    result, error = None, None
    if is_main():
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to every rank below
            error = exc
    shared = broadcast_object((result, _portable(error)))
    if error is not None:
        raise error
    if shared[1] is not None:
        raise shared[1]
    return shared[0]


def _portable(error: BaseException | None):
    """What the other ranks raise for rank 0's ``error``."""
    if error is None or isinstance(error, InputError):
        return error
    return RuntimeError(f"rank 0 failed: {type(error).__name__}: {error}")
