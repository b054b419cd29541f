"""The explorer's front end without a browser: the JS shard key agrees with the Python one
(run under node), the vendored igv.js matches its lock file and carries its licences, and
every script is a classic script (the static export opens from file://)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dnatlas.explorer import shards

STATIC = Path(__file__).resolve().parents[1] / "src" / "dnatlas" / "explorer" / "static"

# (path, params): every kind of request the front end makes, plus the awkward cases
SHARD_CASES = [
    ("/api/meta", {}),
    ("meta", None),
    ("/api/feature/sae:topk16/3", {}),
    ("feature/neurons:blocks.2.residual/255", {}),
    ("/api/features", {"dictionary": "sae:topk16", "order": "feature", "desc": False,
                       "limit": 1000, "offset": 0}),
    ("/api/features", {"dictionary": "sae:topk16", "order": "score_unexplained",
                       "desc": True, "limit": 50, "offset": 100, "explained": None,
                       "concept": "", "text": "start codon"}),
    ("/api/annotation", {"chr": "NC_000913.3", "start": 1, "end": 50000}),
    ("/api/labels", {"end": 100000, "start": 50001, "chr": "NC_000913.3"}),
    ("/api/track", {"dictionary": "sae:topk16", "feature": 7, "chr": "chr1", "start": 2001,
                    "end": 4000}),
    ("/api/concept/rRNA 16S", {}),
    ("/api/concept/Gène–ü/β", {}),
    ("/api/search", {"q": "ACGT&x=1 #2?"}),
    ("/api/gram", {"chr": "c", "start": 1, "end": 3000, "site": "blocks.2.residual",
                   "phase": "", "scale": "power"}),
    ("/api/features", {"b": "2", "a": "1", "B": "0", "_": "x", "é": "y"}),
    ("/api/" + "x" * 120, {"q": "y" * 50}),
    ("/api/concepts", {"emoji": "\U0001f9ec"}),
]


def _node_keys(cases) -> list[str]:
    script = f"""
globalThis.window = globalThis;
require({json.dumps(str(STATIC / "js" / "api.js"))});
const cases = {json.dumps([[p, q] for p, q in cases])};
process.stdout.write(JSON.stringify(cases.map(([p, q]) => window.DN.shardKey(p, q))));
"""
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_shard_key_matches_python():
    want = [shards.shard_key(p, q) for p, q in SHARD_CASES]
    assert _node_keys(SHARD_CASES) == want
    # the rule's edges: an 80-character cut and the FNV-1a suffix
    long_key = want[-2]
    assert len(long_key) == 80 + 1 + 8 and re.fullmatch(r"[A-Za-z0-9._-]+-[0-9a-f]{8}", long_key)


def test_vendored_igv_matches_lock_and_keeps_licences():
    lock = json.loads((STATIC / "vendor" / "VENDORED.json").read_text())
    assert lock["igv"]["version"] == "3.8.10"
    for rel, info in lock["igv"]["files"].items():
        data = (STATIC / "vendor" / rel).read_bytes()
        if "sha256" in info:
            assert hashlib.sha256(data).hexdigest() == info["sha256"], rel
    bundle = (STATIC / "vendor" / "igv" / "igv.min.js").read_text()
    assert "@license DOMPurify 3.4.16" in bundle and "pako 2.1.0" in bundle
    licence = (STATIC / "vendor" / "igv" / "LICENSE").read_text()
    assert "MIT License" in licence and "Broad Institute" in licence
    notices = (STATIC / "vendor" / "igv" / "THIRD_PARTY_NOTICES.md").read_text()
    assert "pako" in notices and "DOMPurify" in notices and "Zlib" in notices


def test_classic_scripts_and_relative_urls():
    html = (STATIC / "index.html").read_text()
    assert 'type="module"' not in html and "type=module" not in html
    assert "<!-- dnatlas:data -->" in html     # the static export's hook
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert srcs and all(not s.startswith("/") and "://" not in s for s in srcs), srcs
    for s in srcs:
        if not s.startswith("data:"):
            assert (STATIC.parent / s).is_file(), s
    for js in (STATIC / "js").glob("*.js"):
        text = js.read_text()
        assert not re.search(r"^\s*(import|export)\s", text, re.M), js.name
        # the data goes through api.js only
        if js.name != "api.js":
            assert "fetch(" not in text, js.name
