"""The ``/api`` routes (shapes: :mod:`dnatlas.explorer.api_models`).

Every parameter is bounded here (names ≤ 200 characters, feature ids and positions within
range, regions within the limits); unknown dictionaries, features, concepts and records are
404, other bad values 400/422. Model work goes through the state's pool.
"""

# no `from __future__ import annotations`: FastAPI reads these annotations at run time,
# and some name the limits of the closure below
import json
from typing import Annotated, Literal

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from dnatlas.errors import InputError
from dnatlas.explorer import api_models as m
from dnatlas.explorer.state import ExplorerState
from dnatlas.files import json_safe

Name = Annotated[str, Query(min_length=1, max_length=200)]
Pos = Annotated[int, Query(ge=1, le=10**12)]
FeatureId = Annotated[int, Query(ge=0, le=10**8)]


def _json(data) -> Response:
    return Response(json.dumps(data, separators=(",", ":"), allow_nan=False).encode(),
                    media_type="application/json")


def add_api_routes(app: FastAPI, st: ExplorerState) -> None:  # noqa: C901 (one route each)
    lim = st.limits

    def need_dictionary(name: str, feature: int | None = None) -> dict:
        d = st.dictionary(name)
        if d is None:
            raise HTTPException(404, f"no dictionary {name!r} in this atlas")
        if feature is not None and feature >= d["n_features"]:
            raise HTTPException(404, f"feature {feature} out of range for {name} "
                                     f"(0..{d['n_features'] - 1})")
        return d

    def need_live(name: str | None, kind: str | None = None) -> str:
        if st.engine is None:
            raise InputError("live inference is off in this explorer (a static export, or "
                             "started without a model)")
        name = name or st.default_live("sae") or st.default_live("neurons")
        if name is None or not st.live(name):
            need_dictionary(name or "")
            raise InputError(f"dictionary {name!r} cannot be computed live here (a control, "
                             "or its SAE folder is missing)")
        if kind and st.engine.dictionaries[name].kind != kind:
            raise InputError(f"{name} is not an SAE: steering edits SAE features")
        return name

    def region(chr: str, start: int, end: int, max_nt: int, what: str) -> tuple[int, int]:
        if st.genome is None:
            raise HTTPException(404, "this explorer has no genome")
        try:
            return st.genome.check_region(chr, start, end, max_nt, what)
        except KeyError as exc:
            raise HTTPException(404, exc.args[0]) from None

    @app.get("/api/meta", response_model=m.Meta)
    def meta():
        return _json(st.meta())

    @app.get("/api/features", response_model=m.FeatureList)
    def features(dictionary: Name, order: Annotated[str, Query(max_length=40)] = "score_unexplained",
                 desc: bool = True, limit: Annotated[int, Query(ge=0, le=lim.list_max)] = 50,
                 offset: Annotated[int, Query(ge=0, le=10**8)] = 0, explained: bool | None = None,
                 concept: Annotated[str | None, Query(max_length=200)] = None,
                 text: Annotated[str | None, Query(max_length=200)] = None):
        need_dictionary(dictionary)
        page = st.atlas.features(dictionary, order, desc, limit, offset, explained, concept or None,
                                 text or None)
        return _json(json_safe({"dictionary": dictionary, "order": order, "desc": desc,
                            "limit": limit, "offset": offset, **page}))

    @app.get("/api/feature/{dictionary}/{feature}", response_model=m.FeaturePage)
    def feature(dictionary: Annotated[str, PathParam(max_length=200)],
                feature: Annotated[int, PathParam(ge=0, le=10**8)]):
        need_dictionary(dictionary, feature)
        return _json(st.feature_page(dictionary, feature))

    @app.get("/api/concepts", response_model=m.ConceptList)
    def concepts():
        return _json(json_safe({"concepts": st.atlas.concepts()}))

    @app.get("/api/concept/{concept}", response_model=m.ConceptPage)
    def concept(concept: Annotated[str, PathParam(max_length=200)]):
        if concept not in st.concept_names:
            raise HTTPException(404, f"no concept {concept!r} in this atlas")
        return _json(st.concept_page(concept))

    @app.get("/api/search", response_model=m.SearchResponse)
    def search(q: Name, limit: Annotated[int, Query(ge=1, le=100)] = 20):
        hits = st.atlas.search(q, limit)
        if st.genome is not None:
            hits += st.genome.genes(q, limit)
        return _json(json_safe({"query": q, "hits": hits[:limit]}))

    @app.get("/api/annotation", response_model=m.AnnotationTrack)
    def annotation(chr: Name, start: Pos, end: Pos):
        a, b = region(chr, start, end, lim.annotation_max_nt, "annotation")
        return _json({"chr": chr, "start": a + 1, "end": b,
                      "features": st.genome.annotation(chr, a, b)})

    @app.get("/api/labels", response_model=m.AnnotationTrack)
    async def labels(chr: Name, start: Pos, end: Pos):
        a, b = region(chr, start, end, lim.annotation_max_nt, "labels")
        # the first call builds the labels of the whole genome: off the event loop
        feats = await anyio.to_thread.run_sync(st.genome.labels, chr, a, b)
        return _json({"chr": chr, "start": a + 1, "end": b, "features": feats})

    @app.get("/api/track", response_model=m.ActivationTrack)
    async def track(dictionary: Name, feature: FeatureId, chr: Name, start: Pos, end: Pos):
        need_dictionary(dictionary, feature)
        need_live(dictionary)
        a, b = region(chr, start, end, lim.track_max_nt, "track")
        key = (dictionary, feature, chr, a, b)
        body = st.engine.cached_track(key)
        if body is None:
            def work():
                out = json.dumps(st.engine.track(dictionary, feature, chr, a, b),
                                 separators=(",", ":")).encode()
                st.engine.store_track(key, out)
                return out
            # tiles cached: no model run, so not queued behind the requests that need one
            pool = st.light if st.engine.tiles_ready(dictionary, chr, a, b) else st.pool
            body = await pool.run(("track", *key), work)
        return Response(body, media_type="application/json")

    @app.get("/api/gram", response_model=m.GramResponse)
    async def gram(chr: Name, start: Pos, end: Pos,
                   site: Annotated[str | None, Query(max_length=200)] = None,
                   phase: Literal["0", "1", "2", ""] | None = None,
                   scale: Literal["linear", "power"] = "linear"):
        from dnatlas.explorer.views import gram_view

        live = need_live(None)
        a, b = region(chr, start, end, lim.gram_max_nt, "gram")
        if b - a < 2:
            raise InputError("gram: the region needs at least 2 nt")
        site = site or st.engine.dictionaries[live].site
        try:
            st.engine.adapter.check_keys([site])
        except (ValueError, KeyError):
            raise InputError(f"gram: the model has no site {site!r}") from None
        phase = phase or None
        if phase is not None and not st.genome.annotation(chr, a, b):
            raise InputError("gram: a codon phase needs the annotation's CDS in the region")

        def work():
            acts = st.engine.site_acts(site, chr, a, b)[0]
            return json_safe(gram_view(acts, chr, a, b, site, phase, scale,
                                   st.genome.intervals(chr, a, b), st.genome.lengths[chr]))
        return _json(await st.pool.run(("gram", chr, a, b, site, phase, scale), work))

    @app.post("/api/sequence", response_model=m.SequenceResponse)
    async def sequence(req: m.SequenceRequest):
        from dnatlas.explorer.views import gram_view

        name = need_live(req.dictionary)
        codes = parse_sequence(req.sequence, lim.sequence_max_nt)
        n = st.engine.dictionaries[name].n_features
        if bad := [f for f in req.features if f >= n]:
            raise HTTPException(404, f"feature {bad[0]} out of range for {name} (0..{n - 1})")

        def work():
            out = st.engine.sequence(codes, name, req.top, req.features)
            plus = out.pop("plus")
            desc = st.descriptions(name)
            for row in out["features"]:
                row["description"] = desc.get(row["feature"])
            g = min(len(codes), lim.gram_max_nt)
            out["gram"] = (gram_view(plus[:g], "query", 0, g, st.engine.dictionaries[name].site,
                                     None, "linear") if req.gram and g >= 2 else None)
            return json_safe(out)
        return _json(await st.pool.run(None, work))

    @app.post("/api/steer", response_model=m.SteerResponse)
    async def steer(req: m.SteerRequest):
        from dnatlas.explorer.views import steer_view

        name = need_live(req.dictionary, "sae")
        a, b = region(req.chr, req.start, req.end, lim.steer_max_nt, "steer")
        if len(req.edits) > lim.steer_max_edits:
            raise InputError(f"steer: at most {lim.steer_max_edits} edits")
        d = need_dictionary(name)
        for e in req.edits:
            need_dictionary(name, e.feature)
        maxima = {e.feature: st.atlas.feature(name, e.feature)["feature"]["max"]
                  for e in req.edits if e.op == "set_max"}
        if any(v is None for v in maxima.values()):
            raise InputError("steer: set_max needs the feature's maximum in the atlas")
        edits = [e.model_dump() for e in req.edits]

        def work():
            out = steer_view(st.engine.adapter, st.engine.dictionaries[name],
                             st.genome.codes[req.chr], req.chr, a, b, edits, maxima,
                             req.codons, req.frame_start, req.frame_strand)
            return json_safe({"dictionary": d["dictionary"], "edits": edits, **out})
        return _json(await st.pool.run(None, work))


def parse_sequence(text: str, max_nt: int) -> np.ndarray:
    """A pasted sequence -> codes: FASTA header lines and whitespace dropped, IUPAC codes
    read as N; 400 for other characters, an empty or an overlong sequence."""
    from dnatlas.genome.alphabet import encode

    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(">")]
    seq = "".join("".join(lines).split())
    if not seq:
        raise InputError("sequence: empty (paste A, C, G, T; FASTA is fine)")
    if len(seq) > max_nt:
        raise InputError(f"sequence: at most {max_nt:,} nt, got {len(seq):,}")
    try:
        return encode(seq)
    except ValueError as exc:
        raise InputError(f"sequence: {exc}") from None
