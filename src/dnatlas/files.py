"""File mechanics shared by every reader and writer: gzip-aware text opening, atomic
writes that survive crashes, and output-folder checks made before long work starts.

* :func:`open_text`: open a text file, decompressing gzip (detected by its magic bytes,
  not its suffix).
* :func:`atomic_write`: write a file through a temporary sibling that is fsynced and then
  renamed over the target, so a reader never sees half a file and a crash leaves the old
  one. Files are created with the usual permissions (0666 minus the umask).
* :func:`write_json`: atomic JSON with NaN/inf as null; :func:`load_safetensors`: read
  weights with one-line errors for missing, empty, truncated or foreign files.
* :func:`check_writable_file` / :func:`check_output_dir` / :func:`check_free_space`: fail
  early with one line when an output cannot be written or does not fit on its disk, before
  any work is done.
* :func:`file_digest`: the hex digest (sha256 by default) of a file's bytes, the one key
  every cache and download check uses for a file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from dnatlas.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
#: bookkeeping files of an output folder (:mod:`dnatlas.outputs`): its lock and its
#: completion marker, never counted as the user's files
BOOKKEEPING = (".lock", ".complete.json")


def is_gzip(path: str | Path) -> bool:
    """Whether ``path`` starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


@contextlib.contextmanager
def open_text(path: str | Path, encoding: str = "utf-8", errors: str = "strict",
              newline: str | None = None) -> Iterator[IO[str]]:
    """Context manager reading ``path`` as text, gunzipping it when it starts with the gzip
    magic bytes (not by its suffix). The file is opened once and peeked at, so a pipe
    (``<(zcat a.gff.gz)``) works too.

    Raises :class:`InputError` when the file is missing, a folder, unreadable, a damaged
    gzip stream, or (with ``errors="strict"``) not valid text in ``encoding``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.peek(2)[:2] == GZIP_MAGIC
            binary = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            with io.TextIOWrapper(binary, encoding=encoding, errors=errors,
                                  newline=newline) as handle:
                yield handle
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not {encoding} text (byte {exc.object[exc.start]:#04x})",
                         path=path) from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read file: {exc}", path=path) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """Context manager yielding a file object whose content replaces ``path`` on success.

    The data is written to a temporary file in the same folder, flushed and fsynced, then
    renamed over ``path`` (and the folder fsynced). On an exception the temporary file is
    removed and ``path`` is untouched.
    """
    text = {} if "b" in mode else {"encoding": encoding, "newline": newline}
    with atomic_path(path) as tmp, open(tmp, mode, **text) as fh:
        yield fh


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary sibling path for libraries that write by file name (safetensors,
    ``torch.save``); it is fsynced and renamed over ``path`` when the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_safetensors(path: str | Path, device: str = "cpu") -> dict:
    """All tensors of a safetensors file (truncated, empty or foreign files: InputError)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError("missing weights file", path=path)
    if path.stat().st_size == 0:
        raise InputError("weights file is empty", path=path)
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"damaged or not a safetensors file ({first})", path=path) from None


def load_weights_file(path: str | Path, weights_only: bool = True) -> dict:
    """A state dict from ``.safetensors`` (see :func:`load_safetensors`) or a torch pickle
    (``.bin``/``.ckpt``; ``weights_only=False`` for Lightning checkpoints, which pickle
    more than tensors), with one-line errors for damaged files."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's problem
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"damaged or not a torch weights file ({first[:120]})",
                         path=path) from None
    return state.get("state_dict", state) if isinstance(state, dict) else state


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of the bytes of the file at ``path`` (``algorithm``: any name
    :mod:`hashlib` knows, e.g. ``"sha256"``, ``"md5"``), read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def json_safe(value):
    """``value`` with NaN/inf as None and numpy scalars/arrays as Python values, recursively
    (JSON has no NaN: browsers' ``JSON.parse`` rejects it)."""
    import math

    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data, indent: int | None = 2) -> None:
    """Write ``data`` as JSON atomically, NaN and inf as null (see :func:`json_safe`)."""
    import json

    text = json.dumps(json_safe(data), indent=indent, allow_nan=False)
    atomic_write_text(path, text + "\n")


def check_writable_file(path: str | Path, what: str = "output",
                        force: bool | None = None) -> Path:
    """Refuse an output file that cannot be written: it is a folder, or sits under a file
    or in a read-only folder. Creates missing parent folders.

    Args:
        force: False refuses an existing file (a command's ``--force`` replaces it);
            None (library use) does not look.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} is a folder, not a file", path=path)
    _make_parents(path.parent, what)
    if path.exists() and force is False:
        raise InputError(f"{what} exists; give force=True to replace it", path=path,
                         setting="force")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what} is not writable", path=path)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} folder is not writable", path=path.parent)
    return path


def check_output_dir(path: str | Path, what: str = "output folder",
                     own: Callable[[str], bool] | None = None, force: bool = False) -> Path:
    """Refuse an output folder that is a file, sits under a file, or is not writable;
    create it when missing.

    Args:
        own: tells the names a command itself writes; an existing folder holding anything
            else is refused unless ``force`` (which writes beside those files and never
            deletes them).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} is a file, not a folder", path=path)
    _make_parents(path, what)
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{what} is not writable", path=path)
    if own is not None and not force:
        foreign = sorted(entry.name for entry in path.iterdir()
                         if entry.name not in BOOKKEEPING and not own(entry.name))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise InputError(f"{what} holds files this command did not write ({shown}); "
                             "give another folder, or force=True to write beside them",
                             path=path, setting="force")
    return path


def check_free_space(folder: str | Path, needed: int, message: Callable[[int, int], str],
                     margin: int = 0, setting: str | tuple[str, ...] | None = None) -> None:
    """Refuse to start writing ``needed`` bytes (plus ``margin``) into ``folder`` when its
    disk has less free; the error's text is ``message(needed, free)``, naming ``setting``."""
    free = shutil.disk_usage(folder).free
    if free < needed + margin:
        raise InputError(message(needed, free), path=Path(folder), setting=setting)


def _make_parents(directory: Path, what: str) -> None:
    for parent in [directory, *directory.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{what} would sit under a file", path=parent)
            break
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the {what}: {exc.strerror}", path=directory) from None
