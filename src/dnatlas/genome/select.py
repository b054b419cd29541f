"""Select training genomes from GTDB metadata with the report's criteria.

The report trains on GTDB genomes selected by Appendix C (Table 2)::

    ALL of   GTDB taxonomy          contains  Enterobacterales
             Ambiguous bases        =         0
             CheckM2 completeness   >         98
             CheckM2 contamination  <         1
             GTDB representative    is        TRUE
    ANY of   Assembly level         is        complete genome / chromosome

:func:`select_genomes` applies these criteria (each one adjustable through
:class:`SelectCriteria`) to a GTDB ``bac120_metadata`` table (``.tsv`` or
``.tsv.gz``, r214 or later; older releases fall back to CheckM1 with a warning),
streaming it row by row, and writes a manifest TSV with :data:`MANIFEST_COLUMNS`.
``dnatlas data fetch`` downloads the manifest's genomes from NCBI.

Each row is charged to the *first* criterion it fails, in the order of
:data:`CRITERIA`, so the per-criterion counts of :class:`SelectionSummary` add up
to the number of rows removed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.files import open_text

#: Columns of the manifest written by :func:`select_genomes`, in order.
MANIFEST_COLUMNS = (
    "genome_id", "accession", "organism", "taxonomy", "assembly_level", "genome_size",
    "checkm2_completeness", "checkm2_contamination",
)

#: Criteria in the order they are applied (and in which removals are counted).
CRITERIA = ("taxon", "ambiguous_bases", "completeness", "contamination",
            "representative", "assembly_level")

#: Assembly levels kept by the report (NCBI spelling).
DEFAULT_ASSEMBLY_LEVELS = ("Complete Genome", "Chromosome")

# GTDB writes these for a missing value; a missing value fails its criterion.
_MISSING = frozenset({"", "none", "na", "n/a", "nan", "null"})
_TRUE = frozenset({"t", "true", "1", "yes", "y"})

# (preferred column, fallback column of older GTDB releases)
_COMPLETENESS = ("checkm2_completeness", "checkm_completeness")
_CONTAMINATION = ("checkm2_contamination", "checkm_contamination")
_ALWAYS_REQUIRED = ("accession", "gtdb_taxonomy", "ncbi_organism_name", "genome_size")


@dataclass(frozen=True)
class SelectCriteria:
    """Thresholds of the selection; the defaults are the report's (Appendix C, Table 2).

    Attributes:
        taxa: keep genomes whose GTDB taxonomy has one of these names at some rank
            (``"Enterobacterales"`` matches ``o__Enterobacterales`` but not
            ``o__Enterobacterales_A``; a name with its rank prefix, e.g.
            ``"o__Enterobacterales"``, matches that rank only). Case-insensitive.
            Empty: no taxonomy filter.
        max_ambiguous_bases: keep genomes with at most this many ambiguous bases.
        min_completeness: keep genomes with CheckM2 completeness strictly above this.
        max_contamination: keep genomes with CheckM2 contamination strictly below this.
        representatives_only: keep only GTDB species representatives.
        assembly_levels: keep genomes whose NCBI assembly level is one of these
            (case-insensitive). Empty: any level.
    """

    taxa: tuple[str, ...] = ("Enterobacterales",)
    max_ambiguous_bases: int | None = 0
    min_completeness: float | None = 98.0
    max_contamination: float | None = 1.0
    representatives_only: bool = True
    assembly_levels: tuple[str, ...] = DEFAULT_ASSEMBLY_LEVELS

    def __post_init__(self):
        for name in ("min_completeness", "max_contamination"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float)
                                          and math.isfinite(value) and 0 <= value <= 100):
                raise InputError(f"{name} is a percentage in [0, 100], got {value}")
        if self.max_ambiguous_bases is not None and not self.max_ambiguous_bases >= 0:
            raise InputError(f"max_ambiguous_bases must be 0 or more, got "
                             f"{self.max_ambiguous_bases}")

    def describe(self, criterion: str) -> str:
        """A short human-readable form of one criterion's threshold, for the summary table."""
        if criterion == "taxon":
            return "contains " + " or ".join(self.taxa) if self.taxa else "(any)"
        if criterion == "ambiguous_bases":
            return "(any)" if self.max_ambiguous_bases is None else f"<= {self.max_ambiguous_bases}"
        if criterion == "completeness":
            return "(any)" if self.min_completeness is None else f"> {self.min_completeness:g}"
        if criterion == "contamination":
            return "(any)" if self.max_contamination is None else f"< {self.max_contamination:g}"
        if criterion == "representative":
            return "is TRUE" if self.representatives_only else "(any)"
        if criterion == "assembly_level":
            return " or ".join(self.assembly_levels) if self.assembly_levels else "(any)"
        raise KeyError(criterion)


