"""The explorer's HTTP API (FastAPI TestClient) over a synthetic atlas of real inputs (the
first 60 kb of E. coli, its annotation, the bundled model and SAE): every route, the
shapes (validated against the pydantic spec), the coordinates, and every refusal."""

import asyncio
import base64
import json
import re
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("duckdb")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from dnatlas.explorer import api_models as m  # noqa: E402
from dnatlas.explorer.app import create_app  # noqa: E402
from dnatlas.explorer.config import ExplorerConfig, ExplorerLimits  # noqa: E402
from dnatlas.explorer.shards import fnv1a32, shard_key  # noqa: E402
from dnatlas.explorer.state import ExplorerState  # noqa: E402
from tests.explorer_fixtures import make_explorer_inputs  # noqa: E402

REC = "K-12-MG1655"
LIMITS = dict(track_max_nt=30_000, gram_max_nt=600, sequence_max_nt=5_000, steer_max_nt=8,
              steer_max_edits=2, body_max_bytes=20_000, list_max=50, annotation_max_nt=50_000)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_explorer_inputs(tmp_path_factory.mktemp("explorer"), length=60_000, n_sae=24)


@pytest.fixture(scope="module")
def state(inputs):
    st = ExplorerState(ExplorerConfig(atlas=inputs["atlas"], limits=ExplorerLimits(**LIMITS)))
    yield st
    st.close()


@pytest.fixture(scope="module")
def client(state):
    return TestClient(create_app(state.config, state))


@pytest.fixture(scope="module")
def sae(state):
    return state.default_live("sae")


def ok(resp, model):
    assert resp.status_code == 200, resp.text[:500]
    return model.model_validate(resp.json()).model_dump()


def refused(resp, status):
    assert resp.status_code == status, resp.text[:500]
    body = resp.json()
    assert set(body) == {"error"} and "Traceback" not in body["error"]
    return body["error"]


# ------------------------------------------------------------------------- atlas routes

def test_meta_names_the_model_dictionaries_records_reference_and_limits(client, sae):
    meta = ok(client.get("/api/meta"), m.Meta)
    live = {d["dictionary"]: d["live"] for d in meta["dictionaries"]}
    assert live[sae] and live["neurons:blocks.2.residual"]
    assert not live[f"random-init {sae}"]            # a control: no live model for it
    assert meta["live"] and meta["records"] == [
        {**meta["records"][0], "record": REC, "length": 60_000}]
    assert meta["reference"]["fastaURL"] == f"genome/{meta['reference']['id']}.fa"
    assert meta["limits"]["track_max_nt"] == 30_000 and meta["static"] is None


def test_feature_list_pages_orders_and_filters(client, sae):
    page = ok(client.get("/api/features", params={"dictionary": sae, "order": "max",
                                                  "limit": 5}), m.FeatureList)
    assert page["total"] == 24 and len(page["rows"]) == 5
    maxima = [r["max"] for r in page["rows"]]
    assert maxima == sorted(maxima, reverse=True)
    asc = ok(client.get("/api/features", params={"dictionary": sae, "order": "feature",
                                                 "desc": "false", "limit": 3, "offset": 2}),
             m.FeatureList)
    assert [r["feature"] for r in asc["rows"]] == [2, 3, 4]
    expl = ok(client.get("/api/features", params={"dictionary": sae, "explained": "true"}),
              m.FeatureList)
    assert expl["rows"] and all(r["explained"] for r in expl["rows"])
    text = ok(client.get("/api/features", params={"dictionary": sae, "text": "terminator"}),
              m.FeatureList)
    assert all("terminator" in r["description"] for r in text["rows"])
    refused(client.get("/api/features", params={"dictionary": sae, "order": "x; DROP"}), 400)
    refused(client.get("/api/features", params={"dictionary": "nope"}), 404)
    refused(client.get("/api/features", params={"dictionary": sae, "limit": 51}), 422)
    refused(client.get("/api/features"), 422)


def test_feature_page_has_every_part_and_1_based_examples(client, sae, inputs):
    page = ok(client.get(f"/api/feature/{sae}/3"), m.FeaturePage)
    assert page["feature"]["feature"] == 3 and page["dictionary"]["live"]
    assert page["hist_edges"][-1] is None and page["tracks"] == []
    ex = page["examples"][0]
    fasta = "".join(inputs["fasta"].read_text().split("\n")[1:])
    window = fasta[ex["start"] - 1:ex["end"]]                 # 1-based closed
    rc = window[::-1].translate(str.maketrans("ACGT", "TGCA"))
    assert ex["sequence"] == (window if ex["strand"] == "+" else rc)
    refused(client.get(f"/api/feature/{sae}/24"), 404)       # beyond n_features
    refused(client.get(f"/api/feature/{sae}/-1"), 422)
    refused(client.get("/api/feature/nope/1"), 404)


