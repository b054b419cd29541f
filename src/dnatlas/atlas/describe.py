"""Written descriptions, the ``explained`` flag and the rankings (the last finalizer).

Everything here is a rule over the ``features`` columns (no language model, no network);
every number in a description is a column's value, rounded (a share as a percentage).
The clauses, in order, each present only when its condition holds:

| clause | condition | example |
|---|---|---|
| activity | always | ``never fires`` (max <= 0); ``dense (fires at 41% of positions, max 2.31)`` when ``frac_active >= 0.2``; else ``fires at 0.12% of positions (max 2.31)`` |
| landmark | ``best_landmark`` set (a profile peak, :mod:`dnatlas.atlas.landmarks`) | ``peaks 12 nt upstream of CDS starts on the sense strand (8.1x its mean)`` |
| motif | ``top_motif`` set (:mod:`dnatlas.atlas.motifs`) | ``top motif TAAGGAGGT (281x over the genome)`` |
| codon phase | ``phase_strength >= 0.15`` | ``prefers the third codon position (81% of in-CDS firing)`` |
| strand | ``coding_strand >= 0.75`` or ``<= 0.25`` | ``coding strand (92% of in-gene firing)``, ``template strand (coding-strand share 8%)`` |
| periodicity | ``periodicity3 >= 0.5`` | ``three-periodic in CDSs (score 0.71)`` |
| GC | ``gc_top`` at least 0.1 from the genome's GC | ``GC-rich top windows (68% GC)`` |
| concept | ``best_concept`` set | ``F1 0.31 against RBS, shuffled 0.02``; below the margin: ``no concept beyond shuffled (best CDS: F1 0.66, shuffled 0.64)`` |

**explained** is true when the best concept beats its shuffled-labels control by more
than ``BEYOND_SHUFFLED`` (0.1, the margin ``dnatlas concepts eval`` uses), or the feature
has a landmark peak, or a motif.

**Rankings.** ``score_concept = best_f1 - best_f1_shuffled`` (a missing control counts
0; NULL without a concept). ``score_sparsity = 1 - frac_active``.
``score_unexplained`` ("strong but unexplained") is 0 for explained or dead features,
else the feature's ``max`` over the median ``max`` of its dictionary's live features
(how strong it is, relative to its dictionary). ``periodicity3`` ranks as it is.
"""

from __future__ import annotations

import math

import numpy as np

from dnatlas.atlas import columns as tbl

BEYOND_SHUFFLED = 0.1
DENSE, PHASE_MIN, STRAND_MIN, PERIODIC_MIN, GC_DIFF = 0.2, 0.15, 0.75, 0.5, 0.1
LANDMARK_NAMES = {"cds_start": "CDS starts", "cds_end": "CDS ends", "trna_end": "tRNA ends",
                  "rrna_end": "rRNA ends", "tss": "TSSs"}
ORDINALS = ("first", "second", "third")
#: the ``features`` columns the rules read
READ = ("dictionary", "feature", "max", "frac_active", "phase", "phase_strength",
        "coding_strand", "periodicity3", "gc_top", "top_motif", "motif_enrichment",
        "best_landmark", "landmark_offset", "landmark_ratio", "best_concept", "best_f1",
        "best_f1_shuffled")


