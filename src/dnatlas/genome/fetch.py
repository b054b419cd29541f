"""Download genome assemblies from NCBI for a selection manifest.

For each ``genome_id`` (an NCBI assembly accession such as ``GCF_000005845.2``) of a
manifest written by ``dnatlas data select``, :func:`fetch_genomes`:

1. lists the accession's directory on NCBI's genomes site over HTTPS,
   ``{base}/genomes/all/GCF/000/005/845/``, and picks the subdirectory named
   ``{accession}_{assembly_name}`` (for an accession without a version, the latest);
2. reads that directory's ``md5checksums.txt``;
3. downloads ``{dir}/{dir_name}_genomic.fna.gz`` into ``OUT/{dir_name}_genomic.fna.gz.part``,
   resuming a partial ``.part`` with an HTTP ``Range`` request (restarting when the
   server ignores it), retrying connection errors and 5xx/429 answers with exponential
   backoff, and renames it into place only once its MD5 matches. A mismatch deletes
   the part and counts as a failed attempt.

Verified files are recorded in ``OUT/md5checksums.txt`` (NCBI's ``MD5  ./NAME``
format, so ``md5sum -c`` works): a file already recorded there and still matching
its checksum is skipped without touching the network. Finally ``OUT/manifest.tsv`` is
written: the input manifest plus a ``path`` column (relative to ``OUT``), ready for
``dnatlas data build --manifest OUT/manifest.tsv``.

The base URL defaults to :data:`DEFAULT_BASE_URL`; the ``base_url`` argument or the
environment variable :data:`BASE_URL_ENV` redirect it (to a mirror, or a test server).
"""

from __future__ import annotations

import hashlib
import html
import http.client
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from dnatlas import __version__
from dnatlas.errors import InputError

DEFAULT_BASE_URL = "https://ftp.ncbi.nlm.nih.gov"
BASE_URL_ENV = "DNATLAS_NCBI_BASE_URL"
#: Name of the file in the output directory that records verified downloads.
CHECKSUMS_NAME = "md5checksums.txt"
MANIFEST_NAME = "manifest.tsv"

_ACCESSION_RE = re.compile(r"^(GC[AF])_(\d{3})(\d{3})(\d{3})(?:\.(\d+))?$")
_HREF_RE = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_CHUNK = 1 << 16
_MAX_BACKOFF = 60.0


class FetchError(InputError):
    """A genome could not be downloaded; located at its manifest row (file, record, line)."""


class _Transient(Exception):
    """A failure worth retrying (connection lost, truncated body, 5xx...)."""


class _Cancelled(Exception):
    """The run was interrupted; workers stop between chunks."""


@dataclass
class FetchResult:
    """The outcome of :func:`fetch_genomes`.

    Attributes:
        manifest: the written ``OUT/manifest.tsv``.
        paths: genome_id -> downloaded file (absolute).
        downloaded: genome_ids downloaded in this run.
        skipped: genome_ids already present and verified.
        bytes_downloaded: bytes received in this run (genome files only).
    """

    manifest: Path
    paths: dict[str, Path] = field(default_factory=dict)
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0


def resolve_base_url(base_url: str | None = None) -> str:
    """The base URL: ``base_url``, else ``$DNATLAS_NCBI_BASE_URL``, else NCBI's (no final ``/``)."""
    url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url.rstrip("/")


def accession_dir_url(accession: str, base_url: str | None = None) -> str:
    """URL of the directory that lists an accession's assemblies.

    ``GCF_000005845.2`` -> ``{base}/genomes/all/GCF/000/005/845/``.

    Raises:
        ValueError: ``accession`` is not an NCBI assembly accession (``GC[AF]_#########[.#]``).
    """
    m = _ACCESSION_RE.match(accession)
    if m is None:
        raise ValueError(f"not an NCBI assembly accession (GCA_/GCF_ + 9 digits): {accession!r}")
    prefix, a, b, c, _ = m.groups()
    return f"{resolve_base_url(base_url)}/genomes/all/{prefix}/{a}/{b}/{c}/"


