"""The static explorer: the same pages and JSON shapes, no server, no live inference.

``export_site(state, out)`` writes ``out/index.html`` (the front end's, with the data marker
replaced by ``<script src="data/index.js">``), ``out/static/`` (the front end) and
``out/data/<key>.js``, one classic script per GET the static front end makes
(:mod:`dnatlas.explorer.shards`): the meta (also as ``data/index.js``, loaded first),
each dictionary's feature list in pages of ``list_max`` rows ordered by feature, one shard
per feature page (with activation tracks precomputed around its top examples when the model
is loaded), one per concept, and the annotation and concept labels of every record in bins
of ``annotation_bin`` nt. Opened from disk (``file://``) or any static server.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.explorer.shards import shard_key, shard_script

MARKER = "<!-- dnatlas:data -->"
ANNOTATION_BIN = 100_000
WRITTEN = ("index.html", "static", "data")


def _check_out(out: Path, force: bool) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("the export folder is a file", path=out)
    if out.is_dir() and any(out.iterdir()):
        ours = {p.name for p in out.iterdir()} <= set(WRITTEN)
        if not force or not ours:
            why = "use --force to replace it" if ours else "it holds files dnatlas did not write"
            raise InputError(f"the export folder is not empty; {why}", path=out)
        for name in WRITTEN:   # --force removes only what an export writes
            p = out / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    return out


class _Writer:
    def __init__(self, data: Path):
        self.data, self.count, self.bytes = data, 0, 0

    def put(self, path: str, params: dict | None, payload) -> str:
        key = shard_key(path, params)
        text = shard_script(key, payload)
        (self.data / f"{key}.js").write_text(text, encoding="utf-8")
        self.count += 1
        self.bytes += len(text)
        return key


def _index_script(key: str, meta: dict) -> str:
    body = shard_script(key, meta).rstrip().rstrip(";")
    return ("window.DNATLAS_STATIC = true;\n"
            "(function () {\n"
            "  function load() { " + body + "; }\n"
            "  if (typeof window.dnatlasData === 'function') load();\n"
            "  else document.addEventListener('DOMContentLoaded', load);\n"
            "})();\n")


def _example_regions(page: dict, n: int, flank: int, lengths: dict) -> list[tuple]:
    """0-based [a, b) of ``2*flank`` nt around the peaks of the first ``n`` top examples
    (overlapping ones merged away)."""
    out = []
    for ex in [e for e in page["examples"] if e["kind"] == "top"][:n]:
        rec, peak = ex["record"], ex["peak"] - 1
        if rec not in lengths:
            continue
        a = max(0, min(peak - flank, lengths[rec] - 2 * flank))
        b = min(lengths[rec], a + 2 * flank)
        if not any(r == rec and a < y and x < b for r, x, y in out):
            out.append((rec, a, b))
    return out


def export_site(state, out: str | Path, force: bool = False, tracks_per_feature: int = 3,
                track_flank: int = 500, track_points: int = 250,
                show_progress: bool | None = None) -> dict:
    """Write the static explorer of ``state`` (an :class:`ExplorerState`) into ``out``.

    Returns ``{"out", "shards", "bytes", "features", "tracks"}``."""
    from dnatlas.explorer.tracks import track_dict
    from dnatlas.progress import progress

    out = _check_out(Path(out), force)
    static = Path(state.config.static_dir)
    if static.is_dir():
        shutil.copytree(static, out / "static", ignore=shutil.ignore_patterns("index.html"))
    index = static / "index.html"
    html = index.read_text(encoding="utf-8") if index.is_file() else (
        "<!doctype html><meta charset=utf-8><title>dnatlas explorer</title>\n" + MARKER)
    (out / "index.html").write_text(
        html.replace(MARKER, '<script src="data/index.js"></script>'), encoding="utf-8")

    w = _Writer(out / "data")
    lim = state.limits
    meta = state.meta(static={"annotation_bin": ANNOTATION_BIN, "tracks": "feature-pages"})
    key = w.put("/api/meta", None, meta)
    (out / "data" / "index.js").write_text(_index_script(key, meta), encoding="utf-8")

    dictionaries = state.atlas.dictionaries()
    total = sum(d["n_features"] for d in dictionaries)
    bar = progress(total=3 * total, desc="export (read, tracks, write)", unit="page",
                   disable=show_progress is False)
    lengths = state.genome.lengths if state.genome is not None else {}
    n_tracks = 0
    for d in dictionaries:
        name, n = d["dictionary"], d["n_features"]
        for offset in range(0, n, lim.list_max):
            params = {"dictionary": name, "order": "feature", "desc": False,
                      "limit": lim.list_max, "offset": offset}
            page = state.atlas.features(name, "feature", False, lim.list_max, offset)
            w.put("/api/features", params, {**{k: v for k, v in params.items()}, **page})
        live = state.live(name)
        pages = []
        for f in range(n):
            pages.append(state.feature_page(name, f))
            bar.update(1)
        jobs = sorted((reg, i) for i, p in enumerate(pages) if live
                      for reg in _example_regions(p, tracks_per_feature, track_flank, lengths))
        shown = 0
        for j, ((rec, a, b), i) in enumerate(jobs):   # genome order: neighbours share tiles
            plus, minus = state.engine.feature_values(name, i, rec, a, b)
            pages[i]["tracks"].append(track_dict(name, i, rec, a, b, plus, minus,
                                                 track_points))
            n_tracks += 1
            bar.update((j + 1) * n // len(jobs) - shown)
            shown = (j + 1) * n // len(jobs)
        bar.update(n - shown)
        for f, page in enumerate(pages):
            w.put(f"/api/feature/{name}/{f}", None, page)
            bar.update(1)
    bar.close()

    w.put("/api/concepts", None, {"concepts": state.atlas.concepts()})
    for c in state.concept_names:
        w.put(f"/api/concept/{c}", None, state.concept_page(c))
    for rec, n in lengths.items():
        for k in range(math.ceil(n / ANNOTATION_BIN)):
            a, b = k * ANNOTATION_BIN, min(n, (k + 1) * ANNOTATION_BIN)
            params = {"chr": rec, "start": a + 1, "end": (k + 1) * ANNOTATION_BIN}
            w.put("/api/annotation", params, {"chr": rec, "start": a + 1, "end": b,
                                              "features": state.genome.annotation(rec, a, b)})
            w.put("/api/labels", params, {"chr": rec, "start": a + 1, "end": b,
                                          "features": state.genome.labels(rec, a, b)})
    return {"out": out, "shards": w.count, "bytes": w.bytes, "features": total,
            "tracks": n_tracks}

