"""The inputs of a genome store: genome files, manifests, bundled genomes by name, and
genome IDs as users type them.

* :func:`collect_sources` / :func:`read_manifest`: the genomes to pack, with their IDs;
* :func:`resolve_bundled_genome`: a file, or the short name of a genome shipped with
  dnatlas (:mod:`dnatlas.bundled`);
* :func:`resolve_bundled_annotations`: annotation files from files, bundled annotation
  names (a genome's name means all of its bundled files) or a list of both;
* :func:`resolve_genome_ids`: ``--val-genomes`` values, exact or by accession prefix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas import bundled
from dnatlas.errors import InputError
from dnatlas.genome.readers import genome_id_from_path


@dataclass
class GenomeSource:
    """An input genome: its ID, file, taxonomy and any extra manifest columns."""

    id: str
    path: Path
    taxonomy: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def decode_utf8(data: bytes, path: str | Path, what: str = "file") -> str:
    """``data`` decoded as UTF-8 (a leading BOM dropped).

    Raises:
        InputError: the bytes are not UTF-8, naming the line and the first bad byte.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                         "save it as UTF-8", path=path, line=line) from None


def bundled_genome_paths() -> list[Path]:
    """The genomes shipped with dnatlas (``bundled/genomes/*.fa.gz``), sorted by name."""
    return bundled.genome_paths()


def resolve_bundled_genome(name_or_path: str | Path) -> Path:
    """``name_or_path`` as a path: an existing file, else a bundled genome's short name
    (e.g. ``ecoli_k12_mg1655``, see :func:`dnatlas.bundled.genome_names`).

    Raises:
        InputError: neither a file nor a bundled genome (for a bare name, the message lists
            the bundled names).
    """
    return _resolve_bundled(name_or_path, "genome", bundled.genome_names(), bundled.genome_path)


#: What names annotations: a file, a bundled name, or a list of either.
AnnotationSource = str | os.PathLike | Iterable[str | os.PathLike]


def resolve_bundled_annotations(source: AnnotationSource) -> list[Path]:
    """The annotation files that ``source`` names, in order, each once.

    ``source`` is one item or a list (any iterable) of items, each an existing file (GFF3,
    GenBank or BED; a pipe too) or a bundled annotation name
    (:func:`dnatlas.bundled.annotation_paths`): a genome's short name, e.g.
    ``ecoli_k12_mg1655``, means every bundled file of that genome (RefSeq, and TransTermHP
    terminators with pilercr CRISPR arrays), ``ecoli_k12_mg1655.refseq`` one of them. A
    file named twice is listed once. Read them with
    :func:`dnatlas.annotation.intervals.load_annotations`, which takes the same ``source``.

    Raises:
        InputError: no item given, or an item is neither a file nor a bundled annotation
            (for a bare name, the message lists the bundled names).
    """
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise InputError("no annotation file given")
    paths: list[Path] = []
    seen: set[str] = set()
    for item in items:
        for path in _resolve_annotation(item):
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths



def _resolve_annotation(item: str | os.PathLike) -> list[Path]:
    path = Path(item)
    if path.exists():
        return [path]
    names = bundled.annotation_names()
    name = str(item)
    if name in names or (len(path.parts) == 1 and name.split(".", 1)[0] in names):
        try:
            return bundled.annotation_paths(name)
        except InputError as exc:  # e.g. ecoli_k12_mg1655.gff3, a file that is not there
            raise InputError(f"no such file, nor a {exc.message.removeprefix('no ')}",
                             path=path) from None
    return [_resolve_bundled(item, "annotation", names, bundled.annotation_path)]


def _resolve_bundled(name_or_path: str | Path, kind: str, names: list[str], lookup) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    if str(name_or_path) in names:
        return lookup(str(name_or_path))
    if len(path.parts) > 1 or path.suffix:  # a path, not a short name
        raise InputError("file not found", path=path)
    raise InputError(f"no such file, nor a bundled {kind} (bundled: {', '.join(names)})",
                     path=path)


# --------------------------------------------------------------------------- inputs


