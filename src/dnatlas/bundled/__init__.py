"""Data shipped inside the package: genomes, annotations and the pretrained model.

Short names are the file names without their extensions, e.g. the genome
``ecoli_k12_mg1655`` (``genomes/ecoli_k12_mg1655.fa.gz``) and its annotation
``ecoli_k12_mg1655`` (``annotations/ecoli_k12_mg1655.refseq.gff3.gz``). Paths are those of
the installed package (see ``README.md`` in this folder for where the data come from).

* :func:`genome_names`, :func:`genome_path`, :func:`genome_paths`
* :func:`annotation_names`, :func:`annotation_path`
* :func:`model_names`, :func:`model_path`
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dnatlas.errors import InputError

#: The pretrained model used when none is named.
DEFAULT_MODEL = "dnatlas-tiny-enterobacterales"
#: The annotation used when none is named.
DEFAULT_ANNOTATION = "ecoli_k12_mg1655"

__all__ = ["DEFAULT_ANNOTATION", "DEFAULT_MODEL", "annotation_names", "annotation_path",
           "genome_names", "genome_path", "genome_paths", "model_names", "model_path", "root"]


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


def annotation_names() -> list[str]:
    """Short names of the bundled annotations (named after their genome)."""
    return list(_files("annotations", "*.gff3.gz"))


def annotation_path(name: str = DEFAULT_ANNOTATION) -> Path:
    """Path of the bundled annotation of genome ``name`` (GFF3, gzip).

    Raises:
        InputError: no bundled annotation has that name.
    """
    return _lookup("annotation", _files("annotations", "*.gff3.gz"), name)


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


def _lookup(kind: str, known: dict[str, Path], name: str) -> Path:
    name = str(name)
    if name in known:
        return known[name]
    for path in known.values():
        if path.name == name:
            return path
    raise InputError(f"no bundled {kind} named {name!r} (bundled: {', '.join(known) or 'none'})")
