"""The neuron catalog pipeline (report section 5, Figure 4): for every neuron of one or more
layers of any model, its AUPRC against every annotation track over whole genomes and both
strands, with PR curves, Manhattan plots and top-activating windows.

    from dnatlas.pipelines.neurons import CatalogSettings, neuron_catalog
    result = neuron_catalog("default", "genome.fa", "genes.gff3", layers="all", out="runs/n")
    result.summary          # each track's best layer and neuron

Activations are extracted once, neuron-major, into ``acts_dir`` (default ``OUT/acts``) and
reused only when the model's fingerprint, the site, the chunking and every record's
sequence hash match. For RC-equivariant models (DNAtlas) the − strand comes from the RC
permutation; for others (HyenaDNA, NT) from a second pass over the reverse complement,
stored as extra channels (``strand="paired"``).

Under ``torchrun`` (docs/distributed.md) the ranks share the extraction (as ``dnatlas
extract``) and then the neurons (RC partners together, balanced); rank 0 gathers every
neuron's scores and windows and writes the same files a single process writes.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dnatlas import distributed
from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter, resolve_model


@dataclass
class CatalogSettings:
    """Options of :func:`neuron_catalog`.

    Attributes:
        records: records to scan (default: the annotated ones).
        region: one 1-based region ``RECORD:START-END`` to scan instead (its activations
            are computed with real flanking context, as in a whole-record pass).
        tracks: tracks to score (default: all).
        footnote6: label start codons at their 2nd and stop codons at their 1st nucleotide.
        top: neurons listed per track; windows: top windows per neuron, each
            ``half_window`` nt each side of its centre.
        manhattan: neurons to plot (default: the best of each track).
        jobs: processes scoring neurons; chunk_size, batch_size: extraction.
    """

    records: list[str] | None = None
    region: str | None = None
    tracks: list[str] | None = None
    footnote6: bool = False
    top: int = 20
    windows: int = 10
    half_window: int = 40
    manhattan: list[int] | None = None
    jobs: int = 1
    chunk_size: int = 1 << 15
    batch_size: int = 1

    def check(self) -> None:
        for name in ("top", "windows", "half_window", "jobs", "chunk_size", "batch_size"):
            if getattr(self, name) < (0 if name in ("windows",) else 1):
                raise InputError(f"{name} must be positive, got {getattr(self, name)}",
                                 setting=name)


@dataclass(frozen=True)
class TrackBest:
    """A track's best neuron over the layers scanned: its ``layer`` (key) and ``neuron``,
    their ``auprc``, the track's ``chance`` AP and the ``lift`` over it."""

    track: str
    chance: float
    layer: str
    neuron: int
    auprc: float
    lift: float


@dataclass
class CatalogResult:
    """What :func:`neuron_catalog` produced.

    Attributes:
        catalogs: one :class:`~dnatlas.analysis.catalog.NeuronCatalog` per layer.
        codon_match: AUPRC of an exact codon match per codon track (the reference).
        summary: per track, its best layer and neuron (several layers only).
        out: the output folder.
    """

    catalogs: list
    codon_match: dict
    summary: list[dict] = field(default_factory=list)
    out: Path = Path(".")

    @property
    def best_per_track(self) -> list[TrackBest]:
        """Each track's best layer and neuron (several layers; tracks with positives)."""
        return [TrackBest(r["track"], r["chance"], r["layer"], r["neuron"], r["auprc"],
                          r["lift"]) for r in self.summary if r["best_layer"]]

    @property
    def tracks_without_positives(self) -> list[str]:
        """The tracks of :attr:`summary` no layer could score (no positive position)."""
        best = {r["track"] for r in self.summary if r["best_layer"]}
        return sorted({r["track"] for r in self.summary} - best)


def _labels(records, bounds, intervals, settings: CatalogSettings):
    """Label tracks of each record's scanned span ``bounds[id] = (start, end)``."""
    from dnatlas.analysis.neurons import GenomeLabels, footnote6_names
    from dnatlas.annotation.tracks import label_tracks

    names = footnote6_names(settings.tracks, settings.footnote6) if settings.tracks else None
    tracks = {r.id: label_tracks(intervals, r.id, len(r), tracks=names).slice(*bounds[r.id])
              for r in records}
    return tracks, GenomeLabels.from_tracks(tracks, names, footnote6=settings.footnote6)


#: what a neuron catalog writes into its folder (anything else there is the user's)
CATALOG_OUTPUTS = {"catalog.csv", "catalog.json", "auprc.npz", "top_windows.csv",
                   "top_windows.json", "pr", "manhattan", "windows", "acts", "layers.csv",
                   "layers.json"}


def is_catalog_output(name: str) -> bool:
    """Whether a file name in an output folder is one a neuron catalog writes."""
    return name in CATALOG_OUTPUTS or name.startswith(("blocks.", "embed"))


