"""User input of ``dnatlas steer``: variants, edits, reported positions, given maxima.

Positions on the command line are 1-based and closed (``RECORD:START-END``, ``RECORD:POS:
REF>ALT``) as in samtools/IGV; BED files are 0-based half-open, as BED is; everything here
returns 0-based positions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import NUCLEOTIDES

_VARIANT = re.compile(r"^(?P<rec>.+):(?P<pos>[\d,_]+):(?P<ref>[A-Za-z])>(?P<alt>[A-Za-z])$")
_EDIT = re.compile(r"^(?P<sel>top:\d+|\d+(?:,\d+)*)(?P<op>\+=|-=|=)(?P<val>\S+)$")
_MAX = re.compile(r"^(?P<k>[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)x?max$")


@dataclass(frozen=True)
class Variant:
    """A single-nucleotide variant; ``pos`` 0-based, ``ref``/``alt`` codes 0..3."""

    record: str
    pos: int
    ref: int
    alt: int

    def __str__(self) -> str:
        return f"{self.record}:{self.pos + 1:,}:{NUCLEOTIDES[self.ref]}>{NUCLEOTIDES[self.alt]}"


@dataclass(frozen=True)
class EditSpec:
    """A parsed ``--edit``: ``features`` (indices) or ``top`` (the N most active), an op of
    :class:`~dnatlas.sae.steering.FeatureEdit` and its value."""

    features: tuple[int, ...]
    top: int
    op: str
    value: float


def parse_variant(text: str) -> Variant:
    """``RECORD:POS:REF>ALT`` (1-based POS, commas allowed) -> :class:`Variant` (0-based)."""
    m = _VARIANT.match(str(text).strip())
    if not m or m["ref"].upper() not in NUCLEOTIDES or m["alt"].upper() not in NUCLEOTIDES:
        raise InputError(f"invalid variant {text!r}: expected RECORD:POS:REF>ALT (1-based POS, "
                         "REF and ALT one of A C G T), e.g. chr1:1,408:A>G")
    pos = int(m["pos"].replace(",", "").replace("_", ""))
    ref, alt = (NUCLEOTIDES.index(m[k].upper()) for k in ("ref", "alt"))
    if pos < 1:
        raise InputError(f"invalid variant {text!r}: positions are 1-based (the first is 1)")
    if ref == alt:
        raise InputError(f"invalid variant {text!r}: REF and ALT are the same base")
    return Variant(m["rec"], pos - 1, ref, alt)


def parse_edit(text: str) -> EditSpec:
    """Parse an ``--edit``: ``FEATURES=VALUE`` (set), ``FEATURES=KxMAX`` (set to K times the
    maximum activation), ``FEATURES+=VALUE`` / ``-=`` (add), ``FEATURES=ablate`` (set 0);
    FEATURES is an index, a comma list (``3,17``) or ``top:N`` (the N features most active
    at the reported positions)."""
    m = _EDIT.match(str(text).strip())
    bad = (f"invalid edit {text!r}: expected FEATURES=VALUE, FEATURES=KxMAX, FEATURES+=VALUE "
           "or FEATURES=ablate, FEATURES an index, a comma list or top:N")
    if not m:
        raise InputError(bad)
    sel, op, val = m["sel"], m["op"], m["val"].lower()
    top = int(sel[4:]) if sel.startswith("top:") else 0
    if sel.startswith("top:") and top < 1:
        raise InputError(f"invalid edit {text!r}: top:N needs N >= 1")
    features = () if top else tuple(int(f) for f in sel.split(","))
    if val == "ablate" and op == "=":
        return EditSpec(features, top, "set", 0.0)
    big = _MAX.match(val)
    if big and op == "=":
        k = float(big["k"])
        if not math.isfinite(k):
            raise InputError(f"invalid edit {text!r}: the multiple of the maximum must be finite")
        return EditSpec(features, top, "set_max", k)
    try:
        value = float(val)
    except ValueError:
        raise InputError(bad) from None
    if not math.isfinite(value):
        raise InputError(f"invalid edit {text!r}: the value must be a finite number")
    if op == "=":
        return EditSpec(features, top, "set", value)
    return EditSpec(features, top, "add", value if op == "+=" else -value)


def log_odds(log_probs: np.ndarray, v: Variant) -> float:
    """``log p(ALT) - log p(REF)`` from log-probabilities (4,) of A C G T."""
    return float(log_probs[v.alt] - log_probs[v.ref])


def select_positions(records: dict, regions=(), bed=None, all_positions: bool = False,
                     variants=()) -> dict[str, np.ndarray]:
    """Reported positions, ``{record: sorted unique 0-based positions}`` in file order.

    Args:
        records: ``{id: Record}``; regions: 1-based closed ``RECORD:START-END`` strings;
        bed: a BED file (0-based half-open, as BED is); variants: :class:`Variant` s.
    """
    from dnatlas.genome.regions import parse_region, split_region_list

    spans: dict[str, list[np.ndarray]] = {rid: [] for rid in records}

    def add(rid, start, end, path=None):
        if rid not in records:
            shown = ", ".join(list(records)[:5])
            raise InputError(f"no record {rid!r} in the genome (records: {shown})", path=path)
        if not 0 <= start < end <= len(records[rid]):
            raise InputError(f"{rid}:{start + 1}-{end} is outside the record (length "
                             f"{len(records[rid]):,})", path=path)
        spans[rid].append(np.arange(start, end))

    for text in split_region_list(regions):
        region = parse_region(text)
        if region.seqid not in records:
            add(region.seqid, 0, 1)
        add(region.seqid, *region.bounds(len(records[region.seqid])))
    if bed is not None:
        from dnatlas.annotation.bed import load_bed

        for iv in load_bed(bed):
            add(iv.seqid, iv.start, iv.end, path=bed)
    if all_positions:
        for rid, rec in records.items():
            add(rid, 0, len(rec))
    for v in variants:
        add(v.record, v.pos, v.pos + 1)
    out = {rid: np.unique(np.concatenate(s)) for rid, s in spans.items() if s}
    if not out:
        raise InputError("no positions to report: give regions, bed, all_positions=True or "
                         "variants", setting=("regions", "bed", "all_positions", "variants"))
    return out


def check_variants(variants, records: dict) -> None:
    """Refuse variants on unknown records, past a record's end, or whose REF is not the
    genome's base (InputError naming the variant)."""
    for v in variants:
        if v.record not in records:
            raise InputError(f"variant {v}: no record {v.record!r} in the genome")
        seq = records[v.record].seq
        if v.pos >= len(seq):
            raise InputError(f"variant {v}: position past the record's end ({len(seq):,} nt)")
        if int(seq[v.pos]) != v.ref:
            have = "ACGTN"[int(seq[v.pos])]
            raise InputError(f"variant {v}: REF does not match the genome, which has {have} "
                             f"at {v.record}:{v.pos + 1:,}")


