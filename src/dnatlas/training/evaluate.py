"""Masked-nucleotide evaluation, identical for DNAtlas and the baselines.

Every model is reduced to a *predictor*: tokens (B, L) long -> log-probabilities
(B, L, 4) over A, C, G, T. The evaluation windows tile the split deterministically and the
masks come from the report's Markov masking with a fixed seed per window, so numbers are
comparable across models and runs. Scored positions: masked, with a true base in ACGT.
Reported: cross-entropy in bits per nucleotide and top-1 accuracy, overall and (when an
annotation is given) separately for coding (CDS, either strand) and non-coding positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from dnatlas.architectures.dnatlas.masking import MarkovMasking
from dnatlas.architectures.dnatlas.windowed_mlm import mask_tokens, nucleotide_log_probs
from dnatlas.genome.sampler import gather_windows, tile_coordinates
from dnatlas.genome.store import GenomeStore
from dnatlas.masked_scores import masked_scores
from dnatlas.progress import progress as progress_bar

Predictor = Callable[[torch.Tensor], torch.Tensor]
EVAL_MASK_SEED = 20251122


def dnatlas_predictor(model) -> Predictor:
    """Per-nucleotide log-marginals of DNAtlas's centre triplet, (B, L) -> (B, L, 4)."""
    def predict(tokens: torch.Tensor) -> torch.Tensor:
        return nucleotide_log_probs(model(tokens).logits, tokens)
    return predict


def evaluation_windows(store: GenomeStore, split: str, window: int, max_windows: int | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic evaluation windows: the split tiled without overlap, thinned evenly to
    at most ``max_windows``. Returns (segments, starts), int64 (n,)."""
    segments, starts = tile_coordinates(store, split, window)
    if max_windows is not None and segments.size > max_windows:
        pick = np.linspace(0, segments.size - 1, max_windows).round().astype(np.int64)
        segments, starts = segments[pick], starts[pick]
    return segments, starts


def coding_lookup(store: GenomeStore, annotation_path) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    """Map windows to a CDS mask using an annotation whose seqids are the store's record ids.

    Returns ``f(segments, starts, window) -> bool (n, window)``.
    """
    from dnatlas.annotation.intervals import load_annotations, restrict_to_genome
    from dnatlas.annotation.tracks import label_tracks
    from dnatlas.genome.sources import resolve_bundled_annotations

    paths = resolve_bundled_annotations(annotation_path)  # a bundled name means all its files
    lengths = {r["id"]: r["length"] for g in store.meta["genomes"] for r in g["records"]}
    intervals = restrict_to_genome(load_annotations(paths), lengths,
                                   path=", ".join(str(p) for p in paths))
    seqids = {iv.seqid for iv in intervals}
    cds = {s: label_tracks(intervals, s, lengths[s], tracks=["CDS"]).any_strand("CDS")
           for s in seqids}

    def lookup(segments: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
        out = np.zeros((segments.size, window), dtype=bool)
        for i, (seg, start) in enumerate(zip(segments, starts)):
            s = store.segments[int(seg)]
            if s.record in cds:
                begin = s.record_start + int(start)
                out[i] = cds[s.record][begin:begin + window]
        return out
    return lookup


class _Tally:
    def __init__(self):
        self.nll = 0.0
        self.correct = 0
        self.n = 0

    def add(self, nll: torch.Tensor, correct: torch.Tensor) -> None:
        self.nll += float(nll.sum())
        self.correct += int(correct.sum())
        self.n += int(nll.numel())

    def result(self) -> dict:
        if self.n == 0:
            return {"bits_per_nt": float("nan"), "accuracy": float("nan"), "n_positions": 0}
        return {"bits_per_nt": self.nll / self.n / math.log(2), "accuracy": self.correct / self.n,
                "n_positions": self.n}


@torch.no_grad()
def evaluate(predict: Predictor, store: GenomeStore, split: str = "val", window: int = 1024,
             max_windows: int | None = 256, batch_size: int = 16, seed: int = EVAL_MASK_SEED,
             coding: Callable | None = None, device: str | torch.device = "cpu",
             progress: bool = False) -> dict:
    """Masked-nucleotide cross-entropy (bits/nt) and accuracy of ``predict`` on a split.

    Returns a dict with ``bits_per_nt``, ``accuracy``, ``n_positions``, ``n_windows``,
    and, when ``coding`` (see :func:`coding_lookup`) is given, ``coding`` and
    ``noncoding`` sub-dicts with the same metrics.
    """
    segments, starts = evaluation_windows(store, split, window, max_windows)
    masking = MarkovMasking()
    tallies = {"all": _Tally(), "coding": _Tally(), "noncoding": _Tally()}
    batches = range(0, segments.size, batch_size)
    for i in progress_bar(batches, desc=f"eval {split}", unit="batch", disable=not progress,
                          leave=False):
        seg, start = segments[i:i + batch_size], starts[i:i + batch_size]
        seq_np = gather_windows(store, seg, start, window)
        mask_np = masking.mask_batch(window, [(seed, int(j)) for j in range(i, i + seg.size)])
        seq = torch.from_numpy(seq_np.astype(np.int64)).to(device)
        mask = torch.from_numpy(mask_np).to(device)
        nll, correct, scored = masked_scores(predict(mask_tokens(seq, mask)), seq, mask)
        tallies["all"].add(nll[scored], correct[scored])
        if coding is not None:
            cds = torch.from_numpy(coding(seg, start, window)).to(scored.device)
            tallies["coding"].add(nll[scored & cds], correct[scored & cds])
            tallies["noncoding"].add(nll[scored & ~cds], correct[scored & ~cds])
    out = {**tallies["all"].result(), "n_windows": int(segments.size), "window": window,
           "split": split}
    if coding is not None:
        out["coding"] = tallies["coding"].result()
        out["noncoding"] = tallies["noncoding"].result()
    return out


def fit_kmer_baseline(store: GenomeStore, split: str = "val", orders=(1, 2, 3, 4, 5, 6),
                      window: int = 1024):
    """The k-mer context baseline: counts from the train split, k chosen on ``split``.

    k is chosen under a different masking seed from :func:`evaluate`'s. Returns the
    :class:`dnatlas.architectures.kmer.selection.KSelection` (``.model``, ``.best_k``, scores per k).
    """
    from itertools import count

    from dnatlas.architectures.kmer.selection import select_k

    train = [store.segment_tokens(int(i)) for i in store.segment_indices("train")]
    held = [store.segment_tokens(int(i)) for i in store.segment_indices(split)]
    masking, seeds = MarkovMasking(), count()

    def mask_fn(rows):
        return masking.mask_batch(rows.shape[1], [(7, next(seeds)) for _ in range(len(rows))])
    return select_k(train, held, list(orders), mask_fn, seq_len=window)
