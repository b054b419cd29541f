"""Activation tracks computed live by the model: one SAE feature or neuron over a region,
both strands, downsampled by max, cached.

The model's activations at a site are computed in fixed tiles of :data:`TILE` nt on both
strands (``extract_activations`` with the record around them as context, so a tile's values
equal a whole-record pass) and kept in a byte-bounded LRU: igv re-queries while panning,
and neighbouring views share tiles. The − strand is read on the reverse complement and
flipped back to forward coordinates, as :func:`dnatlas.pipelines.concepts._strand_chunks`
does. A feature's values come from the tile activations: a neuron is one channel; an SAE
latent is computed only where its own pre-activation is positive (elsewhere every
architecture here gives 0), and TopK's per-row cut (between the k-th and (k+1)-th largest
pre-activation) is cached with the tile, so later features over the same tile cost a matrix-vector
product. Finished tracks are cached too, by (dictionary, feature, record, start, end).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

TILE = 20_000
BLOCK = 8_192


class ByteLRU:
    """A thread-safe LRU bounded by the bytes of its values (``nbytes`` or ``len``)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def _size(value) -> int:
        if isinstance(value, tuple):
            return sum(ByteLRU._size(v) for v in value)
        return int(getattr(value, "nbytes", None) or len(value))

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
            return None

    def peek(self, key) -> bool:
        """Whether ``key`` is cached (not counted, order unchanged)."""
        with self._lock:
            return key in self._items

    def put(self, key, value) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._bytes -= self._size(self._items.pop(key))
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= self._size(old)


