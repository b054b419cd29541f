"""A saved k-mer index of a :class:`~dnatlas.audit.target.Target`, built once.

The index holds the canonical k-mers (:mod:`dnatlas.audit.kmers`) starting at every
``stride``-th offset of the target's tokens, inside one record (N-containing k-mers
skipped), sorted:

``keys.npy``
    The packed canonical k-mers, sorted: uint32 for k <= 16, else uint64, shape (n,).
``positions.npy``
    Parallel to ``keys``: ``global_start << 1 | is_rc`` (uint32 when it fits, else uint64),
    where ``global_start`` is the 0-based offset of the k-mer in the target's tokens and
    ``is_rc`` says the canonical k-mer is the minus-strand one.
``meta.json``
    Format, version, k, stride, sizes and the ``source`` of the sequences with its sha256
    (:mod:`dnatlas.audit.target`); written last, so a half-written index has none.
``tokens.npy``, ``segments.tsv``
    For FASTA sources only: a copy of the sequences, so the index stands alone.

Sampling every ``stride``-th start while a query looks up all of its k-mers finds every
exact match of at least ``k + stride - 1`` nucleotides. :func:`load_index` refuses an index
whose sequences changed since it was built (:class:`StaleIndexError`); it is never used
silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatlas._version import __version__
from dnatlas.audit.kmers import canonical_kmers, check_k, key_dtype
from dnatlas.audit.target import (
    Target,
    read_segments_tsv,
    target_from_store,
)
from dnatlas.errors import InputError
from dnatlas.files import atomic_write, check_output_dir, file_digest, write_json
from dnatlas.progress import progress as progress_bar

FORMAT, VERSION = "dnatlas-audit-index", 1
DEFAULT_K, DEFAULT_STRIDE = 16, 4
META_FILE, KEYS_FILE, POSITIONS_FILE = "meta.json", "keys.npy", "positions.npy"
TOKENS_COPY, SEGMENTS_COPY = "tokens.npy", "segments.tsv"
#: names an index folder may hold (``blast`` is the BLAST database, :mod:`.blast`)
_CHUNK = 1 << 21  # k-mer starts packed at a time
INDEX_FILES = frozenset({META_FILE, KEYS_FILE, POSITIONS_FILE, TOKENS_COPY, SEGMENTS_COPY,
                         "blast"})


class StaleIndexError(InputError):
    """The index was built from other sequences than those it is asked to search."""


@dataclass
class KmerIndex:
    """Sorted canonical k-mers of a target and where they start (see the module docstring).

    Attributes:
        k, stride: k-mer length and sampling step (nt).
        keys: sorted packed canonical k-mers, shape (n,).
        positions: ``global_start << 1 | is_rc``, shape (n,).
        target: the sequences indexed.
        notes: remarks made while loading (e.g. a FASTA source file no longer exists).
    """

    k: int
    stride: int
    keys: np.ndarray
    positions: np.ndarray
    target: Target
    notes: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.positions.nbytes)


def position_dtype(n_tokens: int) -> np.dtype:
    """uint32 when ``2 * n_tokens`` fits in it, else uint64."""
    return np.dtype(np.uint32) if 2 * n_tokens + 1 < 2**32 else np.dtype(np.uint64)


def build_index(target: Target, k: int = DEFAULT_K, stride: int = DEFAULT_STRIDE,
                progress: bool = True) -> KmerIndex:
    """Index the canonical k-mers starting at ``tokens`` offsets ``0, stride, 2*stride...``
    that lie inside one record.

    Args:
        target: the sequences (every record, whatever its split).
        k: k-mer length, 1..32 (default 16).
        stride: sampling step >= 1 in nt (default 4): exact matches of >= k + stride - 1 nt
            are always seeded.
        progress: show a progress bar over the bases.
    """
    k = check_k(k)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise InputError(f"stride must be an integer >= 1, got {stride!r}")
    kdt, pdt = key_dtype(k), position_dtype(target.tokens.shape[0])
    records = target.records()
    rec_lo = np.array([lo for _, _, lo, _ in records], dtype=np.int64)
    rec_hi = np.array([hi for _, _, _, hi in records], dtype=np.int64)
    keys, positions = [], []
    n = target.tokens.shape[0]
    chunk = _CHUNK - _CHUNK % stride  # chunks start at multiples of the stride
    with progress_bar(total=n, desc="audit index", unit="nt", disable=not progress,
                      unit_scale=True) as bar:
        for first in range(0, n, chunk):  # records tile tokens: k-mers of the whole...
            values, is_rc, valid = canonical_kmers(
                np.asarray(target.tokens[first:first + chunk + k - 1]), k, stride)
            starts = first + stride * np.arange(values.shape[0], dtype=np.int64)
            r = np.searchsorted(rec_lo, starts, side="right") - 1
            keep = np.flatnonzero(valid & (starts + k <= rec_hi[r]))  # ...inside a record
            keys.append(values[keep])
            positions.append((starts[keep].astype(pdt) << pdt.type(1)) | is_rc[keep].astype(pdt))
            bar.update(min(chunk, n - first))
    keys = np.concatenate(keys) if keys else np.zeros(0, kdt)
    positions = np.concatenate(positions) if positions else np.zeros(0, pdt)
    return KmerIndex(k, stride, *_sort_pairs(keys, positions), target)


def _sort_pairs(keys: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``keys`` sorted, ``positions`` in the same order (ascending within a key)."""
    if keys.dtype == np.uint32 and positions.dtype == np.uint32:
        both = (keys.astype(np.uint64) << np.uint64(32)) | positions  # one sort, no gathers
        both.sort()
        return (both >> np.uint64(32)).astype(np.uint32), both.astype(np.uint32)
    order = np.lexsort((positions, keys))
    return keys[order], positions[order]


