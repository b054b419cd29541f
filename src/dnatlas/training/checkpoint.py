"""Atomic training checkpoints, and the run folder they live in.

A checkpoint is one ``torch.save`` file holding the model, optimiser, scheduler, RNG and
sampler states and the step. It is written with :func:`dnatlas.files.atomic_write` (a
temporary file in the same folder, flushed and fsynced, then renamed over the previous
one), so a process killed at any moment (even ``kill -9`` mid-write) leaves the last good
checkpoint intact. Stale temporary files are removed on the next save or load.

A run folder belongs to one training run at a time (:func:`lock_run`), and a new run
refuses a folder holding an earlier one unless told to resume or replace it
(:func:`prepare_run_folder`); replacing removes only the files a run writes
(:data:`RUN_FILES`).
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import numpy as np
import torch

from dnatlas.errors import InputError
from dnatlas.files import atomic_write
from dnatlas.outputs import LOCK_NAME, lock_folder  # noqa: F401 - LOCK_NAME re-exported

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_DIR = "model"
TENSORBOARD_DIR = "tensorboard"
#: Files a training run writes at the top of its folder (besides ``model/`` and
#: ``tensorboard/``); ``--force`` removes these and nothing else.
RUN_FILES = (CHECKPOINT_NAME, "metrics.csv", "train_config.json")
#: Files of ``model/`` (``save_pretrained``).
MODEL_FILES = ("config.json", "model.safetensors")


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
    """Write ``state`` to ``directory/checkpoint.pt`` atomically and durably; returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale(directory)
    final = directory / CHECKPOINT_NAME
    with atomic_write(final, "wb") as fh:
        torch.save(state, fh)
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


# ----------------------------------------------------------------------------- run folder


def lock_run(directory: str | Path):
    """Hold an exclusive lock on the run folder ``directory`` (``flock`` of ``.lock``; the
    lock every output folder takes, :func:`dnatlas.outputs.lock_folder`).

    Raises:
        InputError: another process (a second ``dnatlas train`` into the same ``--out``)
            holds it.
    """
    return lock_folder(directory, "folder", holder="training run")


def run_files(directory: str | Path) -> list[Path]:
    """The files of an earlier run in ``directory`` (see :data:`RUN_FILES`)."""
    directory = Path(directory)
    found = [directory / name for name in RUN_FILES if (directory / name).exists()]
    found += [directory / MODEL_DIR / name for name in MODEL_FILES
              if (directory / MODEL_DIR / name).exists()]
    tensorboard = directory / TENSORBOARD_DIR
    if tensorboard.is_dir():
        found += sorted(tensorboard.glob("events.out.tfevents.*"))
    return found


def prepare_run_folder(directory: str | Path, resume: bool = False, force: bool = False
                       ) -> None:
    """Check the run folder before training starts (call it holding :func:`lock_run`).

    * ``resume``: the folder must hold a checkpoint to resume from.
    * ``force``: the files of an earlier run are removed (only those, see
      :func:`run_files`; other files in the folder are left alone).
    * neither: the folder must not hold an earlier run.

    Raises:
        InputError: an earlier run without ``resume``/``force``, or ``resume`` without a
            checkpoint.
    """
    directory = Path(directory)
    earlier = run_files(directory)
    if resume:
        if not (directory / CHECKPOINT_NAME).is_file():
            raise InputError("resume=True: there is no checkpoint to resume from "
                             f"({CHECKPOINT_NAME})", path=directory, setting="resume")
        return
    if earlier and not force:
        names = ", ".join(sorted({p.relative_to(directory).parts[0] for p in earlier}))
        raise InputError(f"holds an earlier training run ({names}); use resume=True to "
                         "continue it or force=True to replace it", path=directory,
                         setting=("resume", "force"))
    for path in earlier:
        path.unlink(missing_ok=True)
    _remove_stale(directory)
    for sub in (MODEL_DIR, TENSORBOARD_DIR):
        with contextlib.suppress(OSError):  # left when the user put files of their own there
            (directory / sub).rmdir()