def neuron_catalog(model: str | ModelAdapter | None, fasta: str | Path,
                   annotations, layers, out: str | Path, site: str | None = None,
                   acts_dir: str | Path | None = None,
                   settings: CatalogSettings | None = None, device: str | None = None,
                   force: bool = False) -> CatalogResult:
    """Score every neuron of ``layers`` against every track; write catalogs and figures.

    One layer writes into ``out``; several write ``out/<layer>/`` each, plus
    ``out/layers.csv``/``layers.json`` with each track's best layer. A folder holding files
    a catalog does not write is refused unless ``force``. ``annotations``: a file, a bundled
    annotation name (``ecoli_k12_mg1655``: all its files) or a list of either, read as one
    union (:func:`dnatlas.annotation.intervals.load_annotations`). Under torchrun every
    rank returns the same result; rank 0 writes.
    """
    with distributed.session(device) as info, contextlib.ExitStack() as stack:
        distributed.on_main(_lock_out, stack, out, force)
        return _neuron_catalog(model, fasta, annotations, layers, out, site, acts_dir,
                               settings, info.device, force)


def _lock_out(stack: contextlib.ExitStack, out, force: bool) -> None:
    """Check the output folder and hold its lock (:mod:`dnatlas.outputs`) for the run."""
    from dnatlas.files import check_output_dir
    from dnatlas.outputs import lock_folder

    check_output_dir(out, "output folder", own=is_catalog_output, force=force)
    stack.enter_context(lock_folder(out))


def _neuron_catalog(model, fasta, annotations, layers, out, site, acts_dir, settings, device,
                    force) -> CatalogResult:
    from dnatlas.analysis.catalog import layer_summary, write_layer_summary
    from dnatlas.analysis.motifs import codon_match_auprc
    from dnatlas.annotation.intervals import load_annotations, restrict_to_genome
    from dnatlas.files import check_output_dir
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import resolve_bundled_annotations, resolve_bundled_genome

    settings = settings or CatalogSettings()
    settings.check()
    adapter = resolve_model(model, device)
    keys = adapter.select_keys(layers, site)
    out = distributed.on_main(check_output_dir, out, "output folder", own=is_catalog_output,
                              force=force)
    fasta, annotations = resolve_bundled_genome(fasta), resolve_bundled_annotations(annotations)
    where = ", ".join(str(path) for path in annotations)  # the annotation files, for messages
    genome = list(read_records(fasta))
    if settings.records:
        unknown = sorted(set(settings.records) - {r.id for r in genome})
        if unknown:
            raise InputError(f"no record {unknown[0]!r} in the genome", path=fasta)
        genome = [r for r in genome if r.id in settings.records]
    intervals = restrict_to_genome(load_annotations(annotations),
                                   {r.id: len(r) for r in genome}, path=where)
    annotated = {iv.seqid for iv in intervals}
    records = [r for r in genome if r.id in annotated]  # unannotated records were warned of
    bounds = {r.id: (0, len(r)) for r in records}
    if settings.region:
        from dnatlas.pipelines.records import records_of

        (record, start, end), = records_of(fasta, settings.region)
        if record.id not in annotated:
            raise InputError(f"record {record.id!r} has no annotated feature", path=where)
        records, bounds = [record], {record.id: (start, end)}
    tracks, labels = _labels(records, bounds, intervals, settings)
    spans = [r.seq[slice(*bounds[r.id])] for r in records]
    match = distributed.on_main(codon_match_auprc, spans, [tracks[r.id] for r in records],
                                labels.names)
    acts, perms = neuron_major_activations(adapter, records, keys,
                                           Path(acts_dir) if acts_dir else out / "acts",
                                           settings.chunk_size, settings.batch_size, bounds)
    catalogs = []
    for key in keys:
        layer_out = out if len(keys) == 1 else out / key
        catalogs.append(layer_catalog(adapter, key, acts[key], perms[key], records, labels,
                                      intervals, settings, layer_out, match, bounds))
        if len(keys) > 1 and distributed.is_main():
            print(f"wrote {layer_out}", file=sys.stderr)
    summary = [] if len(keys) == 1 else (write_layer_summary(catalogs, out)
                                         if distributed.is_main() else layer_summary(catalogs))
    return CatalogResult(catalogs, match, summary, out)


