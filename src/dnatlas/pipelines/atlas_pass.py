"""The streaming pass of the feature atlas (:mod:`dnatlas.pipelines.atlas`): the chunks,
the site activations of a chunk with its halo (the chunk's own rows computed exactly as
``concepts eval`` computes them), the dictionaries' activations, the feed to the
:class:`~dnatlas.atlas.build.Builder`, and the feature maxima on the validation sample
(``concepts eval``'s code), kept for a resumed build.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from dnatlas.atlas.accumulate import Chunk

PARTIAL = ".partial"


def _pass_chunks(splits, chunk_size: int):
    """[(record, a, b, split)] of the pass, valid regions first (as concepts eval)."""
    from dnatlas.concepts.splits import chunk_regions

    return [(record, a, b, split) for split in ("valid", "test")
            for record, a, b in chunk_regions(splits[split], chunk_size)]


def _extract(model, seq, keys, a, b, settings):
    from dnatlas.analysis.extract import extract_activations

    return extract_activations(model, seq, layers=keys, start=a, end=b, strand="both",
                               chunk_size=settings.chunk_size, batch_size=settings.batch_size,
                               progress=False)


def _site_blocks(model, codes, record, a, b, keys, halo, settings, cache=None):
    """{(key, strand): forward-coordinate (hi - lo, d) activations} of [lo, hi) and
    (lo, hi): the chunk's own rows computed exactly as ``concepts eval`` computes them
    (one call over [a, b); or taken from ``cache``, the maxima pass's), the halo rows by
    separate calls for finite-context models."""
    seq = codes[record]
    n = len(seq)
    lo, hi = max(0, a - halo), min(n, b + halo)

    def forward(acts):   # the - strand's activations flipped into forward coordinates
        return {(k, s): (np.ascontiguousarray(v[::-1]) if s == "-" else v)
                for (k, s), v in acts.items()}

    cached = [cache.pop((record, a, b, s), None) for s in "+-"] if cache is not None \
        else [None, None]
    if all(c is not None for c in cached):
        own = {(k, s): c[k] for s, c in zip("+-", cached, strict=True) for k in keys}
    else:
        own = forward(_extract(model, seq, keys, a, b, settings))
    if halo and model.receptive_field is not None:
        left = forward(_extract(model, seq, keys, lo, a, settings)) if lo < a else None
        right = forward(_extract(model, seq, keys, b, hi, settings)) if b < hi else None
        parts = [p for p in (left, own, right) if p is not None]
        blocks = {k: np.concatenate([p[k] for p in parts]) for k in own}
    elif halo and (lo < a or b < hi):
        full = forward(_extract(model, seq, keys, lo, hi, settings))
        blocks = {k: np.concatenate([full[k][:a - lo], own[k], full[k][b - lo:]])
                  for k in own}
    else:
        blocks = own
    return blocks, lo, hi


def _encode(d, block, own_rows: slice):
    """The dictionary's activations of a halo-covering block: the chunk's own rows
    encoded alone (as ``concepts eval`` encodes them), the halo rows apart."""
    import scipy.sparse as sp

    parts = [block[:own_rows.start], block[own_rows], block[own_rows.stop:]]
    encoded = [d.encode(p) if len(p) or i == 1 else None for i, p in enumerate(parts)]
    encoded = [e for e in encoded if e is not None]
    if len(encoded) == 1:
        return encoded[0]
    if sp.issparse(encoded[1]):
        return sp.vstack([sp.csr_matrix(e) for e in encoded], format="csr")
    return np.concatenate([np.asarray(e) for e in encoded])


def _run_pass(builder, model, dicts, codes, offsets, chunks, index0, settings, bar, timings,
              cache=None):
    """Feed this rank's ``chunks`` ([(record, a, b, split, i)]) of one model."""
    keys = list(dict.fromkeys(d.key for d in dicts))
    halo = builder.halo
    for record, a, b, split, i in chunks:
        idx = {s: index0 + 2 * i + j for j, s in enumerate("+-")}
        if all(builder.is_done(x) for x in idx.values()):
            bar.update(2 * (b - a))
            continue
        t0 = time.perf_counter()
        blocks, lo, hi = _site_blocks(model, codes, record, a, b, keys, halo, settings, cache)
        timings["forward"] += time.perf_counter() - t0
        for s in "+-":
            if builder.is_done(idx[s]):
                continue
            t0 = time.perf_counter()
            seq = codes[record][lo:hi]
            chunk = Chunk(record, a, b, s, seq, split, offsets[record], idx[s], lo, hi,
                          len(codes[record]))
            own = chunk.own
            acts = {d.name: _encode(d, blocks[d.key, s], own) for d in dicts}
            timings["encode"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            builder.feed(chunk, acts)
            timings["accumulate"] += time.perf_counter() - t0
            bar.update(b - a)


def _maxima(model, codes, dicts, splits, settings, bar, keep=None, share: int = 1):
    """Each dictionary's maxima on the validation sample: ``concepts eval``'s code (the
    sample's site activations kept in ``keep`` for the pass, up to
    ``settings.cache_mb``)."""
    from dnatlas import distributed
    from dnatlas.concepts.splits import chunk_regions
    from dnatlas.pipelines.concepts import _maxima as concept_maxima
    from dnatlas.pipelines.concepts import _sample

    cs = settings.concept_settings()
    sample = distributed.shard(_sample(list(chunk_regions(splits["valid"], cs.chunk_size)),
                                       cs.sample_nt), weights=lambda c: c[2] - c[1])
    return concept_maxima(model, codes, dicts, sample, cs, bar, keep,
                          (int(settings.cache_mb) << 20) // share)


def _maxima_path(out: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return out / PARTIAL / f"maxima-{digest[:16]}.npz"


def _load_maxima(out, key, resume: bool):
    """The maxima of an unfinished build of the same key (None: none)."""
    if out is None or not resume:
        return None
    path = _maxima_path(out, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {str(data["names"][i]): data[f"m{i}"] for i in range(len(data["names"]))}
    except (OSError, ValueError, KeyError):
        return None


def _save_maxima(out: Path, key: dict, maxima: dict) -> None:
    path = _maxima_path(out, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    names = list(maxima)
    np.savez(tmp, names=np.array(names), **{f"m{i}": maxima[n] for i, n in enumerate(names)})
    os.replace(tmp, path)
