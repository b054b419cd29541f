"""Tables, summary and figure of ``dnatlas steer`` (:mod:`dnatlas.pipelines.steer`).

Files written into the output folder:

* ``positions.tsv``: per reported position (``pos_1based``), the reference base, the
  masked-LM probabilities of A C G T unsteered (``p_A``...) and steered (``p_A_steered``...),
  the change of the reference base's log-odds ``logit p(ref)`` and the total-variation
  distance ``0.5 * sum |p_steered - p|``;
* ``variants.tsv``: per variant, ``log p(ALT) - log p(REF)`` before and after, its change,
  and the control draws' mean, SD and one-sided rank ``(1 + #{control >= delta}) / (n + 1)``;
* ``codons.tsv`` (with a reading frame, DNAtlas): per codon, the reference codon and amino
  acid, their probabilities before and after, the most likely ones, and all 21 amino-acid
  probabilities before and after;
* ``feature_max.tsv``: per-feature maximum, mean and firing frequency over the genome
  sample (reusable as ``--max-activations``);
* ``steer.json``: settings, resolved edits, the steered features, the positions that
  changed most, variants with their controls;
* ``steer.png``: the change of log-odds of the reference base along the positions with the
  annotation under it, and the variants against their controls.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.genome.alphabet import NUCLEOTIDES

OUTPUTS = ("positions.tsv", "variants.tsv", "codons.tsv", "feature_max.tsv", "steer.json",
           "steer.png")
SEMANTICS = ("masked-LM: each position is predicted with it replaced by MASK (5) in a window "
             "planned from the model's context (causal models: from the positions before it)")


def open_out(out, force: bool):
    """The locked output folder (:func:`dnatlas.outputs.output_folder`); a steering result
    (or other files) there is refused unless ``force``, which removes the earlier result
    before this run starts."""
    from dnatlas.outputs import output_folder

    return output_folder(out, "steer", own=lambda name: name in OUTPUTS, force=force,
                         result="a steering result")


def logit(log_p: np.ndarray) -> np.ndarray:
    """``log p - log(1 - p)`` from natural-log probabilities (float64)."""
    with np.errstate(divide="ignore"):
        return log_p - np.log(-np.expm1(log_p))


def position_table(records, positions, base, steered) -> dict[str, dict[str, np.ndarray]]:
    """Per record: ``pos`` (0-based), ``ref`` codes, ``p``/``p_steered`` (n, 4),
    ``delta_log_odds_ref`` (NaN where the reference is N) and ``tv`` (n,)."""
    table = {}
    for rid, pos in positions.items():
        ref = records[rid].seq[pos].astype(np.int64)
        p, q = np.exp(base[rid]), np.exp(steered[rid])
        known = ref < 4
        idx = np.minimum(ref, 3)[:, None]
        d = (logit(np.take_along_axis(steered[rid], idx, 1))
             - logit(np.take_along_axis(base[rid], idx, 1)))[:, 0]
        table[rid] = {"pos": pos, "ref": ref, "p": p, "p_steered": q,
                      "delta_log_odds_ref": np.where(known, d, np.nan),
                      "tv": 0.5 * np.abs(q - p).sum(1)}
    return table


@dataclass(frozen=True)
class VariantEffect:
    """A variant's change of ``log p(ALT) - log p(REF)`` under steering, and its controls
    (``control_n`` random edits: their mean, SD and the variant's one-sided rank)."""

    variant: str
    delta_log_odds: float
    control_n: int = 0
    control_mean: float | None = None
    control_sd: float | None = None
    control_rank: float | None = None


def variant_effects(rows: list[dict]) -> list[VariantEffect]:
    """The :class:`VariantEffect` of each row of :func:`~dnatlas.pipelines.steer.variant_rows`."""
    return [VariantEffect(row["variant"], row["delta_log_odds"], **control_stats(row))
            for row in rows]


def control_stats(row: dict) -> dict:
    """Mean, SD, count and one-sided rank of a variant's control changes of log-odds."""
    c = np.asarray(row["control"], dtype=np.float64)
    if not c.size:
        return {"control_n": 0}
    return {"control_n": int(c.size), "control_mean": float(c.mean()),
            "control_sd": float(c.std(ddof=1)) if c.size > 1 else 0.0,
            "control_rank": float((1 + (c >= row["delta_log_odds"]).sum()) / (c.size + 1))}


def codon_rows(records, req, predictions) -> list[dict]:
    """Rows of ``codons.tsv`` from :func:`~dnatlas.pipelines.steer.codon_predictions`."""
    from dnatlas.genome.alphabet import reverse_complement_str
    from dnatlas.genome.codons import AMINO_ACIDS, amino_acid_index

    aa_of = amino_acid_index(req.table)
    names = ["".join(NUCLEOTIDES[(i >> s) & 3] for s in (4, 2, 0)) for i in range(64)]
    rows = []
    for rid, starts, base, steered in predictions:
        seq = records[rid].seq
        for c, lb, ls in zip(starts, base, steered):
            ref = "".join("ACGTN"[x] for x in seq[c:c + 3])
            ref = reverse_complement_str(ref) if req.frame_strand == "-" else ref
            pb, ps = np.exp(lb), np.exp(ls)
            ab, as_ = (np.bincount(aa_of, weights=p, minlength=len(AMINO_ACIDS)) for p in (pb, ps))
            i = names.index(ref) if ref in names else None
            row = {"record": rid, "codon_start_1based": int(c) + 1,
                   "codon_end_1based": int(c) + 3,
                   "strand": req.frame_strand, "ref_codon": ref,
                   "ref_aa": AMINO_ACIDS[aa_of[i]] if i is not None else "X",
                   "p_ref_codon": pb[i] if i is not None else np.nan,
                   "p_ref_codon_steered": ps[i] if i is not None else np.nan,
                   "best_codon": names[int(pb.argmax())],
                   "best_codon_steered": names[int(ps.argmax())],
                   "p_ref_aa": ab[aa_of[i]] if i is not None else np.nan,
                   "p_ref_aa_steered": as_[aa_of[i]] if i is not None else np.nan,
                   "best_aa": AMINO_ACIDS[int(ab.argmax())],
                   "best_aa_steered": AMINO_ACIDS[int(as_.argmax())]}
            for k, aa in enumerate(AMINO_ACIDS):
                row[f"p_{aa}"], row[f"p_{aa}_steered"] = ab[k], as_[k]
            rows.append(row)
    return rows


def summary(adapter, sae_dir, key, req, edits, draws, stats, means, ranking, records,
            positions, base, steered, variants, codons) -> dict:
    """The ``steer.json`` dictionary."""
    maxima, sample_mean = stats.get("max"), stats.get("mean")

    def feature(f):
        out = {"feature": int(f)}
        for name, values in (("max_activation", maxima), ("sample_mean", sample_mean),
                             ("sample_frequency", stats.get("frequency")), ("site_mean", means)):
            if values is not None:
                out[name] = float(values[f])
        return out

    table = position_table(records, positions, base, steered)
    flat = [(rid, i) for rid, t in table.items() for i in range(len(t["pos"]))]
    order = sorted(flat, key=lambda ri: -table[ri[0]]["tv"][ri[1]])[:req.top]
    features = sorted({e.feature for e in edits})
    tv = np.concatenate([t["tv"] for t in table.values()])
    return {
        "model": adapter.name, "model_fingerprint": adapter.fingerprint(), "sae": str(sae_dir),
        "hook": key, "fasta": str(req.fasta), "semantics": SEMANTICS,
        "error_term": True, "edit_specs": list(req.edits),
        "edits": [{"feature": e.feature, "op": e.op, "value": e.value} for e in edits],
        "features": [feature(f) for f in features],
        "top_by": req.top_by, "top_around": req.top_around,
        "top_max_frequency": req.top_max_frequency,
        "site_ranking": [feature(f) for f in ranking[:20]],
        "n_positions": int(tv.size),
        "mean_tv": float(tv.mean()), "max_tv": float(tv.max()),
        "top_positions": [_position_json(table[rid], i, rid) for rid, i in order],
        "variants": [{**{k: v for k, v in row.items()}, **control_stats(row)} for row in variants],
        "controls": {"n": req.control, "pool": req.control_pool, "seed": req.seed,
                     "features": draws},
        "codons": {"frame_start": req.frame_start, "strand": req.frame_strand,
                   "table": req.table, "n": len(codons)} if req.frame_start is not None else None,
    }


def _position_json(t, i, rid) -> dict:
    return {"record": rid, "pos": int(t["pos"][i]) + 1, "ref": "ACGTN"[t["ref"][i]],
            "tv": float(t["tv"][i]), "delta_log_odds_ref": float(t["delta_log_odds_ref"][i]),
            "p": t["p"][i].round(6).tolist(), "p_steered": t["p_steered"][i].round(6).tolist()}


def _write_tsv(path: Path, header: list[str], rows) -> None:
    from dnatlas.files import atomic_write

    with atomic_write(path, newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v for v in row])


