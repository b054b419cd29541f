"""The explorer in a real browser (Playwright driving the system's chromium).

One synthetic atlas (``tests/explorer_fixtures.py``: real E. coli sequence and annotation,
the bundled model and SAE, made-up statistics) is served three ways, and the same tests
run on each: the live server (uvicorn in a thread), the static export served over HTTP,
and the static export opened from disk (``file://``, where fetch and module scripts are
blocked). Every test fails on any console error, uncaught exception, failed request or
HTTP status >= 400 (:class:`Watch`). Screenshots go to ``$DNATLAS_EXPLORER_SHOTS`` when
set (``docs/explorer/`` holds the checked ones), else to a temporary folder.

Skipped cleanly without chromium (``apt-get install chromium``) or Playwright.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytest.importorskip("duckdb")

from dnatlas.explorer import shards  # noqa: E402
from tests.explorer_fixtures import make_explorer_inputs  # noqa: E402
from tests.test_explorer_frontend import SHARD_CASES  # noqa: E402


def _chromium() -> str | None:
    for path in (os.environ.get("DNATLAS_CHROMIUM"), shutil.which("chromium"),
                 shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if path and Path(path).is_file():
            return path
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000
MODES = ("live", "static-http", "static-file")
GENE = ("thrA", 337, 2799)          # E. coli K-12 MG1655, 1-based closed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_explorer_inputs(tmp_path_factory.mktemp("explorer"), length=150_000)


@pytest.fixture(scope="module")
def live_app(inputs):
    from dnatlas.explorer.app import create_app
    from dnatlas.explorer.config import ExplorerConfig

    return create_app(ExplorerConfig(atlas=inputs["atlas"], fasta=inputs["fasta"],
                                     annotations=inputs["annotations"], live=True))


@pytest.fixture(scope="module")
def live_url(live_app):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(live_app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def static_dir(live_app, tmp_path_factory):
    from dnatlas.explorer import export

    out = tmp_path_factory.mktemp("site")
    # every page, but activation tracks (around the first top example) only for the first
    # 8 features of each dictionary: the full export computes 1,000+ tracks (~2 min here)
    regions = export._example_regions
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "_example_regions", lambda page, *a: regions(page, *a)
                   if page["feature"]["feature"] < 8 else [])
        export.export_site(live_app.state.explorer, out, tracks_per_feature=1,
                           show_progress=False)
    return out


@pytest.fixture(scope="module")
def static_http_url(static_dir):
    handler = functools.partial(_QuietHandler, directory=str(static_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module", params=MODES)
def site(request):
    """(mode, URL of index.html): the live server, the served export, the export on disk."""
    mode = request.param
    if mode == "live":
        return mode, request.getfixturevalue("live_url")
    if mode == "static-http":
        return mode, request.getfixturevalue("static_http_url")
    return mode, (request.getfixturevalue("static_dir") / "index.html").as_uri()


# ---------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("DNATLAS_EXPLORER_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("shots")


class Watch:
    """Every console error, page error, failed request and HTTP error of a page."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"console error: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(
            f"request failed: {r.method} {r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"HTTP {r.status}: {r.request.method} {r.url}"))

    def check(self):
        assert not self.problems, "\n".join(self.problems)


class UI:
    """A page of the explorer in one mode, with the helpers the tests share."""

    def __init__(self, page, mode: str, base: str, shots: Path):
        self.page, self.mode, self.base, self.shots = page, mode, base, shots
        self.watch = Watch(page)
        self.static = mode != "live"

    def open(self, hash_: str, ready: str):
        self.page.goto(self.base + hash_)
        self.ready(ready)

    def ready(self, page_name: str):
        # the page is rendered for the URL now shown (not the previous one)
        self.page.wait_for_function(
            "name => document.body.getAttribute('data-ready') === name && "
            "document.body.getAttribute('data-hash') === location.hash", arg=page_name,
            timeout=TIMEOUT_MS)
        self.watch.check()

    def navigate(self, hash_: str, ready: str):
        self.page.evaluate("h => { location.hash = h; }", hash_)
        self.ready(ready)

    def igv(self, browser_js: str = "undefined"):
        return self.page.evaluate(f"DN.igvSummary({browser_js})")

    def wait_igv(self, condition: str, browser_js: str = "undefined"):
        """Wait until ``condition`` (JS over ``tracks``, igvSummary's list) holds."""
        self.page.wait_for_function(
            f"() => {{ const tracks = DN.igvSummary({browser_js}); return {condition}; }}",
            timeout=TIMEOUT_MS)
        return self.igv(browser_js)

    def shot(self, name: str, selector: str | None = None, full_page: bool = True):
        path = self.shots / f"{self.mode}-{name}.png"
        if selector:
            # the sticky header would cover an element scrolled to the top
            self.page.evaluate("document.querySelector('header.top').style.position = 'static'")
            self.page.locator(selector).first.screenshot(path=str(path))
            self.page.evaluate("document.querySelector('header.top').style.position = ''")
        else:
            self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def meta(self) -> dict:
        return self.page.evaluate("DN.meta")


@pytest.fixture
def ui(browser, site, shots):
    mode, base = site
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    u = UI(page, mode, base, shots)
    yield u
    context.close()
    u.watch.check()


def _sae(meta: dict) -> str:
    return next(d["dictionary"] for d in meta["dictionaries"] if d["kind"] == "sae"
                and not d["control"])


def _track_named(tracks: list[dict], prefix: str) -> dict:
    return next(t for t in tracks if t["name"].startswith(prefix))


# ---------------------------------------------------------------------------- tests
def test_overview_model_switch_and_shard_keys(ui):
    """The overview lists every dictionary; the JS shard key is the Python one in this
    browser; the model switch changes the dictionary of the feature list."""
    ui.open("#/", "home")
    meta = ui.meta()
    assert meta["live"] is (ui.mode == "live")
    assert ui.page.locator("#dictionaries tbody tr").count() == len(meta["dictionaries"])
    keys = ui.page.evaluate("cases => cases.map(([p, q]) => DN.shardKey(p, q))",
                            [[p, q] for p, q in SHARD_CASES])
    assert keys == [shards.shard_key(p, q) for p, q in SHARD_CASES]
    ui.shot("overview", full_page=False)

    ui.navigate("#/features", "features")
    neurons = next(d["dictionary"] for d in meta["dictionaries"] if d["kind"] == "neurons")
    ui.page.select_option("#model-switch", neurons)
    ui.page.wait_for_function("d => DN.state.dictionary === d && location.hash.includes("
                              "encodeURIComponent(d))", arg=neurons)
    ui.ready("features")
    first = ui.page.locator("#feature-table tbody tr a.feature-link").first
    assert neurons in first.get_attribute("href")


def test_feature_list_and_feature_page(ui):
    """Sorting and the 'strong but unexplained' ranking, then a feature page from the list:
    description, examples at base resolution (one coloured span per nucleotide, strand
    marked), histogram, Manhattan (its click opens the browser there), motif/landmarks,
    concepts with their controls, clickable relations."""
    ui.open("#/", "home")
    sae = _sae(ui.meta())
    ui.navigate(f"#/features?dictionary={sae}&order=max&desc=true", "features")
    maxes = [float(x.replace(",", "")) for x in
             ui.page.locator("#feature-table tbody tr td:nth-child(2)").all_inner_texts()]
    assert len(maxes) == 50 and maxes == sorted(maxes, reverse=True)
    ui.page.get_by_role("link", name="Strong but unexplained").click()
    ui.ready("features")
    assert "order=score_unexplained" in ui.page.url and "explained=false" in ui.page.url
    descs = ui.page.locator("#feature-table tbody td.desc").all_inner_texts()
    assert descs and all(d.startswith("◇") for d in descs)
    if ui.mode == "live":
        ui.shot("features", full_page=False)

    link = ui.page.locator("#feature-table tbody tr a.feature-link").first
    href = link.get_attribute("href")
    link.click()
    ui.ready("feature")
    assert ui.page.url.endswith(href)
    page = ui.page.evaluate(f"DN.api('feature/' + {href.split('/', 2)[2]!r})")
    assert ui.page.locator("#description").inner_text() == page["feature"]["description"]
    n_nt = sum(len(e["sequence"]) for e in page["examples"])
    assert ui.page.locator(".seq span").count() == n_nt
    assert ui.page.locator(".seq span.peak").count() == len(page["examples"])
    assert ui.page.locator(".strand.minus").count() == sum(e["strand"] == "-"
                                                           for e in page["examples"])
    assert ui.page.locator("svg.chart rect.bar").count() == sum(1 for c in
                                                               page["feature"]["hist"] if c)
    assert ui.page.locator("svg.chart path.manhattan").count() == 1
    assert ui.page.locator("#concept-table tbody tr").count() == len(page["concepts"])
    ui.shot("feature")

    # a relation is a link to the other feature's page
    rel = page["relations"][0]
    ui.page.locator(f"dl.relations a[href='#/feature/{rel['other_dictionary']}/"
                    f"{rel['other_feature']}']").first.click()
    ui.ready("feature")
    assert ui.page.locator("h1").inner_text().endswith(f"#{rel['other_feature']}")

    # the Manhattan plot opens the browser at the clicked bin, with this feature's track
    ui.page.locator("svg.chart rect.hit").click(position={"x": 100, "y": 40})
    ui.ready("browse")
    assert "#/browse/" in ui.page.url and "tracks=" in ui.page.url

    # a feature with everything: motif logo, landmark profiles, concepts beside controls
    rich = ui.page.evaluate("""async d => {
        const rows = (await DN.api('features', {dictionary: d, order: 'feature', desc: false,
                                               limit: DN.meta.limits.list_max, offset: 0})).rows;
        return rows.find(r => r.top_motif && r.best_concept && r.best_landmark).feature; }""",
                            sae)
    ui.navigate(f"#/feature/{sae}/{rich}", "feature")
    assert ui.page.locator("svg.chart text.logo-letter").count() >= 6
    assert ui.page.locator("svg.chart .legend text").count() == 2     # sense, antisense
    assert ui.page.locator("#concept-table tbody tr").count() >= 1
    ui.shot("feature-full")


def test_browser_gene_tracks_and_track_click(ui):
    """Go to a gene by name: igv draws the annotation and concept labels there; a feature id
    goes to its strongest example with its track; a feature's + and − strand activations
    load as one merged track around its top example; a click on that track opens the
    feature's page."""
    ui.open("#/browse/", "browse")
    sae = _sae(ui.meta())
    # of the first 8 features (those with tracks in the static export), the one firing
    # most around its first top example; its page links to that example in the browser
    best = ui.page.evaluate("""async d => {
        let best = null;
        for (let f = 0; f < 8; f++) {
            const page = await DN.api('feature/' + d + '/' + f);
            const ex = page.examples.find(e => e.kind === 'top');
            const t = await DN.readActivation(d, f, ex.record, ex.start - 250, ex.end + 250);
            const m = Math.max(0, ...t.plus.concat(t.minus).map(p => p.value));
            if (!best || m > best.max) best = {feature: f, max: m};
        }
        return best; }""", sae)
    assert best["max"] > 0
    f = best["feature"]
    ui.page.fill("input.locus", GENE[0])
    ui.page.press("input.locus", "Enter")
    ui.page.wait_for_function(
        f"() => {{ const r = DN.currentRegion(); return r && r.start <= {GENE[1]} "
        f"&& r.end >= {GENE[2]} && r.end - r.start < 10000; }}")
    tracks = ui.wait_igv("tracks.length >= 2 && tracks.every(t => t.features > 0 "
                         "&& t.painted > 0)")
    names = [t["name"] for t in tracks]
    assert names[:2] == ["Annotation", "Concept labels"]
    # add that feature's track with the controls (static: empty here, away from its
    # examples)
    ui.page.fill(".browse-controls input[type=number]", str(f))
    ui.page.click("text=Add activation track")
    drawn = "t.painted > 0" if ui.mode == "live" else "true"
    ui.wait_igv(f"tracks.some(t => t.type === 'merged' && {drawn})")
    assert f"tracks={sae}/{f}" in ui.page.url
    ui.shot("browser-gene", full_page=False)

    # a feature id: its strongest example, with its track
    ui.page.fill("input.locus", "3")
    ui.page.press("input.locus", "Enter")
    ui.page.wait_for_function("d => location.hash.includes('tracks=' + d + '/3')", arg=sae)
    ui.ready("browse")

    ui.navigate(f"#/feature/{sae}/{f}", "feature")
    ui.page.locator("#open-in-browser").click()
    ui.ready("browse")
    tracks = ui.wait_igv("tracks.some(t => t.type === 'merged' && t.maxAbs > 0 "
                         "&& t.painted > 0)")
    merged = _track_named(tracks, f"{sae}#{f}")
    assert merged["type"] == "merged"
    ui.shot("browser-track", full_page=False)
    box = merged["box"]
    ui.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    ui.ready("feature")
    assert ui.page.url.endswith(f"#/feature/{sae}/{f}")


def test_concepts_and_search(ui):
    """Concepts → best features → a concept page; search by concept, feature id, gene,
    region and k-mer."""
    ui.open("#/concepts", "concepts")
    rows = ui.page.locator("#concepts-table tbody tr")
    assert rows.count() > 0
    concept = rows.first.locator("td a").first.inner_text()
    rows.first.locator("td a").first.click()
    ui.ready("concept")
    assert ui.page.locator("#concept-features tbody tr").count() > 0
    if ui.mode == "live":
        ui.shot("concept", full_page=False)

    def search(q):
        ui.page.fill("#search-box", q)
        ui.page.press("#search-box", "Enter")
        ui.ready("search")
        return ui.page.locator("#search-hits li").all_inner_texts()

    assert any(f"concept {concept}" in h for h in search(concept))
    assert any("#7" in h for h in search("7"))
    assert any(f"gene {GENE[0]}" in h for h in search(GENE[0]))
    # a k-mer finds the features whose motif holds it (or its reverse complement)
    motif = ui.page.evaluate("""async d => (await DN.api('features', {dictionary: d,
        order: 'feature', desc: false, limit: DN.meta.limits.list_max, offset: 0}))
        .rows.find(r => r.top_motif).top_motif""", ui.page.evaluate("DN.state.dictionary"))
    assert any(f"(motif {motif})" in h for h in search(motif[:5]))
    ui.page.fill("#search-box", "K-12-MG1655:1,001-2,000")
    ui.page.press("#search-box", "Enter")
    ui.ready("browse")
    ui.page.wait_for_function("() => DN.currentRegion().start === 1001")


def test_gram_map(ui):
    """The Gram map of the region in view (live): every position, then one codon phase,
    with its colour bar, annotation on both axes, offset profile and scores; then another
    site of the model."""
    ui.open("#/browse/K-12-MG1655:190-1189", "browse")
    if ui.static:
        assert "live only" in ui.page.locator("#gram").inner_text()
        return
    ui.page.locator("#gram button").click()
    ui.page.wait_for_selector("#gram-canvas")
    text = ui.page.locator("#gram").inner_text()
    assert "3-periodicity" in text and "Toeplitz" in text and "1,000 positions" in text
    assert ui.page.locator("#gram svg.colorbar").count() == 1
    assert ui.page.locator("#gram svg.strip rect").count() > 0
    ui.page.select_option("#gram select[aria-label='colour scale']", "power")
    ui.page.wait_for_function("() => document.querySelector('#gram').innerText.includes('nonlinear scale')")
    ui.page.select_option("#gram select[aria-label='codon phase']", "2")
    ui.page.wait_for_function("() => document.querySelector('#gram').innerText.includes("
                              "'codon position 3 only')")
    ui.shot("gram", "#gram")
    # any site of the model, not only the dictionaries'
    ui.page.fill("#gram input.site", "blocks.1.residual")
    ui.page.press("#gram input.site", "Enter")
    ui.page.wait_for_function("() => document.querySelector('#gram').innerText.includes("
                              "'site blocks.1.residual')")


def test_paste_sequence(ui, inputs):
    """A pasted sequence (live): its tracks in igv, the most active features, a Gram map.
    Static: the panel is hidden with a note."""
    ui.open("#/sequence", "sequence")
    if ui.static:
        assert ui.page.locator("#live-only-note").count() == 1
        assert ui.page.locator("#sequence-input").count() == 0
        return
    fasta = Path(inputs["fasta"]).read_text().split("\n", 1)[1]
    seq = fasta.replace("\n", "")[5000:6500]
    ui.page.fill("#sequence-input", ">pasted\n" + seq)
    ui.page.click("#run-sequence")
    ui.page.wait_for_selector("#sequence-features tbody tr")
    assert ui.page.locator("#sequence-features tbody tr").count() == 20
    tracks = ui.wait_igv("tracks.length === 5 && tracks.every(t => t.features > 0 "
                         "&& t.painted > 0)", "DN.liveBrowsers[0]")
    assert all(t["type"] == "merged" for t in tracks)
    assert ui.page.locator("#gram-canvas").count() == 1
    ui.shot("sequence")


def test_steering(ui):
    """Steering (live): one SAE feature set to twice its max over the first 36 nt of thrA;
    the changes of the nucleotide, reference-base, codon and amino-acid predictions come
    back as igv tracks and a table. Static: hidden with a note."""
    ui.open("#/steer?region=K-12-MG1655:337-372&feature=7", "steer")
    if ui.static:
        assert ui.page.locator("#live-only-note").count() == 1
        return
    ui.page.check("#steer-codons")            # thrA's frame starts at 337, + strand
    ui.page.click("#run-steer")
    ui.page.wait_for_selector("#steer-top tbody tr")
    tracks = ui.wait_igv("tracks.filter(t => t.name.startsWith('Δ')).length === 4 && "
                         "tracks.every(t => t.features > 0 && t.painted > 0)",
                         "DN.liveBrowsers[0]")
    assert [t["name"] for t in tracks][1:] == [
        "Δ nucleotide distribution (total variation)", "Δ log p(reference base), nats",
        "Δ codon distribution", "Δ amino-acid distribution"]
    ui.shot("steer")
