"""Neuron catalog: which neurons detect which annotated features, over whole genomes.

**Strands with RCPS.** Label tracks are strand-aware (row 0: features on the + strand,
row 1: on the − strand, both in forward coordinates). A neuron reads the strand it is run
on, so neuron ``n`` is scored against

- row 0 with its activation on the forward sequence, ``acts[n, i]``, and
- row 1 with its activation on the reverse-complement sequence at the same nucleotide,
  which RCPS gives without a second pass: ``acts[perm[n], i]`` (``perm`` from
  ``model.rc_channel_permutation``), i.e. its RC partner on the forward strand.

Both strands are pooled into one ranking of ``2 N`` samples per neuron, so a start-codon
neuron is credited for genes on both strands, and the chance rate of a track is
``(P+ + P−) / 2N``. Of an RC pair only one member is the *sense* detector of a stranded
feature: its partner, read on its own strand, detects the feature's reverse complement
(e.g. CAT for a start-codon neuron) and scores near chance; for strand-symmetric features
(palindromes) both members can score.

**Footnote 6.** The report's start-codon neuron fires on the codon's 2nd nucleotide and
the stop-codon neuron on its 1st; ``footnote6=True`` replaces the ``start_codon`` and
``stop_codon`` tracks by ``start_codon_2nd`` and ``stop_codon_1st``.

Activations are read neuron-major, ``(C, N)`` per record (``layout="CL"`` of
:func:`dnatlas.analysis.extract_folder.extract_to_dir`), so one neuron is one contiguous row even
when the arrays are memory maps of whole genomes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from dnatlas.analysis.auprc import (
    LabelIndex,
    average_precision_keys,
    joint_keys,
    precision_recall_curve,
    top_key_threshold,
)
from dnatlas.genome.alphabet import decode, reverse_complement
from dnatlas.progress import progress as progress_bar

__all__ = [
    "GenomeLabels",
    "TopWindow",
    "catalog_track_names",
    "footnote6_names",
    "neuron_scores",
    "pr_curve",
    "scan_neurons",
]

FOOTNOTE6 = {"start_codon": "start_codon_2nd", "stop_codon": "stop_codon_1st"}


def footnote6_names(names: Sequence[str], footnote6: bool = True) -> list[str]:
    """Requested track names, with ``start_codon``/``stop_codon`` mapped to their
    footnote-6 single-nucleotide versions when ``footnote6`` (duplicates dropped)."""
    if not footnote6:
        return list(names)
    return list(dict.fromkeys(FOOTNOTE6.get(name, name) for name in names))


def catalog_track_names(available: Sequence[str], footnote6: bool = False) -> list[str]:
    """Default tracks to evaluate: all available, with one version of each codon track.

    Without ``footnote6`` the single-nucleotide variants (``start_codon_2nd``,
    ``stop_codon_1st``) are dropped; with it they replace ``start_codon``/``stop_codon``.
    """
    variants = set(FOOTNOTE6.values())
    names = []
    for name in available:
        if footnote6 and name in FOOTNOTE6:
            continue
        if not footnote6 and name in variants:
            continue
        names.append(name)
    return names


@dataclass
class GenomeLabels:
    """Strand label indexes of one or more records, concatenated in record order.

    Attributes:
        names: track names (T).
        plus, minus: :class:`LabelIndex` of rows 0 and 1 over the N concatenated positions.
        seqids, lengths: the records and their lengths; ``offsets`` their starts in N.
    """

    names: list[str]
    plus: LabelIndex
    minus: LabelIndex
    seqids: list[str]
    lengths: list[int]

    @property
    def offsets(self) -> np.ndarray:
        return np.r_[0, np.cumsum(self.lengths)[:-1]].astype(np.int64)

    @property
    def n(self) -> int:
        return int(sum(self.lengths))

    @property
    def n_pos(self) -> np.ndarray:
        """(T,) positives on both strands."""
        return self.plus.n_pos + self.minus.n_pos

    @property
    def chance(self) -> np.ndarray:
        """(T,) chance AP = positive fraction over both strands."""
        return self.n_pos / (2 * max(self.n, 1))

    @classmethod
    def from_tracks(cls, tracks: Mapping[str, object], names: Sequence[str] | None = None,
                    footnote6: bool = False) -> GenomeLabels:
        """Build from ``{seqid: LabelTracks}`` (record order kept).

        Args:
            tracks: label tracks per record (``dnatlas.annotation.tracks.label_tracks``).
            names: tracks to use (default: all of the first record's, through
                :func:`catalog_track_names`); they must exist in every record's tracks.
            footnote6: see the module doc (applied to ``names`` by :func:`footnote6_names`).
        """
        seqids = list(tracks)
        first = tracks[seqids[0]]
        if names is None:
            names = catalog_track_names(first.names, footnote6)
        else:
            names = footnote6_names(names, footnote6)
        rows = []
        for row in (0, 1):
            blocks = [np.stack([tracks[s][name][row] for name in names], axis=1) for s in seqids]
            rows.append(LabelIndex.from_labels(np.concatenate(blocks), names))
        return cls(names, rows[0], rows[1], seqids, [tracks[s].length for s in seqids])


def neuron_scores(acts: Sequence[np.ndarray], neuron: int) -> np.ndarray:
    """Row ``neuron`` of every record's (C, L_r) array, concatenated: shape (N,)."""
    return np.concatenate([np.asarray(a[neuron]) for a in acts])


