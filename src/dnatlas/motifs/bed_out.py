"""Scan genomes for motifs and write the hits as BED6 plus a per-motif TSV summary.

BED6 columns: record ID, start (0-based), end (exclusive), motif label (``ID_NAME``, see
:attr:`dnatlas.motifs.matrices.Motif.label`), log2-odds score (3 decimals; not BED's
0-1000 integer) and strand (``+``/``-``). Lines are sorted by record in file order (genomes
in the order given), then start, then strand (+ first), then motif order.

Quality filtering as in paper 001 (Fig. 3's JASPAR TFBS labels on human chr14, "quality
filtering based on motif frequency and p-value thresholds"; the paper gives no values):
hits must reach the p-value threshold, and ``max_hits_per_kb`` drops a whole motif whose hit
frequency (both strands, per kb of scanned sequence over all genomes) is above it; such a
motif stays in the summary with ``kept = no``.

Hits stream to a temporary file beside the output as each chunk is scanned; the filtered
BED then replaces ``out`` atomically, so memory stays bounded by one chunk's hits.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.files import atomic_write, check_writable_file
from dnatlas.genome.readers import read_records
from dnatlas.motifs.matrices import Motif
from dnatlas.motifs.scan import CHUNK_SIZE, UNIFORM, genome_composition, prepare_motifs, scan_sequence
from dnatlas.progress import progress

SUMMARY_COLUMNS = ("motif_id", "name", "label", "width", "threshold", "hits_plus", "hits_minus",
                   "hits_per_mb_plus", "hits_per_mb_minus", "hits_per_kb", "kept")


@dataclass
class MotifSummary:
    """Hits of one motif over every scanned genome (``scanned_nt`` counts one strand)."""

    motif: Motif
    thresholds: list[float]
    hits_plus: int = 0
    hits_minus: int = 0
    kept: bool = True

    def hits_per_kb(self, scanned_nt: int) -> float:
        return (self.hits_plus + self.hits_minus) / max(scanned_nt, 1) * 1e3


@dataclass
class ScanResult:
    """What :func:`scan_genomes` did: per-motif counts, sequence scanned, hits written."""

    summaries: list[MotifSummary]
    scanned_nt: int
    hits_written: int


def scan_genomes(genomes: Sequence[str | Path], motifs: Sequence[Motif], out: str | Path,
                 summary: str | Path | None = None, pvalue: float = 1e-4,
                 pseudocount: float = 1.0, background: str | Sequence[float] = "uniform",
                 max_hits_per_kb: float | None = None, chunk_size: int = CHUNK_SIZE,
                 force: bool | None = None) -> ScanResult:
    """Scan every genome (FASTA/GenBank, gzipped or not) with every motif, both strands.

    Args:
        out: the BED6 file written (atomically).
        summary: the TSV summary (default ``out`` with ``.summary.tsv`` for ``.bed``).
        pvalue: per-window p-value threshold.
        pseudocount: total pseudocount per matrix column, spread by the background.
        background: ``"uniform"``, ``"genome"`` (each genome's own A/C/G/T composition) or
            4 frequencies A, C, G, T.
        max_hits_per_kb: drop motifs hitting more often than this (both strands, per kb).
        force: False refuses existing outputs, None (library use) replaces them.

    Raises:
        InputError: bad genome or settings, a record ID seen in two genomes, no motif.
    """
    if not motifs:
        raise InputError("no motif to scan")
    if not genomes:
        raise InputError("no genome to scan")
    if max_hits_per_kb is not None and max_hits_per_kb <= 0:
        raise InputError(f"max_hits_per_kb must be above 0, got {max_hits_per_kb}",
                         setting="max_hits_per_kb")
    out = check_writable_file(out, "BED output", force=force)
    summary = default_summary_path(out) if summary is None else Path(summary)
    check_writable_file(summary, "summary output", force=force)
    stats = [MotifSummary(m, []) for m in motifs]
    labels = [m.label for m in motifs]
    seen: dict[str, Path] = {}
    scanned = 0
    fd, raw_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".raw", dir=out.parent)
    try:
        with os.fdopen(fd, "w") as raw:
            for genome in genomes:
                bg = _background(background, genome)
                prepared = prepare_motifs(motifs, pvalue, pseudocount, bg)
                for stat, prep in zip(stats, prepared):
                    stat.thresholds.append(prep.threshold)
                with progress(desc=f"motifs {Path(genome).name}", unit="nt") as bar:
                    for record in read_records(genome):
                        if record.id in seen:
                            raise InputError(f"record {record.id!r} is also in {seen[record.id]}",
                                             path=genome)
                        seen[record.id] = Path(genome)
                        scanned += len(record)
                        done = 0
                        for block in scan_sequence(record.seq, prepared, chunk_size):
                            _write_block(raw, record.id, block, prepared, labels, stats)
                            step = min(chunk_size, len(record) - done)
                            done += step
                            bar.update(step)
        if max_hits_per_kb is not None:
            for stat in stats:
                stat.kept = stat.hits_per_kb(scanned) <= max_hits_per_kb
        dropped = {stat.motif.label for stat in stats if not stat.kept}
        written = _filter_copy(Path(raw_name), out, dropped)
    finally:
        Path(raw_name).unlink(missing_ok=True)
    write_summary(summary, stats, scanned)
    return ScanResult(stats, scanned, written)


def default_summary_path(out: Path) -> Path:
    """``hits.bed`` -> ``hits.summary.tsv``; any other name gets ``.summary.tsv`` appended."""
    stem = out.name[:-4] if out.name.lower().endswith(".bed") else out.name
    return out.with_name(stem + ".summary.tsv")


def _background(background, genome) -> Sequence[float]:
    if isinstance(background, str):
        if background == "uniform":
            return UNIFORM
        if background == "genome":
            return tuple(genome_composition(genome))
        raise InputError(f"background must be uniform, genome or A,C,G,T frequencies, got {background!r}")
    return background


def _write_block(raw, record_id: str, block, prepared, labels, stats) -> None:
    if not len(block):
        return
    widths = np.array([p.width for p in prepared], dtype=np.int64)
    ends = block.start + widths[block.motif]
    lines = [f"{record_id}\t{s}\t{e}\t{labels[m]}\t{v:.3f}\t{'+' if d > 0 else '-'}\n"
             for s, e, m, v, d in zip(block.start.tolist(), ends.tolist(), block.motif.tolist(),
                                      block.score.tolist(), block.strand.tolist())]
    raw.writelines(lines)
    plus = np.bincount(block.motif[block.strand > 0], minlength=len(stats))
    minus = np.bincount(block.motif[block.strand < 0], minlength=len(stats))
    for i in np.flatnonzero(plus + minus):
        stats[i].hits_plus += int(plus[i])
        stats[i].hits_minus += int(minus[i])


def _filter_copy(raw: Path, out: Path, dropped: set[str]) -> int:
    written = 0
    with open(raw) as src, atomic_write(out) as dst:
        for line in src:
            if dropped and line.split("\t", 4)[3] in dropped:
                continue
            dst.write(line)
            written += 1
    return written


def write_summary(path: str | Path, stats: Sequence[MotifSummary], scanned_nt: int) -> None:
    """The per-motif TSV (:data:`SUMMARY_COLUMNS`); per-Mb rates count one strand's length,
    ``threshold`` is the score threshold (several, comma-separated, for several genomes
    with their own backgrounds)."""
    mb = max(scanned_nt, 1) / 1e6
    rows = ["\t".join(SUMMARY_COLUMNS)]
    for s in stats:
        thresholds = ",".join(f"{t:.3f}" for t in dict.fromkeys(s.thresholds))
        rows.append("\t".join([s.motif.id, s.motif.name, s.motif.label, str(s.motif.width),
                               thresholds, str(s.hits_plus), str(s.hits_minus),
                               f"{s.hits_plus / mb:.2f}", f"{s.hits_minus / mb:.2f}",
                               f"{s.hits_per_kb(scanned_nt):.4f}", "yes" if s.kept else "no"]))
    with atomic_write(path) as fh:
        fh.write("\n".join(rows) + "\n")
