"""Output folders and files: the one mechanism every command that writes results uses.

The rules (the same for ``train``, ``extract``, ``neurons``, ``concepts eval``, ``steer``,
``sae train``, ``sae cache``, ``sae meta``, ``motifs scan``, ``audit index|search``,
``demo``, ``figures``):

* **Checked before the work**: an output folder that is a file, sits under a file or cannot
  be written, or a disk without room for the expected output, is one line and exit code 2
  before anything is computed (:func:`check_free_space`).
* **One writer at a time**: a run holds an exclusive ``flock`` of ``FOLDER/.lock`` for its
  whole life (:func:`lock_folder`); a second run into the same folder fails at once instead of
  interleaving its files with the first one's (``lock_file``: the same for one output file
and its companions, e.g. a BED and its summary).
* **Nothing is replaced without --force**: a folder holding files the command did not write,
  or an earlier result of the command, is refused unless ``force``. With ``force`` the
  earlier result's files (only those the command writes) are removed *before* the new run
  starts, so a rerun that fails midway or writes fewer files never leaves old and new mixed.
* **Finished runs are marked**: the completion marker :data:`COMPLETE_NAME` is written last,
  listing the files of the run; readers call :func:`check_finished` and refuse a folder a
  run holds (its lock) without the marker: interrupted, or still being written.
* **Single output files** go through :func:`dnatlas.files.check_writable_file` and are
  written atomically (:func:`dnatlas.files.atomic_write`); :func:`distinct_outputs` refuses
  two outputs of one command that are the same file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.files import BOOKKEEPING

LOCK_NAME, COMPLETE_NAME = BOOKKEEPING


@contextlib.contextmanager
def lock_folder(directory: str | Path, what: str = "output folder",
                holder: str = "dnatlas run", name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (``flock`` of ``directory/.lock``) for the
    block; the folder must exist.

    Raises:
        InputError: another process holds it (a second run into the same output folder).
    """
    directory = Path(directory)
    path = directory / name
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise InputError(f"cannot lock the {what}: {exc.strerror}", path=directory) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"another {holder} is using this {what} (it holds "
                                 f"{name}); wait for it or choose another out",
                                 path=directory, setting="out") from None
            raise
        yield path  # the file stays empty: folders of identical runs are identical
    finally:
        os.close(fd)  # releases the lock


def is_locked(directory: str | Path) -> bool:
    """Whether a running process holds ``directory``'s lock (readers may refuse it)."""
    path = Path(directory) / LOCK_NAME
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def check_free_space(directory: str | Path, need_bytes: int, what: str = "output") -> None:
    """Refuse to start when the file system of ``directory`` has less than ``need_bytes``
    free (an estimate of what the command writes)."""
    directory = Path(directory)
    probe = next((p for p in [directory, *directory.parents] if p.exists()), Path("."))
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if free < need_bytes:
        raise InputError(f"not enough free disk space for the {what}: needs about "
                         f"{_size(need_bytes)}, {_size(free)} free", path=directory)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def distinct_outputs(*paths: str | Path | None) -> None:
    """Refuse two outputs of one command that are the same file (e.g. ``--summary`` equal
    to ``--out``): the second would be written over the first."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path is None:
            continue
        key = os.path.abspath(path)
        if key in seen:
            raise InputError("two outputs of this command are the same file; give each its "
                             "own name", path=path)
        seen[key] = Path(path)


@dataclass
class OutputFolder:
    """A locked output folder of one run (see :func:`output_folder`)."""

    path: Path
    command: str
    written: list[str] = field(default_factory=list)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def complete(self, files: Iterable[str] = (), **info) -> None:
        """Write the completion marker (last): the run finished and wrote ``files``."""
        from dnatlas._version import __version__
        from dnatlas.files import write_json

        names = sorted(set(files) | set(self.written))
        write_json(self.path / COMPLETE_NAME, {"command": self.command, "files": names,
                                               "dnatlas_version": __version__, **info})


def earlier_outputs(directory: Path, names: Callable[[str], bool]) -> list[str]:
    """Names in ``directory`` that ``names`` claims (an earlier run's outputs)."""
    if not directory.is_dir():
        return []
    return sorted(entry.name for entry in directory.iterdir()
                  if entry.name not in BOOKKEEPING and names(entry.name))


@contextlib.contextmanager
def output_folder(path: str | Path, command: str, own: Callable[[str], bool],
                  force: bool = False, what: str = "output folder",
                  earlier: Callable[[str], bool] | None = None,
                  remove: Callable[[str], bool] | None = None,
                  result: str = "an earlier result") -> Iterator[OutputFolder]:
    """The output folder of one run of ``command``: checked, locked for the block, cleared
    of an earlier result when ``force``, and marked complete by :meth:`OutputFolder.complete`.

    Args:
        own: the names the command writes (anything else is the user's: refused without
            ``force``, never removed).
        earlier: the names that make up a result (default ``own``): a folder holding one is
            refused without ``force`` ("nothing is overwritten without --force").
        remove: the names removed before a forced rerun (default ``earlier``; only names
            ``own`` claims are ever removed); caches a rerun reuses are left out of it.
        result: what an earlier run left, in the refusal ("a steering result").
    """
    from dnatlas.files import check_output_dir

    path = Path(path)
    earlier = earlier or own
    remove = remove or earlier
    check_output_dir(path, what, own=own, force=force)
    with lock_folder(path, what):
        found = earlier_outputs(path, earlier)
        if found and not force:
            shown = ", ".join(found[:2]) + (", ..." if len(found) > 2 else "")
            raise InputError(f"{what} already holds {result}: {shown}; give force=True to "
                             "replace it", path=path, setting=("resume", "force"))
        (path / COMPLETE_NAME).unlink(missing_ok=True)  # unfinished from here on
        if force:
            for name in earlier_outputs(path, lambda n: own(n) and remove(n)):
                target = path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        yield OutputFolder(path, command)


def check_finished(path: str | Path, what: str = "folder") -> None:
    """Refuse to read results from a folder a dnatlas run is writing or did not finish: it
    holds the run's lock but no completion marker. Folders written before dnatlas marked
    its runs (no lock either), and folders of other tools, are read as they are.

    ``path`` may be a file in such a folder. (The SAE subfolders of a multi-layer ``sae
    train`` are written whole at its end, and removed before a forced rerun.)
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if (folder / LOCK_NAME).is_file() and not (folder / COMPLETE_NAME).is_file():
        state = "is still being written" if is_locked(folder) else "is unfinished"
        raise InputError(f"{what} {state}: the run writing it did not finish (no "
                         f"{COMPLETE_NAME}); rerun it", path=folder)


@contextlib.contextmanager
def lock_file(path: str | Path, what: str = "output") -> Iterator[Path]:
    """Hold an exclusive lock on the output file ``path`` for the block (``flock`` of the
    hidden sibling ``.NAME.lock``), so two runs writing the same file (and its companions,
    such as a BED's summary) fail at once instead of mixing their outputs."""
    path = Path(path)
    with lock_folder(path.parent, what, name=f".{path.name}.lock") as lock:
        yield lock
