"""Building the feature atlas (``dnatlas atlas build``): one streaming pass of a model over
a genome, both strands, describes every feature of every dictionary.

    from dnatlas.pipelines.atlas import build_atlas
    result = build_atlas(out="runs/atlas")     # bundled model, genome, annotation, SAE
    result.tables["features"]                  # pyarrow tables (dnatlas.atlas.schema)

Steps: load the model and the dictionaries (the SAEs, and the neurons of their sites, as
``concepts eval`` does), the genome and the concept labels; take each dictionary's
feature maxima on the validation sample (the concept evaluation's normalisation, with its
very code); then one pass over every chunk of the genome, both strands, feeding the
activations (with a halo of real context around each chunk) to the
:class:`~dnatlas.atlas.build.Builder`; with ``random_init`` a second pass of the control
model (its neurons at the same sites). The chunks are split over torchrun ranks, whose
accumulators merge exactly. Written only when ``out`` is given: the DuckDB file and the
manifest with the build's key (model fingerprint, SAE hashes, genome record hashes,
annotation hash, settings). An existing current atlas is returned as is; a stale one is
refused unless ``force``; an unfinished build resumes from ``OUT/.partial``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatlas.atlas import schema
from dnatlas.atlas.accumulate import AtlasContext, manhattan_bin_size
from dnatlas.concepts import DEFAULT_THRESHOLDS
from dnatlas.concepts.label_sources import LabelSpec
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import sequence_sha256
from dnatlas.models import ModelAdapter
from dnatlas.pipelines.atlas_pass import (
    PARTIAL,
    _load_maxima,
    _maxima,
    _pass_chunks,
    _run_pass,
    _save_maxima,
)

DEFAULT_GENOME = "ecoli_k12_mg1655"
DEFAULT_OUT = Path("runs/atlas")


@dataclass
class AtlasSettings:
    """Options of :func:`build_atlas`.

    Attributes:
        thresholds, valid, test, sample_nt, edge, shuffled, seed, labels: the concept
            evaluation's (:class:`~dnatlas.pipelines.concepts.ConceptSettings`).
        chunk_size: positions per chunk (per model call); batch_size: windows per pass.
        top_k: top examples per feature; top_pool: peaks kept to collapse repeats from;
        quantile_k: examples per activation range.
        random_init: add the random-init control model (its neurons at the same sites).
        min_bin, max_bins: Manhattan bins (bin_size = max(min_bin, ceil(genome/max_bins))).
        checkpoint_every: chunks between saves of the resumable state.
        tss: a BED or GFF3 of transcription start sites (the ``tss`` landmark); meta_sae:
            a ``dnatlas sae meta`` folder (meta-SAE parents and siblings of the SAE's
            features); landmark_flank: nt on each side of a landmark in its profile.
    """

    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
    valid: Sequence[str] | None = None
    test: Sequence[str] | None = None
    sample_nt: int = 1_000_000
    edge: int = 64
    chunk_size: int = 1 << 16
    batch_size: int = 1
    shuffled: bool = True
    seed: int = 0
    labels: LabelSpec = field(default_factory=LabelSpec)
    top_k: int = 20
    top_pool: int = 40
    quantile_k: int = 4
    random_init: bool = False
    min_bin: int = 1000
    max_bins: int = 4096
    checkpoint_every: int = 16
    cache_mb: int = 1024
    tss: str | None = None
    meta_sae: str | None = None
    landmark_flank: int = 100

    def concept_settings(self):
        from dnatlas.pipelines.concepts import ConceptSettings

        s = ConceptSettings(thresholds=tuple(self.thresholds), strands=("+", "-"),
                            valid=self.valid, test=self.test, sample_nt=self.sample_nt,
                            edge=self.edge, chunk_size=self.chunk_size,
                            batch_size=self.batch_size, shuffled=self.shuffled, seed=self.seed,
                            labels=self.labels)
        s.check()
        return s

    def check(self) -> None:
        self.concept_settings()
        for name in ("top_pool", "min_bin", "max_bins", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"{name.replace('_', '-')} must be at least 1")
        if self.top_k < 0 or self.quantile_k < 0 or self.top_pool < self.top_k:
            raise InputError("top-k and quantile-k must be >= 0, top-pool >= top-k")
        if self.landmark_flank < 1 or self.landmark_flank > 10_000:
            raise InputError(f"landmark_flank must be in 1..10,000 nt, got {self.landmark_flank}",
                             setting="landmark_flank")
        if self.tss is not None and not Path(self.tss).is_file():
            raise InputError("no such file of transcription start sites", path=self.tss,
                             setting="tss")
        if self.meta_sae is not None and not Path(self.meta_sae).is_dir():
            raise InputError("no such meta-SAE folder", path=self.meta_sae, setting="meta_sae")

    def as_dict(self) -> dict:
        """JSON-ready (the part of the key and of the accumulators' settings)."""
        d = dataclasses.asdict(self)
        d["thresholds"] = [float(t) for t in self.thresholds]
        d["labels"] = {k: (list(v) if isinstance(v, tuple | list) else v)
                       for k, v in dataclasses.asdict(self.labels).items() if k != "extra"}
        d.pop("checkpoint_every")
        d.pop("cache_mb")
        return d


@dataclass
class AtlasResult:
    """What :func:`build_atlas` produced: the tables ({name: pyarrow.Table}; None when an
    existing current atlas was returned), the manifest, the folder (None: not written) and
    timings in seconds (``maxima``, ``pass``, ``forward``, ``accumulate``, ``finish``,
    ``write``, ``total``)."""

    tables: dict | None
    manifest: dict
    out: Path | None
    timings: dict = field(default_factory=dict)
    reused: bool = False


# ----------------------------------------------------------------------------- the key


def _file_hash(paths) -> str:
    """sha256 over the files' names and digests (:func:`dnatlas.files.file_digest`)."""
    from dnatlas.files import file_digest

    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(f"{p.name}\0{file_digest(p)}\0".encode())
    return h.hexdigest()


def sae_hash(folder: str | Path) -> str:
    """sha256 of an SAE folder's files (config and weights)."""
    folder = Path(folder)
    return _file_hash([p for p in folder.iterdir() if p.is_file()])


def annotation_hash(annotations) -> str | None:
    if annotations is None:
        return None
    from dnatlas.genome.sources import resolve_bundled_annotations

    return _file_hash(resolve_bundled_annotations(annotations))


def atlas_key(model: ModelAdapter, dicts, codes: dict, annotations, settings: AtlasSettings,
              control_fingerprint: str | None = None) -> dict:
    """What made the atlas (compared field by field by
    :func:`dnatlas.atlas.reader.stale_reasons`)."""
    return {
        "model": model.fingerprint(),
        "control_model": control_fingerprint,
        "saes": {d.name: sae_hash(d.source) for d in dicts if d.source is not None},
        "dictionaries": sorted(d.name for d in dicts),
        "genome": {r: sequence_sha256(c) for r, c in codes.items()},
        "annotations": annotation_hash(annotations),
        "concept_beds": _file_hash(settings.labels.beds) if settings.labels.beds else None,
        "tss": _file_hash([settings.tss]) if settings.tss else None,
        "meta_sae": sae_hash(settings.meta_sae) if settings.meta_sae else None,
        "settings": settings.as_dict(),
        "schema_version": schema.SCHEMA_VERSION,
    }


# ----------------------------------------------------------------------------- inputs


def _default_annotations(genome, annotations):
    """None: the bundled annotation for the bundled default genome, else none; 'none' or
    an empty list: none."""
    if annotations is None:
        return DEFAULT_GENOME if str(genome) == DEFAULT_GENOME else None
    if isinstance(annotations, str | Path):
        return None if str(annotations) == "none" else annotations
    items = [a for a in annotations if str(a) != "none"]
    return items or None


def _dictionaries(model, saes, neurons, control, device):
    from dnatlas.pipelines.concepts import _dictionaries as concept_dictionaries

    return concept_dictionaries(model, saes, neurons, control, device)


def _context_extra(model: ModelAdapter, d) -> dict:
    extra = {"model": model.name, "source": d.source}
    perm = model.rc_permutation(d.key)
    extra["rc_equivariant"] = perm is not None
    if perm is not None:
        extra["rc_permutation"] = np.asarray(perm)
    if d.pairs is not None:
        extra["rc_pairs"] = d.pairs
    decoder = getattr(d, "decoder", None)
    if decoder is not None:
        extra["decoder"] = decoder
    return extra


# ----------------------------------------------------------------------------- the build


def build_atlas(model: str | ModelAdapter | None = None, genome: str | Path | None = None,
                annotations=None, saes: Sequence[str | Path] = ("default",),
                neurons: Sequence[str] | None = None,
                settings: AtlasSettings | None = None, out: str | Path | None = None,
                force: bool = False, resume: bool = True, device: str | None = None,
                random_init_saes: Sequence[str | Path] = ()) -> AtlasResult:
    """Build the atlas of ``model`` on ``genome`` (module docstring).

    Args:
        model: a ``--model`` spec or adapter (None: the bundled model).
        genome: FASTA/GenBank or a bundled genome's name (None: ``ecoli_k12_mg1655``).
        annotations: annotation files or a bundled name (None: the bundled annotation
            when the genome is the bundled default, else none; ``'none'``: none).
        saes: SAE folders (``'default'``: the bundled SAE; only for the bundled model).
        neurons: sites whose neurons are dictionaries (None: each SAE's site; [] none).
        settings: :class:`AtlasSettings`.
        out: the atlas folder (None: nothing written, the tables returned).
        force: replace a stale atlas in ``out``; resume: go on from ``OUT/.partial``.
        random_init_saes: SAEs trained on the random-init model (with
            ``settings.random_init``).
    """
    import contextlib

    from dnatlas import distributed
    from dnatlas.outputs import lock_folder

    settings = settings or AtlasSettings()
    settings.check()
    with distributed.session(device) as info, contextlib.ExitStack() as stack:
        if out is not None and distributed.is_main():   # one build per folder at a time
            Path(out).mkdir(parents=True, exist_ok=True)
            stack.enter_context(lock_folder(out, "atlas folder", "atlas build"))
        from dnatlas.models import resolve_model

        adapter = resolve_model(model, info.device)
        return _build(adapter, genome, annotations, saes, neurons, settings, out, force,
                      resume, random_init_saes)


def _existing(out: Path, key: dict, force: bool):
    """The manifest of a current atlas in ``out`` (None: none there, or replaced)."""
    from dnatlas.atlas.reader import stale_reasons
    from dnatlas.atlas.store import read_manifest

    if not (out / schema.ATLAS_FILE).exists() and not (out / schema.MANIFEST_FILE).exists():
        return None
    try:
        manifest = read_manifest(out)
    except InputError:
        return None      # unfinished: resumed or rebuilt
    reasons = stale_reasons(manifest.get("key", {}), key)
    if not reasons and not force:
        return manifest
    if reasons and not force:
        raise InputError("the folder holds a stale atlas, made from other inputs: "
                         + "; ".join(reasons) + " (--force rebuilds it)", path=out)
    return None


def _build(adapter, genome, annotations, saes, neurons, settings, out, force, resume,
           random_init_saes) -> AtlasResult:
    from dnatlas import distributed
    from dnatlas.atlas.build import Builder
    from dnatlas.concepts import shuffled_labels
    from dnatlas.concepts.label_sources import build_labels
    from dnatlas.concepts.splits import chunk_regions, make_splits
    from dnatlas.pipelines.concepts import _genome, _sample
    from dnatlas.progress import progress

    t_start = time.perf_counter()
    timings = dict.fromkeys(("maxima", "forward", "encode", "accumulate", "pass", "finish",
                             "write"), 0.0)
    genome = DEFAULT_GENOME if genome is None else genome
    annotations = _default_annotations(genome, annotations)
    torch_device = str(adapter.device)
    dicts = _dictionaries(adapter, list(saes or ()), neurons, False, torch_device)
    if not dicts:
        raise InputError("no features: give SAEs (--sae) or sites (--neurons)")
    codes, intervals = _genome(genome, annotations)
    records = list(codes)
    offsets = dict(zip(records, np.cumsum([0] + [len(codes[r]) for r in records[:-1]])
                       .astype(int).tolist(), strict=True))
    genome_length = sum(len(c) for c in codes.values())
    bin_size = manhattan_bin_size(genome_length, settings.min_bin, settings.max_bins)
    control = adapter.random_init(settings.seed) if settings.random_init else None
    control_dicts = []
    if control is not None:
        control_dicts = _dictionaries(control, list(random_init_saes),
                                      list(dict.fromkeys(d.key for d in dicts)), True,
                                      torch_device)
    key = atlas_key(adapter, dicts + control_dicts, codes, annotations, settings,
                    None if control is None else control.fingerprint())
    out = None if out is None else Path(out)
    if out is not None:
        existing = distributed.on_main(_existing, out, key, force)
        existing = distributed.broadcast_object(existing) if distributed.world_size() > 1 \
            else existing
        if existing is not None:
            return AtlasResult(None, existing, out, {"total": time.perf_counter() - t_start},
                               reused=True)
    splits = make_splits({r: len(c) for r, c in codes.items()}, settings.valid, settings.test)
    labels, _dropped = build_labels(intervals, codes, settings.labels)
    label_sets = {}
    if labels.n_concepts:
        label_sets["real"] = labels
        if settings.shuffled:
            label_sets["shuffled"] = shuffled_labels(labels, settings.seed)
    chunks = _pass_chunks(splits, settings.chunk_size)
    total = sum(b - a for _, a, b, _ in chunks)
    passes = [(adapter, dicts, 0)] + ([(control, control_dicts, 2 * len(chunks))]
                                      if control is not None else [])
    sample_nt = sum(b - a for _, a, b in _sample(
        list(chunk_regions(splits["valid"], settings.chunk_size)), settings.sample_nt))
    with progress(total=2 * total * len(passes) + (2 * sample_nt * len(passes)
                                                   if label_sets else 0),
                  unit="nt", unit_scale=True, desc="atlas") as bar:
        t0 = time.perf_counter()
        maxima, caches = {}, {}
        saved = _load_maxima(out, key, resume)
        if saved is not None:
            maxima = saved
        elif label_sets:
            for model_, dicts_, _ in passes:
                caches[id(model_)] = {} if model_.receptive_field is not None else None
                maxima.update(_maxima(model_, codes, dicts_, splits, settings, bar,
                                      caches[id(model_)], len(passes)))
            if out is not None:
                distributed.on_main(_save_maxima, out, key, maxima)
        timings["maxima"] = time.perf_counter() - t0
        contexts = {}
        plain = settings.as_dict()
        for model_, dicts_, _ in passes:
            for d in dicts_:
                extra = _context_extra(model_, d)
                if label_sets:
                    extra.update(maxima=maxima[d.name],
                                 label_sets=({"real": label_sets["real"]} if d.control
                                             else label_sets))
                contexts[d.name] = AtlasContext(
                    d.name, d.n_features, codes, records, offsets, bin_size, kind=d.kind,
                    site=d.key, control=d.control, intervals=intervals, settings=plain,
                    extra=extra)
        checkpoint = None if out is None else out / PARTIAL
        if checkpoint is not None and not resume:
            distributed.on_main(shutil.rmtree, checkpoint, ignore_errors=True)
        builder = Builder(contexts, checkpoint=checkpoint, key=key,
                          checkpoint_every=settings.checkpoint_every,
                          rank=distributed.rank(), world=distributed.world_size())
        numbered = [(*c, i) for i, c in enumerate(chunks)]
        mine = distributed.shard(numbered, weights=lambda c: c[2] - c[1])
        t0 = time.perf_counter()
        for model_, dicts_, index0 in passes:
            _run_pass(builder, model_, dicts_, codes, offsets, mine, index0, settings, bar,
                      timings, caches.pop(id(model_), None))
        builder.save()
        timings["pass"] = time.perf_counter() - t0
    if distributed.world_size() > 1:
        states = distributed.gather_object(builder.state_dict())
        if distributed.is_main():
            for r, state in enumerate(states):
                if r != distributed.rank():
                    builder.merge(state)
    holder = {}

    def finish():
        holder["result"] = _finish(builder, key, bin_size, out, timings, t_start)
        return holder["result"].manifest, holder["result"].timings

    manifest, times = distributed.on_main(finish)
    return holder.get("result") or AtlasResult(None, manifest, out, times)


def _finish(builder, key, bin_size, out, timings, t_start) -> AtlasResult:
    from dnatlas.atlas.store import write_atlas

    t0 = time.perf_counter()
    tables = builder.finish()
    timings["finish"] = time.perf_counter() - t0
    manifest = {"key": key, "bin_size": int(bin_size),
                "dictionaries": list(builder.contexts),
                "rows": {name: int(t.num_rows) for name, t in tables.items()}}
    if out is not None:
        t0 = time.perf_counter()
        write_atlas(out, tables, manifest)
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
        timings["write"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    timings["parts"] = dict(builder.seconds)
    return AtlasResult(tables, manifest, out, timings)