def write_all(out: Path, records, positions, base, steered, variants, codons, summary_,
              stats, req) -> None:
    """Write every output file (module docstring) into ``out``."""
    from dnatlas.files import write_json

    table = position_table(records, positions, base, steered)
    cols = [f"p_{b}" for b in NUCLEOTIDES] + [f"p_{b}_steered" for b in NUCLEOTIDES]
    _write_tsv(out / "positions.tsv",
               ["record", "pos_1based", "ref", *cols, "delta_log_odds_ref", "tv"],
               ([rid, int(t["pos"][i]) + 1, "ACGTN"[t["ref"][i]], *t["p"][i], *t["p_steered"][i],
                 t["delta_log_odds_ref"][i], t["tv"][i]]
                for rid, t in table.items() for i in range(len(t["pos"]))))
    if variants:
        keys = ["variant", "log_odds_base", "log_odds_steered", "delta_log_odds", "control_n",
                "control_mean", "control_sd", "control_rank"]
        rows = [{**v, **control_stats(v)} for v in variants]
        _write_tsv(out / "variants.tsv", keys, ([r.get(k, "") for k in keys] for r in rows))
    if codons:
        _write_tsv(out / "codons.tsv", list(codons[0]), (list(r.values()) for r in codons))
    if stats:
        names = [c for c in ("max", "mean", "frequency") if c in stats]
        _write_tsv(out / "feature_max.tsv", ["feature", *names],
                   ([f, *(float(stats[c][f]) for c in names)]
                    for f in range(len(stats[names[0]]))))
    write_json(out / "steer.json", summary_)
    if req.png:
        figure(table, variants, req, out / "steer.png")