def parse_directory_listing(page: str) -> list[str]:
    """Entry names (``href`` targets, unquoted, without a trailing ``/``) of an HTML listing.

    Links with a query, a fragment or another directory (``Parent Directory``) are dropped.
    """
    names = []
    for href in _HREF_RE.findall(page):
        href = html.unescape(href)
        if href.startswith(("?", "#")) or "://" in href:
            continue
        href = href.rstrip("/")
        if not href or "/" in href:
            continue
        names.append(urllib.parse.unquote(href))
    return names


def pick_assembly_dir(names: list[str], accession: str) -> str | None:
    """The ``{accession}_{assembly_name}`` entry among ``names``, or ``None``.

    For an accession without a version (``GCF_000005845``) the highest version wins.
    """
    m = _ACCESSION_RE.match(accession)
    if m is None:
        return None
    if m.group(5) is not None:
        matches = sorted(n for n in names if n.startswith(accession + "_"))
        return matches[0] if matches else None
    pattern = re.compile(re.escape(accession) + r"\.(\d+)_")
    best: tuple[int, str] | None = None
    for n in names:
        mv = pattern.match(n)
        if mv and (best is None or int(mv.group(1)) > best[0]):
            best = (int(mv.group(1)), n)
    return None if best is None else best[1]


def parse_md5_checksums(text: str) -> dict[str, str]:
    """Parse an NCBI ``md5checksums.txt`` (``MD5  ./NAME`` lines) into ``{NAME: md5}``."""
    sums = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{32}", parts[0]):
            continue
        name = parts[1].strip().lstrip("*")
        if name.startswith("./"):
            name = name[2:]
        sums[name] = parts[0].lower()
    return sums


