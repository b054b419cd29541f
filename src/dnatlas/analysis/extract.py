"""Stream any model's activations over sequences of any length, to memory or to disk.

A long record is cut into *chunks* of ``chunk_size`` positions, and each chunk is run on an
input window chosen from the model's context geometry (:class:`~dnatlas.models.ModelAdapter`):

* **finite receptive field R** (DNAtlas, k-mer): the chunk with R nucleotides of real
  context on each side (fewer at the record's ends, where the model pads exactly as in a
  full pass). The result equals one forward pass over the whole record.
* **causal** (HyenaDNA): the ``max_length`` nucleotides ending at the chunk's end. Each
  position sees all its left context up to ``max_length``; for records that fit the model
  this equals one full forward pass.
* **bidirectional, bounded** (Nucleotide Transformer, the Transformer baseline): a window of
  ``max_length`` centred on the chunk (shifted inside the record at its ends); for records
  that fit the model this equals one full forward pass.

Memory stays that of one batch of windows, whatever the record's length. The − strand comes
from the RC permutation of RC-equivariant models (no second pass), and from a pass over the
reverse complement otherwise. Activation folders (one record, or many shared among
torchrun's ranks) are written by :mod:`dnatlas.analysis.extract_folder`, through the same
plan, batches and conversion.
"""

from __future__ import annotations

import numpy as np

from dnatlas.analysis.activation_files import MemorySink
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import reverse_complement
from dnatlas.models import ModelAdapter, as_adapter
from dnatlas.progress import progress

__all__ = ["STRANDS", "batch_windows", "check_settings", "check_span", "derives_minus",
           "extract_activations", "outputs_of", "plan_windows", "prepare"]

STRANDS = {"+": ("+",), "-": ("-",), "both": ("+", "-"), "paired": ("+", "-")}