@dataclass
class SelectionSummary:
    """What a selection did: rows read, rows removed by each criterion, rows kept.

    Attributes:
        total: data rows read from the metadata file.
        removed: criterion name (see :data:`CRITERIA`) -> rows removed by it (each row
            is charged to the first criterion it fails).
        kept: rows written to the manifest.
        total_bases: sum of ``genome_size`` over the kept rows.
        completeness_column / contamination_column: the metadata columns used.
        criteria: the criteria applied.
    """

    criteria: SelectCriteria
    total: int = 0
    removed: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CRITERIA})
    kept: int = 0
    total_bases: int = 0
    completeness_column: str = _COMPLETENESS[0]
    contamination_column: str = _CONTAMINATION[0]

    def format_table(self) -> str:
        """The summary as a small plain-text table (one row per criterion)."""
        labels = {
            "taxon": "GTDB taxonomy",
            "ambiguous_bases": "ambiguous bases",
            "completeness": f"completeness ({self.completeness_column})",
            "contamination": f"contamination ({self.contamination_column})",
            "representative": "GTDB species representative",
            "assembly_level": "NCBI assembly level",
        }
        rows = [("criterion", "threshold", "removed", "remaining"),
                ("genomes in metadata", "", "", f"{self.total:,}")]
        remaining = self.total
        for name in CRITERIA:
            remaining -= self.removed[name]
            rows.append((labels[name], self.criteria.describe(name),
                         f"{self.removed[name]:,}", f"{remaining:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = []
        for r in rows:
            lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  "
                         f"{r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}".rstrip())
        lines.append(f"selected {self.kept:,} genomes, {self.total_bases:,} bases in total")
        return "\n".join(lines)


def genome_id_from_accession(accession: str) -> str:
    """The NCBI accession of a GTDB one: ``RS_GCF_000005845.2`` -> ``GCF_000005845.2``."""
    for prefix in ("RS_", "GB_"):
        if accession.startswith(prefix):
            return accession[len(prefix):]
    return accession


class _TaxonMatcher:
    """Matches GTDB taxonomy strings against rank names (see :func:`taxonomy_has_taxon`).

    Each name becomes a lowercase needle searched in ``";" + taxonomy + ";"``:
    ``";o__enterobacterales;"`` for a name with a rank prefix, ``"__enterobacterales;"``
    (a whole rank name at any rank) otherwise.
    """

    def __init__(self, taxa: Sequence[str]):
        needles = []
        for taxon in taxa:
            t = taxon.strip().lower()
            if not t:
                continue
            needles.append(f";{t};" if "__" in t else f"__{t};")
        self.needles = tuple(needles)
        self.prefilter = tuple(n.strip(";") for n in needles)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def could_match(self, text_lower: str) -> bool:
        """False when no needle occurs anywhere in ``text_lower`` (a cheap prefilter)."""
        return any(n in text_lower for n in self.prefilter)

    def __call__(self, taxonomy: str) -> bool:
        padded = ";" + taxonomy.lower().replace("; ", ";").replace(" ;", ";").strip() + ";"
        return any(n in padded for n in self.needles)


def taxonomy_has_taxon(taxonomy: str, taxa: Sequence[str]) -> bool:
    """Whether a GTDB taxonomy string (``d__Bacteria;p__...;s__...``) names one of ``taxa``.

    Each name is compared with whole rank names, case-insensitively: ``Enterobacterales``
    matches the rank ``o__Enterobacterales`` (but not ``o__Enterobacterales_A``);
    ``o__Enterobacterales`` matches it only at the order rank.
    """
    return _TaxonMatcher(taxa)(taxonomy)


def _pick_column(header: dict[str, int], names: tuple[str, str], path: Path,
                 warn: Callable[[str], None]) -> str:
    """The preferred (CheckM2) column, else the CheckM1 fallback with a warning."""
    preferred, fallback = names
    if preferred in header:
        return preferred
    if fallback in header:
        warn(f"{path}: no column {preferred!r} (GTDB release before r214?); "
             f"using {fallback!r} (CheckM1) instead; the manifest's {preferred} "
             f"column holds CheckM1 values")
        return fallback
    raise InputError(f"missing required column {preferred!r}", path=path, line=1)


def _number(value: str, column: str, path: Path, line: int, accession: str) -> float | None:
    """Parse a numeric field; ``None`` for GTDB's missing-value markers."""
    if value.strip().lower() in _MISSING:
        return None
    try:
        x = float(value)
    except ValueError:
        raise InputError(f"column {column!r}: not a number: {value!r}", path=path,
                         record=accession, line=line) from None
    return None if math.isnan(x) else x


def _default_warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def iter_selected(metadata: str | Path, criteria: SelectCriteria | None = None,
                  summary: SelectionSummary | None = None,
                  warn: Callable[[str], None] | None = None) -> Iterator[dict[str, str]]:
    """Stream a GTDB metadata file and yield a manifest row for each genome that passes.

    Args:
        metadata: ``bac120_metadata*.tsv`` or ``.tsv.gz`` (compression detected).
        criteria: thresholds; defaults to the report's.
        summary: filled in as rows are read (pass one to get the counts).
        warn: called with a message for non-fatal problems (default: :func:`warnings.warn`).

    Yields:
        dicts keyed by :data:`MANIFEST_COLUMNS`.

    Raises:
        InputError: missing file or required column, a row with the wrong number of
            fields, or a non-numeric value where a number is expected.
    """
    path = Path(metadata)
    criteria = criteria or SelectCriteria()
    summary = summary if summary is not None else SelectionSummary(criteria)
    summary.criteria = criteria
    warn = warn or _default_warn
    if not path.is_file():
        raise InputError("no such file", path=path)
    taxa = _TaxonMatcher(criteria.taxa)
    levels = {lv.strip().lower() for lv in criteria.assembly_levels if lv.strip()}
    with open_text(path, newline="") as fh:
        try:
            header_line = fh.readline()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read: {exc}", path=path) from None
        columns = header_line.rstrip("\r\n").split("\t")
        if not header_line.strip():
            raise InputError("empty file (expected a GTDB metadata header)", path=path)
        header = {name: i for i, name in enumerate(columns)}
        required = list(_ALWAYS_REQUIRED)
        if criteria.max_ambiguous_bases is not None:
            required.append("ambiguous_bases")
        if criteria.representatives_only:
            required.append("gtdb_representative")
        required.append("ncbi_assembly_level")
        for name in required:
            if name not in header:
                raise InputError(f"missing required column {name!r}", path=path, line=1)
        summary.completeness_column = c_col = _pick_column(header, _COMPLETENESS, path, warn)
        summary.contamination_column = x_col = _pick_column(header, _CONTAMINATION, path, warn)
        idx = {name: header[name] for name in (*required, c_col, x_col)}
        n_fields = len(columns)
        line_no = 1
        try:
            for line_no, line in enumerate(fh, start=2):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                found = line.count("\t") + 1
                if found != n_fields:
                    raise InputError(f"expected {n_fields} tab-separated fields, found {found}",
                                     path=path, line=line_no)
                summary.total += 1
                if taxa and not taxa.could_match(line.lower()):
                    summary.removed["taxon"] += 1  # fast path: the name is nowhere in the row
                    continue
                f = line.split("\t")
                accession = f[idx["accession"]]
                failed = _first_failure(f, idx, criteria, taxa, levels, c_col, x_col,
                                        path, line_no, accession)
                if failed is not None:
                    summary.removed[failed] += 1
                    continue
                size = _number(f[idx["genome_size"]], "genome_size", path, line_no, accession)
                summary.kept += 1
                summary.total_bases += int(size or 0)
                yield {
                    "genome_id": genome_id_from_accession(accession),
                    "accession": accession,
                    "organism": f[idx["ncbi_organism_name"]],
                    "taxonomy": f[idx["gtdb_taxonomy"]],
                    "assembly_level": f[idx["ncbi_assembly_level"]],
                    "genome_size": f[idx["genome_size"]],
                    "checkm2_completeness": f[idx[c_col]],
                    "checkm2_contamination": f[idx[x_col]],
                }
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read: {exc}", path=path, line=line_no + 1) from None


def _first_failure(f: list[str], idx: dict[str, int], c: SelectCriteria,
                   taxa: _TaxonMatcher, levels: set[str], c_col: str, x_col: str,
                   path: Path, line: int, accession: str) -> str | None:
    """The first criterion (of :data:`CRITERIA`) that row ``f`` fails, or ``None``."""
    if taxa and not taxa(f[idx["gtdb_taxonomy"]]):
        return "taxon"
    if c.max_ambiguous_bases is not None:
        v = _number(f[idx["ambiguous_bases"]], "ambiguous_bases", path, line, accession)
        if v is None or v > c.max_ambiguous_bases:
            return "ambiguous_bases"
    if c.min_completeness is not None:
        v = _number(f[idx[c_col]], c_col, path, line, accession)
        if v is None or not v > c.min_completeness:
            return "completeness"
    if c.max_contamination is not None:
        v = _number(f[idx[x_col]], x_col, path, line, accession)
        if v is None or not v < c.max_contamination:
            return "contamination"
    if c.representatives_only and f[idx["gtdb_representative"]].strip().lower() not in _TRUE:
        return "representative"
    if levels and f[idx["ncbi_assembly_level"]].strip().lower() not in levels:
        return "assembly_level"
    return None


def write_manifest(rows: Iterator[dict[str, str]] | Sequence[dict[str, str]], out: str | Path,
                   columns: Sequence[str] = MANIFEST_COLUMNS, force: bool | None = None) -> int:
    """Write manifest rows as TSV atomically (:func:`dnatlas.files.atomic_write`); return
    the row count.

    Tabs and newlines inside values are replaced by spaces so every row stays one line.
    """
    from dnatlas.files import atomic_write, check_writable_file

    out = check_writable_file(out, "manifest", force=force)
    n = 0
    with atomic_write(out, "w", encoding="utf-8") as fh:
        fh.write("\t".join(columns) + "\n")
        for row in rows:
            fh.write("\t".join(_clean(row.get(c, "")) for c in columns) + "\n")
            n += 1
    return n


def _clean(value: object) -> str:
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def select_genomes(metadata: str | Path, out: str | Path,
                   criteria: SelectCriteria | None = None,
                   warn: Callable[[str], None] | None = None,
                   force: bool | None = None) -> SelectionSummary:
    """Apply ``criteria`` to a GTDB metadata file and write the selected genomes' manifest.

    Args:
        metadata: GTDB ``bac120_metadata`` TSV (optionally gzipped).
        out: manifest TSV to write (columns :data:`MANIFEST_COLUMNS`); written atomically,
            so a failed run leaves no partial manifest.
        criteria: thresholds; defaults to the report's (Appendix C, Table 2).
        warn: callback for non-fatal warnings (default: :func:`warnings.warn`).

    Returns:
        The :class:`SelectionSummary` (print ``summary.format_table()``).
    """
    criteria = criteria or SelectCriteria()
    summary = SelectionSummary(criteria)
    write_manifest(iter_selected(metadata, criteria, summary, warn), out, force=force)
    return summary
