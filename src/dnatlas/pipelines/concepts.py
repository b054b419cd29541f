"""Concept evaluation (``dnatlas concepts eval``): which SAE features and neurons match
which biology, with controls (InterPLM's method on genomic intervals; papers 001, 003).

    from dnatlas.pipelines.concepts import ConceptSettings, evaluate_concepts
    result = evaluate_concepts("default", "ecoli_k12_mg1655", "default", "runs/concepts",
                               random_init=True)   # the bundled SAE and annotation
    result.headlines        # per dictionary: concepts identified, features tied to a concept

One pass of the model over the genome (both strands, real flanking context everywhere)
feeds every dictionary: the latents of each SAE, the neurons of each site. Each feature is
normalised by its maximum over a sample of the validation split (record-end positions
left out), binarised at each threshold (fires where strictly greater), and counted against
every concept on both strands: the − strand's activations are flipped to forward
coordinates, so a − strand element is matched where the model reads the reverse
complement. The best (feature, threshold) of each concept is chosen on ``valid`` and
reported on ``test`` (disjoint regions). Controls, counted in the same passes: the
labels circularly shifted (``shuffled``), and a random-init model of the same
architecture (its neurons, and SAEs trained on it).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatlas.concepts import DEFAULT_THRESHOLDS, ConceptCounter, chunk_labels, shuffled_labels
from dnatlas.concepts.label_sources import ConceptCount, LabelSpec, build_labels
from dnatlas.concepts.splits import chunk_regions, make_splits
from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter, resolve_model
from dnatlas.pipelines import concept_report
from dnatlas.pipelines.concept_features import (
    FeatureDictionary,
    neuron_dictionary,
    sae_dictionary,
)
from dnatlas.pipelines.concept_report import ConceptResult, DictionaryHeadline

__all__ = ["ConceptResult", "ConceptSettings", "DictionaryHeadline", "default_annotations",
           "default_saes", "evaluate_concepts", "is_concepts_output", "write_concept_labels"]

OUTPUT_FILES = frozenset({"concepts.csv", "best.csv", "summary.json", "table.txt",
                          "f1_distributions.png", "identified_vs_threshold.png"})


@dataclass
class ConceptSettings:
    """Options of :func:`evaluate_concepts`.

    Attributes:
        thresholds: ascending thresholds on the max-normalised activation (InterPLM's).
        strands: strands evaluated (``+``, ``-``); tables report each and both together.
        valid, test: 1-based regions or record IDs (default: each record's two halves).
        sample_nt: positions per strand of the validation split sampled for the maxima.
        edge: positions at each record end left out of the maxima (truncated context).
        chunk_size: positions per model call (memory); batch_size: windows per pass.
        shuffled: count the circularly-shifted-labels control too; seed: its offsets.
        top: features per concept written to ``concepts.csv``.
        labels: which concepts (:class:`~dnatlas.concepts.label_sources.LabelSpec`).
    """

    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
    strands: Sequence[str] = ("+", "-")
    valid: Sequence[str] | None = None
    test: Sequence[str] | None = None
    sample_nt: int = 1_000_000
    edge: int = 64
    chunk_size: int = 1 << 16
    batch_size: int = 1
    shuffled: bool = True
    seed: int = 0
    top: int = 5
    labels: LabelSpec = field(default_factory=LabelSpec)

    def check(self) -> None:
        if not self.strands or set(self.strands) - {"+", "-"}:
            raise InputError(f"strands must be '+', '-' or both, got {list(self.strands)}")
        for name in ("sample_nt", "chunk_size", "batch_size", "top"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}",
                                 setting=name)
        if self.edge < 0:
            raise InputError(f"edge must be >= 0, got {self.edge}", setting="edge")
        t = np.asarray(self.thresholds, dtype=float)
        if t.ndim != 1 or not len(t) or np.any(t < 0) or np.any(t >= 1) \
                or np.any(np.diff(t) <= 0):
            raise InputError(f"thresholds must be ascending, in [0, 1), got {list(self.thresholds)}")


def default_annotations(genome: str | Path, annotations="default"):
    """The annotation to score against: ``annotations`` unless it is ``"default"``, which
    means the bundled annotation of a bundled genome given by name, and none otherwise."""
    from dnatlas import bundled

    if not isinstance(annotations, str) or annotations != "default":
        return annotations
    return str(genome) if str(genome) in bundled.annotation_names() else None


def default_saes(model, saes: Sequence[str | Path] | None, neurons) -> list:
    """The SAEs to evaluate: ``saes``; when None, the bundled SAE for the bundled model (no
    ``neurons`` given), none otherwise."""
    if saes is not None:
        return list(saes)
    bundled_model = model is None or (isinstance(model, str) and model == "default")
    return ["default"] if bundled_model and neurons is None else []


def is_concepts_output(name: str) -> bool:
    """Whether a file name is one :func:`evaluate_concepts` writes (for ``--force``)."""
    return name in OUTPUT_FILES


def _genome(fasta, annotations):
    """``({record: codes}, intervals)``; ``annotations`` as
    :func:`~dnatlas.annotation.intervals.load_annotations` takes them, or None."""
    from dnatlas.annotation.intervals import load_annotations, restrict_to_genome
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import resolve_bundled_genome

    fasta = resolve_bundled_genome(fasta)
    codes = {r.id: r.seq for r in read_records(fasta)}
    intervals = []
    if annotations is not None:
        intervals = restrict_to_genome(load_annotations(annotations),
                                       {r: len(c) for r, c in codes.items()})
    return codes, intervals


def _dictionaries(model: ModelAdapter, saes, neurons, control: bool, device: str):
    dicts = [sae_dictionary(path, model, control, device) for path in saes]
    keys = list(dict.fromkeys(neurons if neurons is not None else [d.key for d in dicts]))
    dicts += [neuron_dictionary(key, model, control) for key in keys]
    return dicts


def _check_sae_models(dicts: list[FeatureDictionary], model: ModelAdapter) -> None:
    from dnatlas.sae.saelens_format import read_cfg

    for d in dicts:
        if d.source is None:
            continue
        trained_on = (read_cfg(d.source).get("metadata") or {}).get("model_fingerprint")
        if trained_on and trained_on != model.fingerprint():
            raise InputError(f"the SAE was trained on a model with fingerprint {trained_on}, "
                             f"not on {model.name} ({model.fingerprint()}); pass the model "
                             "it was trained on", path=d.source)


def _strand_chunks(model, codes, chunks, keys, settings):
    """Yield ``(record, a, b, strand, {key: (n, d) float32 forward-coordinate array})``."""
    from dnatlas.analysis.extract import extract_activations

    strands = tuple(settings.strands)
    mode = "both" if len(strands) == 2 else strands[0]
    for record, a, b in chunks:
        acts = extract_activations(model, codes[record], layers=keys, start=a, end=b,
                                   strand=mode, chunk_size=settings.chunk_size,
                                   batch_size=settings.batch_size, progress=False)
        for strand in strands:
            block = {k: (acts[k, strand] if mode == "both" else acts[k]) for k in keys}
            if strand == "-":
                block = {k: np.ascontiguousarray(v[::-1]) for k, v in block.items()}
            yield record, a, b, strand, block


def _sample(chunks: list, sample_nt: int) -> list:
    total = sum(b - a for _, a, b in chunks)
    if total <= sample_nt:
        return chunks
    step = total / sample_nt
    return [chunks[int(i * step)] for i in range(max(1, int(len(chunks) / step)))]


def _maxima(model, codes, dicts, chunks, settings, bar, keep: dict | None = None,
            keep_bytes: int = 0) -> dict[str, np.ndarray]:
    """Each dictionary's feature maxima over ``chunks`` (this rank's share; the maxima are
    reduced over ranks). With ``keep``, the site activations of the chunks are stored
    there, ``{(record, a, b, strand): {key: forward array}}``, up to ``keep_bytes`` (the
    atlas's pass reuses them)."""
    from dnatlas import distributed
    from dnatlas.concepts import feature_maxima

    keys = list(dict.fromkeys(d.key for d in dicts))
    best = {d.name: np.zeros(d.n_features) for d in dicts}
    kept = 0
    for record, a, b, _strand, block in _strand_chunks(model, codes, chunks, keys, settings):
        size = sum(v.nbytes for v in block.values())
        if keep is not None and kept + size <= keep_bytes:
            keep[record, a, b, _strand] = block
            kept += size
        n_record = len(codes[record])
        position = np.arange(a, b)
        inner = (position >= settings.edge) & (position < n_record - settings.edge)
        for d in dicts:
            if inner.any():
                best[d.name] = np.maximum(best[d.name], feature_maxima(
                    [d.encode(block[d.key][inner])]))
        bar.update(b - a)
    return {name: distributed.all_reduce_array(m, "max") for name, m in best.items()}


def _count(model, codes, dicts, chunks, label_sets, maxima, settings, bar) -> dict:
    """Counts of every (dictionary, labels, split, strand) over ``chunks`` ({split: this
    rank's chunks}); the counters of all ranks are merged, so that every rank returns the
    counts of one process over the whole genome."""
    from dnatlas import distributed

    counters = {(d.name, labels_name, split, strand):
                ConceptCounter(labels.names, maxima[d.name], settings.thresholds)
                for d in dicts for labels_name, labels in label_sets.items()
                for split in chunks for strand in settings.strands}
    keys = list(dict.fromkeys(d.key for d in dicts))
    for split, mine in chunks.items():
        for record, a, b, strand, block in _strand_chunks(model, codes, mine, keys, settings):
            sign = 1 if strand == "+" else -1
            labels = {name: chunk_labels(lab, record, a, b, sign)
                      for name, lab in label_sets.items()}
            seq = codes[record][a:b]
            mask = seq < 4 if (seq == 4).any() else None
            for d in dicts:
                acts = d.encode(block[d.key])
                firing = None    # shared by the label sets (same maxima and thresholds)
                for name, chunk in labels.items():
                    counter = counters[d.name, name, split, strand]
                    if firing is None:
                        firing = counter.firing(acts, mask)
                    counter.update(acts, chunk, mask, firing)
            bar.update(b - a)
    if distributed.world_size() > 1:
        shares = distributed.all_gather_object(counters)
        counters = shares[0]
        for other in shares[1:]:
            for key, counter in counters.items():
                counter.merge(other[key])
    return {key: counter.counts() for key, counter in counters.items()}


def _run_model(model, dicts, codes, splits, label_sets, settings, tag: str) -> dict:
    """The maxima pass and the counting pass of one model; under torchrun each rank takes
    a contiguous share of the chunks (:func:`dnatlas.distributed.shard`)."""
    from dnatlas import distributed
    from dnatlas.progress import progress

    def length(chunk):
        return chunk[2] - chunk[1]

    sample = distributed.shard(_sample(list(chunk_regions(splits["valid"], settings.chunk_size)),
                                       settings.sample_nt), weights=length)
    chunks = {split: distributed.shard(list(chunk_regions(regions, settings.chunk_size)),
                                       weights=length) for split, regions in splits.items()}
    total = len(settings.strands) * sum(map(length, [*sample, *sum(chunks.values(), [])]))
    with progress(total=total, unit="nt", unit_scale=True, desc=f"concepts {tag}") as bar:
        maxima = _maxima(model, codes, dicts, sample, settings, bar)
        return _count(model, codes, dicts, chunks, label_sets, maxima, settings, bar)


def evaluate_concepts(model: str | ModelAdapter | None, fasta: str | Path,
                      annotations: str | Path | None, out: str | Path,
                      saes: Sequence[str | Path] | None = None,
                      neurons: Sequence[str] | None = None,
                      random_init: bool = False, random_init_saes: Sequence[str | Path] = (),
                      settings: ConceptSettings | None = None, device: str | None = None,
                      force: bool = False) -> ConceptResult:
    """Score every feature of every dictionary against every concept; write the tables.

    Args:
        model: a ``--model`` spec or adapter; fasta: genome (or a bundled genome's name);
            annotations: GFF3/GenBank/BED (or a bundled name), None for no annotation,
            ``"default"``: :func:`default_annotations`.
        saes: SAE folders (``default``: the bundled SAE) read on ``model``; None:
            :func:`default_saes`.
        neurons: sites whose neurons are a dictionary (default: each SAE's site).
        random_init: add the control model ``model`` with fresh weights (same
            architecture): its neurons at the same sites, and ``random_init_saes``
            (SAEs trained on it, e.g. with ``--model SPEC:random-init``).
        settings: :class:`ConceptSettings`.

    Writes ``concepts.csv``, ``best.csv``, ``summary.json``, ``table.txt`` and two PNGs
    into ``out`` (see :mod:`dnatlas.pipelines.concept_report`).
    """
    from dnatlas import distributed

    settings = settings or ConceptSettings()
    settings.check()
    saes = default_saes(model, saes, neurons)
    annotations = default_annotations(fasta, annotations)
    with distributed.session(device) as info:
        adapter = resolve_model(model, info.device)
        return _evaluate(adapter, fasta, annotations, out, saes, neurons, random_init,
                         random_init_saes, settings, force)


def _open_out(out, force: bool):
    """The locked output folder (:func:`dnatlas.outputs.output_folder`): an earlier
    evaluation is refused unless ``force``, which removes it before this run starts."""
    from dnatlas.outputs import output_folder

    return output_folder(out, "concepts eval", own=is_concepts_output, force=force,
                         result="an earlier evaluation")


def _evaluate(adapter, fasta, annotations, out, saes, neurons, random_init, random_init_saes,
              settings, force) -> ConceptResult:
    from dnatlas import distributed

    torch_device = str(adapter.device)
    dicts = _dictionaries(adapter, saes, neurons, False, torch_device)
    if not dicts:
        raise InputError("no features to evaluate: give SAEs (saes) or sites (neurons)",
                         setting=("saes", "neurons"))
    _check_sae_models(dicts, adapter)
    codes, intervals = _genome(fasta, annotations)
    splits = make_splits({r: len(c) for r, c in codes.items()}, settings.valid, settings.test)
    with contextlib.ExitStack() as stack:
        folder = distributed.on_main(lambda: stack.enter_context(_open_out(out, force)))
        result = _evaluate_into(adapter, dicts, codes, intervals, splits, fasta, annotations,
                                folder, random_init, random_init_saes, settings)
        if distributed.is_main():
            folder.complete(OUTPUT_FILES & {p.name for p in folder.path.iterdir()})
        return result


def _evaluate_into(adapter, dicts, codes, intervals, splits, fasta, annotations, folder,
                   random_init, random_init_saes, settings) -> ConceptResult:
    from dnatlas import distributed

    torch_device = str(adapter.device)
    out = folder.path
    labels, dropped = build_labels(intervals, codes, settings.labels)
    if labels.n_concepts == 0:
        raise InputError("no concept has any element in the genome (check the annotation "
                         "and the record names)")
    label_sets = {"real": labels}
    if settings.shuffled:
        label_sets["shuffled"] = shuffled_labels(labels, settings.seed)
    if random_init:  # loaded (and a foreign --random-init-sae refused) before any pass
        control = adapter.random_init(settings.seed)
        control_dicts = _dictionaries(control, random_init_saes, [d.key for d in dicts], True,
                                      torch_device)
        _check_sae_models(control_dicts, control)
    began = _say_passes(adapter, dicts, random_init, random_init_saes)
    counts = _run_model(adapter, dicts, codes, splits, label_sets, settings, adapter.name)
    if random_init:
        _first_pass_done(out, dicts, counts, settings, began, _report_context(
            adapter, fasta, annotations, splits, dropped, labels))
        counts.update(_run_model(control, control_dicts, codes, splits, {"real": labels},
                                 settings, "random-init"))
        dicts += control_dicts
    context = _report_context(adapter, fasta, annotations, splits, dropped, labels)
    return distributed.on_main(concept_report.write_report, out, dicts, counts, settings, context)


def _report_context(adapter, fasta, annotations, splits, dropped, labels) -> dict:
    """What ``summary.json`` says about the run besides the scores."""
    from dnatlas.genome.regions import format_region

    return {"model": adapter.name, "model_fingerprint": adapter.fingerprint(),
            "genome": str(fasta), "annotations": None if annotations is None
            else str(annotations), "dropped_concepts": dropped,
            # regions as a person writes them: 1-based, closed (samtools, IGV)
            "splits": {name: [format_region(*span) for span in spans]
                       for name, spans in splits.items()},
            "n_elements": dict(zip(labels.names, labels.n_elements().tolist(), strict=True))}


def _say_passes(adapter, dicts, random_init: bool, random_init_saes) -> float:
    """Say up front which passes over the genome follow; returns the start time."""
    passes = [f"{adapter.name} ({', '.join(d.name for d in dicts)})"]
    if random_init:
        passes.append("the random-init control (the same architecture, fresh weights: its "
                      "neurons" + (" and SAEs" if random_init_saes else "") + ")")
    _say(f"concepts eval: {len(passes)} pass(es) over the genome, each a maxima sample and a "
         "count: " + "; ".join(f"{i}. {p}" for i, p in enumerate(passes, 1)))
    return time.perf_counter()


def _first_pass_done(out, dicts, counts, settings, began: float, context: dict) -> None:
    """Write the first pass's results before the random-init control runs (rewritten with
    both at the end), and say how long the second pass will take."""
    from dnatlas import distributed

    took = time.perf_counter() - began
    distributed.on_main(concept_report.write_report, out, dicts, counts, settings,
                        {**context, "unfinished": "pass 2 (random-init) running"})
    _say(f"pass 1 done in {took / 60:.1f} min; its results are in {out}; pass 2 (the "
         f"random-init control) will take about as long (~{took / 60:.1f} min)")


def _say(text: str) -> None:
    from dnatlas import distributed

    if distributed.is_main():
        print(text, file=sys.stderr, flush=True)


def write_concept_labels(fasta: str | Path, annotations, out: str | Path,
                         spec: LabelSpec | None = None, force: bool = False
                         ) -> list[ConceptCount]:
    """Write the concept labels of ``fasta`` as BED6 to ``out`` and the per-concept
    summary next to it (``OUT.summary.tsv``); returns its rows, one
    :class:`ConceptCount` per concept with elements.
    ``annotations`` as in :func:`evaluate_concepts`."""
    from dataclasses import astuple

    from dnatlas.concepts.label_sources import label_summary, write_bed
    from dnatlas.files import atomic_write, check_writable_file

    out = check_writable_file(out, "BED file", force=force)
    annotations = default_annotations(fasta, annotations)
    summary_path = out.with_name(out.name.removesuffix(".bed") + ".summary.tsv")
    check_writable_file(summary_path, "summary file", force=force)
    codes, intervals = _genome(fasta, annotations)
    labels, dropped = build_labels(intervals, codes, spec or LabelSpec())
    with atomic_write(out) as fh:
        write_bed(labels, fh)
    rows = label_summary(labels)
    with atomic_write(summary_path) as fh:
        fh.write("\t".join(ConceptCount.COLUMNS) + "\n")
        for row in rows + [ConceptCount(name, 0, 0, 0) for name in dropped]:
            fh.write("\t".join(map(str, astuple(row))) + "\n")
    return rows
