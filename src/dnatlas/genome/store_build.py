"""Building a genome store (:mod:`dnatlas.genome.store`) from FASTA/GenBank genomes.

Splits: held-out genomes go entirely to ``val``. With a validation fraction F > 0, each
record of every other genome also gives one contiguous block of about F of its length to
``val`` (at a position drawn from the seed, the genome ID and the record ID); the rest
stays ``train``, so a record gives up to three segments.

:func:`build_store` reads each input twice (once to check it and plan the layout, once to
write it), so it never holds more than one genome in memory, and it builds into a temporary
directory that is renamed into place only when complete. The free space is checked before
anything is written, tokens are written with ordinary writes (a full disk is an error, not a
SIGBUS), and the temporary directory is removed on any failure (as are those left by
earlier builds of the same store that crashed). ``overwrite`` replaces only a folder that
holds nothing but a store's own files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas._version import __version__
from dnatlas.errors import InputError
from dnatlas.files import check_free_space, check_output_dir, file_digest
from dnatlas.genome.readers import read_records
from dnatlas.genome.sources import (
    GenomeSource,
    collect_sources,
    resolve_genome_ids,
)
from dnatlas.genome.store import (
    BASES,
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    SEGMENT_COLUMNS,
    SEGMENTS_FILE,
    SPLITS,
    TOKENS_FILE,
    GenomeStore,
)
from dnatlas.progress import progress as progress_bar

#: The files a store folder holds; ``overwrite`` refuses a folder with anything else.
STORE_FILES = frozenset({TOKENS_FILE, SEGMENTS_FILE, META_FILE})
#: Bytes kept free beyond the store's own size when checking the disk.
SPACE_MARGIN_BYTES = 16 << 20


# --------------------------------------------------------------------------- splits


def region_split(length: int, val_fraction: float, seed: int, genome: str, record: str
                 ) -> list[tuple[int, int, str]]:
    """Split a record of ``length`` bases into (start, end, split) parts, in order.

    A block of ``round(val_fraction * length)`` bases goes to ``val``; its start is drawn
    uniformly from ``np.random.default_rng([seed, h])`` with ``h`` a stable hash of the genome
    and record IDs. Empty parts are dropped, so there are 1 to 3 parts.
    """
    n_val = int(round(val_fraction * length))
    if n_val == 0:
        return [(0, length, "train")]
    digest = hashlib.sha256(f"{genome}\0{record}".encode()).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
    start = int(rng.integers(0, length - n_val + 1))
    parts = [(0, start, "train"), (start, start + n_val, "val"), (start + n_val, length, "train")]
    return [part for part in parts if part[1] > part[0]]


# --------------------------------------------------------------------------- build


def build_store(inputs: Iterable[str | Path], out: str | Path, manifest: str | Path | None = None,
                val_genomes: Iterable[str] = (), val_fraction: float = 0.0, seed: int = 0,
                progress: bool = True, overwrite: bool = False) -> GenomeStore:
    """Pack genomes into a store directory ``out`` and return it opened.

    Args:
        inputs: FASTA/GenBank files (plain, gzip or bgzip); genome ID from the file name.
        out: the store directory to create.
        manifest: optional TSV of genomes (see :func:`read_manifest`), added after ``inputs``.
        val_genomes: IDs of genomes held out entirely for validation.
        val_fraction: fraction (0 <= F < 1) of each other record held out as one block.
        seed: seed of the position of the held-out blocks.
        progress: show progress (a bar on a terminal, else a plain line every 10 s).
        overwrite: replace an existing store at ``out``.

    Raises:
        InputError: bad inputs, unknown ``val_genomes``, or ``out`` exists (without
            ``overwrite``) or is not a store. No partial store is left behind.
    """
    out = Path(out)
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"validation fraction must be in [0, 1), got {val_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    _check_destination(out, overwrite)
    check_output_dir(out.parent, "folder of the store")
    sources = collect_sources(inputs, manifest)
    held_out = set(resolve_genome_ids(val_genomes, [s.id for s in sources]))
    plans = [_plan_genome(s, s.id in held_out, val_fraction, seed)
             for s in _progress(sources, progress, "checking genomes")]
    _assign_offsets(plans)
    remove_stale_builds(out)
    check_free_space(out.parent, sum(plan.length for plan in plans) + 128
                     + 200 * sum(len(plan.parts) + len(plan.records) for plan in plans),
                     lambda needed, free: "not enough free space for the store: it needs about "
                     f"{_megabytes(needed)}, the disk has {_megabytes(free)} free",
                     margin=SPACE_MARGIN_BYTES)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        _write_tokens(tmp / TOKENS_FILE, plans, progress)
        _write_segments(tmp / SEGMENTS_FILE, plans)
        params = {"val_genomes": sorted(held_out), "val_fraction": val_fraction, "seed": seed,
                  "dnatlas_version": __version__}
        _write_json(tmp / META_FILE, _metadata(plans, params))
        _publish(tmp, out, overwrite)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InputError("no space left on the device while writing the store "
                             "(nothing was kept)", path=out) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GenomeStore.open(out)


def remove_stale_builds(out: str | Path) -> list[Path]:
    """Remove the temporary folders (``STORE.tmp-PID-*``, ``STORE.old-*``) that crashed
    builds of the store ``out`` left; returns them.

    Only folders holding nothing but store files are removed, and never one of a build
    whose process is still running.
    """
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    for tmp in sorted(out.parent.glob(f"{out.name}.tmp-*")) + sorted(
            out.parent.glob(f"{out.name}.old-*")):
        if not tmp.is_dir() or _build_running(tmp.name[len(out.name):]):
            continue
        if {child.name for child in tmp.iterdir()} <= STORE_FILES:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _build_running(suffix: str) -> bool:
    """Whether the build that made a ``.tmp-PID-HEX`` folder is still running."""
    parts = suffix.split("-")
    if not suffix.startswith(".tmp-") or len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


@dataclass
class _GenomePlan:
    """What pass 1 learned about one genome, and where pass 2 writes it."""

    source: GenomeSource
    held_out: bool
    sha256: str
    records: list[dict]  # {"id", "description", "length"} in file order
    parts: list[tuple[str, int, int, str]]  # (record, record_start, length, split)
    counts: dict[str, np.ndarray]  # split -> int64 counts of A, C, G, T, N
    offset: int = 0  # of the genome's first base in tokens.npy

    @property
    def length(self) -> int:
        return sum(r["length"] for r in self.records)


def _plan_genome(source: GenomeSource, held_out: bool, val_fraction: float, seed: int
                 ) -> _GenomePlan:
    """Pass 1: read one genome, check it, and plan its segments and base counts."""
    records, parts = [], []
    counts = {split: np.zeros(len(BASES), dtype=np.int64) for split in SPLITS}
    for rec in read_records(source.path):
        records.append({"id": rec.id, "description": rec.description, "length": len(rec)})
        if held_out:
            splits = [(0, len(rec), "val")]
        else:
            splits = region_split(len(rec), val_fraction, seed, source.id, rec.id)
        for start, end, split in splits:
            parts.append((rec.id, start, end - start, split))
            counts[split] += np.bincount(rec.seq[start:end], minlength=len(BASES))[:len(BASES)]
    return _GenomePlan(source, held_out, file_digest(source.path), records, parts, counts)


def _assign_offsets(plans: Sequence[_GenomePlan]) -> None:
    offset = 0
    for plan in plans:
        plan.offset = offset
        offset += plan.length


def _write_tokens(path: Path, plans: Sequence[_GenomePlan], progress: bool) -> None:
    """Pass 2: stream every genome into ``tokens.npy``, one record at a time.

    The ``.npy`` header is followed by the uint8 codes, written with ordinary writes (not
    through a memory map, where a full disk kills the process with SIGBUS).
    """
    total = sum(plan.length for plan in plans)
    header = {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": (total,)}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for plan in _progress(plans, progress, "writing tokens"):
            expected = iter(plan.records)
            for rec in read_records(plan.source.path):
                want = next(expected, None)
                if want is None or (want["id"], want["length"]) != (rec.id, len(rec)):
                    raise InputError("file changed while the store was being built",
                                     path=plan.source.path, record=rec.id)
                fh.write(rec.seq.tobytes())
            if next(expected, None) is not None or file_digest(plan.source.path) != plan.sha256:
                raise InputError("file changed while the store was being built",
                                 path=plan.source.path)
        fh.flush()
        os.fsync(fh.fileno())


def _write_segments(path: Path, plans: Sequence[_GenomePlan]) -> None:
    """Write ``segments.tsv``: plain tab-separated text (no field holds a tab or newline)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\t".join(SEGMENT_COLUMNS) + "\n")
        for plan in plans:
            offset = plan.offset
            for record, record_start, length, split in plan.parts:
                row = (plan.source.id, record, record_start, offset, length, split,
                       plan.source.taxonomy)
                fh.write("\t".join(map(str, row)) + "\n")
                offset += length