def _segments(table, gap: int = 10):
    """Runs of reported positions (record, start, end) with gaps of at most ``gap`` nt."""
    segs = []
    for rid, t in table.items():
        pos = t["pos"]
        cuts = np.flatnonzero(np.diff(pos) > gap) + 1
        for run in np.split(np.arange(len(pos)), cuts):
            segs.append((rid, run))
    return segs


def _annotations(req):
    from dnatlas import bundled
    from dnatlas.annotation.intervals import load_annotations

    source = req.annotations
    if source is None and str(req.fasta) in bundled.annotation_names():
        source = str(req.fasta)
    return load_annotations(source) if source is not None else None


def _gene(intervals, rid: str, pos: int) -> str:
    """``"NAME "`` of the gene holding 0-based ``pos`` (for labels), or ``""``."""
    for iv in intervals or ():
        if iv.seqid == rid and iv.start <= pos < iv.end and iv.type == "gene" and iv.name:
            return f"{iv.name} "
    return ""


def figure(table, variants, req, path: Path) -> Path:
    """``steer.png``: Δ log-odds of the reference base along each run of positions (with
    the annotation under it), or against the position's index when the positions are
    scattered; and each variant's Δ log-odds of ALT vs REF against its controls."""
    from matplotlib.figure import Figure

    from dnatlas.analysis.plots import save_figure
    from dnatlas.analysis.track_plots import COORDINATE_FORMAT, draw_features, span

    segs = _segments(table)
    tracks = [s for s in segs if len(s[1]) > 1][:4] if len(segs) <= 4 else []
    intervals = _annotations(req)
    n_track = len(tracks) if tracks else 1
    heights = []
    for _ in range(n_track):
        heights += [3, 0.8] if tracks and intervals is not None else [3]
    if variants:
        heights.append(3)
    fig = Figure(figsize=(9, 0.9 * sum(heights) + 0.6))
    axes = fig.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    k = 0
    label = "Δ log-odds of the reference base\n(steered − unsteered, nats)"
    if tracks:
        for rid, run in tracks:
            t, ax = table[rid], axes[k]
            x = t["pos"][run] + 1
            ax.axhline(0, color="0.6", lw=0.6)
            ax.plot(x, t["delta_log_odds_ref"][run], lw=0.9, marker=".", ms=3, color="#C44E52")
            lo, hi = int(t["pos"][run[0]]), int(t["pos"][run[-1]]) + 1
            ax.set_xlim(*span(lo, hi))
            for v in variants:
                if v["record"] == rid and lo < v["pos"] <= hi:
                    ax.axvline(v["pos"], color="0.3", ls=":", lw=0.8)
                    ax.annotate(" " + v["variant"].rsplit(":", 1)[-1], (v["pos"], 0.97), fontsize=6,
                                xycoords=("data", "axes fraction"), ha="left", va="top")
            ax.set_ylabel(label, fontsize=7)
            ax.set_title(f"{rid}:{lo + 1:,}-{hi:,}", fontsize=8)
            ax.xaxis.set_major_formatter(COORDINATE_FORMAT)
            k += 1
            if intervals is not None:
                draw_features(axes[k], intervals, lo, hi, seqid=rid, legend=True)
                axes[k].set_xlabel(f"{rid} position (1-based)", fontsize=7)
                axes[k].xaxis.set_major_formatter(COORDINATE_FORMAT)
                k += 1
    else:
        ax = axes[k]
        flat = [(rid, i) for rid, t in table.items() for i in range(len(t["pos"]))]
        y = [table[rid]["delta_log_odds_ref"][i] for rid, i in flat]
        ax.axhline(0, color="0.6", lw=0.6)
        ax.plot(range(len(y)), y, marker="o", ms=4, lw=0, color="#C44E52")
        ax.set_xlim(-0.6, len(y) - 0.4)
        if len(flat) <= 24:
            ax.set_xticks(range(len(flat)))
            ax.set_xticklabels([_gene(intervals, rid, int(table[rid]["pos"][i]))
                                + f"{rid}:{int(table[rid]['pos'][i]) + 1:,}" for rid, i in flat],
                               rotation=30, ha="right", fontsize=6)
        ax.set_xlabel("reported position (scattered: one point each, in genome order)", fontsize=7)
        ax.set_ylabel(label, fontsize=7)
        k += 1
    if variants:
        ax = axes[k]
        rng = np.random.default_rng(0)
        for i, row in enumerate(variants):
            c = np.asarray(row["control"])
            if c.size:
                ax.scatter(i + rng.uniform(-0.2, 0.2, c.size), c, s=8, color="0.55",
                           label="random matched features (control)" if i == 0 else None)
            ax.scatter([i], [row["delta_log_odds"]], s=40, marker="D", color="#C44E52",
                       label="steered features" if i == 0 else None, zorder=3)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xlim(-0.6, len(variants) - 0.4)
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels([_gene(intervals, r["record"], r["pos"] - 1) + r["variant"]
                            for r in variants], rotation=30, ha="right", fontsize=6)
        ax.set_ylabel("Δ log-odds ALT vs REF (nats)", fontsize=7)
        ax.legend(fontsize=6, frameon=False)
    fig.suptitle(f"steering {', '.join(req.edits)} (masked-LM predictions)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
