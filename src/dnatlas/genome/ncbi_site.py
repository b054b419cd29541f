"""The layout of NCBI's genomes site: accession directories, listings and checksums.

Used by :mod:`dnatlas.genome.fetch`: URLs of an
accession's directory, the entry names of an HTML directory listing, the
``{accession}_{assembly_name}`` subdirectory, ``md5checksums.txt`` parsing and a file's MD5.
"""

from __future__ import annotations

import html
import os
import re
import urllib.parse

DEFAULT_BASE_URL = "https://ftp.ncbi.nlm.nih.gov"
BASE_URL_ENV = "DNATLAS_NCBI_BASE_URL"

#: an NCBI assembly accession, ``GC[AF]_#########[.#]``
ACCESSION_RE = re.compile(r"^(GC[AF])_(\d{3})(\d{3})(\d{3})(?:\.(\d+))?$")
_HREF_RE = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


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
    m = ACCESSION_RE.match(accession)
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
    m = ACCESSION_RE.match(accession)
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


