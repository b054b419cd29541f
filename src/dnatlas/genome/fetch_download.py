"""Downloading one run's genomes: HTTP with retries and backoff, resumable transfers, MD5.

Split from :mod:`dnatlas.genome.fetch`: :class:`Fetcher` holds the shared state of one
:func:`~dnatlas.genome.fetch.fetch_genomes` run (HTTP opener, retries, progress bars and the
``md5checksums.txt`` record of verified files) and downloads one genome per
:meth:`Fetcher.fetch_one` call, from any worker thread.
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from dnatlas._version import __version__
from dnatlas.files import file_digest
from dnatlas.genome.ncbi_site import (
    ACCESSION_RE,
    accession_dir_url,
    parse_directory_listing,
    parse_md5_checksums,
    pick_assembly_dir,
)

#: Name of the file in the output directory that records verified downloads.
CHECKSUMS_NAME = "md5checksums.txt"

_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_CHUNK = 1 << 16
_MAX_BACKOFF = 60.0


class _Transient(Exception):
    """A failure worth retrying (connection lost, truncated body, 5xx...)."""


class _Cancelled(Exception):
    """The run was interrupted; workers stop between chunks."""


def _http_failure(exc: urllib.error.HTTPError, url: str,
                  fail: Callable[[str], Exception]) -> Exception:
    """The error to raise for a non-retryable HTTP answer (the response is closed)."""
    exc.close()
    if exc.code == 404:
        return fail(f"not found on NCBI (HTTP 404 for {url})")
    return fail(f"HTTP {exc.code} {exc.reason} for {url}")


class Fetcher:
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
        if dest.is_file() and file_digest(dest, "md5") == expected:
            self._record(file_name, expected)
            return dest, False
        self._download(asm_url + urllib.parse.quote(file_name), dest, expected, genome_id, fail)
        self._record(file_name, expected)
        return dest, True

    def _recorded_file(self, genome_id: str) -> Path | None:
        """A file recorded as verified for ``genome_id`` that still matches its MD5."""
        m = ACCESSION_RE.match(genome_id)
        if m is None:
            return None
        candidates = [n for n in self.previous if n.endswith("_genomic.fna.gz")]
        name = pick_assembly_dir([n[: -len("_genomic.fna.gz")] for n in candidates], genome_id)
        if name is None:
            return None
        path = self.out / f"{name}_genomic.fna.gz"
        if path.is_file() and file_digest(path, "md5") == self.previous[path.name]:
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

        def attempt() -> None:
            try:
                self._transfer(url, part, bar, counted)
            except urllib.error.HTTPError as exc:
                raise _http_failure(exc, url, fail) from None
            got = file_digest(part, "md5")
            if got != expected:
                part.unlink(missing_ok=True)
                raise _Transient(f"checksum mismatch for {dest.name} "
                                 f"(expected MD5 {expected}, got {got})")
            os.replace(part, dest)

        try:
            self._retrying(attempt, "download", fail)
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
