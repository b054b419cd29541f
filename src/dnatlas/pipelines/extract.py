"""Extract any model's activations over a genome file to an activation folder.

Under ``torchrun`` (see docs/distributed.md) the ranks share the work: every record's
span is cut into the chunks (and batches of chunks) a single process would run, these
units are dealt out in contiguous runs balanced by length (:func:`dnatlas.distributed.shard`),
and each rank writes its rows straight into the same ``.npy`` files (disjoint byte ranges
of files rank 0 created). Rank 0 writes ``meta.json`` once every rank has finished. A unit
is run exactly as in a single pass (same input window, same batch), so the folder is
byte-identical to a single process's wherever the model's kernels round alike in every
process (docs/distributed.md: on the CPU the bundled model differs by at most 1 float16
ulp, as a single process started mid-genome does).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from dnatlas import distributed
from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter, resolve_model
from dnatlas.pipelines.records import records_of

STRANDS = {"+": ("+",), "-": ("-",), "both": ("+", "-"), "paired": ("+", "-")}


def extract_genome(model: str | ModelAdapter | None, fasta: str | Path, out: str | Path,
                   layers="all", site: str | None = None, region: str | None = None,
                   strand: str = "+", dtype: str = "float16", layout: str = "LC",
                   chunk_size: int = 1 << 15, batch_size: int = 1, device: str | None = None,
                   force: bool = False):
    """:func:`_extract_genome` (arguments as it takes them) holding the activation folder's
    lock (:mod:`dnatlas.outputs`): a second run into ``out`` fails at once. Another span
    of a record and layer the folder holds is not replaced without ``force``."""
    from dnatlas.files import check_output_dir
    from dnatlas.outputs import lock_folder

    if distributed.env_world()[0] != 0:  # rank 0 owns the folder
        return _extract_genome(model, fasta, out, layers, site, region, strand, dtype, layout,
                               chunk_size, batch_size, device, force)
    check_output_dir(out, "activation folder")
    with lock_folder(out, "activation folder"):
        return _extract_genome(model, fasta, out, layers, site, region, strand, dtype, layout,
                               chunk_size, batch_size, device, force)


def _refuse_other_spans(out, items, keys) -> None:
    """``extract`` into a folder holding another span of the same record and layer would
    replace it: refused without ``force`` (the same span is extracted again in place)."""
    from dnatlas.analysis.activation_files import read_meta, sequence_sha256
    from dnatlas.errors import InputError
    from dnatlas.genome.regions import format_region

    old = read_meta(Path(out)) if Path(out).is_dir() else None
    if old is None:
        return
    held = {(a["seqid"], a["layer"]): a for a in old.get("arrays", [])}
    for seqid, seq, start, end in items:
        for key in keys:
            a = held.get((seqid, key))
            if a is not None and (a["start"], a["end"], a.get("sequence_sha256")) != (
                    start, end, sequence_sha256(seq)):
                raise InputError(
                    f"the folder holds {key} of {format_region(seqid, a['start'], a['end'])}; "
                    f"extracting {format_region(seqid, start, end)} would replace it: give "
                    "another out, or force=True to replace it", path=out,
                    setting=("out", "force"))


def _extract_genome(model: str | ModelAdapter | None, fasta: str | Path, out: str | Path,
                    layers="all", site: str | None = None, region: str | None = None,
                    strand: str = "+", dtype: str = "float16", layout: str = "LC",
                    chunk_size: int = 1 << 15, batch_size: int = 1, device: str | None = None,
                    force: bool = False):
    """Activations of every record (or one 1-based ``region``) of ``fasta`` into ``out``.

    Returns the folder's :class:`~dnatlas.analysis.activation_files.Activations`.
    ``force`` first removes what an earlier extraction wrote into ``out``. Under torchrun
    each rank extracts its share (module docstring) on its own device.
    """
    with distributed.session(device) as info:
        adapter = resolve_model(model, info.device)
        items = [(r.id, r.seq, start, end) for r, start, end in records_of(fasta, region)]
        if not force:
            distributed.on_main(_refuse_other_spans, out, items,
                                adapter.select_keys(layers, site))
        return extract_records(adapter, items, out, layers, site, strand=strand,
                               dtype=np.dtype(dtype), layout=layout, chunk_size=chunk_size,
                               batch_size=batch_size, force=force)


def extract_records(model: ModelAdapter, items, out: str | Path, layers="all",
                    site: str | None = None, strand: str = "+", dtype=np.float16,
                    layout: str = "LC", chunk_size: int = 1 << 15, batch_size: int = 1,
                    force: bool = False):
    """Activations of several record spans into one folder, shared among torchrun's ranks.

    Args:
        items: ``[(seqid, seq, start, end)]``: a record's id, its (N,) uint8 codes and the
            0-based half-open span to extract (the rest of the record is context).
        Others as in :func:`dnatlas.analysis.extract.extract_to_dir`.

    Returns:
        The folder's :class:`~dnatlas.analysis.activation_files.Activations`, on every rank.
        One process calls ``extract_to_dir`` once per item; several processes write the
        same bytes (module docstring).
    """
    from dnatlas.analysis.extract import extract_to_dir, open_activations

    if not items:
        raise InputError("no record to extract")
    if distributed.world_size() == 1:
        for i, (seqid, seq, start, end) in enumerate(items):
            acts = extract_to_dir(model, seq, Path(out), layers, site, seqid=seqid,
                                  start=start, end=end, strand=strand, chunk_size=chunk_size,
                                  batch_size=batch_size, dtype=dtype, layout=layout,
                                  force=force and i == 0)
        return acts
    job = _Job(model, items, Path(out), model.select_keys(layers, site), strand,
               np.dtype(dtype), layout, int(chunk_size), int(batch_size))
    job.check()
    metas = distributed.on_main(job.prepare, force)
    job.run(distributed.shard(job.units(), weights=lambda u: u.e - u.s))
    distributed.barrier()
    distributed.on_main(job.finish, metas)
    return open_activations(job.out)


@dataclass(frozen=True)
class _Unit:
    """One batch of chunks of one pass: item ``i``, ``reverse`` (a pass over the reverse
    complement, in its coordinates), chunk starts ``[s, e)`` of that pass."""

    i: int
    reverse: bool
    s: int
    e: int


@dataclass
class _Job:
    """A sharded extraction: plan, folder preparation (rank 0), each rank's units, meta."""

    model: ModelAdapter
    items: list
    out: Path
    names: list[str]
    strand: str
    dtype: np.dtype
    layout: str
    chunk_size: int
    batch_size: int

    @property
    def outputs(self) -> tuple[str, ...]:
        return ("paired",) if self.strand == "paired" else STRANDS[self.strand]

    @cached_property
    def derive_minus(self) -> bool:
        """The − strand comes from the RC permutation of the forward pass."""
        return all(self.model.rc_permutation(n) is not None for n in self.names)

    def channels(self, name: str) -> int:
        return (2 if self.strand == "paired" else 1) * self.model.d(name)

    def check(self) -> None:
        """The argument checks of a single extraction, before any rank writes."""
        for name, value in (("chunk_size", self.chunk_size), ("batch_size", self.batch_size)):
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}", setting=name)
        if self.strand not in STRANDS:
            raise InputError(f"strand must be '+', '-', 'both' or 'paired', got {self.strand!r}")
        ids = [item[0] for item in self.items]
        if len(set(ids)) != len(ids):
            raise InputError("two records have the same id")
        for _, seq, start, end in self.items:
            if not 0 <= start < end <= len(seq):
                raise InputError(f"region [{start}, {end}) is outside the sequence "
                                 f"[0, {len(seq)})")

    # ---- the plan: the batches of chunks a single process runs ----------------------

    def units(self) -> list[_Unit]:
        """Every batch of every pass, in single-process order (forward passes, then reverse)."""
        from dnatlas.analysis.extract import plan_windows

        strands = STRANDS[self.strand]
        units = []
        for i, (_, seq, start, end) in enumerate(self.items):
            total = len(seq)
            passes = []
            if "+" in strands or self.derive_minus:
                passes.append((False, start, end))
            if "-" in strands and not self.derive_minus:
                passes.append((True, total - end, total - start))
            for reverse, a, b in passes:
                windows = plan_windows(self.model, a, b, total, self.chunk_size)
                units += [_Unit(i, reverse, s, e) for s, e in _batch_spans(windows,
                                                                          self.batch_size)]
        return units

    # ---- rank 0: the folder and meta.json ----------------------------------------------

    def prepare(self, force: bool) -> list[dict]:
        """Check and clear the folder, create every array file; the meta of each item."""
        from dnatlas.analysis.activation_files import (
            NpySink,
            array_file_name,
            check_compatible,
            read_meta,
            remove_written,
        )
        from dnatlas.analysis.extract import _check_free_space
        from dnatlas.files import check_output_dir

        out = check_output_dir(self.out, "activation folder")
        metas = [self._meta(item) for item in self.items]
        old = read_meta(out)
        if force:
            remove_written(out, old)
            old = None
        check_compatible(out, old, metas[0])
        _check_free_space(out, sum(int(np.prod(a["shape"])) * self.dtype.itemsize
                                   for meta in metas for a in meta["arrays"]))
        for (seqid, _, start, end) in self.items:
            for name in self.names:
                for s in self.outputs:
                    part = out / (array_file_name(seqid, name, s) + ".part")
                    NpySink(part, end - start, self.channels(name), self.dtype,
                            self.layout).close()
        return metas

    def _meta(self, item) -> dict:
        """``meta.json`` of one item as :func:`extract_to_dir` writes it."""
        from dnatlas.analysis.activation_files import (
            FORMAT,
            VERSION,
            array_file_name,
            sequence_sha256,
        )

        seqid, seq, start, end = item
        model = self.model
        meta = {"format": FORMAT, "version": VERSION, "model": model.name,
                "model_fingerprint": model.fingerprint(),
                "site": self.names[0].rsplit(".", 1)[-1], "dtype": self.dtype.name,
                "layout": self.layout,
                "chunk_size": self.chunk_size if model.receptive_field is None else None,
                "receptive_field": model.receptive_field, "rc_permutation": {}, "arrays": []}
        sha = sequence_sha256(seq)
        for name in self.names:
            c = self.channels(name)
            for s in self.outputs:
                meta["arrays"].append({
                    "seqid": seqid, "sequence_sha256": sha, "start": start, "end": end,
                    "strand": s, "layer": name, "file": array_file_name(seqid, name, s),
                    "shape": [end - start, c] if self.layout == "LC" else [c, end - start]})
        for name in self.names:
            perm = model.rc_permutation(name)
            if self.strand == "paired":
                c = model.d(name)
                perm = np.concatenate([np.arange(c, 2 * c), np.arange(c)])
            if perm is not None:
                meta["rc_permutation"][name] = np.asarray(perm).tolist()
        return meta

    def finish(self, metas: list[dict]) -> None:
        """Move the finished arrays into place and write ``meta.json``, item by item as a
        sequence of single extractions would."""
        from dnatlas.analysis.activation_files import merge_meta, read_meta

        for meta in metas:
            for entry in meta["arrays"]:
                (self.out / (entry["file"] + ".part")).replace(self.out / entry["file"])
            merge_meta(self.out, read_meta(self.out), meta)

    # ---- every rank: its units -----------------------------------------------------------

    def run(self, units: list[_Unit]) -> None:
        """Extract ``units`` and write their rows into the shared array files."""
        from dnatlas.progress import progress

        sinks: dict = {}
        rc_seqs: dict = {}
        bar = progress(total=sum(u.e - u.s for u in units), unit="nt", unit_scale=True,
                       desc=f"extract (rank {distributed.rank()} of {distributed.world_size()})",
                       disable=not distributed.is_main())
        try:
            for unit in units:
                self._run_unit(unit, sinks, rc_seqs)
                bar.update(unit.e - unit.s)
        finally:
            bar.close()
            for sink in sinks.values():
                sink.close()

    def _sink(self, sinks: dict, i: int, name: str, s: str):
        from dnatlas.analysis.activation_files import NpySink, array_file_name

        if (i, name, s) not in sinks:
            seqid, _, start, end = self.items[i]
            path = self.out / (array_file_name(seqid, name, s) + ".part")
            sinks[i, name, s] = NpySink.attach(path, end - start, self.channels(name),
                                               self.dtype, self.layout)
        return sinks[i, name, s]

    def _run_unit(self, u: _Unit, sinks: dict, rc_seqs: dict) -> None:
        """One unit through ``extract_activations`` (which plans the same windows and batch
        as the whole pass did), its rows placed as ``extract_to_dir`` places them."""
        from dnatlas.analysis.extract import extract_activations
        from dnatlas.genome.alphabet import reverse_complement

        _, seq, start, end = self.items[u.i]
        kw = {"chunk_size": self.chunk_size, "batch_size": self.batch_size,
              "dtype": self.dtype, "layout": "LC", "progress": False}
        if u.reverse:  # rc coordinates [s, e) = forward [total - e, total - s)
            rc = rc_seqs.setdefault(u.i, reverse_complement(seq))
            total = len(seq)
            acts = extract_activations(self.model, rc, self.names, start=u.s, end=u.e,
                                       strand="+", **kw)
            for name, block in acts.items():
                if self.strand == "paired":
                    self._sink(sinks, u.i, name, "paired").write(
                        total - u.e - start, block[::-1], self.model.d(name))
                else:
                    self._sink(sinks, u.i, name, "-").write(u.s - (total - end), block)
            return
        strand = self.strand if self.derive_minus else "+"
        acts = extract_activations(self.model, seq, self.names, start=u.s, end=u.e,
                                   strand=strand, **kw)
        if strand != "both":
            acts = {(name, "paired" if strand == "paired" else strand): a
                    for name, a in acts.items()}
        for (name, s), block in acts.items():
            if s == "-":  # reverse-complement order
                self._sink(sinks, u.i, name, "-").write(end - u.e, block)
            else:  # "+", or "paired" from channel 0 (2C channels when derived)
                out = "paired" if self.strand == "paired" else "+"
                self._sink(sinks, u.i, name, out).write(u.s - start, block)


def _batch_spans(windows, batch_size: int):
    """``(s, e)`` of each batch a single pass runs: consecutive windows of equal input
    length, at most ``batch_size`` of them (as :func:`dnatlas.analysis.extract` groups)."""
    batch = []
    for w in windows:
        if batch and (len(batch) == batch_size or (w[3] - w[2]) != (batch[0][3] - batch[0][2])):
            yield batch[0][0], batch[-1][1]
            batch = []
        batch.append(w)
    if batch:
        yield batch[0][0], batch[-1][1]