def _metadata(plans: Sequence[_GenomePlan], params: dict) -> dict:
    """The content of ``store.json``."""
    genomes = []
    for plan in plans:
        genomes.append({
            "id": plan.source.id,
            "path": str(plan.source.path.resolve()),
            "sha256": plan.sha256,
            "n_records": len(plan.records),
            "length": plan.length,
            "held_out": plan.held_out,
            "taxonomy": plan.source.taxonomy,
            "metadata": plan.source.metadata,
            "counts": {split: dict(zip(BASES, plan.counts[split].tolist())) for split in SPLITS},
            "records": plan.records,
        })
    split_lengths = {split: sum(int(p.counts[split].sum()) for p in plans) for split in SPLITS}
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "build": params,
        "genomes": genomes,
        "totals": {
            "n_genomes": len(plans),
            "n_records": sum(len(p.records) for p in plans),
            "n_segments": sum(len(p.parts) for p in plans),
            "length": sum(p.length for p in plans),
            "splits": split_lengths,
        },
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")




def _check_destination(out: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an existing store, and that only with ``overwrite``.

    An empty folder is fine. A store folder that also holds other files (the user's own) is
    never replaced, since replacing it would delete them.
    """
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir():
        raise InputError("exists and is a file, not a genome store", path=out)
    if not (out / META_FILE).is_file():
        raise InputError("exists and is not a genome store; refusing to replace it", path=out)
    if not overwrite:
        raise InputError("already exists (use force=True to replace the store)", path=out,
                         setting="force")
    others = sorted(child.name for child in out.iterdir() if child.name not in STORE_FILES)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise InputError(f"holds files that dnatlas did not write ({shown}); refusing to "
                         "replace the store (move them away first)", path=out)


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished store ``tmp`` to ``out``, replacing an old store if allowed."""
    _check_destination(out, overwrite)
    if not out.exists() or not any(out.iterdir()):
        os.rename(tmp, out)  # replaces an empty folder
        return
    old = out.with_name(f"{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _progress(items: Sequence, enabled: bool, desc: str):
    """Progress over ``items``: a bar on a terminal, plain lines in a log (when ``enabled``)."""
    return progress_bar(items, desc=desc, unit="genome", disable=not enabled)


# --------------------------------------------------------------------------- reading

