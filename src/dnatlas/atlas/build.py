"""The atlas builder: feeds chunks to every dictionary's accumulators, saves and resumes
their state, merges ranks, and turns them into the atlas's tables.

    builder = Builder(contexts)                    # {dictionary: AtlasContext}
    for chunk, acts in pass_over_genome():         # acts {dictionary: (n, F)}
        builder.feed(chunk, acts)
    tables = builder.finish()                      # {table: pyarrow.Table}

The builder knows no model: tests feed it synthetic activations, and
:mod:`dnatlas.pipelines.atlas` feeds it the model's. The parts of the atlas are the
modules listed in :data:`PARTS`, each optionally holding ``ACCUMULATORS`` (factories
``(context) -> Accumulator | None``) and ``FINALIZERS`` (``(tables, contexts) ->
tables``, run after the pass in the order of :data:`PARTS`); modules not present (yet)
are skipped. See :mod:`dnatlas.atlas.accumulate` for the contract.

**Resuming.** With ``checkpoint`` (a folder, ``OUT/.partial``), the states of all
accumulators and the indices of the chunks done are saved atomically every
``checkpoint_every`` chunks (``state-RANK-of-WORLD.npz`` and ``.json``) under the build's
key; a builder created on the same key and world size loads them, and the pipeline skips
the chunks done (:meth:`Builder.is_done`). Accumulators restore exact states and chunks
are fed in the same order, so a resumed build's tables equal an uninterrupted one's.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dnatlas.atlas import schema
from dnatlas.atlas.accumulate import AtlasContext, Chunk
from dnatlas.atlas.columns import arrow_type
from dnatlas.genome.alphabet import sequence_sha256

#: modules holding the atlas's accumulators and finalizers, in finalizer order
PARTS = [
    "dnatlas.atlas.statistics",
    "dnatlas.atlas.examples",
    "dnatlas.atlas.concept_scores",
    "dnatlas.atlas.landmarks",
    "dnatlas.atlas.gene_context",
    "dnatlas.atlas.structure",
    "dnatlas.atlas.motifs",
    "dnatlas.atlas.describe",
]
STATE_VERSION = 1


def load_parts(parts: Iterable[str] | None = None) -> tuple[list[Callable], list[Callable]]:
    """(accumulator factories, finalizers) of the modules in ``parts`` (default
    :data:`PARTS`) that exist."""
    factories, finalizers = [], []
    for name in PARTS if parts is None else parts:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        factories += list(getattr(module, "ACCUMULATORS", []))
        finalizers += list(getattr(module, "FINALIZERS", []))
    return factories, finalizers


def _slice_rows(acts, a: int, b: int):
    return acts[a:b]


def _with_halo(chunk: Chunk, acts, halo: int):
    """The chunk and its activations cut to ``halo`` nt around it."""
    lo = max(chunk.lo, chunk.start - halo)
    hi = min(chunk.hi, chunk.end + halo)
    if lo == chunk.lo and hi == chunk.hi:
        return chunk, acts
    a, b = lo - chunk.lo, hi - chunk.lo
    cut = Chunk(chunk.record, chunk.start, chunk.end, chunk.strand, chunk.seq[a:b],
                chunk.split, chunk.offset, chunk.index, lo, hi, chunk.record_length)
    return cut, _slice_rows(acts, a, b)


class Builder:
    """Accumulators of several dictionaries over one or more passes (module docstring).

    Args:
        contexts: {dictionary: AtlasContext}.
        parts: module names (default :data:`PARTS`); or pass ``factories`` and
            ``finalizers`` directly.
        checkpoint: folder for resumable state (None: no saving); key: dict identifying
            the build (a state saved under another key is ignored).
        checkpoint_every: chunks between saves; rank, world: this process in torchrun.
    """

    def __init__(self, contexts: Mapping[str, AtlasContext], parts: Iterable[str] | None = None,
                 factories: list[Callable] | None = None,
                 finalizers: list[Callable] | None = None,
                 checkpoint: str | Path | None = None, key: dict | None = None,
                 checkpoint_every: int = 16, rank: int = 0, world: int = 1):
        loaded_factories, loaded_finalizers = load_parts(parts)
        self.factories = loaded_factories if factories is None else factories
        self.finalizers = loaded_finalizers if finalizers is None else finalizers
        self.contexts = dict(contexts)
        self.accumulators = {}
        for name, context in self.contexts.items():
            accs = [factory(context) for factory in self.factories]
            self.accumulators[name] = [a for a in accs if a is not None]
        self.done: set[int] = set()
        self.seconds: dict[str, float] = {}    # update time per accumulator class
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.key = key or {}
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.rank, self.world = rank, world
        self._since_save = 0
        self.resumed = False
        if self.checkpoint is not None:
            self.resumed = self._load()

    @property
    def halo(self) -> int:
        """The largest halo any accumulator asks for (nt)."""
        return max([int(getattr(a, "halo", 0)) for accs in self.accumulators.values()
                    for a in accs] + [0])

    # -- the pass ------------------------------------------------------------------------
    def is_done(self, index: int) -> bool:
        return int(index) in self.done

    def feed(self, chunk: Chunk, acts: Mapping[str, object]) -> None:
        """Feed one chunk's activations ({dictionary: (hi - lo, F)}, covering the chunk's
        halo if it has one) to the accumulators of those dictionaries."""
        if chunk.index in self.done:
            raise ValueError(f"chunk {chunk.index} was fed already")
        plain = chunk.without_halo()
        own = chunk.own
        for name, values in acts.items():
            if values.shape[0] != chunk.hi - chunk.lo:
                raise ValueError(f"{name}: {values.shape[0]} rows for chunk "
                                 f"[{chunk.lo}, {chunk.hi})")
            inner = _slice_rows(values, own.start, own.stop) if chunk.has_halo else values
            if sp.issparse(inner) and not isinstance(inner, sp.csr_matrix):
                inner = sp.csr_matrix(inner)
            for acc in self.accumulators[name]:
                t0 = time.perf_counter()
                halo = int(getattr(acc, "halo", 0))
                if halo:
                    acc.update(*_with_halo(chunk, values, halo))
                else:
                    acc.update(plain, inner)
                part = type(acc).__name__
                self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - t0
        self.done.add(int(chunk.index))
        self._since_save += 1
        if self.checkpoint is not None and self._since_save >= self.checkpoint_every:
            self.save()

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'done': indices, 'accumulators': {dictionary: [state, ...]}}."""
        return {"done": np.array(sorted(self.done), dtype=np.int64),
                "accumulators": {name: [a.state_dict() for a in accs]
                                 for name, accs in self.accumulators.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.done = set(np.asarray(state["done"]).tolist())
        for name, accs in self.accumulators.items():
            for acc, s in zip(accs, state["accumulators"][name], strict=True):
                acc.load_state_dict(s)

    def merge(self, other: Builder | dict) -> None:
        """Add another rank's accumulators (a Builder, or its :meth:`state_dict`)."""
        if isinstance(other, dict):
            state, other = other, Builder(self.contexts, factories=self.factories,
                                          finalizers=[])
            other.load_state_dict(state)
        overlap = self.done & other.done
        if overlap:
            raise ValueError(f"chunks fed to both builders: {sorted(overlap)[:5]}")
        for name, accs in self.accumulators.items():
            for acc, theirs in zip(accs, other.accumulators[name], strict=True):
                acc.merge(theirs)
        self.done |= other.done

    def _paths(self) -> tuple[Path, Path]:
        stem = f"state-{self.rank}-of-{self.world}"
        return self.checkpoint / f"{stem}.npz", self.checkpoint / f"{stem}.json"

    def _key_hash(self) -> str:
        text = json.dumps({"key": self.key, "version": STATE_VERSION,
                           "dictionaries": {n: [type(a).__name__ for a in accs]
                                            for n, accs in self.accumulators.items()}},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def save(self) -> None:
        """Write the state atomically (arrays, then the JSON that names them)."""
        if self.checkpoint is None:
            return
        self.checkpoint.mkdir(parents=True, exist_ok=True)
        arrays = {"done": np.array(sorted(self.done), dtype=np.int64)}
        layout = {}
        for name, accs in self.accumulators.items():
            for i, acc in enumerate(accs):
                for k, v in acc.state_dict().items():
                    slot = f"a{len(arrays)}"
                    arrays[slot] = np.asarray(v)
                    layout[slot] = [name, i, k]
        npz, meta = self._paths()
        tmp = npz.with_name(f".{npz.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, npz)
        tmp_meta = meta.with_name(f".{meta.name}.tmp-{os.getpid()}")
        tmp_meta.write_text(json.dumps({"key": self._key_hash(), "layout": layout,
                                        "npz_sha256": digest, "chunks_done": len(self.done)}))
        os.replace(tmp_meta, meta)
        self._since_save = 0

    def _load(self) -> bool:
        npz, meta = self._paths()
        if not (npz.is_file() and meta.is_file()):
            return False
        try:
            info = json.loads(meta.read_text())
            if info.get("key") != self._key_hash():
                return False
            if hashlib.sha256(npz.read_bytes()).hexdigest() != info.get("npz_sha256"):
                return False
            with np.load(npz, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError):
            return False
        state = {"done": arrays["done"],
                 "accumulators": {n: [{} for _ in accs] for n, accs in self.accumulators.items()}}
        for slot, (name, i, k) in info["layout"].items():
            state["accumulators"][name][i][k] = arrays[slot]
        self.load_state_dict(state)
        return True

    def clear_checkpoint(self) -> None:
        if self.checkpoint is None:
            return
        for path in self._paths():
            path.unlink(missing_ok=True)

    # -- the tables ----------------------------------------------------------------------
    def finish(self, extra_tables: Mapping[str, dict] | None = None) -> dict:
        """The atlas's tables ({name: pyarrow.Table}, every schema table present), the
        finalizers applied."""
        parts: dict[str, list[dict]] = {name: [] for name in schema.TABLES}
        parts["records"].append(records_rows(next(iter(self.contexts.values())))
                                if self.contexts else {})
        parts["dictionaries"].append(dictionaries_rows(self.contexts))
        features = []
        for name, accs in self.accumulators.items():
            context = self.contexts[name]
            rows = [acc.tables(context) for acc in accs]
            features.append(join_features(context, [r["features"] for r in rows
                                                    if "features" in r]))
            for r in rows:
                for table, cols in r.items():
                    if table != "features":
                        parts[table].append(cols)
        parts["features"] = features
        for table, cols in (extra_tables or {}).items():
            parts[table].append(cols)
        tables = {name: to_arrow(name, pieces) for name, pieces in parts.items()}
        for finalizer in self.finalizers:
            t0 = time.perf_counter()
            tables = finalizer(tables, self.contexts)
            name = getattr(finalizer, "__name__", type(finalizer).__name__)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        return tables


def join_features(context: AtlasContext, pieces: list[dict]) -> dict:
    """One ``features`` row per feature of the dictionary: the columns the accumulators
    gave (each column from one accumulator), the others NULL."""
    F = context.n_features
    out: dict[str, object] = {"dictionary": [context.dictionary] * F,
                              "feature": np.arange(F, dtype=np.int32)}
    for piece in pieces:
        feature = np.asarray(piece["feature"], dtype=np.int64)
        for col, values in piece.items():
            if col in ("dictionary", "feature"):
                continue
            if col in out:
                raise ValueError(f"features column {col!r} given by two accumulators")
            if col not in schema.columns("features"):
                raise ValueError(f"unknown features column {col!r}")
            if len(feature) == F and np.array_equal(feature, np.arange(F)):
                out[col] = values
            else:
                column = [None] * F
                for f, v in zip(feature.tolist(), list(values), strict=True):
                    column[f] = v
                out[col] = column
    return out


def records_rows(context: AtlasContext) -> dict:
    rows = {c: [] for c in schema.columns("records")}
    for record in context.records:
        codes = np.asarray(context.codes[record], dtype=np.uint8)
        acgt = codes < 4
        rows["record"].append(record)
        rows["length"].append(len(codes))
        rows["offset"].append(int(context.offsets[record]))
        rows["gc"].append(float(np.isin(codes, (1, 2)).sum() / max(int(acgt.sum()), 1)))
        rows["sha256"].append(sequence_sha256(codes))
    return rows


def dictionaries_rows(contexts: Mapping[str, AtlasContext]) -> dict:
    rows = {c: [] for c in schema.columns("dictionaries")}
    for name, c in contexts.items():
        for col, value in (("dictionary", name), ("kind", c.kind), ("site", c.site),
                           ("n_features", c.n_features), ("control", bool(c.control)),
                           ("model", c.extra.get("model")), ("source", c.extra.get("source")),
                           ("rc_equivariant", bool(c.extra.get("rc_equivariant", False)))):
            rows[col].append(value)
    return rows


def _column(values, typ):
    import pyarrow as pa

    if isinstance(values, pa.Array | pa.ChunkedArray):
        if pa.types.is_dictionary(values.type) and values.type.value_type == typ:
            return values       # DuckDB stores it as typ
        return values.cast(typ) if values.type != typ else values
    if pa.types.is_list(typ):
        values = list(values)
        if values and all(v is not None for v in values):
            arrays = [np.asarray(v) for v in values]
            lengths = np.array([len(a) for a in arrays], dtype=np.int32)
            offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
            flat = (np.concatenate(arrays) if len(arrays) else np.zeros(0)).astype(
                typ.value_type.to_pandas_dtype())
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, typ.value_type))
        return pa.array([None if v is None else np.asarray(v).tolist() for v in values], typ)
    if isinstance(values, np.ndarray) and values.dtype != object:
        if np.issubdtype(values.dtype, np.floating) and pa.types.is_floating(typ):
            return pa.array(values.astype(typ.to_pandas_dtype(), copy=False), typ,
                            from_pandas=True)   # NaN -> NULL
        return pa.array(values, typ)
    if pa.types.is_floating(typ):
        return pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else v
                         for v in values], typ)
    return pa.array(list(values) if not isinstance(values, list) else values, typ)


def to_arrow(table: str, pieces: list[dict]):
    """Row pieces ({column: values}) of ``table`` as one pyarrow table with the schema's
    columns and types (missing columns NULL)."""
    import pyarrow as pa

    columns = schema.TABLES[table]
    batches = []
    for piece in pieces:
        if not piece:
            continue
        n = len(next(iter(piece.values())))
        arrays = []
        for col, duck, _ in columns:
            typ = arrow_type(duck)
            arrays.append(_column(piece[col], typ) if col in piece else pa.nulls(n, typ))
        batches.append(pa.table(arrays, names=[c for c, _, _ in columns]))
    if not batches:
        return pa.table({c: pa.array([], arrow_type(t)) for c, t, _ in columns})
    return pa.concat_tables(batches)
