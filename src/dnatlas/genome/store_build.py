"""Building a genome store (:mod:`dnatlas.genome.store`) from FASTA/GenBank genomes.

Splits: held-out genomes go entirely to ``val``. With a validation fraction F > 0, each
record of every other genome also gives one contiguous block of about F of its length to
``val`` (at a position drawn from the seed, the genome ID and the record ID); the rest
stays ``train``, so a record gives up to three segments.

:func:`build_store` reads each input twice (once to check it and plan the layout, once to
write it), so it never holds more than one genome in memory, and it builds into a temporary
directory that is renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dnatlas import __version__
from dnatlas.errors import InputError
from dnatlas.genome.readers import genome_id_from_path, read_records
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


@dataclass
class GenomeSource:
    """An input genome: its ID, file, taxonomy and any extra manifest columns."""

    id: str
    path: Path
    taxonomy: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def bundled_genome_paths() -> list[Path]:
    """The genomes shipped with dnatlas (``bundled/genomes/*.fa.gz``), sorted by name."""
    folder = Path(str(resources.files("dnatlas") / "bundled" / "genomes"))
    return sorted(folder.glob("*.fa.gz"))


# --------------------------------------------------------------------------- inputs


def read_manifest(path: str | Path) -> list[GenomeSource]:
    """Read a manifest TSV: a header row with ``genome_id``, ``path`` and optionally
    ``taxonomy``; other columns are kept as metadata. Relative paths are relative to the
    manifest's directory. Blank lines are skipped.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("manifest not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read manifest: {exc}", path=path) from None
    rows = [(number, line.split("\t")) for number, line in enumerate(lines, start=1)
            if line.strip()]
    if not rows:
        raise InputError("manifest is empty", path=path)
    header_line, header = rows[0]
    missing = [name for name in ("genome_id", "path") if name not in header]
    if missing:
        raise InputError(f"manifest header lacks column(s) {', '.join(missing)}", path=path,
                         line=header_line)
    sources = []
    for number, values in rows[1:]:
        if len(values) != len(header):
            raise InputError(f"expected {len(header)} tab-separated fields, found {len(values)}",
                             path=path, line=number)
        row = dict(zip(header, (value.strip() for value in values)))
        if not row["genome_id"] or not row["path"]:
            raise InputError("empty genome_id or path", path=path, line=number)
        genome_path = path.parent / row["path"]
        if not genome_path.is_file():
            raise InputError(f"genome file not found: {genome_path}", path=path, line=number)
        metadata = {k: v for k, v in row.items() if k not in ("genome_id", "path", "taxonomy")}
        sources.append(GenomeSource(row["genome_id"], genome_path, row.get("taxonomy", ""),
                                    metadata))
    return sources


def collect_sources(inputs: Iterable[str | Path], manifest: str | Path | None = None
                    ) -> list[GenomeSource]:
    """The input genomes: ``inputs`` (ID from the file name) then the manifest's rows.

    Raises:
        InputError: no genome at all, or two genomes with the same ID.
    """
    sources = [GenomeSource(genome_id_from_path(p), Path(p)) for p in inputs]
    if manifest is not None:
        sources += read_manifest(manifest)
    if not sources:
        raise InputError("no input genomes (give FASTA/GenBank files or a manifest)")
    seen: dict[str, Path] = {}
    for source in sources:
        if not source.id or any(c in source.id for c in "\t\n\r"):
            raise InputError(f"invalid genome ID {source.id!r}", path=source.path)
        if source.id in seen:
            raise InputError(f"duplicate genome ID {source.id!r} (also from {seen[source.id]})",
                             path=source.path)
        seen[source.id] = source.path
    return sources


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
        progress: show tqdm progress bars (only when stderr is a terminal).
        overwrite: replace an existing store at ``out``.

    Raises:
        InputError: bad inputs, unknown ``val_genomes``, or ``out`` exists (without
            ``overwrite``) or is not a store. No partial store is left behind.
    """
    out = Path(out)
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"validation fraction must be in [0, 1), got {val_fraction}")
    _check_destination(out, overwrite)
    sources = collect_sources(inputs, manifest)
    held_out = set(val_genomes)
    unknown = held_out - {s.id for s in sources}
    if unknown:
        raise InputError(f"unknown validation genome(s): {', '.join(sorted(unknown))}")
    plans = [_plan_genome(s, s.id in held_out, val_fraction, seed)
             for s in _progress(sources, progress, "checking genomes")]
    _assign_offsets(plans)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        _write_tokens(tmp / TOKENS_FILE, plans, progress)
        _write_segments(tmp / SEGMENTS_FILE, plans)
        params = {"val_genomes": sorted(held_out), "val_fraction": val_fraction, "seed": seed,
                  "dnatlas_version": __version__}
        _write_json(tmp / META_FILE, _metadata(plans, params))
        _publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GenomeStore.open(out)


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
    return _GenomePlan(source, held_out, _sha256(source.path), records, parts, counts)


def _assign_offsets(plans: Sequence[_GenomePlan]) -> None:
    offset = 0
    for plan in plans:
        plan.offset = offset
        offset += plan.length


def _write_tokens(path: Path, plans: Sequence[_GenomePlan], progress: bool) -> None:
    """Pass 2: stream every genome into ``tokens.npy``, one record at a time."""
    total = sum(plan.length for plan in plans)
    tokens = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(total,))
    for plan in _progress(plans, progress, "writing tokens"):
        offset = plan.offset
        expected = iter(plan.records)
        for rec in read_records(plan.source.path):
            want = next(expected, None)
            if want is None or (want["id"], want["length"]) != (rec.id, len(rec)):
                raise InputError("file changed while the store was being built",
                                 path=plan.source.path, record=rec.id)
            tokens[offset:offset + len(rec)] = rec.seq
            offset += len(rec)
        if _sha256(plan.source.path) != plan.sha256:
            raise InputError("file changed while the store was being built",
                             path=plan.source.path)
    tokens.flush()
    del tokens


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_destination(out: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an existing store, and that only with ``overwrite``."""
    if not out.exists():
        return
    if not overwrite:
        raise InputError("already exists (use --force to replace the store)", path=out)
    if not (out / META_FILE).is_file():
        raise InputError("exists and is not a genome store; refusing to replace it", path=out)


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished store ``tmp`` to ``out``, replacing an old store if allowed."""
    _check_destination(out, overwrite)
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.with_name(f"{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _progress(items: Sequence, enabled: bool, desc: str):
    """tqdm over ``items`` when ``enabled`` and stderr is a terminal."""
    return tqdm(items, desc=desc, unit="genome", disable=None if enabled else True)


# --------------------------------------------------------------------------- reading

