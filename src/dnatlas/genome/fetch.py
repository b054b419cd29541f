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

import os
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.genome.fetch_download import Fetcher
from dnatlas.genome.ncbi_site import (
    resolve_base_url,
)

__all__ = ["MANIFEST_NAME", "FetchError", "FetchResult", "fetch_genomes", "read_manifest"]

MANIFEST_NAME = "manifest.tsv"


class FetchError(InputError):
    """A genome could not be downloaded; located at its manifest row (file, record, line)."""


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

    fetcher = Fetcher(out, resolve_base_url(base_url), retries, backoff, timeout,
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