def test_concepts_and_a_concept_page(client):
    concepts = ok(client.get("/api/concepts"), m.ConceptList)["concepts"]
    name = concepts[0]["concept"]
    page = ok(client.get(f"/api/concept/{name}"), m.ConceptPage)
    assert page["features"] and all(f["description"] for f in page["features"])
    scores = [f["f1"] - (f["f1_shuffled"] or 0) for f in page["features"]]
    assert scores == sorted(scores, reverse=True)
    refused(client.get("/api/concept/no-such-concept"), 404)


def test_search_finds_features_genes_and_regions(client, sae):
    hits = ok(client.get("/api/search", params={"q": "thrA"}), m.SearchResponse)["hits"]
    assert {"type": "gene", "record": REC, "start": 337, "end": 2799, "name": "thrA",
            "strand": "+"}.items() <= hits[0].items()
    hits = ok(client.get("/api/search", params={"q": f"{sae}#7"}), m.SearchResponse)["hits"]
    assert hits[0]["feature"] == 7
    hits = ok(client.get("/api/search", params={"q": f"{REC}:1,000-2,000"}),
              m.SearchResponse)["hits"]
    assert (hits[0]["start"], hits[0]["end"]) == (1000, 2000)
    refused(client.get("/api/search", params={"q": "x" * 201}), 422)


# ------------------------------------------------------------------------- genome routes

def test_annotation_and_labels_are_igv_0_based(client):
    ann = ok(client.get("/api/annotation", params={"chr": REC, "start": 300, "end": 400}),
             m.AnnotationTrack)
    thr_a = [f for f in ann["features"] if f["name"] == "thrA" and f["type"] == "CDS"]
    assert thr_a and (thr_a[0]["start"], thr_a[0]["end"]) == (336, 2799)   # GFF 337..2799
    lab = ok(client.get("/api/labels", params={"chr": REC, "start": 300, "end": 400}),
             m.AnnotationTrack)
    start = [f for f in lab["features"] if f["type"] == "start_codon"]
    assert (start[0]["start"], start[0]["end"]) == (336, 339)
    clipped = ok(client.get("/api/annotation", params={"chr": REC, "start": 59_000,
                                                       "end": 70_000}), m.AnnotationTrack)
    assert clipped["end"] == 60_000                          # the end is clipped to the record
    refused(client.get("/api/annotation", params={"chr": REC, "start": 1, "end": 50_001}), 400)
    refused(client.get("/api/annotation", params={"chr": "chrZ", "start": 1, "end": 9}), 404)
    refused(client.get("/api/annotation", params={"chr": REC, "start": 9, "end": 1}), 400)
    refused(client.get("/api/labels", params={"chr": REC, "start": 0, "end": 9}), 422)


def test_reference_fasta_is_indexed_and_served_by_range(client, inputs):
    ref = client.get("/api/meta").json()["reference"]
    fai = client.get("/" + ref["indexURL"]).text.split("\t")
    assert fai[:2] == [REC, "60000"]
    offset, bases, width = int(fai[2]), int(fai[3]), int(fai[4])
    fasta = "".join(inputs["fasta"].read_text().split("\n")[1:])
    pos = 12_345                                             # 0-based
    byte = offset + pos // bases * width + pos % bases
    r = client.get("/" + ref["fastaURL"], headers={"Range": f"bytes={byte}-{byte + 9}"})
    assert r.status_code == 206 and r.headers["content-range"].startswith(f"bytes {byte}-")
    assert r.text.replace("\n", "")[:5] == fasta[pos:pos + 5]
    assert client.get("/" + ref["fastaURL"], headers={"Range": "bytes=-4"}).content.endswith(b"\n")
    assert client.get("/" + ref["fastaURL"], headers={"Range": "bytes=99999999-"}).status_code == 416
    for bad in ("/genome/other.fa", "/genome/..%2F..%2Fetc%2Fpasswd", "/genome/../manifest.json"):
        assert client.get(bad).status_code == 404


# ------------------------------------------------------------------------- live routes

