"""Tests of dnatlas.genome.fetch and ``dnatlas data fetch``.

Every download goes to a local HTTP server bound to 127.0.0.1 on an ephemeral port,
serving the small NCBI-like tree in tests/fixtures/ncbi/ (directory listings as NCBI
serves them, md5checksums.txt, small gzipped FASTA files). The server can drop a
connection mid-body, ignore Range, corrupt a body or answer with an error status.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import re
import threading
from pathlib import Path

import pytest

import dnatlas.cli as cli
from dnatlas.cli.data_remote import add_commands
from dnatlas.errors import InputError
from dnatlas.genome.fetch import FetchError, fetch_genomes
from dnatlas.genome.ncbi_site import (
    BASE_URL_ENV,
    accession_dir_url,
    parse_directory_listing,
    parse_md5_checksums,
    pick_assembly_dir,
)

FIXTURES = Path(__file__).parent / "fixtures"
NCBI = FIXTURES / "ncbi"
GTDB = FIXTURES / "gtdb" / "bac120_metadata_r220_excerpt.tsv"
ECOLI = "GCF_000005845.2"
ECOLI_FILE = "GCF_000005845.2_ASM584v2_genomic.fna.gz"
ECOLI_SRC = NCBI / "genomes/all/GCF/000/005/845/GCF_000005845.2_ASM584v2" / ECOLI_FILE
KLEB = "GCF_000240185.1"
KLEB_FILE = "GCF_000240185.1_ASM24018v2_genomic.fna.gz"
KLEB_SRC = NCBI / "genomes/all/GCF/000/240/185/GCF_000240185.1_ASM24018v2" / KLEB_FILE


# -- a local, misbehaving-on-demand NCBI ---------------------------------------------------


class FakeNcbi:
    """A threaded HTTP server on 127.0.0.1 serving ``root`` like NCBI's genomes site.

    Attributes (set by tests; keyed by file name, e.g. ``GCF_..._genomic.fna.gz``):
        requests: ``(path, headers)`` of every request received.
        drop: name -> number of upcoming GETs that send half the body, then close.
        ignore_range: names whose Range requests get the whole file (200).
        corrupt: names served with a flipped byte.
        status: name -> list of status codes to answer with first (popped in order).
    """

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.drop: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.corrupt: set[str] = set()
        self.status: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def gets(self, name: str) -> list[dict[str, str]]:
        """Headers of the requests for paths ending with ``name``."""
        return [h for p, h in self.requests if p.endswith(name)]

    def _handler(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with fake.lock:
                    fake.requests.append((path, dict(self.headers)))
                name = path.rstrip("/").rsplit("/", 1)[-1]
                with fake.lock:
                    queued = fake.status.get(name)
                    code = queued.pop(0) if queued else None
                if code is not None:
                    self.send_error(code)
                    return
                target = (fake.root / path.lstrip("/")).resolve()
                if fake.root.resolve() not in target.parents and target != fake.root.resolve():
                    self.send_error(403)
                    return
                if target.is_dir():
                    if not path.endswith("/"):
                        self.send_response(301)
                        self.send_header("Location", path + "/")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    target = target / "index.html"
                if not target.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = target.read_bytes()
                if name in fake.corrupt:
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                ctype = "text/html" if target.name.endswith(".html") else (
                    "text/plain" if target.suffix == ".txt" else "application/x-gzip")
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if m and name not in fake.ignore_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                with fake.lock:
                    dropping = fake.drop.get(name, 0) > 0
                    if dropping:
                        fake.drop[name] -= 1
                if dropping:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


@pytest.fixture
def ncbi():
    fake = FakeNcbi(NCBI)
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Keep every request on 127.0.0.1 (a proxy from the environment would reroute it)."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY", BASE_URL_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def write_manifest(path: Path, genome_ids: list[str]) -> Path:
    lines = ["genome_id\taccession\torganism"]
    lines += [f"{g}\tRS_{g}\torganism {i}" for i, g in enumerate(genome_ids)]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


_REAL_BUILD_PARSER = cli.build_parser


def _parser_with_data_group() -> argparse.ArgumentParser:
    """The real ``dnatlas`` parser; adds a ``data`` group if cli/data.py is not there yet."""
    parser = _REAL_BUILD_PARSER()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "data" not in sub.choices:
        data = sub.add_parser("data")
        add_commands(data.add_subparsers(dest="data_command"))
    return parser


def run_cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run ``dnatlas ARGV`` through the real entry point; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "build_parser", _parser_with_data_group)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def fetch_cli(manifest: Path, out: Path, base: str | None, *extra: str) -> list[str]:
    argv = ["data", "fetch", str(manifest), "--out", str(out), "--backoff", "0",
            "--timeout", "10", "--no-progress", *extra]
    return argv + (["--base-url", base] if base else [])


# -- parsing helpers ------------------------------------------------------------------------


def test_accession_dir_url():
    assert accession_dir_url("GCF_000005845.2", "https://example.org/") == \
        "https://example.org/genomes/all/GCF/000/005/845/"
    assert accession_dir_url("GCA_900044215.1", "https://x") == \
        "https://x/genomes/all/GCA/900/044/215/"
    with pytest.raises(ValueError):
        accession_dir_url("RS_GCF_000005845.2")


def test_resolve_base_url_from_env(monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:1/mirror/")
    assert accession_dir_url("GCF_000005845.2").startswith("http://127.0.0.1:1/mirror/genomes/")


def test_parse_listing_and_pick_version():
    page = (NCBI / "genomes/all/GCF/000/005/845/index.html").read_text()
    names = parse_directory_listing(page)
    assert names == ["GCF_000005845.1_ASM584v1", "GCF_000005845.2_ASM584v2"]
    assert pick_assembly_dir(names, "GCF_000005845.2") == "GCF_000005845.2_ASM584v2"
    assert pick_assembly_dir(names, "GCF_000005845.1") == "GCF_000005845.1_ASM584v1"
    assert pick_assembly_dir(names, "GCF_000005845") == "GCF_000005845.2_ASM584v2"
    assert pick_assembly_dir(names, "GCF_000005845.3") is None
    assert pick_assembly_dir(["GCF_000005845.22_X"], "GCF_000005845.2") is None


def test_parse_md5_checksums():
    text = (ECOLI_SRC.parent / "md5checksums.txt").read_text()
    sums = parse_md5_checksums(text)
    assert sums[ECOLI_FILE] == hashlib.md5(ECOLI_SRC.read_bytes()).hexdigest()
    assert "assembly_status.txt" in sums


# -- end to end ---------------------------------------------------------------------------


def test_fetch_downloads_verifies_and_writes_manifest(tmp_path, ncbi, monkeypatch, capsys):
    manifest = write_manifest(tmp_path / "sel.tsv", [ECOLI, KLEB])
    out = tmp_path / "genomes"
    code, stdout, err = run_cli(fetch_cli(manifest, out, ncbi.url), monkeypatch, capsys)
    assert code == 0, err
    assert (out / ECOLI_FILE).read_bytes() == ECOLI_SRC.read_bytes()
    assert (out / KLEB_FILE).read_bytes() == KLEB_SRC.read_bytes()
    assert not list(out.glob("*.part"))
    rows = read_tsv(out / "manifest.tsv")
    assert [r["genome_id"] for r in rows] == [ECOLI, KLEB]
    assert [r["path"] for r in rows] == [ECOLI_FILE, KLEB_FILE]
    assert rows[0]["organism"] == "organism 0"
    assert "2 genome(s) downloaded" in stdout
    # every request went to the local server, to NCBI's layout
    assert ncbi.gets("/genomes/all/GCF/000/005/845/")
    assert len(ncbi.gets(ECOLI_FILE)) == 1 and "Range" not in ncbi.gets(ECOLI_FILE)[0]


def test_select_then_fetch(tmp_path, ncbi, monkeypatch, capsys):
    sel = tmp_path / "sel.tsv"
    code, _, err = run_cli(["data", "select", "--gtdb-metadata", str(GTDB), "--out", str(sel),
                            "--taxon", "s__Klebsiella pneumoniae", "--all-genomes",
                            "--assembly-levels", "Complete Genome"], monkeypatch, capsys)
    assert code == 0, err
    monkeypatch.setenv(BASE_URL_ENV, ncbi.url)  # the environment variable, not --base-url
    code, _, err = run_cli(fetch_cli(sel, tmp_path / "g", None), monkeypatch, capsys)
    assert code == 0, err
    rows = read_tsv(tmp_path / "g" / "manifest.tsv")
    assert [(r["genome_id"], r["path"]) for r in rows] == [(KLEB, KLEB_FILE)]
    assert rows[0]["taxonomy"].endswith("s__Klebsiella pneumoniae")
    assert (tmp_path / "g" / rows[0]["path"]).read_bytes() == KLEB_SRC.read_bytes()
    # the contract with `dnatlas data build --manifest` (genome_id, path, taxonomy)
    from dnatlas.genome.sources import read_manifest as read_build_manifest

    (source,) = read_build_manifest(tmp_path / "g" / "manifest.tsv")
    assert source.path.resolve() == (tmp_path / "g" / KLEB_FILE).resolve()
    assert source.taxonomy.endswith("s__Klebsiella pneumoniae")


def test_dropped_connection_is_resumed_with_range(tmp_path, ncbi, monkeypatch, capsys):
    ncbi.drop[ECOLI_FILE] = 1
    manifest = write_manifest(tmp_path / "sel.tsv", [ECOLI])
    code, _, err = run_cli(fetch_cli(manifest, tmp_path / "g", ncbi.url), monkeypatch, capsys)
    assert code == 0, err
    gets = ncbi.gets(ECOLI_FILE)
    assert len(gets) == 2
    assert "Range" not in gets[0]
    half = ECOLI_SRC.stat().st_size // 2
    assert gets[1]["Range"] == f"bytes={half}-"
    assert (tmp_path / "g" / ECOLI_FILE).read_bytes() == ECOLI_SRC.read_bytes()


def test_server_ignoring_range_restarts(tmp_path, ncbi, monkeypatch, capsys):
    ncbi.drop[ECOLI_FILE] = 1
    ncbi.ignore_range.add(ECOLI_FILE)
    manifest = write_manifest(tmp_path / "sel.tsv", [ECOLI])
    code, _, err = run_cli(fetch_cli(manifest, tmp_path / "g", ncbi.url), monkeypatch, capsys)
    assert code == 0, err
    gets = ncbi.gets(ECOLI_FILE)
    assert len(gets) == 2 and "Range" in gets[1]  # asked to resume, got the whole file
    assert (tmp_path / "g" / ECOLI_FILE).read_bytes() == ECOLI_SRC.read_bytes()


def test_stale_part_file_is_resumed(tmp_path, ncbi):
    out = tmp_path / "g"
    out.mkdir()
    data = ECOLI_SRC.read_bytes()
    (out / (ECOLI_FILE + ".part")).write_bytes(data[:1000])
    result = fetch_genomes(write_manifest(tmp_path / "sel.tsv", [ECOLI]), out, ncbi.url,
                           backoff=0, timeout=10, progress=False)
    assert ncbi.gets(ECOLI_FILE)[0]["Range"] == "bytes=1000-"
    assert (out / ECOLI_FILE).read_bytes() == data
    assert result.bytes_downloaded == len(data) - 1000


def test_bad_part_file_is_deleted_and_restarted(tmp_path, ncbi):
    out = tmp_path / "g"
    out.mkdir()
    (out / (ECOLI_FILE + ".part")).write_bytes(b"garbage" * 10)
    fetch_genomes(write_manifest(tmp_path / "sel.tsv", [ECOLI]), out, ncbi.url, retries=2,
                  backoff=0, timeout=10, progress=False)
    gets = ncbi.gets(ECOLI_FILE)
    assert [("Range" in g) for g in gets] == [True, False]
    assert (out / ECOLI_FILE).read_bytes() == ECOLI_SRC.read_bytes()


def test_checksum_mismatch_fails_with_one_line(tmp_path, ncbi, monkeypatch, capsys):
    ncbi.corrupt.add(ECOLI_FILE)
    manifest = write_manifest(tmp_path / "sel.tsv", [KLEB, ECOLI])
    out = tmp_path / "g"
    code, _, err = run_cli(fetch_cli(manifest, out, ncbi.url, "--retries", "2"),
                           monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("dnatlas: error: ")
    assert ECOLI in err and "checksum mismatch" in err and "line 3" in err
    assert len(ncbi.gets(ECOLI_FILE)) == 3  # first try + 2 retries
    assert not (out / ECOLI_FILE).exists() and not list(out.glob("*.part"))
    assert not (out / "manifest.tsv").exists()
    assert (out / KLEB_FILE).is_file()  # the other genome is kept for the next run


def test_already_downloaded_files_are_skipped(tmp_path, ncbi, monkeypatch, capsys):
    manifest = write_manifest(tmp_path / "sel.tsv", [ECOLI, KLEB])
    out = tmp_path / "g"
    assert run_cli(fetch_cli(manifest, out, ncbi.url), monkeypatch, capsys)[0] == 0
    before = len(ncbi.requests)
    code, stdout, err = run_cli(fetch_cli(manifest, out, ncbi.url), monkeypatch, capsys)
    assert code == 0, err
    assert len(ncbi.requests) == before  # verified locally, no network at all
    assert "0 genome(s) downloaded" in stdout and "2 already present" in stdout
    assert [r["path"] for r in read_tsv(out / "manifest.tsv")] == [ECOLI_FILE, KLEB_FILE]

    # without the local record the files are checked against NCBI's checksums, not re-fetched
    (out / "md5checksums.txt").unlink()
    code, _, _ = run_cli(fetch_cli(manifest, out, ncbi.url), monkeypatch, capsys)
    assert code == 0
    assert len(ncbi.gets(ECOLI_FILE)) == 1 and len(ncbi.gets(KLEB_FILE)) == 1

    # a file altered on disk is downloaded again
    (out / ECOLI_FILE).write_bytes(b"truncated")
    code, _, _ = run_cli(fetch_cli(manifest, out, ncbi.url), monkeypatch, capsys)
    assert code == 0
    assert len(ncbi.gets(ECOLI_FILE)) == 2
    assert (out / ECOLI_FILE).read_bytes() == ECOLI_SRC.read_bytes()


def test_unknown_accession_is_one_line_404(tmp_path, ncbi, monkeypatch, capsys):
    manifest = write_manifest(tmp_path / "sel.tsv", [ECOLI, "GCF_999999999.1"])
    code, _, err = run_cli(fetch_cli(manifest, tmp_path / "g", ncbi.url), monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "GCF_999999999.1" in err and "404" in err
    assert len(ncbi.gets("/999/999/999/")) == 1  # a 404 is not retried


def test_version_missing_from_listing(tmp_path, ncbi):
    with pytest.raises(FetchError, match="no assembly directory"):
        fetch_genomes(write_manifest(tmp_path / "sel.tsv", ["GCF_000005845.7"]), tmp_path / "g",
                      ncbi.url, backoff=0, timeout=10, progress=False)


def test_server_errors_are_retried(tmp_path, ncbi):
    ncbi.status["845"] = [503]
    ncbi.status["md5checksums.txt"] = [500, 502]
    ncbi.status[KLEB_FILE] = [503]
    sleeps = []
    result = fetch_genomes(write_manifest(tmp_path / "sel.tsv", [ECOLI, KLEB]), tmp_path / "g",
                           ncbi.url, retries=3, jobs=1, backoff=0.5, timeout=10,
                           progress=False, sleep=sleeps.append)
    assert sorted(result.downloaded) == [ECOLI, KLEB]
    assert sorted(sleeps) == [0.5, 0.5, 0.5, 1.0]  # exponential backoff per request
    assert (tmp_path / "g" / KLEB_FILE).read_bytes() == KLEB_SRC.read_bytes()


def test_persistent_server_error_gives_up(tmp_path, ncbi):
    ncbi.status["845"] = [503] * 10
    with pytest.raises(FetchError, match=r"failed after 3 attempts: HTTP 503") as info:
        fetch_genomes(write_manifest(tmp_path / "sel.tsv", [ECOLI]), tmp_path / "g", ncbi.url,
                      retries=2, backoff=0, timeout=10, progress=False)
    assert info.value.record == ECOLI
    assert len(ncbi.gets("/845/")) == 3


def test_connection_refused_gives_up(tmp_path):
    # a port on 127.0.0.1 with nothing listening
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match="cannot reach"):
        fetch_genomes(write_manifest(tmp_path / "sel.tsv", [ECOLI]), tmp_path / "g",
                      f"http://127.0.0.1:{port}", retries=1, backoff=0, timeout=5,
                      progress=False)


def test_bad_manifests(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("accession\nRS_GCF_000005845.2\n")
    with pytest.raises(InputError, match="genome_id"):
        fetch_genomes(bad, tmp_path / "g", "http://127.0.0.1:9")
    code, _, err = run_cli(fetch_cli(write_manifest(tmp_path / "m.tsv", ["NC_000913.3"]),
                                     tmp_path / "g", "http://127.0.0.1:9"), monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "NC_000913.3" in err