def read_manifest(path: str | Path) -> list[GenomeSource]:
    """Read a manifest TSV: a header row with ``genome_id``, ``path`` and optionally
    ``taxonomy``; other columns are kept as metadata. Relative paths are relative to the
    manifest's directory. Blank lines are skipped.
    """
    path = Path(path)
    try:
        lines = decode_utf8(path.read_bytes(), path, "manifest").splitlines()
    except FileNotFoundError:
        raise InputError("manifest not found", path=path) from None
    except IsADirectoryError:
        raise InputError("manifest is a folder, not a file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read manifest: {exc.strerror or exc}", path=path) from None
    rows = [(number, line.split("\t")) for number, line in enumerate(lines, start=1)
            if line.strip()]
    if not rows:
        raise InputError("manifest is empty", path=path)
    header_line, header = rows[0]
    missing = [name for name in ("genome_id", "path") if name not in header]
    if missing:
        raise InputError(f"manifest header lacks column(s) {', '.join(missing)}", path=path,
                         line=header_line)
    sources = []
    for number, values in rows[1:]:
        if len(values) != len(header):
            raise InputError(f"expected {len(header)} tab-separated fields, found {len(values)}",
                             path=path, line=number)
        row = dict(zip(header, (value.strip() for value in values)))
        if not row["genome_id"] or not row["path"]:
            raise InputError("empty genome_id or path", path=path, line=number)
        genome_path = path.parent / row["path"]
        if not genome_path.is_file():
            raise InputError(f"genome file not found: {genome_path}", path=path, line=number)
        metadata = {k: v for k, v in row.items() if k not in ("genome_id", "path", "taxonomy")}
        sources.append(GenomeSource(row["genome_id"], genome_path, row.get("taxonomy", ""),
                                    metadata))
    return sources


def collect_sources(inputs: Iterable[str | Path], manifest: str | Path | None = None
                    ) -> list[GenomeSource]:
    """The input genomes: ``inputs`` (ID from the file name) then the manifest's rows.

    Raises:
        InputError: no genome at all, or two genomes with the same ID.
    """
    sources = [GenomeSource(genome_id_from_path(p), Path(p)) for p in inputs]
    if manifest is not None:
        sources += read_manifest(manifest)
    if not sources:
        raise InputError("no input genomes (give FASTA/GenBank files or a manifest)")
    seen: dict[str, Path] = {}
    for source in sources:
        if source.path.exists() and not (source.path.is_file() or source.path.is_dir()):
            raise InputError("is a pipe or device, not a regular file: a store is built by "
                             "reading each genome twice; save it to a file first",
                             path=source.path)
        if not source.id or any(c in source.id for c in "\t\n\r"):
            raise InputError(f"invalid genome ID {source.id!r}", path=source.path)
        if source.id in seen:
            raise InputError(f"duplicate genome ID {source.id!r} (also from {seen[source.id]})",
                             path=source.path)
        seen[source.id] = source.path
    return sources


def resolve_genome_ids(requested: Iterable[str], ids: Sequence[str]) -> list[str]:
    """The genome IDs among ``ids`` named by ``requested``, in request order.

    A request matches an ID exactly, or else is an unambiguous prefix of IDs ending at a
    ``_`` or ``.`` (an NCBI accession names its file ``GCF_000006945.2_ASM694v2_genomic``,
    so ``GCF_000006945.2`` and ``GCF_000006945`` both find it).

    Raises:
        InputError: a request matches no ID (the message lists the valid IDs) or several.
    """
    resolved = []
    for want in requested:
        if want in ids:
            resolved.append(want)
            continue
        matches = [i for i in ids if i.startswith(want) and i[len(want):len(want) + 1] in "_."]
        if len(matches) == 1:
            resolved.append(matches[0])
        elif matches:
            raise InputError(f"validation genome {want!r} is ambiguous: it could be "
                             f"{', '.join(matches)}")
        else:
            shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
            raise InputError(f"unknown validation genome {want!r} (genome IDs: {shown})")
    return resolved