def save_index(index: KmerIndex, folder: str | Path, force: bool = False) -> Path:
    """Write ``index`` into ``folder`` atomically, file by file, ``meta.json`` last.

    A folder holding files an index does not write is refused unless ``force``.
    """
    folder = check_output_dir(folder, "index folder", own=INDEX_FILES.__contains__,
                              force=force)
    (folder / META_FILE).unlink(missing_ok=True)  # no meta while half-written
    _save_npy(folder / KEYS_FILE, index.keys)
    _save_npy(folder / POSITIONS_FILE, index.positions)
    target = index.target
    files = {}
    if target.source.get("kind") == "fasta":
        _save_npy(folder / TOKENS_COPY, np.asarray(target.tokens))
        with atomic_write(folder / SEGMENTS_COPY) as fh:
            fh.write(target.segments_tsv())
        files = {TOKENS_COPY: file_digest(folder / TOKENS_COPY),
                 SEGMENTS_COPY: file_digest(folder / SEGMENTS_COPY)}
    else:
        for name in (TOKENS_COPY, SEGMENTS_COPY):
            (folder / name).unlink(missing_ok=True)
    write_json(folder / META_FILE, {
        "format": FORMAT, "version": VERSION, "k": index.k, "stride": index.stride,
        "n_entries": int(index.keys.shape[0]), "key_dtype": index.keys.dtype.name,
        "position_dtype": index.positions.dtype.name, "n_bases": int(target.tokens.shape[0]),
        "n_records": len(target.records()), "source": target.source, "files": files,
        "dnatlas_version": __version__})
    return folder


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_write(path, "wb", encoding=None) as fh:
        np.save(fh, array)


def read_meta(folder: str | Path) -> dict:
    """The ``meta.json`` of an index folder, checked for format and version."""
    path = Path(folder) / META_FILE
    if not Path(folder).is_dir():
        raise InputError("no such index folder", path=folder)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not an audit index (no meta.json; build one with "
                         "'dnatlas audit index')", path=folder) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"corrupt index metadata: {exc}", path=path) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError("not a dnatlas audit index", path=path)
    if meta.get("version") != VERSION:
        raise InputError(f"audit index version {meta.get('version')} is not supported "
                         f"(this dnatlas reads version {VERSION}); rebuild it", path=path)
    return meta