def md5_file(path: str | Path) -> str:
    """Hex MD5 of a file."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a manifest TSV; return its columns and ``(line number, row)`` pairs.

    Raises:
        InputError: no such file, no ``genome_id`` column, or a row with the wrong
            number of fields.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    from dnatlas.genome.sources import decode_utf8

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    lines = decode_utf8(data, path, "manifest").split("\n")
    header = lines[0].rstrip("\r").split("\t")
    if "genome_id" not in header:
        raise InputError("missing required column 'genome_id'", path=path, line=1)
    rows = []
    for line_no, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise InputError(f"expected {len(header)} tab-separated fields, "
                             f"found {len(fields)}", path=path, line=line_no)
        rows.append((line_no, dict(zip(header, fields))))
    return header, rows


def _http_failure(exc: urllib.error.HTTPError, url: str,
                  fail: Callable[[str], Exception]) -> Exception:
    """The error to raise for a non-retryable HTTP answer (the response is closed)."""
    exc.close()
    if exc.code == 404:
        return fail(f"not found on NCBI (HTTP 404 for {url})")
    return fail(f"HTTP {exc.code} {exc.reason} for {url}")


class _Fetcher:
    """Shared state of one fetch run: HTTP, retries, progress, the checksum record."""

    def __init__(self, out: Path, base_url: str, retries: int, backoff: float,
                 timeout: float, progress: bool | None,
                 sleep: Callable[[float], object] | None):
        self.out = out
        self.base_url = base_url
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self.timeout = timeout
        self.progress = progress
        self.cancel = threading.Event()
        # waiting on the cancel event lets an interrupt cut a backoff short
        self.sleep = sleep if sleep is not None else self.cancel.wait
        self.lock = threading.Lock()
        self.opener = urllib.request.build_opener()
        self.opener.addheaders = [("User-Agent", f"dnatlas/{__version__} (+genome fetch)")]
        self.record_path = out / CHECKSUMS_NAME
        self.recorded = (parse_md5_checksums(self.record_path.read_text(encoding="utf-8"))
                         if self.record_path.is_file() else {})
        # what earlier runs verified (read-only, so workers can search it without the lock)
        self.previous = dict(self.recorded)
        self.overall = tqdm(desc="total", unit="B", unit_scale=True, unit_divisor=1024,
                            total=0, position=0, disable=self._disable())
        self.bytes_downloaded = 0

    def _disable(self) -> bool | None:
        return None if self.progress is None else not self.progress

    # -- HTTP with retries ---------------------------------------------------------

    def _open(self, url: str, headers: dict[str, str] | None = None):
        """Open ``url``; raise _Transient for retryable failures, HTTPError otherwise."""
        req = urllib.request.Request(url, headers=headers or {})
        try:
            return self.opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in (408, 429):
                exc.close()
                raise _Transient(f"HTTP {exc.code} for {url}") from None
            raise
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Transient(f"cannot reach {url}: {reason}") from None

    def _retrying(self, what: Callable[[], object], describe: str,
                  fail: Callable[[str], Exception]):
        """Run ``what`` up to ``retries + 1`` times, sleeping with exponential backoff
        after each transient failure; the last failure is raised via ``fail``."""
        last = ""
        for attempt in range(self.retries + 1):
            if self.cancel.is_set():
                raise _Cancelled()
            try:
                return what()
            except _Transient as exc:
                last = str(exc)
            if attempt < self.retries:
                self.sleep(min(_MAX_BACKOFF, self.backoff * (2 ** attempt)))
        raise fail(f"{describe} failed after {self.retries + 1} attempts: {last}")

    def _get_text(self, url: str) -> str:
        with self._open(url) as resp:
            try:
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"connection lost reading {url}: {exc}") from None
        return data.decode("utf-8", "replace")

    # -- one genome ----------------------------------------------------------------

    def fetch_one(self, genome_id: str, fail: Callable[[str], Exception]) -> tuple[Path, bool]:
        """Download (or find) one genome; return (path, downloaded_now)."""
        local = self._recorded_file(genome_id)
        if local is not None:
            return local, False
        try:
            dir_url = accession_dir_url(genome_id, self.base_url)
        except ValueError as exc:
            raise fail(str(exc)) from None

        def listing() -> str:
            try:
                return self._get_text(dir_url)
            except urllib.error.HTTPError as exc:
                raise _http_failure(exc, dir_url, fail) from None

        names = parse_directory_listing(self._retrying(listing, f"listing {dir_url}", fail))
        dir_name = pick_assembly_dir(names, genome_id)
        if dir_name is None:
            raise fail(f"no assembly directory {genome_id}_* listed at {dir_url}")
        asm_url = dir_url + urllib.parse.quote(dir_name) + "/"
        file_name = f"{dir_name}_genomic.fna.gz"
        sums_url = asm_url + "md5checksums.txt"

        def checksums() -> dict[str, str]:
            try:
                return parse_md5_checksums(self._get_text(sums_url))
            except urllib.error.HTTPError as exc:
                raise _http_failure(exc, sums_url, fail) from None

        sums = self._retrying(checksums, f"reading {sums_url}", fail)
        expected = sums.get(file_name)
        if expected is None:
            raise fail(f"{file_name} is not listed in {sums_url}")
        dest = self.out / file_name
        if dest.is_file() and md5_file(dest) == expected:
            self._record(file_name, expected)
            return dest, False
        self._download(asm_url + urllib.parse.quote(file_name), dest, expected, genome_id, fail)
        self._record(file_name, expected)
        return dest, True

    def _recorded_file(self, genome_id: str) -> Path | None:
        """A file recorded as verified for ``genome_id`` that still matches its MD5."""
        m = _ACCESSION_RE.match(genome_id)
        if m is None:
            return None
        candidates = [n for n in self.previous if n.endswith("_genomic.fna.gz")]
        name = pick_assembly_dir([n[: -len("_genomic.fna.gz")] for n in candidates], genome_id)
        if name is None:
            return None
        path = self.out / f"{name}_genomic.fna.gz"
        if path.is_file() and md5_file(path) == self.previous[path.name]:
            return path
        return None

    def _record(self, name: str, md5: str) -> None:
        """Append a verified file to ``OUT/md5checksums.txt`` (thread-safe)."""
        with self.lock:
            if self.recorded.get(name) == md5:
                return
            self.recorded[name] = md5
            with open(self.record_path, "a", encoding="utf-8") as fh:
                fh.write(f"{md5}  ./{name}\n")

    def _download(self, url: str, dest: Path, expected: str, genome_id: str,
                  fail: Callable[[str], Exception]) -> None:
        """Download ``url`` to ``dest`` via ``dest.part`` with resume, retries and MD5 check."""
        part = dest.with_name(dest.name + ".part")
        bar = tqdm(desc=genome_id, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                   disable=self._disable())
        counted = [0]  # what this file has added to the overall bar's total
        last = ""
        try:
            for attempt in range(self.retries + 1):
                if self.cancel.is_set():
                    raise _Cancelled()
                try:
                    self._transfer(url, part, bar, counted)
                    got = md5_file(part)
                    if got == expected:
                        os.replace(part, dest)
                        return
                    part.unlink(missing_ok=True)
                    last = f"checksum mismatch for {dest.name} (expected MD5 {expected}, got {got})"
                except _Transient as exc:
                    last = str(exc)
                except urllib.error.HTTPError as exc:
                    raise _http_failure(exc, url, fail) from None
                if attempt < self.retries:
                    self.sleep(min(_MAX_BACKOFF, self.backoff * (2 ** attempt)))
            raise fail(f"download failed after {self.retries + 1} attempts: {last}")
        finally:
            bar.close()

    def _transfer(self, url: str, part: Path, bar: tqdm, counted: list[int]) -> None:
        """One attempt: append to ``part`` (HTTP Range) or restart it.

        ``counted[0]`` holds what this file has added to the overall bar's total.

        Raises _Transient when the body ends early or the connection breaks, leaving
        what was received in ``part`` for the next attempt to resume.
        """
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = self._open(url, headers)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                # Range not satisfiable: the part is already complete, or longer than the
                # file. Let the checksum decide (a bad part is deleted and restarted).
                exc.close()
                return
            raise
        with resp:
            if offset and resp.status == 206:
                m = _CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", ""))
                if m is None or int(m.group(1)) != offset:
                    part.unlink(missing_ok=True)
                    raise _Transient(f"bad Content-Range {resp.headers.get('Content-Range')!r} "
                                     f"from {url}; restarting")
                total = 0 if m.group(3) == "*" else int(m.group(3))
                mode = "ab"
            elif resp.status == 200:
                offset = 0  # a server that ignores Range sends the whole file: restart
                mode = "wb"
                total = 0
            else:
                raise _Transient(f"unexpected HTTP {resp.status} for {url}")
            length = resp.headers.get("Content-Length")
            expected_len = int(length) if length and length.isdigit() else None
            if not total and expected_len is not None:
                total = offset + expected_len
            bar.reset(total=total or None)
            bar.update(offset)
            if total and total != counted[0]:
                with self.lock:
                    self.overall.total += total - counted[0]
                    self.overall.refresh()
                counted[0] = total
            received = 0
            with open(part, mode) as fh:
                while True:
                    if self.cancel.is_set():
                        raise _Cancelled()
                    try:
                        chunk = resp.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Transient(f"connection lost after {offset + received} bytes "
                                         f"of {url}: {exc}") from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    with self.lock:
                        self.bytes_downloaded += len(chunk)
                        self.overall.update(len(chunk))
            if expected_len is not None and received < expected_len:
                raise _Transient(f"connection closed after {offset + received} of "
                                 f"{offset + expected_len} bytes of {url}")

    def close(self) -> None:
        self.overall.close()


def fetch_genomes(manifest: str | Path, out: str | Path, base_url: str | None = None,
                  retries: int = 5, jobs: int = 4, backoff: float = 1.0,
                  timeout: float = 60.0, progress: bool | None = None,
                  sleep: Callable[[float], object] | None = None) -> FetchResult:
    """Download every genome of ``manifest`` into ``out`` and write ``out/manifest.tsv``.

    Args:
        manifest: TSV with a ``genome_id`` column of NCBI assembly accessions (as written
            by ``dnatlas data select``).
        out: output directory (created if needed).
        base_url: NCBI base URL; default ``$DNATLAS_NCBI_BASE_URL`` or :data:`DEFAULT_BASE_URL`.
        retries: retries per request after the first attempt (connection errors, 5xx,
            truncated bodies and checksum mismatches all count).
        jobs: parallel downloads.
        backoff: seconds before the first retry; doubled after each (capped at 60 s).
        timeout: socket timeout in seconds.
        progress: show tqdm bars (``None``: only when stderr is a terminal).
        sleep: waits between retries (default: an interruptible :func:`time.sleep`).

    Returns:
        A :class:`FetchResult`.

    Raises:
        InputError: a bad manifest.
        FetchError: a genome could not be downloaded or verified (the first failure,
            by manifest order; genomes fetched before it stay recorded, so a re-run
            resumes). ``out/manifest.tsv`` is only written when every genome succeeded.
    """
    manifest = Path(manifest)
    out = Path(out)
    columns, rows = read_manifest(manifest)
    out.mkdir(parents=True, exist_ok=True)
    first_line: dict[str, int] = {}
    for line_no, row in rows:
        gid = row["genome_id"].strip()
        if not gid:
            raise InputError("empty genome_id", path=manifest, line=line_no)
        first_line.setdefault(gid, line_no)

    def fail_for(gid: str) -> Callable[[str], Exception]:
        return lambda msg: FetchError(msg, path=manifest, record=gid, line=first_line[gid])

    fetcher = _Fetcher(out, resolve_base_url(base_url), retries, backoff, timeout,
                       progress, sleep)
    result = FetchResult(manifest=out / MANIFEST_NAME)
    errors: dict[str, BaseException] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(fetcher.fetch_one, gid, fail_for(gid)): gid
                       for gid in first_line}
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in done:
                        gid = futures[fut]
                        exc = fut.exception()
                        if exc is not None:
                            errors[gid] = exc
                            continue
                        path, downloaded = fut.result()
                        result.paths[gid] = path
                        (result.downloaded if downloaded else result.skipped).append(gid)
                    fetcher.overall.set_description(
                        f"total ({len(futures) - len(pending)}/{len(futures)} genomes)")
            except BaseException:
                fetcher.cancel.set()
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        fetcher.close()
    result.bytes_downloaded = fetcher.bytes_downloaded
    if errors:
        gid = min(errors, key=first_line.__getitem__)
        exc = errors[gid]
        more = f" (and {len(errors) - 1} more genome(s) failed)" if len(errors) > 1 else ""
        if isinstance(exc, FetchError):
            raise FetchError(exc.message + more, path=exc.path, record=exc.record,
                             line=exc.line) from exc
        if isinstance(exc, OSError):  # e.g. the output directory is not writable
            raise FetchError(f"{exc.strerror or exc}: {exc.filename or out}{more}",
                             path=manifest, record=gid, line=first_line[gid]) from exc
        raise exc
    out_columns = [c for c in columns if c != "path"] + ["path"]
    _write_tsv(result.manifest, out_columns,
               [{**row, "path": os.path.relpath(result.paths[row["genome_id"].strip()], out)}
                for _, row in rows])
    return result


def _write_tsv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    """Write a TSV atomically (:func:`dnatlas.files.atomic_write`)."""
    from dnatlas.files import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write("\t".join(columns) + "\n")
        for row in rows:
            fh.write("\t".join(str(row.get(c, "")) for c in columns) + "\n")