def test_track_has_both_strands_in_forward_coordinates_equal_to_the_sae(client, state, sae):
    import torch

    from dnatlas.analysis.extract import extract_activations

    a, b = 2_000, 2_300                                      # 1-based 2001..2300
    t = ok(client.get("/api/track", params={"dictionary": sae, "feature": 5, "chr": REC,
                                            "start": a + 1, "end": b}), m.ActivationTrack)
    assert (t["start"], t["end"], t["step"]) == (a + 1, b, 1)
    live = state.engine.dictionaries[sae]
    acts = extract_activations(state.engine.adapter, state.genome.codes[REC], [live.site],
                               start=0, end=60_000, strand="both", progress=False)
    with torch.inference_mode():
        want = {s: live.sae.encode(torch.from_numpy(acts[live.site, s])).numpy()[:, 5]
                for s in "+-"}
    want["-"] = want["-"][::-1]                              # reverse complement -> forward
    for strand, key in (("+", "plus"), ("-", "minus")):
        got = np.zeros(b - a, np.float32)
        for p in t[key]:
            assert p["end"] == p["start"] + 1 and p["chr"] == REC
            got[p["start"] - a] = p["value"]
        np.testing.assert_allclose(got, want[strand][a:b], atol=2e-4)
    wide = ok(client.get("/api/track", params={"dictionary": sae, "feature": 5, "chr": REC,
                                               "start": 1, "end": 30_000}), m.ActivationTrack)
    assert wide["step"] == 15 and len(wide["plus"]) <= 2_000
    i = np.argmax(want["+"][:30_000])
    peak = [p for p in wide["plus"] if p["start"] <= i < p["end"]]
    assert peak and peak[0]["value"] == pytest.approx(want["+"][i], abs=2e-4)  # max-binned
    again = client.get("/api/track", params={"dictionary": sae, "feature": 5, "chr": REC,
                                             "start": 1, "end": 30_000})
    assert again.json() == wide                               # the cache answers


def test_track_refusals(client, sae):
    base = {"dictionary": sae, "feature": 5, "chr": REC, "start": 1, "end": 100}
    refused(client.get("/api/track", params={**base, "end": 30_001}), 400)     # too wide
    refused(client.get("/api/track", params={**base, "feature": 24}), 404)
    refused(client.get("/api/track", params={**base, "feature": 10**9}), 422)
    refused(client.get("/api/track", params={**base, "dictionary": f"random-init {sae}"}), 400)
    refused(client.get("/api/track", params={**base, "chr": "../../etc/passwd"}), 404)
    refused(client.get("/api/track", params={**base, "start": "x"}), 422)
    neuron = client.get("/api/track", params={**base, "dictionary": "neurons:blocks.2.residual"})
    assert neuron.status_code == 200 and neuron.json()["plus"]  # neurons are live too