@dataclass(frozen=True)
class TopWindow:
    """One top-activating site of a neuron.

    ``position`` is the 0-based genomic coordinate of the activation, ``strand`` the strand
    read (+1/-1); ``start``/``end`` bound the window on the record; ``sequence`` and
    ``values`` run along the window in the strand's reading direction (5'->3'), so that an
    RC partner's hit on − reads like a + hit.
    """

    neuron: int
    rank: int
    seqid: str
    position: int
    strand: int
    activation: float
    start: int
    end: int
    sequence: str
    values: tuple[float, ...] = field(repr=False)

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["values"] = [round(float(v), 4) for v in self.values]
        return d


def _top_sites(keys: np.ndarray, candidates: np.ndarray, k: int, separation: int) -> list[int]:
    """The k best candidates by key, at least ``separation`` apart (greedy suppression).

    Args:
        keys: (2N,) order-preserving keys of the scores of both strands ([+, −]).
        candidates: indices holding (at least) the best scores.
    """
    limit = max(k * 50, 200) * 4
    if len(candidates) > limit:  # many ties at the threshold (e.g. zeros): any will do
        best = np.argpartition(-keys[candidates].astype(np.int64), limit)[:limit]
        candidates = np.sort(candidates[best])
    order = candidates[np.argsort(-keys[candidates].astype(np.int64), kind="stable")]
    chosen: list[int] = []
    for i in order:
        if all(abs(int(i) - j) >= separation for j in chosen):
            chosen.append(int(i))
            if len(chosen) == k:
                break
    return chosen


def _pair_order(neurons: list[int], perm) -> list[int]:
    """Row order visiting each neuron right after its RC partner (when both are wanted)."""
    if perm is None:
        return list(range(len(neurons)))
    row_of = {n: r for r, n in enumerate(neurons)}
    order, seen = [], set()
    for r, n in enumerate(neurons):
        if r in seen:
            continue
        order.append(r)
        seen.add(r)
        partner_row = row_of.get(int(perm[n]))
        if partner_row is not None and partner_row not in seen:
            order.append(partner_row)
            seen.add(partner_row)
    return order


@dataclass
class _Genome:
    """What top windows need to report sequences and coordinates."""

    seqs: Sequence[np.ndarray]
    labels: GenomeLabels

    def locate(self, index: int) -> tuple[int, int]:
        """Record number and position of a concatenated index."""
        r = int(np.searchsorted(self.labels.offsets, index, side="right") - 1)
        return r, int(index - self.labels.offsets[r])


def _window(genome: _Genome, acts, neuron: int, perm, index: int, strand: int, half: int,
            rank: int, activation: float) -> TopWindow:
    r, pos = genome.locate(index)
    seq = genome.seqs[r]
    lo, hi = max(0, pos - half), min(len(seq), pos + half + 1)
    channel = neuron if strand > 0 else perm[neuron]
    values = np.asarray(acts[r][channel, lo:hi], dtype=np.float32)
    codes = seq[lo:hi]
    if strand < 0:
        codes, values = reverse_complement(codes), values[::-1]
    return TopWindow(neuron, rank, genome.labels.seqids[r], pos, strand, activation, lo, hi,
                     decode(codes), tuple(values.tolist()))


@dataclass
class _Scanner:
    """Scores a batch of neurons (rows of ``neurons``); shared with worker processes by fork."""

    acts: Sequence[np.ndarray]
    labels: GenomeLabels
    perm: np.ndarray | None
    genome: _Genome | None
    neurons: list[int]
    top_k: int
    half_window: int

    def run(self, rows: list[int]):
        """``(rows, (len(rows), T) AP, {neuron: [TopWindow]})``; partners adjacent in ``rows``."""
        ap = np.empty((len(rows), len(self.labels.names)))
        windows: dict[int, list[TopWindow]] = {}
        cache: dict[int, np.ndarray] = {}  # the last partner read, reused on its turn
        for k, row in enumerate(rows):
            n = self.neurons[row]
            plus = cache.pop(n, None)
            plus = neuron_scores(self.acts, n) if plus is None else plus
            cache.clear()
            blocks = [(plus, self.labels.plus)]
            minus = None
            if self.perm is not None:
                partner = int(self.perm[n])
                minus = plus if partner == n else neuron_scores(self.acts, partner)
                cache[partner] = minus
                blocks.append((minus, self.labels.minus))
            keys, n_keys = joint_keys([score for score, _ in blocks])
            ap[k], histogram = average_precision_keys(
                zip(keys, (index for _, index in blocks)), n_keys)
            if self.genome is not None and self.top_k > 0:
                windows[n] = self._windows(n, plus, minus, keys, histogram)
        return rows, ap, windows

    def _windows(self, n: int, plus, minus, keys, histogram) -> list[TopWindow]:
        """Top windows of neuron n on both strands (candidates from the key histogram)."""
        both = plus if minus is None else np.concatenate([plus, minus])
        both_keys = np.concatenate(keys)
        wanted = max(self.top_k * 50, 200)
        candidates = np.flatnonzero(both_keys >= top_key_threshold(histogram, wanted))
        size = self.labels.n
        sites = _top_sites(both_keys, candidates, self.top_k, 2 * self.half_window + 1)
        return [_window(self.genome, self.acts, n, self.perm, i % size, 1 if i < size else -1,
                        self.half_window, rank, float(both[i]))
                for rank, i in enumerate(sites)]


