"""Evaluation pipeline: masked-nucleotide bits/nt and accuracy of any models side by side,
on one split of a genome store, with the same seeded masking for every model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.models import load_model


@dataclass(frozen=True)
class ModelScores:
    """One model's scores: ``metrics`` as :func:`dnatlas.training.evaluate.evaluate` gives
    them (the ``--json`` record: ``bits_per_nt``, ``accuracy``, ``n_positions``, with
    annotations ``coding`` and ``noncoding`` sub-records, for the fitted k-mer baseline its
    ``k``)."""

    metrics: dict

    @property
    def bits_per_nt(self) -> float:
        return self.metrics["bits_per_nt"]

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    @property
    def coding_bits_per_nt(self) -> float | None:
        """Bits/nt at coding positions (None without annotations)."""
        return self.metrics["coding"]["bits_per_nt"] if "coding" in self.metrics else None

    @property
    def noncoding_bits_per_nt(self) -> float | None:
        return self.metrics["noncoding"]["bits_per_nt"] if "noncoding" in self.metrics else None


def evaluate_models(data: str | Path, models: list[str] | None = None,
                    baselines: list[str] = (), split: str = "val",
                    annotations: str | Path | None = None, kmer_orders=(1, 2, 3, 4, 5, 6, 7),
                    window: int = 1024, max_windows: int = 256, batch_size: int = 16,
                    device: str | None = None, progress: bool = True
                    ) -> dict[str, ModelScores]:
    """``{label: ModelScores}`` for every model spec and baseline.

    Args:
        models: ``--model`` specs (default: the bundled model unless baselines are given).
        baselines: ``kmer`` (fitted on the train split, k chosen on ``split``), or any model
            spec (``kmer:PATH``, ``transformer:PATH``, ...).
        annotations: also report coding and non-coding positions.
        window, max_windows, batch_size: evaluation windows (nucleotides, count, per pass).
    """
    from dnatlas.genome.store import GenomeStore
    from dnatlas.training.evaluate import coding_lookup, evaluate, fit_kmer_baseline

    for name, value in (("window", window), ("max_windows", max_windows),
                        ("batch_size", batch_size)):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}", setting=name)
    store = GenomeStore.open(data)
    if store.segment_indices(split).size == 0:
        raise InputError(f"the store has no {split!r} split", path=data)
    coding = coding_lookup(store, annotations) if annotations else None
    common = dict(store=store, split=split, window=window, max_windows=max_windows,
                  batch_size=batch_size, coding=coding, progress=progress)
    results: dict[str, dict] = {}
    for spec in models or ([] if baselines else ["default"]):
        model = load_model(spec, device)
        model.check_window(window)
        results[f"model:{model.name}"] = evaluate(model.nucleotide_log_probs,
                                                  device=model.device, **common)
    for spec in baselines:
        if spec == "kmer":
            sel = fit_kmer_baseline(store, split, list(kmer_orders), window)
            res = evaluate(sel.model.predict_nucleotides, **common)
            res["k"] = sel.best_k
            res["k_selection_bits_per_nt"] = sel.bits_per_nt
            results["baseline:kmer"] = res
            continue
        if ":" not in spec and not Path(spec).exists():
            raise InputError(f"unknown baseline {spec!r}: use kmer, or a model spec such as "
                             "kmer:PATH or transformer:PATH")
        model = load_model(spec, device)
        model.check_window(window)
        results[f"baseline:{model.name}"] = evaluate(model.nucleotide_log_probs,
                                                     device=model.device, **common)
    for label, res in results.items():
        if res["n_positions"] == 0:
            raise InputError(f"{label}: no position was scored (windows of {window} nt longer "
                             f"than every {split!r} segment?)")
    return {label: ModelScores(res) for label, res in results.items()}

