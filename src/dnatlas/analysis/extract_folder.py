"""Activations into an activation folder: one record, or many shared among torchrun's ranks.

:func:`extract_to_dir` streams one record's span into ``.npy`` files. :func:`extract_records`
does it for several record spans; under ``torchrun`` (see docs/distributed.md) the ranks
share the work: every record's span is cut into the chunks (and batches of chunks) a single
process would run (:func:`~dnatlas.analysis.extract.plan_windows`,
:func:`~dnatlas.analysis.extract.batch_windows`), these units are dealt out in contiguous
runs balanced by length (:func:`dnatlas.distributed.shard`), and each rank writes its rows
straight into the same ``.npy`` files (disjoint byte ranges of files rank 0 created). Rank
0 writes ``meta.json`` once every rank has finished. A unit is run exactly as in a single
pass (same input window, same batch), so the folder is byte-identical to a single
process's wherever the model's kernels round alike in every process (docs/distributed.md:
on the CPU the bundled model differs by at most 1 float16 ulp, as a single process
started mid-genome does).

Both paths share one folder metadata (:func:`folder_meta`), one folder preparation
(:func:`_open_folder`: checks, ``force``, free space) and one way of putting arrays into
place (:func:`_finish`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from dnatlas import distributed
from dnatlas.analysis.activation_files import (
    FORMAT,
    VERSION,
    Activations,
    NpySink,
    array_file_name,
    check_compatible,
    merge_meta,
    open_activations,
    read_meta,
    remove_written,
    sequence_sha256,
)
from dnatlas.analysis.extract import (
    STRANDS,
    batch_windows,
    check_settings,
    check_span,
    derives_minus,
    extract_activations,
    outputs_of,
    plan_windows,
    prepare,
    run_passes,
)
from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter

__all__ = ["extract_records", "extract_to_dir", "folder_identity", "folder_meta"]


def folder_identity(model: ModelAdapter, key: str, dtype, layout: str, chunk_size: int) -> dict:
    """What every array of a folder shares (checked by
    :func:`~dnatlas.analysis.activation_files.check_compatible`): the model, the site of
    ``key``, dtype, layout and, where it changes results, the chunking."""
    return {"model": model.name, "model_fingerprint": model.fingerprint(),
            "site": key.rsplit(".", 1)[-1], "dtype": np.dtype(dtype).name, "layout": layout,
            # chunking changes results only for models without a finite receptive field
            "chunk_size": int(chunk_size) if model.receptive_field is None else None,
            "receptive_field": model.receptive_field}


def folder_meta(model: ModelAdapter, names: list[str], item, strand: str, dtype, layout: str,
                chunk_size: int) -> dict:
    """``meta.json`` of one record span ``item = (seqid, seq, start, end)`` extracted at
    ``names`` with these settings (the arrays' entries, the RC permutations)."""
    seqid, seq, start, end = item
    meta = {"format": FORMAT, "version": VERSION,
            **folder_identity(model, names[0], dtype, layout, chunk_size),
            "rc_permutation": {}, "arrays": []}
    sha = sequence_sha256(seq)
    for name in names:
        c = _channels(model, name, strand)
        for s in outputs_of(strand):
            meta["arrays"].append({
                "seqid": seqid, "sequence_sha256": sha, "start": start, "end": end,
                "strand": s, "layer": name, "file": array_file_name(seqid, name, s),
                "shape": [end - start, c] if layout == "LC" else [c, end - start]})
    for name in names:
        perm = model.rc_permutation(name)
        if strand == "paired":  # the halves swap
            c = model.d(name)
            perm = np.concatenate([np.arange(c, 2 * c), np.arange(c)])
        if perm is not None:
            meta["rc_permutation"][name] = np.asarray(perm).tolist()
    return meta


def _channels(model: ModelAdapter, name: str, strand: str) -> int:
    return (2 if strand == "paired" else 1) * model.d(name)


def _open_folder(out, metas: list[dict], force: bool) -> Path:
    """Check the folder (writable, same model/site/layout, room for every array), after
    removing what an earlier extraction wrote when ``force``."""
    from dnatlas.files import check_free_space, check_output_dir

    out = check_output_dir(out, "activation folder")
    old = read_meta(out)
    if force:
        remove_written(out, old)
        old = None
    check_compatible(out, old, metas[0])
    itemsize = np.dtype(metas[0]["dtype"]).itemsize
    check_free_space(out, sum(int(np.prod(a["shape"])) * itemsize
                              for meta in metas for a in meta["arrays"]), _no_room,
                     setting=("layers", "region", "out", "acts"))
    return out


def _no_room(needed: int, free: int) -> str:
    return (f"the activations need {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB "
            "are free (fewer layers, a region, or another out/acts disk)")


def _part(out: Path, entry: dict) -> Path:
    return out / (entry["file"] + ".part")


def _finish(out: Path, meta: dict) -> None:
    """Move one span's finished arrays into place and merge its entries into meta.json."""
    for entry in meta["arrays"]:
        _part(out, entry).replace(out / entry["file"])
    merge_meta(out, read_meta(out), meta)


def extract_to_dir(model, seq: np.ndarray, out: str | Path, layers="all",
                   site: str | None = None, seqid: str = "seq", start: int = 0,
                   end: int | None = None, strand: str = "+", chunk_size: int = 1 << 15,
                   batch_size: int = 1, dtype=np.float16, layout: str = "LC",
                   progress: bool | None = None, force: bool = False) -> Activations:
    """Stream activations of ``seq[start:end]`` to ``.npy`` files in ``out``.

    Several calls with different ``seqid`` add records to the same folder; an existing
    entry of the same (seqid, layer, strand) is replaced. A folder that holds activations
    of another model (by fingerprint), site, layout, dtype or chunking is refused, unless
    ``force`` (which removes only what an earlier extraction wrote there). Other arguments
    as in :func:`~dnatlas.analysis.extract.extract_activations`.
    """
    model, seq, names, start, end = prepare(model, seq, layers, site, start, end,
                                            chunk_size, batch_size, strand)
    meta = folder_meta(model, names, (seqid, seq, start, end), strand, dtype, layout,
                       chunk_size)
    out = _open_folder(out, [meta], force)
    sinks = {(a["layer"], a["strand"]): NpySink(_part(out, a), end - start,
                                                _channels(model, a["layer"], strand), dtype,
                                                layout)
             for a in meta["arrays"]}
    try:
        run_passes(model, seq, names, start, end, strand, sinks, chunk_size, batch_size,
                   progress, f"extract {seqid}", dtype, layout)
        for sink in sinks.values():
            sink.close()  # the background writes done (a write error raised here)
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    _finish(out, meta)
    return open_activations(out)


def extract_records(model: ModelAdapter, items, out: str | Path, layers="all",
                    site: str | None = None, strand: str = "+", dtype=np.float16,
                    layout: str = "LC", chunk_size: int = 1 << 15, batch_size: int = 1,
                    force: bool = False) -> Activations:
    """Activations of several record spans into one folder, shared among torchrun's ranks.

    Args:
        items: ``[(seqid, seq, start, end)]``: a record's id, its (N,) uint8 codes and the
            0-based half-open span to extract (the rest of the record is context).
        Others as in :func:`extract_to_dir`.

    Returns:
        The folder's :class:`~dnatlas.analysis.activation_files.Activations`, on every rank.
        One process calls :func:`extract_to_dir` once per item; several processes write the
        same bytes (module docstring).
    """
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

    @cached_property
    def derive_minus(self) -> bool:
        """The − strand comes from the RC permutation of the forward pass."""
        return derives_minus(self.model, self.names)

    def check(self) -> None:
        """The argument checks of a single extraction, before any rank writes."""
        check_settings(self.chunk_size, self.batch_size, self.strand)
        ids = [item[0] for item in self.items]
        if len(set(ids)) != len(ids):
            raise InputError("two records have the same id")
        for _, seq, start, end in self.items:
            check_span(seq, start, end)

    def units(self) -> list[_Unit]:
        """Every batch of every pass, in single-process order (forward passes, then reverse)."""
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
                units += [_Unit(i, reverse, batch[0][0], batch[-1][1])
                          for batch in batch_windows(windows, self.batch_size)]
        return units

    def prepare(self, force: bool) -> list[dict]:
        """Rank 0: check and clear the folder, create every array file; each item's meta."""
        metas = [folder_meta(self.model, self.names, item, self.strand, self.dtype,
                             self.layout, self.chunk_size) for item in self.items]
        out = _open_folder(self.out, metas, force)
        for (_, _, start, end), meta in zip(self.items, metas, strict=True):
            for a in meta["arrays"]:
                NpySink(_part(out, a), end - start, _channels(self.model, a["layer"],
                                                              self.strand),
                        self.dtype, self.layout).close()
        return metas

    def finish(self, metas: list[dict]) -> None:
        """Rank 0: put the arrays into place and write meta.json, item by item as a sequence
        of single extractions would."""
        for meta in metas:
            _finish(self.out, meta)

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
        if (i, name, s) not in sinks:
            seqid, _, start, end = self.items[i]
            path = self.out / (array_file_name(seqid, name, s) + ".part")
            sinks[i, name, s] = NpySink.attach(path, end - start,
                                               _channels(self.model, name, self.strand),
                                               self.dtype, self.layout)
        return sinks[i, name, s]

    def _run_unit(self, u: _Unit, sinks: dict, rc_seqs: dict) -> None:
        """One unit through ``extract_activations`` (which plans the same windows and batch
        as the whole pass did), its rows placed as :func:`extract_to_dir` places them."""
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
