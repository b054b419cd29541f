"""k-mer leakage between the splits of a genome store.

For every held-out (``val``) record: the share of its distinct canonical k-mers (k = 32 by
default; k-mers holding an N skipped; each segment's k-mers stay inside the segment) that
also occur in the training split, and the share of its k-mer positions whose k-mer does.
Per genome, the same over the union of its held-out records (``record`` = ``*``).

The training k-mers are one sorted array of distinct packed values (uint64 for k > 16);
held-out k-mers are looked up with ``np.searchsorted`` chunk by chunk, so memory is about 8
bytes per distinct training k-mer, plus one chunk and the distinct k-mers of one held-out
genome.
"""

from __future__ import annotations

import numpy as np

from dnatlas.audit.kmers import check_k, contains_sorted, iter_canonical, sorted_unique
from dnatlas.audit.target import Target
from dnatlas.errors import InputError
from dnatlas.progress import progress as progress_bar

DEFAULT_K = 32
LEAKAGE_COLUMNS = ("genome", "record", "held_out", "length", "kmers", "shared_kmers",
                   "shared_positions_fraction", "distinct_kmers", "shared_distinct",
                   "shared_fraction")


def _segments(target: Target, split: str) -> list[int]:
    return [i for i, s in enumerate(target.split) if s == split]


def training_kmers(target: Target, k: int = DEFAULT_K, chunk: int = 1 << 22,
                   progress: bool = True) -> np.ndarray:
    """Sorted distinct valid canonical k-mers of the ``train`` segments, shape (m,)."""
    segments = _segments(target, "train")
    parts = []
    with progress_bar(total=int(sum(target.length[i] for i in segments)), unit="nt",
                      desc="leakage: train k-mers", disable=not progress,
                      unit_scale=True) as bar:
        for i in segments:
            lo, n = int(target.offset[i]), int(target.length[i])
            for _, values, _ in iter_canonical(target.tokens[lo:lo + n], k, chunk):
                parts.append(sorted_unique(values))
            bar.update(n)
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    return sorted_unique(np.concatenate(parts))


def leakage(target: Target, k: int = DEFAULT_K, chunk: int = 1 << 22, progress: bool = True
            ) -> list[dict]:
    """Rows of :data:`LEAKAGE_COLUMNS`: per genome with held-out sequence, each of its
    held-out records, then the genome's total (``record`` = ``*``).

    ``kmers``: valid k-mer positions; ``shared_kmers``: those whose k-mer is in training;
    ``distinct_kmers`` / ``shared_distinct``: the same over distinct k-mers;
    ``shared_fraction = shared_distinct / distinct_kmers`` (None when there are none).
    ``held_out``: the genome has no training sequence at all.

    Raises:
        InputError: the target has no splits (FASTA) or no held-out sequence.
    """
    k = check_k(k)
    if not target.has_splits:
        raise InputError("leakage needs a genome store with train and val splits")
    val = _segments(target, "val")
    if not val:
        raise InputError("the store holds no held-out (val) sequence: build it with "
                         "val_genomes or val_fraction", path=target.source.get("path"),
                         setting=("val_genomes", "val_fraction"))
    train = training_kmers(target, k, chunk, progress)
    trained_genomes = {target.genome[i] for i in _segments(target, "train")}
    groups: dict[tuple[str, str], list[int]] = {}
    for i in val:
        groups.setdefault((target.genome[i], target.record[i]), []).append(i)
    per_genome: dict[str, dict] = {}
    with progress_bar(total=int(sum(target.length[i] for i in val)), unit="nt",
                      desc="leakage: held-out k-mers", disable=not progress,
                      unit_scale=True) as bar:
        for (genome, record), segments in groups.items():
            row, distinct = _record_row(target, segments, train, k, chunk, bar)
            row.update(genome=genome, record=record, held_out=genome not in trained_genomes)
            acc = per_genome.setdefault(genome, {"rows": [], "distinct": []})
            acc["rows"].append(row)
            acc["distinct"].append(distinct)
    ordered = []
    for genome, acc in per_genome.items():  # each genome's records, then its total
        distinct = sorted_unique(np.concatenate(acc["distinct"]))
        row = {"genome": genome, "record": "*", "held_out": genome not in trained_genomes}
        for key in ("length", "kmers", "shared_kmers"):
            row[key] = sum(r[key] for r in acc["rows"])
        _finish(row, distinct, train)
        ordered += acc["rows"] + [row]
    return [{c: r[c] for c in LEAKAGE_COLUMNS} for r in ordered]


def _record_row(target, segments, train, k, chunk, bar) -> tuple[dict, np.ndarray]:
    n_kmers = shared = length = 0
    parts = []
    for i in segments:
        lo, n = int(target.offset[i]), int(target.length[i])
        for _, values, _ in iter_canonical(target.tokens[lo:lo + n], k, chunk):
            distinct, counts = sorted_unique(values, return_counts=True)
            n_kmers += values.shape[0]
            shared += int(counts[contains_sorted(train, distinct)].sum())
            parts.append(distinct)
        length += n
        bar.update(n)
    distinct = sorted_unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    row = {"length": length, "kmers": n_kmers, "shared_kmers": shared}
    _finish(row, distinct, train)
    return row, distinct


def _finish(row: dict, distinct: np.ndarray, train: np.ndarray) -> None:
    row["distinct_kmers"] = int(distinct.shape[0])
    row["shared_distinct"] = int(contains_sorted(train, distinct).sum())
    row["shared_fraction"] = (row["shared_distinct"] / row["distinct_kmers"]
                              if row["distinct_kmers"] else None)
    row["shared_positions_fraction"] = row["shared_kmers"] / row["kmers"] if row["kmers"] \
        else None