_WORKER: _Scanner | None = None  # set in the parent before forking workers


def _run_in_worker(rows: list[int]):
    return _WORKER.run(rows)


def _batches(order: list[int], size: int) -> list[list[int]]:
    """Cut the pair order into batches of about ``size`` rows, never between partners."""
    batches, current = [], []
    for k, row in enumerate(order):
        current.append(row)
        if len(current) >= size and k % 2 == 1:
            batches.append(current)
            current = []
    return batches + ([current] if current else [])


def scan_neurons(acts: Sequence[np.ndarray], labels: GenomeLabels, perm: np.ndarray | None,
                 seqs: Sequence[np.ndarray] | None = None, neurons: Sequence[int] | None = None,
                 top_k: int = 10, half_window: int = 20, n_jobs: int = 1,
                 progress: bool | None = None):
    """AP of every neuron against every track, and each neuron's top-activating windows.

    Args:
        acts: per record, (C, L_r) forward-strand activations (memory maps are fine).
        labels: :class:`GenomeLabels` of the same records.
        perm: RCPS permutation (C,), or None to score the + strand only.
        seqs: per record, (L_r,) nucleotide codes (for top windows; None skips them).
        neurons: subset of neurons (default all C).
        top_k: windows per neuron; ``half_window``: nt each side of the site.
        n_jobs: worker processes (fork; POSIX only, else serial). Each neuron costs about
            0.15 s per 4.6 Mb genome (both strands, float16) on one core.

    Returns:
        ``(auprc, windows)``: (len(neurons), T) float64 AP and ``{neuron: [TopWindow]}``.
    """
    global _WORKER
    n_channels = acts[0].shape[0]
    neurons = list(range(n_channels)) if neurons is None else [int(n) for n in neurons]
    genome = _Genome(seqs, labels) if seqs is not None else None
    scanner = _Scanner(acts, labels, perm, genome, neurons, top_k, half_window)
    order = _pair_order(neurons, perm)
    auprc = np.empty((len(neurons), len(labels.names)))
    windows: dict[int, list[TopWindow]] = {}
    bar = progress_bar(total=len(neurons), desc="neurons", unit="neuron",
                       disable=progress is False)
    jobs = max(1, int(n_jobs))
    if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
        batches = _batches(order, max(2, len(order) // (8 * jobs)))
        _WORKER = scanner
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(jobs, mp_context=context) as pool:
                results = (f.result() for f in as_completed(
                    [pool.submit(_run_in_worker, b) for b in batches]))
                for rows, ap, found in results:
                    auprc[rows] = ap
                    windows.update(found)
                    bar.update(len(rows))
        finally:
            _WORKER = None
    else:
        for batch in _batches(order, 16):
            rows, ap, found = scanner.run(batch)
            auprc[rows] = ap
            windows.update(found)
            bar.update(len(rows))
    bar.close()
    return auprc, {n: windows[n] for n in neurons if n in windows}


def pr_curve(acts: Sequence[np.ndarray], labels: GenomeLabels, track: str, neuron: int,
             perm: np.ndarray | None):
    """Precision-recall curve of one neuron on one track, both strands pooled.

    Returns ``(precision, recall, thresholds)`` as
    :func:`dnatlas.analysis.auprc.precision_recall_curve`.
    """
    t = labels.names.index(track)
    y_plus = _track_column(labels.plus, t)
    scores = [neuron_scores(acts, neuron)]
    ys = [y_plus]
    if perm is not None:
        scores.append(neuron_scores(acts, int(perm[neuron])))
        ys.append(_track_column(labels.minus, t))
    return precision_recall_curve(np.concatenate(scores), np.concatenate(ys))


def _track_column(index: LabelIndex, t: int) -> np.ndarray:
    """Dense (N,) bool labels of track t, rebuilt from a :class:`LabelIndex`."""
    y = np.zeros(index.n, dtype=bool)
    for m, a, b in index.segments():
        if index.table[m, t]:
            y[index.order[a:b]] = True
    return y
