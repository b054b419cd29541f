"""The explorer's model views beyond tracks: Gram maps and steering.

* :func:`gram_view`: the similarity map of a region (≤ ``gram_max_nt``) at one site, drawn
  by :func:`dnatlas.analysis.plots.gram_figure` (colour bar, annotation along both axes) as
  a PNG data URL, with the numbers (block-averaged matrix, offset profile, 3-periodicity,
  Toeplitz score; :mod:`dnatlas.analysis.gram`, :mod:`dnatlas.analysis.offsets`); with a
  codon ``phase`` only that nucleotide of every codon (the CDS's frame) is kept.
* :func:`steer_view`: SAE feature edits over a region through
  :func:`dnatlas.pipelines.steer.masked_predictions` / ``codon_predictions`` (each position
  masked in its own window, the reconstruction error added back), as per-position changes.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from types import SimpleNamespace

import numpy as np

from dnatlas.errors import InputError

MATRIX_MAX = 200
MAX_OFFSET = 60
_DRAW = threading.Lock()


def _block_mean(g: np.ndarray, most: int) -> tuple[np.ndarray, int]:
    step = max(1, math.ceil(len(g) / most))
    if step == 1:
        return g, 1
    n = len(g) // step * step
    h = g[:n, :n].reshape(n // step, step, n // step, step).mean(axis=(1, 3))
    return h, step


def _png(fig) -> str:
    buf = io.BytesIO()
    with _DRAW:
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _num(v) -> float | None:
    v = float(v)
    return round(v, 5) if math.isfinite(v) else None


def gram_view(acts: np.ndarray, record: str, a: int, b: int, site: str, phase: str | None,
              scale: str, intervals=(), record_length: int | None = None) -> dict:
    """The GramResponse of the (+ strand) activations ``acts`` (b - a, d) of 0-based
    [a, b); ``intervals``: annotation Interval objects drawn along the axes (and the CDS
    that give codon phases)."""
    from dnatlas.analysis import plots
    from dnatlas.analysis.gram import gram_matrix, phase_positions
    from dnatlas.analysis.offsets import offset_profile, periodicity3, toeplitz_score
    from dnatlas.genome.regions import format_region

    region = format_region(record, a, b)
    if phase is None:
        positions = np.arange(b - a)
        g = gram_matrix(acts)
        fig = plots.gram_figure(g, a, b, list(intervals) or None, record, scale=scale,
                                title=f"{site}  {region}", dpi=100)
    else:
        from dnatlas.annotation.tracks import label_tracks

        cds = [iv for iv in intervals if iv.type == "CDS"]
        length = max([record_length or b] + [iv.end for iv in cds])
        tracks = label_tracks(cds, record, length, tracks=["CDS"]).slice(a, b)
        positions = phase_positions(tracks.codon_phase, int(phase))
        if len(positions) < 2:
            raise InputError(f"the region has no CDS codons in phase {phase} (codon "
                             "position 1, 2, 3 = phase 0, 1, 2)")
        g = gram_matrix(acts, positions=positions)
        name = ("1st", "2nd", "3rd")[int(phase)]
        fig = plots.gram_panels_figure({f"{name} nucleotide of each codon, {region}": g},
                                       scale=scale, axis_label="codon (genomic order)",
                                       title=site, dpi=100)
    prof = offset_profile(g, min(MAX_OFFSET, len(g) - 1))
    small, step = _block_mean(g, MATRIX_MAX)
    return {"chr": record, "start": a + 1, "end": b, "site": site, "phase": phase,
            "scale": scale, "n": int(len(g)),
            "positions": [int(p) + a + 1 for p in positions],
            "image": _png(fig), "matrix_step": step,
            "matrix": np.round(small.astype(np.float64), 4).tolist(),
            "offsets": [int(k) for k in prof.offsets],
            "offset_profile": [_num(v) for v in prof.mean],
            "periodicity3": _num(periodicity3(prof)), "toeplitz": _num(toeplitz_score(g))}


def _points(record: str, starts, width: int, values) -> list[dict]:
    return [{"chr": record, "start": int(s), "end": int(s) + width, "value": round(float(v), 5)}
            for s, v in zip(starts, values, strict=True) if math.isfinite(float(v))]


def steer_view(adapter, live, seq: np.ndarray, record: str, a: int, b: int, edits: list[dict],
               maxima: dict[int, float], codons: bool = False, frame_start: int | None = None,
               frame_strand: str = "+", batch_size: int = 16) -> dict:
    """The SteerResponse of ``edits`` (dicts feature/op/value) on SAE ``live`` over
    0-based [a, b) of ``seq``."""
    from dnatlas.pipelines.steer import codon_predictions, masked_predictions
    from dnatlas.sae.steering import FeatureEdit, SteeringIntervention, check_features

    sae = live.sae
    check_features([e["feature"] for e in edits], sae.d_sae)
    resolved = [FeatureEdit(e["feature"], e["op"], float(e["value"])).resolve(maxima)
                for e in edits]
    intervene = {live.site: SteeringIntervention(sae, resolved)}
    spans = [(p, p + 1) for p in range(a, b)]
    base = masked_predictions(adapter, seq, spans, None, batch_size=batch_size)
    steered = masked_predictions(adapter, seq, spans, intervene, batch_size=batch_size)
    pb, ps = np.exp(base), np.exp(steered)
    tv = 0.5 * np.abs(ps - pb).sum(1)
    ref = seq[a:b].astype(np.int64)
    known = ref < 4
    dref = np.full(b - a, np.nan)
    dref[known] = (steered - base)[np.flatnonzero(known), ref[known]]
    out = {"chr": record, "start": a + 1, "end": b,
           "delta_nt": _points(record, range(a, b), 1, tv),
           "delta_ref": _points(record, range(a, b), 1, dref),
           "delta_codon": [], "delta_aa": []}
    order = np.argsort(-tv, kind="stable")[:10]
    out["top"] = [{"pos": int(a + i + 1), "ref": "ACGTN"[min(int(ref[i]), 4)],
                   "before": np.round(pb[i], 4).tolist(), "after": np.round(ps[i], 4).tolist(),
                   "delta": round(float(tv[i]), 5)} for i in order]
    if codons:
        if not hasattr(adapter, "logits"):
            raise InputError(f"{adapter.name}: codon and amino-acid probabilities need a "
                             "windowed-MLM model with triplet outputs (DNAtlas)")
        if frame_start is None:
            raise InputError("codons need frame_start (1-based first base of a codon)")
        from dnatlas.genome.codons import AMINO_ACIDS, amino_acid_index

        records = {record: SimpleNamespace(seq=seq)}
        (_, starts, cb, cs), = codon_predictions(
            adapter, records, {record: np.arange(a, b)}, frame_start, frame_strand, intervene,
            batch_size)
        qb, qs = np.exp(cb), np.exp(cs)
        aa_of = amino_acid_index(11)
        ab = np.stack([np.bincount(aa_of, weights=p, minlength=len(AMINO_ACIDS)) for p in qb])
        as_ = np.stack([np.bincount(aa_of, weights=p, minlength=len(AMINO_ACIDS)) for p in qs])
        out["delta_codon"] = _points(record, starts, 3, 0.5 * np.abs(qs - qb).sum(1))
        out["delta_aa"] = _points(record, starts, 3, 0.5 * np.abs(as_ - ab).sum(1))
    return out
