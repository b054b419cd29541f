"""Activation folders on disk: ``.npy`` arrays written block by block, and ``meta.json``.

A folder holds activations of **one** model at one site, in one layout and dtype, for any
number of records, layers and strands. ``meta.json`` records what produced them (the
model's name and fingerprint, the site, the layout, dtype and chunking) and, per array, the
record, its sequence hash, the region and strand. :func:`check_compatible` refuses to mix
in activations of anything else, and :meth:`Activations.find` returns an array only when
every key matches, so a cache is never reused after the model, the sequence or the chunking
changed.

Layout ``"LC"`` stores (L, C) (positions x channels, for Gram maps); ``"CL"`` stores (C, L)
(one contiguous row per neuron, for per-neuron statistics over whole genomes). Strand
``"-"`` arrays are in the reverse complement's own order (row j is position ``end - 1 - j``
read on the − strand); ``"paired"`` arrays are (2C, L) or (L, 2C) in forward coordinates,
channels ``C + c`` holding channel ``c`` read on the − strand (for models without RC
equivariance).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.files import atomic_write_text

META_FILE = "meta.json"
FORMAT = "dnatlas-genome-activations"
VERSION = 2
#: settings that must agree for two extractions to share a folder
IDENTITY = ("model_fingerprint", "site", "layout", "dtype", "chunk_size")


def sequence_sha256(seq: np.ndarray) -> str:
    """SHA-256 (hex, 16 chars) of a record's nucleotide codes."""
    return hashlib.sha256(np.ascontiguousarray(seq, dtype=np.uint8).tobytes()).hexdigest()[:16]


def array_file_name(seqid: str, layer: str, strand: str) -> str:
    """File name of one array; record ids that a file name cannot hold get a hash suffix,
    so ``ctg|1`` and ``ctg_1`` never share a file."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", seqid)
    if safe != seqid:
        safe += "-" + hashlib.sha256(seqid.encode()).hexdigest()[:8]
    tag = {"+": "fwd", "-": "rev", "paired": "paired"}[strand]
    return f"{safe}.{layer}.{tag}.npy"


class MemorySink:
    """Collects blocks into an in-memory array of shape (L, C) or (C, L)."""

    def __init__(self, length: int, channels: int, dtype, layout: str):
        shape = (length, channels) if layout == "LC" else (channels, length)
        self.array = np.empty(shape, dtype=dtype)
        self.layout = layout

    def write(self, row: int, block: np.ndarray, channel: int = 0) -> None:
        """Place ``block`` (n, c) at positions ``row..row+n`` and channels ``channel..+c``."""
        n, c = block.shape
        if self.layout == "LC":
            self.array[row:row + n, channel:channel + c] = block
        else:
            self.array[channel:channel + c, row:row + n] = block.T

    def close(self):
        return self.array


class NpySink:
    """Writes blocks into a ``.npy`` file at their offsets (``os.pwrite``), memory flat.

    Writes run in one background thread, so the disk works while the model computes the
    next chunk; a sink holds at most ``PENDING`` blocks not yet written (a copy of each),
    and :meth:`close` waits for them and raises the first write error.
    """

    PENDING = 1
    _writer: ThreadPoolExecutor | None = None

    def __init__(self, path: Path, length: int, channels: int, dtype, layout: str):
        self.path, self.layout, self.dtype = path, layout, np.dtype(dtype)
        self.length, self.channels = length, channels
        shape = (length, channels) if layout == "LC" else (channels, length)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": shape}
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            self.offset = fh.tell()
            fh.truncate(self.offset + length * channels * self.dtype.itemsize)
        self.fd = os.open(path, os.O_WRONLY)
        self.pending: deque = deque()

    @classmethod
    def attach(cls, path: Path, length: int, channels: int, dtype, layout: str) -> NpySink:
        """Write into a file another sink created (another rank's disjoint rows), unchanged
        elsewhere: no header is written and nothing is truncated."""
        sink = cls.__new__(cls)
        sink.path, sink.layout, sink.dtype = path, layout, np.dtype(dtype)
        sink.length, sink.channels = length, channels
        with open(path, "rb") as fh:
            np.lib.format.read_magic(fh)
            shape, _, found = np.lib.format.read_array_header_1_0(fh)
            sink.offset = fh.tell()
        if found != sink.dtype or shape != ((length, channels) if layout == "LC" else
                                            (channels, length)):
            raise ValueError(f"{path} holds {found} {shape}, not the array to write")
        sink.fd = os.open(path, os.O_WRONLY)
        sink.pending = deque()
        return sink

    def write(self, row: int, block: np.ndarray, channel: int = 0) -> None:
        """Write ``block`` (n, c), rows ``row..row+n`` and channels ``channel..channel+c``
        (copied now, written in the background)."""
        size = self.dtype.itemsize
        block = np.asarray(block, dtype=self.dtype)
        n, c = block.shape
        if self.layout == "LC":
            data = np.array(block, order="C")  # (n, c), a copy
            if channel == 0 and c == self.channels:
                pieces = [(data, self.offset + row * self.channels * size)]
            else:
                pieces = [(data[i], self.offset + ((row + i) * self.channels + channel) * size)
                          for i in range(n)]
        else:
            data = np.array(block.T, order="C")  # (c, n), a copy
            pieces = [(data[k], self.offset + ((channel + k) * self.length + row) * size)
                      for k in range(c)]
        self._submit(pieces)

    def _submit(self, pieces: list) -> None:
        if NpySink._writer is None:
            NpySink._writer = ThreadPoolExecutor(1, thread_name_prefix="dnatlas-npy-writer")
        fd = self.fd

        def write_all():
            for buffer, offset in pieces:
                os.pwrite(fd, buffer, offset)

        self.pending.append(NpySink._writer.submit(write_all))
        while len(self.pending) > self.PENDING:
            self.pending.popleft().result()

    def _drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def close(self):
        """Wait for the pending writes (raising the first error) and sync; the array,
        memory-mapped. On an error the file is removed, as by :meth:`abort`."""
        try:
            self._drain()
            os.fsync(self.fd)
        except BaseException:
            self.abort()
            raise
        os.close(self.fd)
        self.fd = None
        return np.load(self.path, mmap_mode="r")

    def abort(self) -> None:
        """Drop the file (pending writes finish first; their errors are ignored)."""
        try:
            self._drain()
        except OSError:
            pass
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self.path.unlink(missing_ok=True)


def read_meta(out: Path) -> dict | None:
    """The folder's ``meta.json`` (None when absent; InputError when damaged or foreign)."""
    path = out / META_FILE
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid meta.json: {exc}", path=path) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError("not a dnatlas activation folder (meta.json has another format)",
                         path=path)
    if meta.get("version") != VERSION:
        raise InputError(f"activation folder of format version {meta.get('version')}, this "
                         f"dnatlas reads version {VERSION}: extract again into a new folder",
                         path=path)
    return meta