def load_index(folder: str | Path, target: Target | None = None) -> KmerIndex:
    """Open a saved index, refusing it when its sequences changed.

    Args:
        target: the sequences the caller wants searched (e.g. ``target_from_store(STORE)``),
            compared by sha256 and then used; without it, the index's own source is re-read
            and re-hashed (a store: its files; FASTA: every file still present).

    Raises:
        StaleIndexError: the sequences differ from those indexed.
        InputError: the folder is not an index or is damaged.
    """
    folder = Path(folder)
    meta = read_meta(folder)
    source, notes = meta["source"], []
    if target is not None and target.sha256 != source.get("sha256"):
        raise StaleIndexError(f"the index was built from other sequences ({_describe(source)},"
                              f" sha256 {source.get('sha256', '')[:12]}; these are "
                              f"{target.sha256[:12]})", path=folder)
    if target is None and source.get("kind") == "store":
        target = _store_target(folder, source)
    elif target is None and source.get("kind") == "fasta":
        target = _fasta_target(folder, meta, notes)
    elif target is None:
        raise InputError(f"corrupt index metadata: unknown source {source.get('kind')!r}",
                         path=folder / META_FILE)
    keys, positions = _load_npy(folder / KEYS_FILE), _load_npy(folder / POSITIONS_FILE)
    if keys.shape != (meta["n_entries"],) or positions.shape != keys.shape \
            or keys.dtype.name != meta["key_dtype"]:
        raise InputError("damaged index: keys/positions disagree with meta.json; rebuild it",
                         path=folder)
    return KmerIndex(int(meta["k"]), int(meta["stride"]), keys, positions, target, notes)


def _describe(source: dict) -> str:
    if source.get("kind") == "store":
        return f"store {source.get('path')}"
    return "FASTA " + ", ".join(Path(f["path"]).name for f in source.get("files", []))


def _store_target(folder: Path, source: dict) -> Target:
    path = Path(source["path"])
    if not path.is_dir():
        raise StaleIndexError(f"the store it indexes is gone ({path})", path=folder)
    target = target_from_store(path)
    if target.sha256 != source["sha256"]:
        raise StaleIndexError(f"the store {path} changed since the index was built; rebuild "
                              "it (audit index with store and force=True)", path=folder,
                              setting=("store", "force"))
    return target


def _fasta_target(folder: Path, meta: dict, notes: list[str]) -> Target:
    source = meta["source"]
    present = [f for f in source["files"] if Path(f["path"]).is_file()]
    if any(file_digest(f["path"]) != f["sha256"] for f in present):
        raise StaleIndexError("a FASTA file changed since the index was built; rebuild it "
                              "(audit index with genomes and force=True)", path=folder,
                              setting=("genomes", "force"))
    if len(present) < len(source["files"]):
        notes.append("some indexed FASTA files no longer exist; searching the copy saved in "
                     "the index")
    for name, digest in meta.get("files", {}).items():
        if not (folder / name).is_file() or file_digest(folder / name) != digest:
            raise InputError(f"damaged index: {name} is missing or changed; rebuild it",
                             path=folder)
    tokens = _load_npy(folder / TOKENS_COPY)
    genome, record, record_start, offset, length, split = read_segments_tsv(
        folder / SEGMENTS_COPY)
    return Target(tokens, genome, record, record_start, offset, length, split, source)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise InputError("damaged index: file missing; rebuild it", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"damaged index file ({exc}); rebuild it", path=path) from None


def open_or_build(folder: str | Path | None, target: Target, k: int = DEFAULT_K,
                  stride: int = DEFAULT_STRIDE, progress: bool = True
                  ) -> tuple[KmerIndex, str]:
    """The index of ``target`` from ``folder``, built (and saved there) when missing or
    stale. Returns ``(index, what)``, ``what`` one of ``"loaded"``, ``"built"``,
    ``"rebuilt (stale)"`` or ``"in memory"`` (no folder: built, not saved)."""
    if folder is None:
        return build_index(target, k, stride, progress), "in memory"
    folder = Path(folder)
    what = "built"
    if (folder / META_FILE).is_file():
        try:
            return load_index(folder, target), "loaded"
        except StaleIndexError:
            what = "rebuilt (stale)"
    index = build_index(target, k, stride, progress)
    save_index(index, folder, force=False)
    return index, what
