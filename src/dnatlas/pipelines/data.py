"""Genome data (``dnatlas data``): select GTDB genomes, fetch them from NCBI, pack genomes
into a store, and summarise a store.

    from dnatlas.pipelines.data import SelectCriteria, select_gtdb_genomes
    result = select_gtdb_genomes("bac120_metadata_r220.tsv.gz", SelectCriteria())
    result.summary.format_table(); result.rows          # nothing written without out

    from dnatlas.pipelines.data import StoreSettings, build_genome_store, genome_store_info
    store = build_genome_store(["ecoli_k12_mg1655"], StoreSettings(val_fraction=0.1),
                               out="runs/store").store
    genome_store_info("runs/store")                      # genomes, records, GC, splits

A store and downloaded genomes are files by nature: those functions need ``out``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dnatlas.genome.select import DEFAULT_ASSEMBLY_LEVELS, SelectCriteria, SelectionSummary

if TYPE_CHECKING:
    from dnatlas.genome.fetch import FetchResult
    from dnatlas.genome.store import GenomeStore

__all__ = ["DEFAULT_ASSEMBLY_LEVELS", "SelectCriteria", "SelectResult", "select_gtdb_genomes",
           "FetchSettings", "fetch_ncbi_genomes", "StoreSettings", "StoreResult",
           "build_genome_store", "genome_store_info"]


# ------------------------------------------------------------------------------ select
@dataclass
class SelectResult:
    """How many genomes each criterion removed (``summary.format_table()``), the selected
    manifest rows, and the manifest written (None without ``out``)."""

    summary: SelectionSummary
    rows: list[dict[str, str]] = field(default_factory=list)
    out: Path | None = None


def select_gtdb_genomes(metadata: str | Path, criteria: SelectCriteria | None = None,
                        out: str | Path | None = None, force: bool = False,
                        warn: Callable[[str], None] | None = None) -> SelectResult:
    """Apply ``criteria`` (default: the report's, Appendix C) to a GTDB ``bac120_metadata``
    TSV (optionally gzipped); ``out``: write the manifest TSV there (``force`` replaces
    one). ``warn`` receives non-fatal warnings (default: :func:`warnings.warn`)."""
    from dnatlas.files import check_writable_file
    from dnatlas.genome.select import iter_selected, write_manifest

    criteria = criteria or SelectCriteria()
    if out is not None:
        out = check_writable_file(out, "manifest", force=force)
    summary = SelectionSummary(criteria)
    rows = list(iter_selected(metadata, criteria, summary, warn))
    if out is not None:
        write_manifest(rows, out, force=force)
    return SelectResult(summary, rows, out)


# ------------------------------------------------------------------------------ fetch
@dataclass
class FetchSettings:
    """Options of :func:`fetch_ncbi_genomes`.

    Attributes:
        base_url: NCBI base URL (None: ``$DNATLAS_NCBI_BASE_URL`` or NCBI's own).
        retries: retries per request after a connection error, 5xx answer, truncated
            download or checksum mismatch; backoff: seconds before the first retry,
            doubled after each; timeout: network timeout in seconds.
        jobs: parallel downloads; progress: bars (None: only on a terminal).
    """

    base_url: str | None = None
    retries: int = 5
    jobs: int = 4
    backoff: float = 1.0
    timeout: float = 60.0
    progress: bool | None = None


def fetch_ncbi_genomes(manifest: str | Path, settings: FetchSettings | None = None, *,
                       out: str | Path) -> FetchResult:
    """Download a manifest's genomes (``genome_id`` column) from NCBI into ``out``, verified
    against NCBI's checksums, and write ``out/manifest.tsv`` with a ``path`` column.
    Partial downloads resume; verified files are skipped. Returns the
    :class:`~dnatlas.genome.fetch.FetchResult`."""
    from dnatlas.genome.fetch import fetch_genomes

    s = settings or FetchSettings()
    return fetch_genomes(manifest, out, base_url=s.base_url, retries=s.retries, jobs=s.jobs,
                         backoff=s.backoff, timeout=s.timeout, progress=s.progress)


# ------------------------------------------------------------------------------ stores
@dataclass
class StoreSettings:
    """Options of :func:`build_genome_store`.

    Attributes:
        val_genomes: genome IDs held out entirely for validation (an unambiguous accession
            prefix will do).
        val_fraction: fraction (0 <= F < 1) of every other record held out as one block;
            seed: the seed of the blocks' positions.
        progress: show progress.
    """

    val_genomes: Sequence[str] = ()
    val_fraction: float = 0.0
    seed: int = 0
    progress: bool = True


@dataclass
class StoreResult:
    """The store built (opened) and its summary (:meth:`GenomeStore.info`)."""

    store: GenomeStore
    info: dict


def build_genome_store(inputs: Sequence[str | Path] = (), settings: StoreSettings | None = None,
                       *, out: str | Path, force: bool = False,
                       manifest: str | Path | None = None) -> StoreResult:
    """Pack genomes (FASTA/GenBank files or bundled genome names, and the genomes of a
    ``manifest`` TSV) into a store folder ``out``; ``force`` replaces an existing store."""
    from dnatlas.errors import InputError
    from dnatlas.genome.sources import resolve_bundled_genome
    from dnatlas.genome.store_build import build_store

    if not inputs and not manifest:
        raise InputError("give inputs, manifest, or both", setting=("inputs", "manifest"))
    s = settings or StoreSettings()
    paths = [resolve_bundled_genome(name) for name in inputs]
    store = build_store(paths, out, manifest=manifest, val_genomes=list(s.val_genomes),
                        val_fraction=s.val_fraction, seed=s.seed, progress=s.progress,
                        overwrite=force)
    return StoreResult(store, store.info())


def genome_store_info(store: str | Path) -> dict:
    """Genomes, records, lengths, GC, N count and splits of a store (:meth:`GenomeStore.info`)."""
    from dnatlas.genome.store import GenomeStore

    return GenomeStore.open(store).info()
