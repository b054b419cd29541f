"""Position frequency matrices: read JASPAR, MEME and TRANSFAC files and the JASPAR database.

Every reader returns :class:`Motif` objects whose ``counts`` have shape (4, w) in A, C, G, T
order (counts, or frequencies times the number of sites for formats that store
frequencies). Files are parsed with Biopython's ``Bio.motifs``; the JASPAR database is read
offline through the ``pyjaspar`` package (its bundled SQLite release, no network).

:func:`log_odds` turns counts into the scoring matrix that every scan uses, so the fast
scanner (:mod:`dnatlas.motifs.scan`) and any reference implementation agree exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.errors import InputError
from dnatlas.files import open_text

#: Bio.motifs format names, in the order tried when a file's format is sniffed
FORMATS = ("jaspar", "meme", "transfac")
JASPAR_RELEASE = "JASPAR2024"
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9._:+()\-]+")


@dataclass(frozen=True)
class Motif:
    """One position frequency matrix.

    Attributes:
        id: the matrix ID (e.g. ``MA0004.1``; TRANSFAC ``AC``/``ID``; MEME motif name).
        name: the factor's name (e.g. ``Arnt``); equal to ``id`` when the file has none.
        counts: shape (4, w), float64, rows A, C, G, T; each column sums to the number of
            sites (or to 1 for a frequency matrix without a site count).
    """

    id: str
    name: str
    counts: np.ndarray

    @property
    def width(self) -> int:
        return int(self.counts.shape[1])

    @property
    def label(self) -> str:
        """The BED name: ``ID_NAME`` (``ID`` alone when the name is the ID), no whitespace."""
        text = self.id if self.name in ("", self.id) else f"{self.id}_{self.name}"
        return _LABEL_SAFE.sub("_", text)


def log_odds(motif: Motif, pseudocount: float = 1.0,
             background: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> np.ndarray:
    """The motif's log2-odds scoring matrix, shape (4, w), float32, rows A, C, G, T.

    Column i: ``p[j] = (counts[j, i] + pseudocount * bg[j]) / (counts[:, i].sum() +
    pseudocount)`` and ``score[j, i] = log2(p[j] / bg[j])``. A site's score is the float32
    sum over its w columns, added in column order.

    Raises:
        InputError: a pseudocount of 0 with a zero count (an infinite score), or a bad
            background (4 positive numbers summing to 1).
    """
    bg = check_background(background)
    counts = np.asarray(motif.counts, dtype=np.float64)
    totals = counts.sum(axis=0, keepdims=True)
    probs = (counts + pseudocount * bg[:, None]) / (totals + pseudocount)
    if (probs <= 0).any():
        raise InputError(f"motif {motif.id}: a zero count needs a pseudocount above 0")
    return np.log2(probs / bg[:, None]).astype(np.float32)


def check_background(background: Sequence[float]) -> np.ndarray:
    """``background`` as a float64 array of shape (4,), A C G T, positive, summing to 1."""
    bg = np.asarray(background, dtype=np.float64)
    if bg.shape != (4,) or not np.isfinite(bg).all() or (bg <= 0).any() \
            or abs(bg.sum() - 1.0) > 1e-6:
        raise InputError(f"background must be 4 positive frequencies (A,C,G,T) summing to 1, "
                         f"got {list(np.round(bg.ravel(), 4))}")
    return bg / bg.sum()


# --------------------------------------------------------------------------- files


def read_motif_file(path: str | Path, fmt: str | None = None) -> list[Motif]:
    """The motifs of a JASPAR, MEME or TRANSFAC file (optionally gzipped).

    Args:
        fmt: ``"jaspar"``, ``"meme"`` or ``"transfac"``; None sniffs the content (``MEME
            version`` -> meme; a line ``>ID`` -> jaspar; ``AC``/``ID``/``P0`` lines ->
            transfac).

    Raises:
        InputError: missing/unreadable file, unknown format, no motif, or a matrix that is
            not 4 rows of non-negative numbers.
    """
    from Bio import motifs as bio_motifs

    path = Path(path)
    with open_text(path, errors="replace") as fh:
        text = fh.read()
    fmt = fmt or _sniff(text, path)
    if fmt not in FORMATS:
        raise InputError(f"unknown motif format {fmt!r} (choose from {', '.join(FORMATS)})",
                         path=path)
    import io

    try:
        if fmt == "transfac":
            parsed = list(bio_motifs.parse(io.StringIO(text), "transfac", strict=False))
        elif fmt == "meme":
            parser = "minimal" if "letter-probability matrix" in text and \
                "sites sorted by position p-value" not in text else "meme"
            parsed = list(bio_motifs.parse(io.StringIO(text), parser))
        else:
            parsed = list(bio_motifs.parse(io.StringIO(text), "jaspar"))
    except Exception as exc:  # Biopython raises ValueError, KeyError, IndexError...
        raise InputError(f"cannot parse as {fmt}: {exc or type(exc).__name__}", path=path) from None
    if fmt == "meme":  # Biopython drops MEME's alt names and rounds counts: use freqs * sites
        names = re.findall(r"^MOTIF[ \t]+(\S+)(?:[ \t]+(\S+))?", text, flags=re.M)
        found = [_from_meme(m, names[i] if i < len(names) else ("", ""), path)
                 for i, m in enumerate(parsed)]
    else:
        found = [_from_bio(m, i, fmt, path) for i, m in enumerate(parsed)]
    if not found:
        raise InputError(f"no motif found (read as {fmt})", path=path)
    return found


def read_motif_files(paths: Iterable[str | Path]) -> list[Motif]:
    """All motifs of several files, in order; refuses a label seen twice."""
    return unique_labels([m for path in paths for m in read_motif_file(path)])


def unique_labels(motifs: list[Motif]) -> list[Motif]:
    """``motifs`` unchanged; raises InputError when two share a label (BED name)."""
    seen: set[str] = set()
    for motif in motifs:
        if motif.label in seen:
            raise InputError(f"two motifs are both named {motif.label!r}")
        seen.add(motif.label)
    return motifs


def _sniff(text: str, path: Path) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("MEME version") for line in lines[:50]):
        return "meme"
    if lines and lines[0].startswith(">"):
        return "jaspar"
    if any(line[:2] in ("AC", "ID", "P0", "PO") for line in lines[:50]):
        return "transfac"
    raise InputError("not a JASPAR, MEME or TRANSFAC motif file", path=path)


def _from_bio(bio, index: int, fmt: str, path: Path) -> Motif:
    get = getattr(bio, "get", None)
    ident = (getattr(bio, "matrix_id", None) or (get("AC") if get else None)
             or (get("ID") if get else None) or getattr(bio, "id", None)
             or bio.name or f"motif{index + 1}")
    name = (get("ID") if get and fmt == "transfac" else None) or bio.name or ident
    return make_motif(str(ident).strip(), str(name).strip(), bio.counts, path=path)


def _from_meme(bio, names: tuple[str, str], path: Path) -> Motif:
    ident = names[0] or bio.name
    sites = float(getattr(bio, "num_occurrences", 0) or 1)
    freqs = np.asarray([list(bio.pwm[letter]) for letter in "ACGT"], dtype=np.float64)
    return make_motif(ident, names[1] or ident, freqs * sites, path=path)


def make_motif(ident: str, name: str, counts, path: str | Path | None = None) -> Motif:
    """A :class:`Motif` from a mapping ``{"A": [...], ...}`` (Bio.motifs counts) or an array
    of shape (4, w); checks the values."""
    if hasattr(counts, "keys"):
        try:
            rows = [list(counts[letter]) for letter in "ACGT"]
        except KeyError:
            raise InputError(f"motif {ident}: not a DNA matrix (needs A, C, G, T)", path=path) from None
        matrix = np.asarray(rows, dtype=np.float64)
    else:
        matrix = np.asarray(counts, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != 4 or matrix.shape[1] == 0:
        raise InputError(f"motif {ident}: matrix must have 4 rows and at least 1 column, "
                         f"got shape {matrix.shape}", path=path)
    if not np.isfinite(matrix).all() or (matrix < 0).any() or (matrix.sum(axis=0) <= 0).any():
        raise InputError(f"motif {ident}: counts must be finite, non-negative, and every "
                         "column must have some", path=path)
    return Motif(ident, name, matrix)


# --------------------------------------------------------------------------- JASPAR


def jaspar_motifs(spec: str, release: str = JASPAR_RELEASE) -> list[Motif]:
    """The latest version of every matrix in a JASPAR collection, read offline by pyjaspar.

    Args:
        spec: ``COLLECTION[:TAXON]``, e.g. ``CORE`` or ``CORE:vertebrates`` (taxon as JASPAR
            names it: vertebrates, plants, insects, nematodes, fungi, urochordates...).
        release: e.g. ``JASPAR2024``.

    Raises:
        InputError: pyjaspar missing, an unknown release, or nothing matching.
    """
    try:
        from pyjaspar import jaspardb
    except ImportError:
        raise InputError("jaspar needs pyjaspar: pip install 'dnatlas[motifs]'",
                         setting="jaspar") from None
    collection, _, taxon = spec.partition(":")
    if not collection:
        raise InputError(f"jaspar {spec!r}: give COLLECTION[:TAXON], e.g. CORE:vertebrates",
                         setting="jaspar")
    try:
        db = jaspardb(release=release)
    except Exception as exc:
        raise InputError(f"JASPAR release {release!r} is not available in pyjaspar: {exc}") from None
    query = {"collection": collection.upper()}
    if taxon:
        query["tax_group"] = [taxon.lower()]
    import warnings

    with warnings.catch_warnings():  # pyjaspar warns on an empty selection; we raise instead
        warnings.simplefilter("ignore")
        found = db.fetch_motifs(**query)
    if not found:
        raise InputError(f"jaspar {spec!r}: no matrix in {release} (collections: CORE, "
                         "UNVALIDATED...; taxa: vertebrates, plants, insects, nematodes, "
                         "fungi, urochordates)", setting="jaspar")
    return unique_labels([make_motif(m.matrix_id, m.name or m.matrix_id, m.counts) for m in found])