@dataclass
class LiveDictionary:
    """A dictionary the model can compute: ``kind`` 'sae' (``sae`` set) or 'neurons'."""

    name: str
    kind: str
    site: str
    n_features: int
    sae: object = None
    _np: tuple | None = field(default=None, repr=False)

    def values(self, x: np.ndarray, feature: int, kth: np.ndarray | None = None) -> np.ndarray:
        """(n,) activations of ``feature`` from site activations x (n, d).

        SAE latents are computed only on rows where the latent's own pre-activation is
        positive (elsewhere every architecture here gives 0). For TopK, ``kth`` (n,) holds
        each row's cut, halfway between its k-th and (k+1)-th largest pre-activation (NaN:
        not known yet; filled in place), so that a row's full pre-activations are computed
        once per cached tile: the latent is active where its pre-activation is above the
        cut."""
        if self.kind == "neurons":
            return np.ascontiguousarray(x[:, feature], dtype=np.float32)
        import torch

        sae = self.sae
        w, bias = self._numpy_weights()
        out = np.zeros(len(x), dtype=np.float32)
        # one column: einsum, not BLAS (whose threads spin on a busy machine: ~10x slower)
        pre = np.einsum("ij,j->i", x, w[:, feature]) + bias[feature]
        cand = np.flatnonzero(pre > 0)
        if kth is not None and getattr(sae, "arch", "") == "topk":
            need = cand[np.isnan(kth[cand])]
            k = int(sae.cfg.k)
            for i in range(0, len(need), BLOCK):
                rows = need[i:i + BLOCK]
                full = x[rows] @ w + bias
                F = full.shape[1]
                part = np.partition(full, (F - k - 1, F - k), axis=1)
                kth[rows] = 0.5 * (part[:, F - k] + part[:, F - k - 1])
            # the cut is halfway between the k-th and (k+1)-th largest pre-activation: pre
            # comes from another matrix product than the row's, and may differ in the
            # last bits from the value TopK selected
            hit = cand[pre[cand] > kth[cand]]
            out[hit] = pre[hit]
            return out
        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x))
            for i in range(0, len(cand), BLOCK):
                rows = torch.from_numpy(cand[i:i + BLOCK])
                out[rows.numpy()] = sae.encode(xt[rows])[:, feature].float().numpy()
        return out

    def _numpy_weights(self):
        """(W, c) with pre-activations = x @ W + c for raw x: the input scale and b_dec
        folded in (float32 numpy)."""
        if self._np is None:
            import torch

            sae = self.sae
            with torch.no_grad():
                scale = float(sae.input_scale)
                w_enc = sae.W_enc.detach().float().cpu()
                c = sae.b_enc.detach().float().cpu() - sae.b_dec.detach().float().cpu() @ w_enc
                self._np = ((w_enc * scale).numpy(), c.numpy())
        return self._np

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(n, F) dense activations of every feature (pasted sequences)."""
        if self.kind == "neurons":
            return np.asarray(x, dtype=np.float32)
        import torch

        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x))
            return np.concatenate([self.sae.encode(xt[i:i + BLOCK]).float().numpy()
                                   for i in range(0, max(len(x), 1), BLOCK)])


def load_dictionaries(adapter, atlas_rows: list[dict], saes=None,
                      device: str = "cpu") -> dict[str, LiveDictionary]:
    """The atlas's dictionaries this model can compute: non-control neurons at a site the
    model has, and SAEs whose folder (``saes`` if given, else the row's ``source``) loads
    for it. An SAE row is matched to a folder by name (``sae:FOLDER_NAME``) or source."""
    from pathlib import Path

    from dnatlas.pipelines.sae_site import load_sae_for

    live: dict[str, LiveDictionary] = {}
    folders = [Path(str(s)) for s in (saes or [])]
    for row in atlas_rows:
        if row.get("control"):
            continue
        name, site = row["dictionary"], row["site"]
        if row["kind"] == "neurons":
            try:
                adapter.check_keys([site])
            except (ValueError, KeyError):
                continue
            live[name] = LiveDictionary(name, "neurons", site, int(row["n_features"]))
            continue
        source = next((f for f in folders if name.endswith(":" + f.name)
                       or str(f) == str(row.get("source"))), None)
        if source is None and not folders:
            source = row.get("source")
        if not source:
            continue
        sae, _folder, key = load_sae_for(source, adapter, device=device)
        sae.eval()
        live[name] = LiveDictionary(name, "sae", key, int(sae.d_sae), sae)
    return live


class TrackEngine:
    """Site activations by tile, feature tracks, and pasted sequences, for one model."""

    def __init__(self, adapter, dictionaries: dict[str, LiveDictionary], codes: dict,
                 cache_bytes: int, points: int):
        self.adapter = adapter
        self.dictionaries = dictionaries
        self.codes = codes
        self.points = points
        self.tiles = ByteLRU(cache_bytes * 3 // 4)
        self.tracks = ByteLRU(cache_bytes // 4)

    # -- activations ---------------------------------------------------------------------
    def tiles_ready(self, dictionary: str, record: str, a: int, b: int) -> bool:
        """Whether the site activations of 0-based [a, b) are all cached (a track of it is
        then cheap: no model run)."""
        site = self.dictionaries[dictionary].site
        return all(self.tiles.peek((site, record, t)) for t in range(a // TILE, (b - 1) // TILE + 1))

    def site_acts(self, site: str, record: str, a: int, b: int):
        """(plus, minus) activations (b - a, d) of site over 0-based [a, b) of ``record``,
        both in forward coordinates."""
        n = len(self.codes[record])
        first, last = a // TILE, (b - 1) // TILE
        got = {t: self.tiles.get((site, record, t)) for t in range(first, last + 1)}
        missing = [t for t, v in got.items() if v is None]
        while missing:   # contiguous runs of missing tiles in one pass each
            run = [missing.pop(0)]
            while missing and missing[0] == run[-1] + 1:
                run.append(missing.pop(0))
            lo, hi = run[0] * TILE, min((run[-1] + 1) * TILE, n)
            plus, minus = self._both_strands(self.codes[record], site, lo, hi)
            for t in run:
                s, e = t * TILE - lo, min((t + 1) * TILE, n) - lo
                got[t] = (np.ascontiguousarray(plus[s:e]), np.ascontiguousarray(minus[s:e]))
                self.tiles.put((site, record, t), got[t])
        off = first * TILE
        plus = np.concatenate([got[t][0] for t in range(first, last + 1)])[a - off:b - off]
        minus = np.concatenate([got[t][1] for t in range(first, last + 1)])[a - off:b - off]
        return plus, minus

    def _both_strands(self, codes, site: str, a: int, b: int):
        from dnatlas.analysis.extract import extract_activations

        acts = extract_activations(self.adapter, codes, [site], start=a, end=b, strand="both",
                                   progress=False)
        return acts[site, "+"], np.ascontiguousarray(acts[site, "-"][::-1])

    # -- tracks --------------------------------------------------------------------------
    def track(self, dictionary: str, feature: int, record: str, a: int, b: int) -> dict:
        """The :class:`~dnatlas.explorer.api_models.ActivationTrack` of 0-based [a, b)."""
        plus, minus = self.feature_values(dictionary, feature, record, a, b)
        return track_dict(dictionary, feature, record, a, b, plus, minus, self.points)

    def feature_values(self, dictionary: str, feature: int, record: str, a: int, b: int):
        """(plus, minus) activations (b - a,) of one feature over 0-based [a, b), forward
        coordinates."""
        d = self.dictionaries[dictionary]
        first, last = a // TILE, (b - 1) // TILE
        n = len(self.codes[record])
        plus, minus = [], []
        for t in range(first, last + 1):
            lo, hi = t * TILE, min((t + 1) * TILE, n)
            xp, xm = self.site_acts(d.site, record, lo, hi)
            kth = None
            if d.kind == "sae":
                kth = self.tiles.get((dictionary, record, t, "kth"))
                if kth is None:
                    kth = (np.full(hi - lo, np.nan, np.float32), np.full(hi - lo, np.nan, np.float32))
                    self.tiles.put((dictionary, record, t, "kth"), kth)
            plus.append(d.values(xp, feature, None if kth is None else kth[0]))
            minus.append(d.values(xm, feature, None if kth is None else kth[1]))
        off = first * TILE
        return np.concatenate(plus)[a - off:b - off], np.concatenate(minus)[a - off:b - off]

    def cached_track(self, key):
        return self.tracks.get(key)

    def store_track(self, key, body: bytes) -> None:
        self.tracks.put(key, body)

    # -- pasted sequences ----------------------------------------------------------------
    def sequence(self, codes: np.ndarray, dictionary: str, top: int, features: list[int],
                 n_tracks: int = 5) -> dict:
        """Most active features of a pasted sequence, and their tracks (``chr="query"``)."""
        d = self.dictionaries[dictionary]
        plus, minus = self._both_strands(codes, d.site, 0, len(codes))
        fp, fm = d.encode(plus), d.encode(minus)
        both = np.concatenate([fp, fm])
        mx, mean, frac = both.max(0), both.mean(0), (both > 0).mean(0)
        order = [int(i) for i in np.argsort(-mx, kind="stable")[:top] if mx[i] > 0]
        rows = [{"feature": i, "max": _r(mx[i]), "mean": _r(mean[i]), "frac_active": _r(frac[i]),
                 "max_plus": _r(fp[:, i].max()), "max_minus": _r(fm[:, i].max())}
                for i in order]
        shown = features or order[:n_tracks]
        tracks = [track_dict(dictionary, f, "query", 0, len(codes), fp[:, f], fm[:, f],
                             self.points) for f in shown]
        return {"length": len(codes), "dictionary": dictionary, "features": rows,
                "tracks": tracks, "plus": plus}


def _r(v) -> float:
    v = float(v)
    return 0.0 if not math.isfinite(v) else round(v, 5)


def downsample(values: np.ndarray, step: int) -> np.ndarray:
    """Max over consecutive bins of ``step`` values (the last bin may be shorter)."""
    if step <= 1:
        return values
    pad = (-len(values)) % step
    if pad:
        values = np.concatenate([values, np.full(pad, -np.inf, dtype=values.dtype)])
    return values.reshape(-1, step).max(1)


def track_dict(dictionary: str, feature: int, record: str, a: int, b: int, plus, minus,
               points: int) -> dict:
    """An ActivationTrack dict: 1-based closed ``start``/``end``, igv points 0-based, bins
    of ``step`` nt (max), bins whose max is 0 left out."""
    step = max(1, math.ceil((b - a) / max(1, points)))
    out = {"dictionary": dictionary, "feature": int(feature), "chr": record, "start": a + 1,
           "end": b, "step": step, "max": 0.0}
    top = 0.0
    for strand, values in (("plus", plus), ("minus", minus)):
        binned = downsample(np.asarray(values, dtype=np.float32), step)
        nz = np.flatnonzero(binned != 0)
        starts = a + nz * step
        vals = np.round(binned[nz].astype(np.float64), 4)
        out[strand] = [{"chr": record, "start": int(s), "end": int(min(s + step, b)),
                        "value": float(v)} for s, v in zip(starts, vals, strict=True)]
        if len(vals):
            top = max(top, float(vals.max()))
    out["max"] = top
    return out