def neuron_major_activations(model: ModelAdapter, records, keys: list[str], acts_dir: Path,
                             chunk_size: int, batch_size: int, bounds: dict | None = None):
    """``({key: [(C', L_r) float16 per record]}, {key: perm})``, extracted once into
    ``acts_dir`` and reused only when model, site, chunking and sequence all match.

    ``C'`` is C for RC-equivariant models (perm: their RC permutation) and 2C otherwise
    (``paired`` arrays; perm maps channel c to its − strand copy C + c). ``bounds``
    (``{id: (start, end)}``, default whole records) limits each record to a span.
    Under torchrun the ranks share the extraction
    (:func:`~dnatlas.analysis.extract_folder.extract_records`).
    """
    from dnatlas.analysis.activation_files import (
        check_compatible,
        open_activations,
        read_meta,
        sequence_sha256,
    )
    from dnatlas.analysis.extract import derives_minus
    from dnatlas.analysis.extract_folder import extract_records, folder_identity

    strand = "+" if derives_minus(model, keys) else "paired"
    existing = open_activations(acts_dir) if read_meta(acts_dir) is not None else None
    if existing is not None and existing.layout != "CL":
        raise InputError("the activation folder must hold neuron-major (layout CL) "
                         "activations", path=acts_dir, setting="layout")
    if existing is not None:
        check_compatible(acts_dir, existing.meta,
                         folder_identity(model, keys[0], np.float16, "CL", chunk_size))
    spans = [(record, *(bounds or {}).get(record.id, (0, len(record)))) for record in records]
    shas = {record.id: sequence_sha256(record.seq) for record in records}
    missing: dict[tuple, list] = {}  # records grouped by the layers they lack
    for record, start, end in spans:
        lacking = tuple(key for key in keys if not _cached(existing, key, strand, record.id,
                                                           shas[record.id], start, end))
        if lacking:
            missing.setdefault(lacking, []).append((record.id, record.seq, start, end))
    for lacking, items in missing.items():
        existing = extract_records(model, items, acts_dir, list(lacking), strand=strand,
                                   layout="CL", dtype=np.float16, chunk_size=chunk_size,
                                   batch_size=batch_size)
    out: dict[str, list] = {key: [] for key in keys}
    for record, start, end in spans:
        for key in keys:
            entry = _cached(existing, key, strand, record.id, shas[record.id], start, end)
            out[key].append(existing.load_entry(entry))
    perms = {key: existing.rc_permutation(key) for key in keys}
    return out, perms


def _cached(existing, key: str, strand: str, seqid: str, sha: str, start: int, end: int):
    """The entry of a record span's array in an activation folder, or None."""
    return existing.find(key, strand, seqid, sha, start, end) if existing is not None else None


def layer_catalog(model: ModelAdapter, key: str, acts, perm, records, labels, intervals,
                  settings: CatalogSettings, out: Path, match: dict, bounds: dict | None = None):
    """Scan one layer's neurons and write its catalog, top windows and figures into ``out``."""
    from dnatlas.analysis.catalog import NeuronCatalog, write_top_windows
    from dnatlas.pipelines.neuron_figures import best_neurons, neuron_figures

    n_channels = model.d(key)
    chosen = settings.manhattan
    bad = [n for n in chosen or [] if not 0 <= n < n_channels]
    if bad:
        raise InputError(f"neuron {bad[0]} out of range: {key} has {n_channels} neurons")
    bounds = bounds or {r.id: (0, len(r)) for r in records}
    auprc, windows = _scan_shared(acts, labels, perm, n_channels,
                                  seqs=[r.seq[slice(*bounds[r.id])] for r in records],
                                  top_k=settings.windows, half_window=settings.half_window,
                                  n_jobs=settings.jobs)
    origin = bounds[records[0].id][0] if settings.region else 0
    if origin:  # positions of a region are reported in genomic coordinates
        windows = {n: [replace(w, position=w.position + origin, start=w.start + origin,
                               end=w.end + origin) for w in ws] for n, ws in windows.items()}
    rc = model.rc_permutation(key)  # RC partners: one feature, named as a pair
    catalog = NeuronCatalog(key, labels.names, np.arange(n_channels), auprc, labels.chance,
                            labels.n_pos, labels.n,
                            partner=None if rc is None else np.asarray(rc)[:n_channels])
    extra = {"model": model.name, "model_fingerprint": model.fingerprint(),
             "records": labels.seqids, "region": settings.region, "footnote6": settings.footnote6,
             "codon_match_auprc": match}
    if distributed.is_main():
        catalog.save(out, settings.top, extra)
        write_top_windows(windows, out / "top_windows.csv")
        write_top_windows(windows, out / "top_windows.json")
        neuron_figures(out, catalog, labels, acts, perm, windows,
                       best_neurons(catalog) if chosen is None else chosen, intervals,
                       codon_match=match, origin=origin)
    return catalog


def _scan_shared(acts, labels, perm, n_channels: int, **kw):
    """:func:`~dnatlas.analysis.neurons.scan_neurons` of all ``n_channels`` neurons, each
    torchrun rank scoring its share (RC partners together); ``(auprc, windows)`` on every
    rank, as one process computes them."""
    from dnatlas.analysis.neurons import scan_neurons

    if distributed.world_size() == 1:
        return scan_neurons(acts, labels, perm, neurons=range(n_channels), **kw)
    groups, seen = [], set()
    for n in range(n_channels):
        if n not in seen:
            group = sorted({n, int(perm[n])}) if perm is not None else [n]
            groups.append(group)
            seen.update(group)
    mine = [n for group in distributed.shard(groups, weights=len) for n in group]
    auprc = np.empty((n_channels, len(labels.names)))
    windows: dict = {}
    for neurons, ap, found in distributed.all_gather_object(
            (mine, *scan_neurons(acts, labels, perm, neurons=mine, **kw))):
        auprc[neurons] = ap
        windows.update(found)
    return auprc, {n: windows[n] for n in range(n_channels) if n in windows}