def num(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, or 2 significant digits below 0.01 (never
    scientific notation)."""
    x = float(x)
    if x == 0 or abs(x) >= 0.01:
        return f"{x:.{digits}f}"
    return f"{x:.{max(digits, 1 - math.floor(math.log10(abs(x))))}f}"


def pct(share: float) -> str:
    """A share in [0, 1] as a percentage: whole percents from 10%, else 2 significant
    digits."""
    p = 100 * float(share)
    if p >= 10 or p == 0:
        return f"{p:.0f}"
    return f"{p:.{max(1, 1 - math.floor(math.log10(p)))}f}"


def _is(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def concept_beyond(row: dict) -> bool:
    """The best concept beats its shuffled control by more than BEYOND_SHUFFLED."""
    f1 = row.get("best_f1")
    if not _is(row.get("best_concept")) or not _is(f1):
        return False
    control = row.get("best_f1_shuffled")
    return f1 > (control if _is(control) else 0.0) + BEYOND_SHUFFLED


def is_explained(row: dict) -> bool:
    return bool(concept_beyond(row) or _is(row.get("best_landmark"))
                or _is(row.get("top_motif")))


def describe(row: dict, genome_gc: float | None = None) -> str:
    """The description of one ``features`` row (module docstring)."""
    top = row.get("max")
    if not _is(top) or top <= 0:
        parts = ["never fires"]
    else:
        frac = row.get("frac_active")
        tail = f"max {num(top)}"
        if not _is(frac):
            parts = [f"fires (max {num(top)})"]
        elif frac >= DENSE:
            parts = [f"dense (fires at {pct(frac)}% of positions, {tail})"]
        else:
            parts = [f"fires at {pct(frac)}% of positions ({tail})"]
    landmark = row.get("best_landmark")
    if _is(landmark):
        name, _, orientation = landmark.partition("/")
        where = LANDMARK_NAMES.get(name, name)
        offset = int(row.get("landmark_offset") or 0)
        side = "upstream of" if offset < 0 else "downstream of"
        at = f"at {where}" if offset == 0 else f"{abs(offset)} nt {side} {where}"
        ratio = row.get("landmark_ratio")
        extra = f" ({num(ratio, 1)}x its mean)" if _is(ratio) else ""
        parts.append(f"peaks {at} on the {orientation or 'sense'} strand{extra}")
    if _is(row.get("top_motif")):
        enr = row.get("motif_enrichment")
        extra = f" ({num(enr, 0 if enr >= 10 else 1)}x over the genome)" if _is(enr) else ""
        parts.append(f"top motif {row['top_motif']}{extra}")
    phase, strength = row.get("phase"), row.get("phase_strength")
    if _is(strength) and strength >= PHASE_MIN and phase is not None:
        best = int(np.argmax(phase))
        parts.append(f"prefers the {ORDINALS[best]} codon position ({pct(phase[best])}% "
                     f"of in-CDS firing)")
    coding = row.get("coding_strand")
    if _is(coding) and coding >= STRAND_MIN:
        parts.append(f"coding strand ({pct(coding)}% of in-gene firing)")
    elif _is(coding) and coding <= 1 - STRAND_MIN:
        parts.append(f"template strand (coding-strand share {pct(coding)}%)")
    p3 = row.get("periodicity3")
    if _is(p3) and p3 >= PERIODIC_MIN:
        parts.append(f"three-periodic in CDSs (score {num(p3)})")
    gc = row.get("gc_top")
    if _is(gc) and genome_gc is not None and abs(gc - genome_gc) >= GC_DIFF:
        parts.append(f"{'GC' if gc > genome_gc else 'AT'}-rich top windows ({pct(gc)}% GC)")
    concept = row.get("best_concept")
    if _is(concept) and _is(row.get("best_f1")):
        control = row.get("best_f1_shuffled")
        shuffled = f", shuffled {num(control)}" if _is(control) else ""
        if concept_beyond(row):
            parts.append(f"F1 {num(row['best_f1'])} against {concept}{shuffled}")
        else:
            parts.append(f"no concept beyond shuffled (best {concept}: F1 "
                         f"{num(row['best_f1'])}{shuffled})")
    else:
        parts.append("no concept")
    return "; ".join(parts)


def genome_gc(tables: dict) -> float | None:
    """Length-weighted GC of the ``records`` table, if any."""
    recs = tbl.rows(tables.get("records"))
    total = sum(r["length"] for r in recs if _is(r.get("gc")))
    if not total:
        return None
    return sum(r["gc"] * r["length"] for r in recs if _is(r.get("gc"))) / total


def rank_and_describe(tables: dict, contexts: dict | None = None) -> dict:
    """Fill ``explained``, ``description`` and the ``score_*`` columns of ``features``."""
    if "features" not in tables:
        return tables
    rows = tbl.rows(tables["features"], READ)
    gc = genome_gc(tables)
    median: dict[str, float] = {}
    for d in {r["dictionary"] for r in rows}:
        live = [r["max"] for r in rows if r["dictionary"] == d and _is(r.get("max"))
                and r["max"] > 0]
        median[d] = float(np.median(live)) if live else 0.0
    values = {}
    for r in rows:
        explained = is_explained(r)
        top = r.get("max")
        live = _is(top) and top > 0
        score = {"explained": explained, "description": describe(r, gc)}
        score["score_concept"] = (r["best_f1"] - (r["best_f1_shuffled"]
                                                  if _is(r.get("best_f1_shuffled")) else 0.0)
                                  if _is(r.get("best_concept")) and _is(r.get("best_f1"))
                                  else None)
        frac = r.get("frac_active")
        score["score_sparsity"] = 1.0 - frac if _is(frac) else None
        score["score_unexplained"] = (0.0 if explained or not live or median[r["dictionary"]] <= 0
                                      else float(top / median[r["dictionary"]]))
        values[r["dictionary"], r["feature"]] = score
    names = ("explained", "description", "score_concept", "score_sparsity", "score_unexplained")
    return {**tables, "features": tbl.update_features(tables["features"], values, names)}


ACCUMULATORS: list = []
FINALIZERS = [rank_and_describe]
