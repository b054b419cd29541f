"""Genome annotation (``dnatlas annotate``): CDS, tRNA/tmRNA, rRNA, terminators and CRISPR
arrays from real tools, as features and, with ``out``, a GFF3.

    from dnatlas.pipelines.annotate import AnnotateSettings, annotate
    result = annotate("ecoli_k12_mg1655", AnnotateSettings(tools=("prodigal",)))
    result.features          # Interval list, sorted, with file-unique IDs

The tools' own modules (pyrodigal, pyaragorn, pybarrnap) are imported only when run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.annotation.annotate import TOOLS, annotate_genome
from dnatlas.annotation.external import DEFAULT_MIN_CONFIDENCE
from dnatlas.annotation.features import Interval
from dnatlas.genome.sources import resolve_bundled_genome

__all__ = ["TOOLS", "AnnotateSettings", "AnnotateResult", "annotate"]


@dataclass
class AnnotateSettings:
    """Options of :func:`annotate`.

    Attributes:
        tools: which tools to run, of :data:`TOOLS` (default: all; TransTermHP and pilercr
            are skipped with a note when not on PATH).
        expterm: TransTermHP's ``expterm.dat`` (default: found next to ``transterm``).
        min_terminator_confidence: TransTermHP's ``--min-conf`` (0-100).
    """

    tools: Sequence[str] = TOOLS
    expterm: str | Path | None = None
    min_terminator_confidence: int = DEFAULT_MIN_CONFIDENCE


@dataclass
class AnnotateResult:
    """The features found, and the GFF3 written (None without ``out``)."""

    features: list[Interval] = field(default_factory=list)
    out: Path | None = None


def annotate(genome: str | Path, settings: AnnotateSettings | None = None,
             out: str | Path | None = None, force: bool = False) -> AnnotateResult:
    """Annotate ``genome`` (a FASTA/GenBank file or a bundled genome's name).

    ``out``: write the features as GFF3 there (checked before any tool runs, written
    atomically); ``force`` replaces an existing file.
    """
    settings = settings or AnnotateSettings()
    features = annotate_genome(resolve_bundled_genome(genome), out, list(settings.tools),
                               expterm=settings.expterm, force=force,
                               min_terminator_confidence=settings.min_terminator_confidence)
    return AnnotateResult(features, None if out is None else Path(out))
