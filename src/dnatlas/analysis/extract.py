"""Stream a model's activations over sequences of any length, to memory or to disk.

The model is convolutional: its output at position i depends only on the inputs
``i - R .. i + R`` (``R = model.receptive_field``). A long sequence is therefore cut into
*chunks* of ``chunk_size`` positions, each run with ``R`` nucleotides of real context on
both sides (fewer at the ends of the record, where the model pads exactly as it would in a
full-length pass), and only the chunk's own positions are kept. The result equals one
forward pass over the whole sequence, while memory stays that of one batch of chunks.

The reverse strand needs no second pass: with reverse-complement parameter sharing (RCPS)
the activations on the reverse complement are ``act[:, perm][::-1]`` with
``perm = model.rc_channel_permutation(site)``. Reverse-strand arrays are in the reverse
complement's own order: row j is genomic position ``end - 1 - j``, read on the − strand.

On disk (``out=DIR``) every array is a ``.npy`` file, written block by block with ``pwrite``
(no growing memory map) and opened memory-mapped afterwards; ``DIR/meta.json`` describes
them (see :func:`open_activations`). Layout ``"LC"`` stores (L, C) (positions x channels,
for Gram maps); ``"CL"`` stores (C, L) (one contiguous row per neuron, for per-neuron
statistics over whole genomes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dnatlas.errors import InputError

__all__ = [
    "SITES",
    "Activations",
    "extract_activations",
    "extract_to_dir",
    "layer_names",
    "n_layers",
    "open_activations",
    "parse_region",
    "rc_permutation",
    "receptive_field",
]

SITES = ("pre_act", "neurons", "post_act", "residual")
META_FILE = "meta.json"
FORMAT = "dnatlas-activations"
_LAYER_NAME = re.compile(r"^(embed|blocks\.\d+\.(pre_act|neurons|post_act|residual))$")


# --------------------------------------------------------------------------- model helpers

def n_layers(model) -> int:
    """Number of blocks of a model (``config.n_layers``/``num_layers``/``layers`` or ``len(blocks)``)."""
    config = getattr(model, "config", None)
    for attr in ("n_layers", "num_layers", "layers", "n_blocks"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    blocks = getattr(model, "blocks", None)
    if blocks is not None:
        return len(blocks)
    raise ValueError("cannot tell the number of layers of this model")


def layer_names(model, layers, site: str = "neurons") -> list[str]:
    """Activation names (``blocks.{i}.{site}``) for a layer selection.

    Args:
        layers: ``"all"``, an int (0-based: the report's "layer 8" is 7), a full name
            like ``"blocks.7.neurons"`` or ``"embed"``, a comma-separated string of these,
            or a list of them.
        site: one of :data:`SITES`, used for integer layers.

    Raises:
        InputError: unknown site, layer out of range, malformed name.
    """
    if site not in SITES:
        raise InputError(f"unknown site {site!r}; choose one of {', '.join(SITES)}")
    total = n_layers(model)
    if isinstance(layers, (int, np.integer)):
        items = [int(layers)]
    elif isinstance(layers, str):
        if layers == "all":
            return [f"blocks.{i}.{site}" for i in range(total)]
        items = [s.strip() for s in layers.split(",") if s.strip()]
    else:
        items = list(layers)
    names = []
    for item in items:
        if isinstance(item, str) and not item.lstrip("-").isdigit():
            if not _LAYER_NAME.match(item):
                raise InputError(f"invalid layer {item!r}: expected an index, 'all', "
                                 f"'embed' or 'blocks.I.SITE'")
            index = int(item.split(".")[1]) if item != "embed" else 0
        else:
            index = int(item)
            item = f"blocks.{index}.{site}"
        if not 0 <= index < total:
            raise InputError(f"layer {index} out of range: the model has {total} layers "
                             f"(0-based)")
        names.append(item)
    return names


def rc_permutation(model, name: str) -> np.ndarray:
    """RCPS channel permutation of an activation (reverse complement = ``act[:, p][::-1]``)."""
    short = name.rsplit(".", 1)[-1]
    for key in (name, short):
        try:
            perm = model.rc_channel_permutation(key)
        except (KeyError, ValueError, AttributeError, TypeError):
            continue
        return np.asarray(perm.cpu() if hasattr(perm, "cpu") else perm, dtype=np.int64)
    raise ValueError(f"the model gives no RC permutation for {name!r}")


def parse_region(text: str) -> tuple[str, int | None, int | None]:
    """Parse ``ID`` or ``ID:START-END`` (0-based, half-open; commas allowed in numbers).

    Returns ``(seqid, start, end)`` with None for a whole record.
    """
    match = re.fullmatch(r"(.+?)(?::([\d,_]+)-([\d,_]+))?", text.strip())
    if not match or not match.group(1):
        raise InputError(f"invalid region {text!r}: expected ID or ID:START-END")
    seqid, start, end = match.groups()
    if start is None:
        return seqid, None, None
    start, end = int(start.replace(",", "").replace("_", "")), int(end.replace(",", "").replace("_", ""))
    if end <= start:
        raise InputError(f"invalid region {text!r}: END must be greater than START")
    return seqid, start, end


# --------------------------------------------------------------------------- sinks

class _MemorySink:
    """Collects blocks into an in-memory array of shape (L, C) or (C, L)."""

    def __init__(self, length: int, channels: int, dtype, layout: str):
        shape = (length, channels) if layout == "LC" else (channels, length)
        self.array = np.empty(shape, dtype=dtype)
        self.layout = layout

    def write(self, row: int, block: np.ndarray) -> None:
        if self.layout == "LC":
            self.array[row:row + len(block)] = block
        else:
            self.array[:, row:row + len(block)] = block.T

    def close(self):
        return self.array


class _NpySink:
    """Writes blocks into a ``.npy`` file at their offsets (``os.pwrite``), memory flat."""

    def __init__(self, path: Path, length: int, channels: int, dtype, layout: str):
        self.path, self.layout, self.dtype = path, layout, np.dtype(dtype)
        self.length, self.channels = length, channels
        shape = (length, channels) if layout == "LC" else (channels, length)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": shape}
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            self.offset = fh.tell()
            fh.truncate(self.offset + length * channels * self.dtype.itemsize)
        self.fd = os.open(path, os.O_WRONLY)

    def write(self, row: int, block: np.ndarray) -> None:
        size = self.dtype.itemsize
        block = np.asarray(block, dtype=self.dtype)
        if self.layout == "LC":
            os.pwrite(self.fd, np.ascontiguousarray(block).tobytes(),
                      self.offset + row * self.channels * size)
            return
        columns = np.ascontiguousarray(block.T)  # (C, n)
        for c in range(self.channels):
            os.pwrite(self.fd, columns[c].tobytes(), self.offset + (c * self.length + row) * size)

    def close(self):
        os.close(self.fd)
        return np.load(self.path, mmap_mode="r")


# --------------------------------------------------------------------------- engine

def _windows(start: int, end: int, total: int, chunk: int, radius: int):
    """(s, e, a, b): chunk [s, e) of [start, end), run on input [a, b) of a record of ``total``."""
    for s in range(start, end, chunk):
        e = min(s + chunk, end)
        yield s, e, max(0, s - radius), min(total, e + radius)


def _batches(windows, batch_size: int):
    """Group consecutive windows of equal input length into batches."""
    batch = []
    for w in windows:
        if batch and (len(batch) == batch_size or (w[3] - w[2]) != (batch[0][3] - batch[0][2])):
            yield batch
            batch = []
        batch.append(w)
    if batch:
        yield batch


def _forward(model, seq: np.ndarray, batch, names, device):
    """Run one batch of windows; yields (window, {name: (e-s, C) float32 numpy})."""
    import torch

    tokens = torch.from_numpy(np.stack([seq[a:b] for _, _, a, b in batch]).astype(np.int64))
    with torch.inference_mode():
        out = model(tokens.to(device), output_activations=list(names))
    for i, (s, e, a, b) in enumerate(batch):
        yield (s, e, a, b), {name: out.activations[name][i, s - a:e - a].float().cpu().numpy()
                             for name in names}


def receptive_field(model) -> int | None:
    """One-sided context radius R of a model, or None if unbounded (e.g. attention)."""
    radius = getattr(model, "receptive_field", None)
    return None if radius is None else int(radius)


def _run(model, seq, names, start, end, strands, sinks, chunk_size, batch_size, device,
         progress, desc):
    radius = receptive_field(model)
    if radius is None:  # no finite receptive field: one pass over the whole record
        radius, chunk_size = len(seq), len(seq)
    perms = {name: rc_permutation(model, name) for name in names} if "-" in strands else {}
    bar = tqdm(total=end - start, unit="nt", unit_scale=True, desc=desc,
               disable=None if progress is None else not progress)
    windows = _windows(start, end, len(seq), chunk_size, radius)
    for batch in _batches(windows, batch_size):
        for (s, e, _, _), acts in _forward(model, seq, batch, names, device):
            for name, act in acts.items():
                if "+" in strands:
                    sinks[name, "+"].write(s - start, act)
                if "-" in strands:
                    sinks[name, "-"].write(end - e, act[::-1, perms[name]])
            bar.update(e - s)
    bar.close()


def _prepare(model, seq, layers, site, start, end, device):
    seq = np.asarray(seq)
    if seq.ndim != 1:
        raise ValueError(f"seq must be a 1-D array of nucleotide codes, got shape {seq.shape}")
    end = len(seq) if end is None else int(end)
    if not 0 <= start < end <= len(seq):
        raise InputError(f"region [{start}, {end}) is outside the sequence [0, {len(seq)})")
    names = layer_names(model, layers, site)
    model.eval()
    if device is None:
        device = next(iter(model.parameters())).device
    return seq, names, start, end, device


def _channels(model, seq, names, device) -> dict[str, int]:
    """Channel count of every activation (one tiny forward pass)."""
    window = [(0, 1, 0, min(len(seq), 16))]
    (_, acts), = _forward(model, seq, window, names, device)
    return {name: a.shape[1] for name, a in acts.items()}


def _strands(strand: str) -> tuple[str, ...]:
    choices = {"+": ("+",), "-": ("-",), "both": ("+", "-")}
    if strand not in choices:
        raise InputError(f"strand must be '+', '-' or 'both', got {strand!r}")
    return choices[strand]


def extract_activations(model, seq: np.ndarray, layers="all", site: str = "neurons",
                        start: int = 0, end: int | None = None, strand: str = "+",
                        chunk_size: int = 1 << 15, batch_size: int = 1, dtype=np.float32,
                        layout: str = "LC", device=None, progress: bool | None = None):
    """Activations of ``seq[start:end]`` in memory.

    Args:
        model: a DNAtlas model (or any model with the same interface).
        seq: (N,) uint8 nucleotide codes of a whole record; positions outside
            ``[start, end)`` are used as context, so a region's activations equal those of
            a whole-record pass.
        layers: layer selection, see :func:`layer_names`.
        site: ``pre_act``, ``neurons``, ``post_act`` or ``residual``.
        strand: ``"+"`` (forward), ``"-"`` (reverse complement, in its own order) or
            ``"both"``.
        chunk_size: positions per chunk (each run with ``2 * R`` context).
        batch_size: chunks per forward pass.
        dtype: output dtype (float32 or float16).
        layout: ``"LC"`` -> arrays (L, C); ``"CL"`` -> (C, L).

    Returns:
        ``{name: array}`` for one strand; for ``"both"``, ``{(name, strand): array}``.
    """
    seq, names, start, end, device = _prepare(model, seq, layers, site, start, end, device)
    strands = _strands(strand)
    channels = _channels(model, seq, names, device)
    sinks = {(n, s): _MemorySink(end - start, channels[n], dtype, layout)
             for n in names for s in strands}
    _run(model, seq, names, start, end, strands, sinks, chunk_size, batch_size, device,
         progress, "extract")
    arrays = {key: sink.close() for key, sink in sinks.items()}
    if len(strands) == 1:
        return {n: arrays[n, strands[0]] for n in names}
    return arrays


def _file_name(seqid: str, name: str, strand: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", seqid)
    return f"{safe}.{name}.{'fwd' if strand == '+' else 'rev'}.npy"


def _check_free_space(out: Path, needed: int) -> None:
    """Refuse to start an extraction that cannot fit on the disk (before writing anything)."""
    free = shutil.disk_usage(out).free
    if needed > free:
        raise InputError(f"the activations need {needed / 2**30:.1f} GiB but only "
                         f"{free / 2**30:.1f} GiB are free (fewer --layers, a --region, or "
                         "another --out/--acts disk)", path=out)


def extract_to_dir(model, seq: np.ndarray, out: str | Path, layers="all",
                   site: str = "neurons", seqid: str = "seq", start: int = 0,
                   end: int | None = None, strand: str = "+", chunk_size: int = 1 << 15,
                   batch_size: int = 1, dtype=np.float16, layout: str = "LC", device=None,
                   progress: bool | None = None, model_name: str = "") -> "Activations":
    """Stream activations of ``seq[start:end]`` to ``.npy`` files in ``out`` (see module doc).

    Several calls with different ``seqid`` add records to the same directory; an existing
    entry of the same (seqid, layer, strand) is replaced. Arguments as in
    :func:`extract_activations`; ``model_name`` is recorded in the metadata.

    Returns:
        The directory's :class:`Activations`.
    """
    seq, names, start, end, device = _prepare(model, seq, layers, site, start, end, device)
    strands = _strands(strand)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    channels = _channels(model, seq, names, device)
    _check_free_space(out, sum(channels.values()) * (end - start) * len(strands)
                      * np.dtype(dtype).itemsize)
    sinks, entries = {}, []
    for name in names:
        for s in strands:
            fname = _file_name(seqid, name, s)
            sinks[name, s] = _NpySink(out / (fname + ".part"), end - start, channels[name],
                                      dtype, layout)
            shape = [end - start, channels[name]] if layout == "LC" else [channels[name], end - start]
            entries.append({"seqid": seqid, "start": start, "end": end, "strand": s,
                            "layer": name, "file": fname, "shape": shape})
    _run(model, seq, names, start, end, strands, sinks, chunk_size, batch_size, device,
         progress, f"extract {seqid}")
    for (name, s), sink in sinks.items():
        sink.close()
        os.replace(sink.path, out / _file_name(seqid, name, s))
    perms = {}
    for name in names:
        try:
            perms[name] = rc_permutation(model, name).tolist()
        except ValueError:
            pass
    meta = {"format": FORMAT, "version": 1, "model": model_name, "site": site,
            "dtype": np.dtype(dtype).name, "layout": layout,
            "receptive_field": receptive_field(model), "rc_permutation": perms,
            "arrays": entries}
    _merge_meta(out, meta)
    return open_activations(out)


def _merge_meta(out: Path, meta: dict) -> None:
    """Write ``meta.json`` atomically, keeping earlier entries of other records."""
    path = out / META_FILE
    if path.exists():
        old = json.loads(path.read_text())
        same = {(a["seqid"], a["layer"], a["strand"]) for a in meta["arrays"]}
        kept = [a for a in old.get("arrays", []) if (a["seqid"], a["layer"], a["strand"]) not in same]
        if kept and (old.get("layout"), old.get("dtype")) != (meta["layout"], meta["dtype"]):
            raise InputError("existing activations have another layout or dtype", path=path)
        meta["arrays"] = kept + meta["arrays"]
        meta["rc_permutation"] = {**old.get("rc_permutation", {}), **meta["rc_permutation"]}
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(meta, indent=1)
    # one line per integer list (shapes, permutations)
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", text)
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- reading

@dataclass
class Activations:
    """A directory written by :func:`extract_to_dir`.

    Attributes:
        path: the directory; meta: the parsed ``meta.json``.
    """

    path: Path
    meta: dict

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(a["layer"] for a in self.meta["arrays"]))

    @property
    def seqids(self) -> list[str]:
        return list(dict.fromkeys(a["seqid"] for a in self.meta["arrays"]))

    @property
    def layout(self) -> str:
        return self.meta["layout"]

    def entry(self, layer: str | None = None, strand: str = "+", seqid: str | None = None) -> dict:
        """The metadata entry of one array (layer/seqid may be omitted when unique)."""
        found = [a for a in self.meta["arrays"]
                 if a["strand"] == strand and (layer is None or a["layer"] == layer)
                 and (seqid is None or a["seqid"] == seqid)]
        if len(found) != 1:
            what = f"layer={layer!r} strand={strand!r} seqid={seqid!r}"
            raise InputError(f"{len(found)} activation arrays match {what} "
                             f"(layers: {', '.join(self.layers)}; records: {', '.join(self.seqids)})",
                             path=self.path)
        return found[0]

    def load(self, layer: str | None = None, strand: str = "+", seqid: str | None = None,
             mmap: bool = True) -> np.ndarray:
        """One array, memory-mapped read-only by default; shape per ``layout``."""
        entry = self.entry(layer, strand, seqid)
        return np.load(self.path / entry["file"], mmap_mode="r" if mmap else None)

    def rc_permutation(self, layer: str) -> np.ndarray | None:
        perm = self.meta.get("rc_permutation", {}).get(layer)
        return None if perm is None else np.asarray(perm, dtype=np.int64)


def open_activations(path: str | Path) -> Activations:
    """Open an activation directory (raises :class:`InputError` if it is not one)."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise InputError("not an activation directory (no meta.json)", path=path)
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid meta.json: {exc}", path=meta_path) from None
    if meta.get("format") != FORMAT:
        raise InputError("meta.json is not a dnatlas activation index", path=meta_path)
    return Activations(path, meta)