def plan_windows(model: ModelAdapter, start: int, end: int, total: int, chunk: int):
    """``(s, e, a, b)``: chunk ``[s, e)`` of ``[start, end)`` run on input ``[a, b)``.

    Args:
        model: gives ``receptive_field``, ``causal`` and ``max_length`` (see module doc).
        total: length of the record the chunks come from.
        chunk: positions per chunk (reduced to fit ``max_length``).
    """
    radius, limit = model.receptive_field, model.max_length
    if radius is None and limit is None:
        radius = total  # unbounded context, any length: one pass over the record
    if radius is not None:
        if limit is not None:
            chunk = min(chunk, limit - 2 * radius)
            if chunk < 1:
                raise InputError(f"{model.name}: its receptive field ({radius} nt each side) "
                                 f"does not fit its maximum length {limit}")
        for s in range(start, end, chunk):
            e = min(s + chunk, end)
            yield s, e, max(0, s - radius), min(total, e + radius)
        return
    width = min(limit, total)
    chunk = min(chunk, width)
    for s in range(start, end, chunk):
        e = min(s + chunk, end)
        if model.causal:
            a = max(0, e - width)
        else:
            a = min(max(0, s - (width - (e - s)) // 2), total - width)
        yield s, e, a, a + width


def batch_windows(windows, batch_size: int):
    """Group consecutive windows of equal input length into batches of at most
    ``batch_size`` (lists of windows): how every extraction batches its forward passes."""
    batch = []
    for w in windows:
        if batch and (len(batch) == batch_size or (w[3] - w[2]) != (batch[0][3] - batch[0][2])):
            yield batch
            batch = []
        batch.append(w)
    if batch:
        yield batch


def _forward(model: ModelAdapter, seq: np.ndarray, batch, names):
    """Run one batch of windows; yields (window, {name: (e-s, C) tensor})."""
    import torch

    tokens = torch.from_numpy(np.stack([seq[a:b] for _, _, a, b in batch]).astype(np.int64))
    with torch.inference_mode():
        acts = model.activations(tokens, list(names))
    for i, (s, e, a, b) in enumerate(batch):
        yield (s, e, a, b), {n: acts[n][i, s - a:e - a] for n in names}


#: positions per piece of conversion: a (4096, C) piece and its transpose stay in cache,
#: where a whole chunk's transpose (32 k positions) runs about 10x slower per element
_ROWS = 4096


def _torch_dtype(dtype):
    import torch

    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def _as_block(t, layout: str) -> np.ndarray:
    """The (n, C) numpy view the sinks take (for ``CL`` a transposed view: no copy there)."""
    return t.numpy() if layout == "LC" else t.numpy().T


class _RC:
    """The − strand's channels from the RC permutation ``perm`` of a site."""

    def __init__(self, perm: np.ndarray):
        import torch

        perm = np.asarray(perm, dtype=np.int64)
        self.reversal = bool(np.array_equal(perm, np.arange(len(perm) - 1, -1, -1)))
        self.index = torch.from_numpy(perm)

    def __call__(self, t, ch: int, pos: int | None):
        """``t`` with channels (axis ``ch``) permuted and, unless None, axis ``pos`` reversed."""
        if self.reversal:
            return t.flip((ch,) if pos is None else (ch, pos))
        t = t.index_select(ch, self.index)
        return t if pos is None else t.flip(pos)


def _converted(act, dtype, layout: str, rc: _RC | None = None, paired: bool = False):
    """An (n, C) block in the sinks' dtype and layout: ``(plus, minus)`` CPU tensors,
    (n, C) for ``LC`` or (C, n) for ``CL``.

    ``minus`` (with ``rc``) is the − strand from the RC permutation: in its own order, or
    in forward coordinates when ``paired`` (then plus and minus are the two halves of one
    (n, 2C) block, returned as ``(both, None)``). Conversion, transposition and permutation
    run in torch, in pieces of ``_ROWS`` positions shared among the worker threads.
    """
    import torch

    from dnatlas.runtime import parallel

    n, C = act.shape
    if act.device.type != "cpu":  # convert on the device, move the smaller array
        act = act.to(_torch_dtype(dtype)).cpu()
    lc = layout == "LC"
    wide = 2 * C if paired and rc is not None else C
    plus = torch.empty((n, wide) if lc else (wide, n), dtype=_torch_dtype(dtype))
    minus = None if rc is None or paired else torch.empty_like(plus)
    ch, pos = (1, 0) if lc else (0, 1)

    def piece(r0):
        r1 = min(n, r0 + _ROWS)
        p = plus[r0:r1, :C] if lc else plus[:C, r0:r1]
        p.copy_(act[r0:r1] if lc else act[r0:r1].t())
        if rc is None:
            return
        if paired:
            (plus[r0:r1, C:] if lc else plus[C:, r0:r1]).copy_(rc(p, ch, None))
        else:
            (minus[n - r1:n - r0] if lc else minus[:, n - r1:n - r0]).copy_(rc(p, ch, pos))

    parallel(piece, list(range(0, n, _ROWS)))
    return plus, minus


def _pass(model, seq, names, start, end, chunk_size, batch_size, bar, emit) -> None:
    """One strand's pass over ``seq[start:end]``: ``emit(s, e, {name: block})`` per chunk."""
    windows = plan_windows(model, start, end, len(seq), chunk_size)
    for batch in batch_windows(windows, batch_size):
        for (s, e, _, _), acts in _forward(model, seq, batch, names):
            emit(s, e, acts)
            bar.update(e - s)


def derives_minus(model: ModelAdapter, names) -> bool:
    """Whether the − strand of ``names`` comes from the forward pass through the RC
    permutation (every site RC-equivariant) rather than from a pass over the reverse
    complement."""
    return all(model.rc_permutation(n) is not None for n in names)


def run_passes(model, seq, names, start, end, strand, sinks, chunk_size, batch_size,
               progress_enabled, desc, dtype=np.float32, layout: str = "LC"):
    """Fill ``sinks[name, strand]`` (``sinks[name, "paired"]`` for strand ``paired``): the
    forward pass, and a pass over the reverse complement where the − strand cannot be
    derived from the RC permutation. ``sinks`` are :mod:`~dnatlas.analysis.activation_files`
    sinks (memory or ``.npy``)."""
    from dnatlas.runtime import tune_allocator, worker_threads

    tune_allocator()  # each chunk's (L, C) arrays are reused, not re-mapped
    strands = STRANDS[strand]
    derive_minus = "-" in strands and derives_minus(model, names)
    rc = {n: _RC(model.rc_permutation(n)) for n in names} if derive_minus else {}
    passes = 2 if strands == ("+", "-") and not derive_minus else 1
    bar = progress(total=(end - start) * passes, unit="nt", desc=desc,
                   disable=progress_enabled is False, unit_scale=True)
    width = {n: model.d(n) for n in names}
    paired = strand == "paired"

    def put(name, s_row, t, minus):
        if paired:
            sinks[name, "paired"].write(s_row, _as_block(t, layout), width[name] if minus else 0)
        else:
            sinks[name, "-" if minus else "+"].write(s_row, _as_block(t, layout))

    def emit_forward(s, e, acts):
        for name, act in acts.items():
            plus, minus = _converted(act, dtype, layout, rc.get(name), paired)
            if derive_minus and paired:  # both halves in one write: (n, 2C)
                sinks[name, "paired"].write(s - start, _as_block(plus, layout), 0)
                continue
            if "+" in strands:
                put(name, s - start, plus, minus=False)
            if derive_minus:
                put(name, end - e, minus, True)

    with worker_threads(model.device):
        if "+" in strands or derive_minus:
            _pass(model, seq, names, start, end, chunk_size, batch_size, bar, emit_forward)
        if "-" in strands and not derive_minus:
            rev, total = reverse_complement(seq), len(seq)

            def emit_reverse(s, e, acts):  # rc coordinates [s, e) = forward [total-e, total-s)
                for name, act in acts.items():
                    t, _ = _converted(act, dtype, layout)
                    if paired:
                        put(name, total - e - start, t.flip(0 if layout == "LC" else 1), True)
                    else:
                        put(name, s - (total - end), t, True)

            _pass(model, rev, names, total - end, total - start, chunk_size, batch_size, bar,
                  emit_reverse)
    bar.close()


def check_settings(chunk_size: int, batch_size: int, strand: str) -> None:
    """The checks of an extraction's settings, before any work."""
    for name, value in (("chunk_size", chunk_size), ("batch_size", batch_size)):
        if int(value) < 1:
            raise InputError(f"{name} must be at least 1, got {value}", setting=name)
    if strand not in STRANDS:
        raise InputError(f"strand must be '+', '-', 'both' or 'paired', got {strand!r}")


def check_span(seq: np.ndarray, start: int, end: int) -> None:
    """Refuse a span ``[start, end)`` outside ``seq``."""
    if not 0 <= start < end <= len(seq):
        raise InputError(f"region [{start}, {end}) is outside the sequence [0, {len(seq)})")


def prepare(model, seq, layers, site, start, end, chunk_size, batch_size, strand):
    """``(adapter, seq, names, start, end)`` of one extraction request, checked."""
    model = as_adapter(model)
    seq = np.asarray(seq)
    if seq.ndim != 1:
        raise ValueError(f"seq must be a 1-D array of nucleotide codes, got shape {seq.shape}")
    end = len(seq) if end is None else int(end)
    check_span(seq, start, end)
    check_settings(chunk_size, batch_size, strand)
    names = model.select_keys(layers, site)
    return model, seq, names, start, end


def outputs_of(strand: str) -> tuple[str, ...]:
    """The arrays one strand setting writes per layer: ``("paired",)`` or its strands."""
    return ("paired",) if strand == "paired" else STRANDS[strand]


def extract_activations(model, seq: np.ndarray, layers="all", site: str | None = None,
                        start: int = 0, end: int | None = None, strand: str = "+",
                        chunk_size: int = 1 << 15, batch_size: int = 1, dtype=np.float32,
                        layout: str = "LC", progress: bool | None = None):
    """Activations of ``seq[start:end]`` in memory.

    Args:
        model: any :class:`~dnatlas.models.ModelAdapter`, or a bare DNAtlas model.
        seq: (N,) uint8 nucleotide codes of a whole record; positions outside
            ``[start, end)`` are used as context, so a region's activations equal those of
            a whole-record pass.
        layers: layer selection, see :meth:`ModelAdapter.select_keys`.
        site: the site of integer layers (default: the model's first site).
        strand: ``"+"`` (forward), ``"-"`` (reverse complement, in its own order),
            ``"both"``, or ``"paired"`` (both, as 2C channels in forward coordinates).
        chunk_size: positions per chunk; batch_size: chunks per forward pass.
        dtype: output dtype (float32 or float16).
        layout: ``"LC"`` -> arrays (L, C); ``"CL"`` -> (C, L).

    Returns:
        ``{name: array}`` for one strand (or ``paired``); for ``"both"``,
        ``{(name, strand): array}``.
    """
    model, seq, names, start, end = prepare(model, seq, layers, site, start, end,
                                            chunk_size, batch_size, strand)
    outputs = outputs_of(strand)
    factor = 2 if strand == "paired" else 1
    sinks = {(n, s): MemorySink(end - start, factor * model.d(n), dtype, layout)
             for n in names for s in outputs}
    run_passes(model, seq, names, start, end, strand, sinks, chunk_size, batch_size, progress,
               "extract", dtype, layout)
    arrays = {key: sink.close() for key, sink in sinks.items()}
    if len(outputs) == 1:
        return {n: arrays[n, outputs[0]] for n in names}
    return arrays
