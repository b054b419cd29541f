"""Motif scanning (``dnatlas motifs scan``): position-weight-matrix hits of JASPAR, MEME or
TRANSFAC matrices on both strands of genomes (lightmotif), as sorted BED6 plus a per-motif
TSV summary.

    from dnatlas.pipelines.motifs import MotifScanSettings, scan_motifs
    result = scan_motifs(["ecoli_k12_mg1655"], MotifScanSettings(jaspar="CORE:prokaryotes"),
                         out="runs/motifs.bed")
    result.summaries      # per-motif hits on each strand, threshold, kept

lightmotif and pyjaspar are the ``motifs`` extra: ``pip install 'dnatlas[motifs]'``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.files import check_writable_file
from dnatlas.genome.sources import resolve_bundled_genome
from dnatlas.motifs.bed_out import MotifSummary, default_summary_path
from dnatlas.outputs import distinct_outputs, lock_file

__all__ = ["MotifScanSettings", "MotifScanResult", "scan_motifs", "default_summary_path"]


@dataclass
class MotifScanSettings:
    """Options of :func:`scan_motifs`.

    Attributes:
        jaspar: a JASPAR collection, ``COLLECTION[:TAXON]`` (e.g. ``CORE:vertebrates``),
            read offline by pyjaspar; or
        motif_files: JASPAR, MEME or TRANSFAC matrix files (format read from content).
        jaspar_release: the JASPAR release of ``jaspar``.
        pvalue: per-window p-value threshold; pseudocount: total per matrix column.
        background: ``"uniform"``, ``"genome"`` (each genome's own composition) or four
            frequencies A, C, G, T.
        max_hits_per_kb: drop motifs with more hits per kb (both strands); None keeps all.
        chunk_size: bases scanned at a time (bounds memory).
    """

    jaspar: str | None = None
    motif_files: Sequence[str | Path] = ()
    jaspar_release: str = "JASPAR2024"
    pvalue: float = 1e-4
    pseudocount: float = 1.0
    background: str | Sequence[float] = "uniform"
    max_hits_per_kb: float | None = None
    chunk_size: int = 1 << 20


@dataclass
class MotifScanResult:
    """Per-motif counts, the sequence scanned and the hits written; the BED6 and summary
    TSV written (None without ``out``)."""

    summaries: list[MotifSummary] = field(default_factory=list)
    scanned_nt: int = 0
    hits_written: int = 0
    out: Path | None = None
    summary: Path | None = None

    @property
    def dropped(self) -> int:
        """Motifs dropped by ``max_hits_per_kb``."""
        return sum(not s.kept for s in self.summaries)


def _motifs(settings: MotifScanSettings):
    from dnatlas.motifs import jaspar_motifs, read_motif_files

    if bool(settings.jaspar) == bool(settings.motif_files):
        raise InputError("give the matrices: jaspar (a collection) or motif_files (not both)",
                         setting=("jaspar", "motif_files"))
    if settings.jaspar:
        return jaspar_motifs(settings.jaspar, release=settings.jaspar_release)
    return read_motif_files(settings.motif_files)


def scan_motifs(genomes: Sequence[str | Path], settings: MotifScanSettings,
                out: str | Path | None = None, force: bool = False,
                summary: str | Path | None = None) -> MotifScanResult:
    """Scan ``genomes`` (FASTA/GenBank files or bundled genome names) with the matrices of
    ``settings``, both strands.

    ``out``: the BED6 written (atomically); ``summary``: the per-motif TSV (default: ``out``
    with ``.summary.tsv``). Without ``out`` the hits are counted, not kept. ``force``
    replaces existing outputs.
    """
    from dnatlas.motifs import scan_genomes

    if out is not None:
        out = check_writable_file(out, "BED output", force=force)
        summary = Path(summary) if summary else default_summary_path(out)
        distinct_outputs(out, summary)
        check_writable_file(summary, "summary output", force=force)
    paths = [resolve_bundled_genome(genome) for genome in genomes]
    motifs = _motifs(settings)
    kw = dict(pvalue=settings.pvalue, pseudocount=settings.pseudocount,
              background=settings.background, max_hits_per_kb=settings.max_hits_per_kb,
              chunk_size=settings.chunk_size)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="dnatlas-motifs-") as tmp:
            found = scan_genomes(paths, motifs, Path(tmp) / "hits.bed", **kw)
    else:
        with lock_file(out, "BED output"):
            found = scan_genomes(paths, motifs, out, summary=summary, force=force, **kw)
    return MotifScanResult(found.summaries, found.scanned_nt, found.hits_written, out,
                           summary if out is not None else None)