def check_compatible(out: Path, old: dict | None, new: dict) -> None:
    """Refuse to add activations to a folder that holds another model's, site's or layout's."""
    if old is None:
        return
    diff = [k for k in IDENTITY if old.get(k) != new.get(k)]
    if diff:
        what = ", ".join(f"{k} {old.get(k)!r} (now {new.get(k)!r})" for k in diff)
        raise InputError(f"the folder holds activations with another {what}; give another "
                         "output folder, or force=True to replace them", path=out,
                         setting="force")


def remove_written(out: Path, meta: dict | None) -> None:
    """Delete what an earlier extraction wrote (its arrays and meta.json), nothing else."""
    if meta is None:
        return
    for entry in meta.get("arrays", []):
        (out / entry["file"]).unlink(missing_ok=True)
    (out / META_FILE).unlink(missing_ok=True)


def merge_meta(out: Path, old: dict | None, meta: dict) -> None:
    """Write ``meta.json`` atomically, keeping ``old``'s entries of other arrays."""
    if old is not None:
        same = {(a["seqid"], a["layer"], a["strand"]) for a in meta["arrays"]}
        kept = [a for a in old.get("arrays", [])
                if (a["seqid"], a["layer"], a["strand"]) not in same]
        meta["arrays"] = kept + meta["arrays"]
        meta["rc_permutation"] = {**old.get("rc_permutation", {}), **meta["rc_permutation"]}
    text = json.dumps(meta, indent=1)
    # one line per integer list (shapes, permutations)
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", text)
    atomic_write_text(out / META_FILE, text)


@dataclass
class Activations:
    """A folder written by :func:`dnatlas.analysis.extract_folder.extract_to_dir`.

    Attributes:
        path: the folder; meta: the parsed ``meta.json``.
    """

    path: Path
    meta: dict

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(a["layer"] for a in self.meta["arrays"]))

    @property
    def seqids(self) -> list[str]:
        return list(dict.fromkeys(a["seqid"] for a in self.meta["arrays"]))

    @property
    def layout(self) -> str:
        return self.meta["layout"]

    @property
    def n_arrays(self) -> int:
        """Arrays the folder holds (records x layers x strands)."""
        return len(self.meta["arrays"])

    def entry(self, layer: str | None = None, strand: str = "+", seqid: str | None = None) -> dict:
        """The metadata entry of one array (layer/seqid may be omitted when unique)."""
        found = [a for a in self.meta["arrays"]
                 if a["strand"] == strand and (layer is None or a["layer"] == layer)
                 and (seqid is None or a["seqid"] == seqid)]
        if len(found) != 1:
            what = f"layer={layer!r} strand={strand!r} seqid={seqid!r}"
            raise InputError(f"{len(found)} activation arrays match {what} "
                             f"(layers: {', '.join(self.layers)}; records: {', '.join(self.seqids)})",
                             path=self.path)
        return found[0]

    def find(self, layer: str, strand: str, seqid: str, sha: str, start: int, end: int
             ) -> dict | None:
        """The entry of exactly this array (same record sequence and region), or None."""
        for a in self.meta["arrays"]:
            if (a["layer"], a["strand"], a["seqid"], a.get("sequence_sha256"), a["start"],
                    a["end"]) == (layer, strand, seqid, sha, start, end):
                return a
        return None

    def load(self, layer: str | None = None, strand: str = "+", seqid: str | None = None,
             mmap: bool = True) -> np.ndarray:
        """One array, memory-mapped read-only by default; shape per ``layout``."""
        entry = self.entry(layer, strand, seqid)
        return self.load_entry(entry, mmap)

    def load_entry(self, entry: dict, mmap: bool = True) -> np.ndarray:
        """The array of a metadata entry, checked against its recorded shape."""
        path = self.path / entry["file"]
        try:
            array = np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as exc:
            raise InputError(f"damaged activation array ({exc})", path=path) from None
        if list(array.shape) != list(entry["shape"]):
            raise InputError(f"activation array has shape {list(array.shape)}, meta.json says "
                             f"{entry['shape']}", path=path)
        return array

    def rc_permutation(self, layer: str) -> np.ndarray | None:
        perm = self.meta.get("rc_permutation", {}).get(layer)
        return None if perm is None else np.asarray(perm, dtype=np.int64)


def open_activations(path: str | Path) -> Activations:
    """Open an activation folder (raises :class:`InputError` if it is not one)."""
    path = Path(path)
    meta = read_meta(path)
    if meta is None:
        raise InputError("not an activation folder (no meta.json)", path=path)
    return Activations(path, meta)
