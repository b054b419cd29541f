"""Atomic training checkpoints.

A checkpoint is one ``torch.save`` file holding the model, optimiser, scheduler, RNG and
sampler states and the step. It is written to a temporary file in the same folder,
flushed and fsynced, then renamed over the previous one (``os.replace`` is atomic), so a
process killed at any moment (even ``kill -9`` mid-write) leaves the last good checkpoint
intact. Stale temporary files are removed on the next save or load.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from dnatlas.errors import InputError

CHECKPOINT_NAME = "checkpoint.pt"


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _remove_stale(directory: Path) -> None:
    for tmp in directory.glob(f".{CHECKPOINT_NAME}.*.tmp"):
        tmp.unlink(missing_ok=True)


def save_checkpoint(directory: str | Path, state: dict) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically; returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale(directory)
    final = directory / CHECKPOINT_NAME
    tmp = directory / f".{CHECKPOINT_NAME}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename durable
    finally:
        os.close(dir_fd)
    return final


def load_checkpoint(directory: str | Path) -> dict | None:
    """The last good checkpoint in ``directory``, or None if there is none."""
    directory = Path(directory)
    final = directory / CHECKPOINT_NAME
    if directory.is_dir():
        _remove_stale(directory)
    if not final.is_file():
        return None
    try:
        return torch.load(final, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged file is a user-visible problem, not a traceback
        raise InputError(f"cannot read checkpoint: {exc}", path=final) from None
