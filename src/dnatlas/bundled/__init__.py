"""Data shipped inside the package: genomes, annotations and the pretrained model.

Short names are the file names before their first dot, e.g. the genome
``ecoli_k12_mg1655`` (``genomes/ecoli_k12_mg1655.fa.gz``). Annotation files are named
``GENOME.SOURCE.gff3.gz``; a genome may have several (``ecoli_k12_mg1655.refseq.gff3.gz``:
RefSeq; ``ecoli_k12_mg1655.transterm-pilercr.gff3.gz``: terminators and CRISPR arrays), and
its short name ``ecoli_k12_mg1655`` means all of them (:func:`annotation_paths`). Paths are
those of the installed package (see ``README.md`` in this folder for where the data come
from).

* :func:`genome_names`, :func:`genome_path`, :func:`genome_paths`
* :func:`annotation_names`, :func:`annotation_paths` (every file of a genome),
  :func:`annotation_path` (one file)
* :func:`model_names`, :func:`model_path`
* :func:`sae_names`, :func:`sae_path`: sparse autoencoders of the bundled model (SAELens folders)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dnatlas.errors import InputError

#: The pretrained model used when none is named.
DEFAULT_MODEL = "dnatlas-tiny-enterobacterales"
#: The SAE of the bundled model used when none is named.
DEFAULT_SAE = "dnatlas-tiny-enterobacterales.blocks.2.residual.topk16"
#: The annotation used when none is named.
DEFAULT_ANNOTATION = "ecoli_k12_mg1655"

__all__ = ["DEFAULT_ANNOTATION", "DEFAULT_MODEL", "annotation_names", "annotation_path",
           "annotation_paths",
           "genome_names", "genome_path", "genome_paths", "model_names", "model_path", "root",
           "sae_names", "sae_path", "DEFAULT_SAE"]


def root() -> Path:
    """The folder of the bundled data in the installed package."""
    return Path(str(resources.files("dnatlas") / "bundled"))


def _short_name(path: Path) -> str:
    """A file's name before its first dot: ``ecoli_k12_mg1655.refseq.gff3.gz`` -> ``ecoli_k12_mg1655``."""
    return path.name.split(".", 1)[0]


def _files(folder: str, pattern: str) -> dict[str, Path]:
    return {_short_name(p): p for p in sorted((root() / folder).glob(pattern))}


def genome_names() -> list[str]:
    """Short names of the bundled genomes, sorted (e.g. ``ecoli_k12_mg1655``)."""
    return list(_files("genomes", "*.fa.gz"))


def genome_paths() -> list[Path]:
    """Paths of all bundled genomes (FASTA, gzip), sorted by name."""
    return list(_files("genomes", "*.fa.gz").values())


def genome_path(name: str) -> Path:
    """Path of the bundled genome ``name`` (short name or file name).

    Raises:
        InputError: no bundled genome has that name (the message lists the names).
    """
    return _lookup("genome", _files("genomes", "*.fa.gz"), name)


#: The source part of a genome's reference annotation file (``GENOME.refseq.gff3.gz``).
PRIMARY_ANNOTATION_SOURCE = "refseq"
_ANNOTATION_SUFFIX = ".gff3.gz"


def _annotation_files() -> dict[str, list[Path]]:
    """Short name -> that genome's annotation files, sorted by file name."""
    grouped: dict[str, list[Path]] = {}
    for path in sorted((root() / "annotations").glob("*" + _ANNOTATION_SUFFIX)):
        grouped.setdefault(_short_name(path), []).append(path)
    return grouped


def annotation_names() -> list[str]:
    """Short names of the bundled annotations (their genomes' names), sorted, each once."""
    return list(_annotation_files())


def annotation_paths(name: str = DEFAULT_ANNOTATION) -> list[Path]:
    """The bundled annotation files (GFF3, gzip) that ``name`` means, sorted by file name.

    ``name`` is a genome's short name (``ecoli_k12_mg1655``: all of its files, whose union
    is its annotation), or one file's name with or without ``.gff3.gz``
    (``ecoli_k12_mg1655.refseq``: that file only).

    Raises:
        InputError: no bundled annotation has that name (the message lists the names).
    """
    name = str(name)
    grouped = _annotation_files()
    if name in grouped:
        return list(grouped[name])
    for path in (p for paths in grouped.values() for p in paths):
        if name in (path.name, path.name.removesuffix(_ANNOTATION_SUFFIX)):
            return [path]
    files = [p.name.removesuffix(_ANNOTATION_SUFFIX) for ps in grouped.values() for p in ps]
    raise InputError(f"no bundled annotation named {name!r} (bundled: "
                     f"{', '.join([*grouped, *files]) or 'none'})")


def annotation_path(name: str = DEFAULT_ANNOTATION) -> Path:
    """One bundled annotation file (GFF3, gzip): the file ``name`` names, or for a genome's
    short name its reference annotation (``GENOME.refseq.gff3.gz``, else its first file).

    For the whole annotation of a genome (every file), use :func:`annotation_paths`.

    Raises:
        InputError: no bundled annotation has that name.
    """
    paths = annotation_paths(name)
    primary = [p for p in paths if p.name.split(".")[1:2] == [PRIMARY_ANNOTATION_SOURCE]]
    return (primary or paths)[0]


def model_names() -> list[str]:
    """Names of the bundled pretrained models (folders under ``models/``)."""
    return sorted(p.name for p in (root() / "models").iterdir() if p.is_dir())


def model_path(name: str | None = None) -> Path:
    """Folder of the bundled model ``name`` (default :data:`DEFAULT_MODEL`).

    Raises:
        InputError: no bundled model has that name.
    """
    name = DEFAULT_MODEL if name is None else name
    folders = {p.name: p for p in (root() / "models").iterdir() if p.is_dir()}
    return _lookup("model", folders, name)


def sae_names() -> list[str]:
    """Names of the bundled SAEs (SAELens folders under ``saes/``)."""
    folder = root() / "saes"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def sae_path(name: str | None = None) -> Path:
    """SAELens folder of the bundled SAE ``name`` (default :data:`DEFAULT_SAE`).

    Raises:
        InputError: no bundled SAE has that name.
    """
    folder = root() / "saes"
    folders = {p.name: p for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else {}
    return _lookup("SAE", folders, DEFAULT_SAE if name is None else name)


def _lookup(kind: str, known: dict[str, Path], name: str) -> Path:
    name = str(name)
    if name in known:
        return known[name]
    for path in known.values():
        if path.name == name:
            return path
    raise InputError(f"no bundled {kind} named {name!r} (bundled: {', '.join(known) or 'none'})")