def test_gram_map_png_numbers_and_codon_phase(client):
    g = ok(client.get("/api/gram", params={"chr": REC, "start": 337, "end": 636}),
           m.GramResponse)
    assert g["n"] == 300 and g["positions"][0] == 337 and g["matrix_step"] == 2
    mat = np.array(g["matrix"])
    assert mat.shape == (150, 150) and np.allclose(mat, mat.T, atol=1e-3)
    assert base64.b64decode(g["image"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert g["offsets"][:2] == [0, 1] and g["toeplitz"] is not None
    ph = ok(client.get("/api/gram", params={"chr": REC, "start": 337, "end": 636,
                                            "phase": "2", "scale": "power"}), m.GramResponse)
    assert ph["n"] == 100 and all((p - 337) % 3 == 2 for p in ph["positions"])  # thrA frame
    refused(client.get("/api/gram", params={"chr": REC, "start": 1, "end": 601}), 400)
    refused(client.get("/api/gram", params={"chr": REC, "start": 1, "end": 99,
                                             "scale": "log"}), 422)
    refused(client.get("/api/gram", params={"chr": REC, "start": 1, "end": 99,
                                             "site": "blocks.99.nothing"}), 400)


def test_pasted_sequence_lists_features_tracks_and_gram(client, state):
    seq = "".join(state.genome.fasta.fasta.decode().split("\n")[1:])[300:1_500]
    out = ok(client.post("/api/sequence", json={
        "sequence": ">my gene\n" + "\n".join(seq[i:i + 60] for i in range(0, 1200, 60)),
        "top": 7, "gram": True}), m.SequenceResponse)
    assert out["length"] == 1_200 and len(out["features"]) == 7
    maxima = [f["max"] for f in out["features"]]
    assert maxima == sorted(maxima, reverse=True)
    assert [t["feature"] for t in out["tracks"]] == [f["feature"] for f in out["features"][:5]]
    assert out["tracks"][0]["chr"] == "query" and out["gram"]["n"] == 600
    picked = ok(client.post("/api/sequence", json={"sequence": seq, "features": [3]}),
                m.SequenceResponse)
    assert [t["feature"] for t in picked["tracks"]] == [3] and picked["gram"] is None
    refused(client.post("/api/sequence", json={"sequence": "ACGTXACGT"}), 400)
    refused(client.post("/api/sequence", json={"sequence": "A" * 5_001}), 400)
    refused(client.post("/api/sequence", json={"sequence": ">only a header\n"}), 400)
    refused(client.post("/api/sequence", json={"sequence": "ACGT", "features": [1024]}), 404)
    refused(client.post("/api/sequence", json={"sequence": "ACGT", "top": 0}), 422)
    refused(client.post("/api/sequence", json={"sequence": "ACGT", "extra": 1}), 422)
    refused(client.post("/api/sequence", content=b"{not json",
                        headers={"content-type": "application/json"}), 422)


def test_oversized_bodies_get_413_with_or_without_content_length(client):
    refused(client.post("/api/sequence", json={"sequence": "A" * 25_000}), 413)

    def chunks():                        # no Content-Length: counted while read
        yield b'{"sequence": "'
        for _ in range(30):
            yield b"A" * 1_000
        yield b'"}'
    refused(client.post("/api/sequence", content=chunks(),
                        headers={"content-type": "application/json"}), 413)


def test_steering_changes_predictions_in_the_region(client, sae):
    body = {"dictionary": sae, "chr": REC, "start": 400, "end": 405,
            "edits": [{"feature": 5, "op": "set_max", "value": 4}], "codons": True,
            "frame_start": 337}
    out = ok(client.post("/api/steer", json=body), m.SteerResponse)
    assert [p["start"] for p in out["delta_nt"]] == list(range(399, 405))
    assert all(0 <= p["value"] <= 1 for p in out["delta_nt"]) and out["delta_codon"]
    assert {p["start"] % 3 for p in out["delta_codon"]} == {336 % 3}   # in frame
    assert out["top"][0]["pos"] in range(400, 406) and len(out["top"][0]["before"]) == 4
    refused(client.post("/api/steer", json={**body, "end": 408}), 400)        # 9 nt > 8
    refused(client.post("/api/steer", json={**body, "edits": body["edits"] * 3}), 400)
    refused(client.post("/api/steer", json={**body, "edits": [{"feature": 99, "value": 1}]}), 404)
    refused(client.post("/api/steer", json={**body, "edits": []}), 422)
    refused(client.post("/api/steer", json={**body, "dictionary": "neurons:blocks.2.residual"}),
            400)


# ------------------------------------------------------------------------- safety

def test_full_pool_answers_503_with_retry_after(state, sae):
    import httpx

    from dnatlas.explorer.pool import ModelPool

    app = create_app(state.config, state)
    release, started = threading.Event(), threading.Event()
    real = state.engine.track

    def slow(*args):
        started.set()
        release.wait(10)
        return real(*args)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            def get(i):
                # tile 2 (40-60 kb): computed by no earlier test, so both need the model
                return c.get("/api/track", params={"dictionary": sae, "feature": 6, "chr": REC,
                                                   "start": 40_001 + i, "end": 40_050})
            first = asyncio.create_task(get(0))
            while not started.is_set():
                await asyncio.sleep(0.01)
            busy = await get(1)
            release.set()
            return await first, busy

    old_pool, state.pool = state.pool, ModelPool(workers=1, queue=0)
    state.engine.track = slow
    try:
        first, busy = asyncio.run(go())
    finally:
        state.engine.track, state.pool = real, old_pool
    assert first.status_code == 200
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert "busy" in busy.json()["error"]


def test_security_headers_no_cors_and_no_tracebacks(state):
    client = TestClient(create_app(state.config, state), raise_server_exceptions=False)
    r = client.get("/api/meta", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and "blob:" in csp and "data:" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert client.options("/api/meta", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    ).headers.get("access-control-allow-origin") is None
    refused(client.get("/api/nothing-here"), 404)
    refused(client.get("/static/../../../etc/passwd"), 404)
    refused(client.get("/static/%2e%2e/%2e%2e/config.py"), 404)
    real = state.atlas.concepts
    state.atlas.concepts = lambda: 1 / 0
    try:
        bug = client.get("/api/concepts")
        msg = refused(bug, 500)
    finally:
        state.atlas.concepts = real
    assert "ZeroDivisionError" in msg and "line" not in msg
    assert "default-src 'self'" in bug.headers["content-security-policy"]


def test_allowed_hosts_block_dns_rebinding(state):
    cfg = ExplorerConfig(atlas=state.config.atlas, allowed_hosts=["127.0.0.1", "localhost"])
    client = TestClient(create_app(cfg, state), base_url="http://127.0.0.1")
    assert client.get("/api/meta").status_code == 200
    assert client.get("/api/meta", headers={"host": "evil.example"}).status_code == 400


def test_index_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


# ------------------------------------------------------------------------- export

def test_shard_key_rule():
    assert fnv1a32("") == "811c9dc5" and fnv1a32("a") == "e40c292c"   # FNV-1a test vectors
    assert shard_key("/api/meta") == "meta-" + fnv1a32("meta")
    key = shard_key("/api/features", {"offset": 0, "dictionary": "sae:x", "desc": False,
                                      "text": None, "concept": ""})
    assert key == ("features_desc_false_dictionary_sae_x_offset_0-"
                   + fnv1a32("features?desc=false&dictionary=sae:x&offset=0"))
    long = shard_key("/api/feature/" + "d" * 200 + "/1")
    assert len(long) == 80 + 9 and re.fullmatch(r"[A-Za-z0-9._-]+", long)
    assert shard_key("/api/concept/a b") != shard_key("/api/concept/a_b")


def test_static_export_writes_parsable_shards_for_every_page(state, sae, tmp_path):
    from dnatlas.errors import InputError
    from dnatlas.explorer.export import export_site

    out = tmp_path / "site"
    summary = export_site(state, out, show_progress=False, tracks_per_feature=1)
    assert summary["features"] == 24 + 64 + 32 and summary["tracks"] == 24 + 64
    data = {}
    for path in (out / "data").glob("*.js"):
        if path.name == "index.js":
            continue
        match = re.fullmatch(r'dnatlasData\("([^"]+)", (.*)\);\n', path.read_text(), re.S)
        assert match and match[1] == path.stem
        data[match[1]] = json.loads(match[2])
    meta = m.Meta.model_validate(data[shard_key("/api/meta")])
    assert not meta.live and meta.static.annotation_bin == 100_000 and meta.reference is None
    assert 'data/index.js' in (out / "index.html").read_text()
    index = (out / "data" / "index.js").read_text()
    assert "DNATLAS_STATIC = true" in index and shard_key("/api/meta") in index
    page = m.FeaturePage.model_validate(data[shard_key(f"/api/feature/{sae}/3")])
    assert page.tracks and page.tracks[0].end - page.tracks[0].start + 1 == 1_000
    m.FeatureList.model_validate(data[shard_key("/api/features", {
        "dictionary": sae, "order": "feature", "desc": False, "limit": 50, "offset": 0})])
    ann = m.AnnotationTrack.model_validate(data[shard_key("/api/annotation", {
        "chr": REC, "start": 1, "end": 100_000})])
    assert ann.end == 60_000 and ann.features
    assert shard_key("/api/labels", {"chr": REC, "start": 1, "end": 100_000}) in data
    assert shard_key("/api/concepts") in data
    with pytest.raises(InputError, match="--force"):
        export_site(state, out, show_progress=False)
    (out / "mine.txt").write_text("not ours")
    with pytest.raises(InputError, match="did not write"):
        export_site(state, out, force=True, show_progress=False)


# ------------------------------------------------------------------------- dnatlas explore

def test_explore_opens_a_current_atlas_and_refuses_a_stale_one(inputs, tmp_path, capsys):
    from dnatlas.cli import main
    from dnatlas.explorer.server import _is_loopback, open_state

    st = open_state(inputs["atlas"], genome=str(inputs["fasta"]),
                    annotations=[str(p) for p in inputs["annotations"]], live=False)
    try:
        assert st.engine is None and st.genome.lengths == {REC: 60_000}
    finally:
        st.close()
    # the default genome (all of E. coli) is not the one this atlas was built on
    assert main(["explore", "--atlas", str(inputs["atlas"]), "--export",
                 str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert "stale atlas" in err and "genome" in err and "Traceback" not in err
    assert not (tmp_path / "site").exists()
    assert main(["explore", "--port", "0"]) == 2
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("example.org")