#: columns of a feature table (``feature_max.tsv``) besides ``feature``
STAT_COLUMNS = ("max", "mean", "frequency")


def read_feature_stats(path: str | Path, d_sae: int, source: str | Path | None = None
                       ) -> dict[str, torch.Tensor]:
    """Per-feature statistics from a TSV with a ``feature`` column and ``max`` (required),
    ``mean`` and ``frequency`` (optional) columns: ``{column: (d_sae,) float64}``, 0 for
    features not listed. A folder is read as a feature atlas (``dnatlas atlas build``):
    its whole-genome max, mean and firing frequency of the SAE (``source``, its folder)."""
    from dnatlas.files import open_text
    from dnatlas.outputs import check_finished

    if Path(path).is_dir():
        from dnatlas.atlas.reader import feature_statistics

        return {k: torch.from_numpy(v) for k, v in
                feature_statistics(path, d_sae, source).items()}

    check_finished(path, "feature table's folder")
    with open_text(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if "feature" not in header or "max" not in header:
            raise InputError("expected a header with columns 'feature' and 'max'", path=path,
                             line=1)
        fi = header.index("feature")
        cols = {c: header.index(c) for c in STAT_COLUMNS if c in header}
        stats = {c: torch.zeros(d_sae, dtype=torch.float64) for c in cols}
        seen: dict[int, int] = {}
        for n, line in enumerate(fh, 2):
            fields = line.rstrip("\n").split("\t")
            try:
                feature = int(fields[fi])
                values = {c: float(fields[j]) for c, j in cols.items()}
            except (ValueError, IndexError):
                raise InputError("expected a feature index and numbers", path=path,
                                 line=n) from None
            if not 0 <= feature < d_sae:
                raise InputError(f"unknown feature {feature}: the SAE has {d_sae:,} features",
                                 path=path, line=n)
            if feature in seen:
                raise InputError(f"feature {feature} is listed twice (first on line "
                                 f"{seen[feature]})", path=path, line=n)
            seen[feature] = n
            for c, v in values.items():
                if not math.isfinite(v):
                    raise InputError(f"{c} of feature {feature} is {v}: not a finite number",
                                     path=path, line=n)
            if values["max"] < 0:
                raise InputError(f"max of feature {feature} is negative ({values['max']:g}): "
                                 "SAE feature activations are >= 0", path=path, line=n)
            if "frequency" in values and not 0 <= values["frequency"] <= 1:
                raise InputError(f"frequency of feature {feature} must be in [0, 1], got "
                                 f"{values['frequency']:g}", path=path, line=n)
            for c, v in values.items():
                stats[c][feature] = v
    return stats
