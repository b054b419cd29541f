"""Steer a model's predictions through SAE features (``dnatlas steer``; paper 003).

    from dnatlas.pipelines.steer import SteerRequest, steer
    req = SteerRequest(fasta="ecoli_k12_mg1655", edits=["top:3=5xmax"],
                       variants=["K-12-MG1655:4,034,961:A>G"], control=20)
    result = steer("default", req, out="runs/steer")

The SAE of one site (its ``hook_name``) encodes that site's activations, the chosen features
are changed and the site is replaced by ``decode(f') + (x - decode(f))``
(:class:`~dnatlas.sae.steering.SteeringIntervention`), at every position of the model's
input window, through the model protocol's ``intervene=``, so any model works.

Predictions are **masked-LM** ones: for each reported position p the model is run on a
window around p with p replaced by MASK (5), planned from the model's context geometry as
the extraction engine plans them (:func:`~dnatlas.analysis.extract.plan_windows`: R nt each
side for a finite receptive field, ``max_length`` otherwise), so the result equals a
whole-record pass with only p masked. Causal models (HyenaDNA) predict p from positions
< p (masking p changes nothing). With a reading frame, a DNAtlas model (windowed MLM,
64 triplet outputs) is also run with each codon's three nucleotides masked: the triplet
distribution at the codon's middle is the codon distribution, and summing synonymous codons
(NCBI table ``table``) gives amino-acid probabilities.

Reported: per position the nucleotide probabilities before and after, the change in the
reference base's log-odds ``logit p(ref)`` and the total-variation distance; per variant
``RECORD:POS:REF>ALT`` the change in ``log p(ALT) - log p(REF)``, against ``control`` draws
of random features of matched maximum activation steered the same way. Outputs:
:mod:`dnatlas.pipelines.steer_report`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import MASK, NUCLEOTIDES
from dnatlas.models import ModelAdapter, resolve_model
from dnatlas.pipelines.steer_inputs import (
    check_variants,
    log_odds,
    parse_edit,
    parse_variant,
    read_feature_stats,
    select_positions,
)
from dnatlas.sae.steering import FeatureEdit, SteeringIntervention, check_features


@dataclass
class SteerRequest:
    """Options of :func:`steer`.

    Attributes:
        fasta: genome (FASTA/GenBank, or a bundled genome's name).
        edits: ``--edit`` strings (:func:`parse_edit`).
        sae: SAELens folder, ``default`` or a bundled SAE's name.
        regions: 1-based ``RECORD:START-END`` regions of reported positions.
        bed: BED file of reported positions.
        all_positions: report every position of every record.
        variants: ``RECORD:POS:REF>ALT`` strings (their positions are reported too).
        hook: the site (default: the SAE's ``hook_name``).
        max_activations: TSV ``feature<TAB>max`` (as this command writes, ``feature_max.tsv``)
            instead of the sample.
        max_sample: windows sampled from ``fasta`` for the maximum activations;
            max_window: their length (nt; capped by the model's ``max_length``).
        top_around: ``top:N`` ranks features by their mean activation over ±this many nt
            of the reported positions: ``top_by="excess"`` by that mean minus their mean over
            the genome sample (dense features, firing everywhere, are not "most active
            here"); ``"mean"`` by the mean itself. top_max_frequency: leave out of the
            ranking features firing on more than this fraction of the genome sample.
        control: random matched-feature control draws; control_pool: candidates per
            feature (the nearest in maximum activation).
        frame_start: 1-based coordinate of the first base of a codon on ``frame_strand``
            (on ``-`` its highest coordinate); codon read-outs need DNAtlas.
        table: NCBI translation table of amino acids.
        annotations: GFF3/GenBank/BED drawn under the track (or a bundled annotation name).
        top: positions listed as the most changed; batch_size: windows per forward pass.
        png: draw ``steer.png``.
    """

    fasta: str | Path
    edits: list[str] = field(default_factory=list)
    sae: str | Path = "default"
    regions: list[str] = field(default_factory=list)
    bed: str | Path | None = None
    all_positions: bool = False
    variants: list[str] = field(default_factory=list)
    hook: str | None = None
    max_activations: str | Path | None = None
    max_sample: int = 16
    max_window: int = 4096
    top_around: int = 0
    top_by: str = "excess"
    top_max_frequency: float | None = None
    control: int = 0
    control_pool: int = 10
    frame_start: int | None = None
    frame_strand: str = "+"
    table: int = 11
    annotations: str | Path | None = None
    top: int = 20
    batch_size: int = 16
    seed: int = 0
    progress: bool | None = None
    png: bool = True


# ------------------------------------------------------------------------- model runs


def masked_predictions(adapter: ModelAdapter, seq: np.ndarray, spans, intervene=None,
                       codons: bool = False, batch_size: int = 16, bar=None) -> np.ndarray:
    """Masked predictions of each span ``(lo, hi)`` of ``seq``, run in its own window.

    Each span's nucleotides are replaced by MASK in a window planned around it
    (:func:`~dnatlas.analysis.extract.plan_windows`); spans are batched by window length.

    Returns:
        ``codons=False``: (n, 4) float64 natural-log probabilities of A C G T at each span's
        first position (spans of one nucleotide); ``codons=True``: (n, 64) triplet
        log-probabilities at each span's middle (spans of three nucleotides; DNAtlas'
        windowed MLM after the consistency mask), triplet index 16*first + 4*mid + last.
    """
    from itertools import groupby

    from dnatlas.analysis.extract import plan_windows

    total = len(seq)
    plans = []
    for i, (lo, hi) in enumerate(spans):
        _, _, a, b = next(plan_windows(adapter, lo, hi, total, hi - lo))
        plans.append((b - a, i, lo, hi, a, b))
    out = np.zeros((len(plans), 64 if codons else 4))
    for _, same in groupby(sorted(plans), key=lambda w: w[0]):
        same = list(same)
        for j in range(0, len(same), batch_size):
            group = same[j:j + batch_size]
            rows = []
            for _, _, lo, hi, a, b in group:
                row = seq[a:b].astype(np.int64)
                row[lo - a:hi - a] = MASK
                rows.append(row)
            tokens = torch.from_numpy(np.stack(rows))
            with torch.inference_mode():
                if codons:
                    lp, at = adapter.codon_log_probs(tokens, intervene=intervene), 1
                else:
                    lp, at = adapter.nucleotide_log_probs(tokens, intervene=intervene), 0
            for k, (_, i, lo, _, a, _) in enumerate(group):
                out[i] = lp[k, lo - a + at].double().cpu().numpy()
            if bar is not None:
                bar.update(len(group))
    return out


def codon_predictions(adapter, records, positions, frame_start: int, strand: str,
                      intervene, batch_size: int = 16) -> list[tuple]:
    """Codon distributions, unsteered and steered, of the in-frame codons that hold a
    reported position (each codon's three nucleotides masked; DNAtlas windowed MLM).

    Args:
        frame_start: 1-based coordinate of the first base of a codon read on ``strand``
            (on ``-``: its highest coordinate).

    Returns:
        ``[(record, starts, base, steered)]``: 0-based leftmost forward coordinates of the
        codons (n,) and (n, 64) log-probabilities of each codon read on ``strand``
        (index 16*first + 4*second + third in reading direction).
    """
    from dnatlas.genome.codons import triplet_rc_permutation

    phase = (frame_start - 1) % 3 if strand == "+" else (frame_start - 3) % 3
    perm = triplet_rc_permutation()
    out = []
    for rid, pos in positions.items():
        seq = records[rid].seq
        starts = np.unique(pos - (pos - phase) % 3)
        starts = starts[(starts >= 0) & (starts + 3 <= len(seq))]
        spans = [(int(c), int(c) + 3) for c in starts]
        pair = [masked_predictions(adapter, seq, spans, fn, codons=True, batch_size=batch_size)
                for fn in (None, intervene)]
        if strand == "-":
            pair = [lp[:, perm] for lp in pair]
        out.append((rid, starts, *pair))
    return out


def sample_stats(adapter, sae, key, fasta: Path, req: SteerRequest, lengths) -> dict:
    """Per-feature maximum, mean and firing frequency over ``req.max_sample`` random
    windows of the genome (:func:`~dnatlas.sae.steering.feature_stats`)."""
    import itertools

    from dnatlas.pipelines.windows import window_source
    from dnatlas.sae.steering import feature_stats

    window = min(req.max_window, adapter.max_length or req.max_window, max(lengths))
    source = window_source(fasta, "train", window, min(req.max_sample, 8), req.seed)
    n_batches = -(-req.max_sample // min(req.max_sample, 8))

    def acts():
        for batch in itertools.islice(source, n_batches):
            tokens = torch.from_numpy(np.asarray(batch, dtype=np.int64))
            yield adapter.activations(tokens, [key])[key]

    return feature_stats(sae, acts())


def site_means(adapter, sae, key, records, positions, around: int) -> torch.Tensor:
    """Mean activation (d_sae,) of every feature over the reported positions ± ``around``
    nt (unmasked sequence, whole-record context), pooled over records."""
    from dnatlas.analysis.extract import extract_activations

    total, n = torch.zeros(sae.d_sae, dtype=torch.float64), 0
    for rid, pos in positions.items():
        seq = records[rid].seq
        keep = np.zeros(len(seq), dtype=bool)
        for p in pos:
            keep[max(0, p - around):p + around + 1] = True
        edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
        for start, end in zip(edges[::2], edges[1::2]):
            acts = extract_activations(adapter, seq, [key], start=int(start), end=int(end),
                                       progress=False)[key]
            with torch.no_grad():
                f = sae.encode(torch.from_numpy(np.asarray(acts, np.float32)).to(sae.W_enc.device))
            total += f.double().sum(0).cpu()
            n += f.shape[0]
    return total / max(n, 1)


def expand_edits(specs, ranking) -> list[FeatureEdit]:
    """One :class:`FeatureEdit` per feature (``set_max`` unresolved), ``top:N`` replaced by
    the N first features of ``ranking``."""
    return [FeatureEdit(int(f), s.op, s.value)
            for s in specs for f in (ranking[:s.top] if s.top else s.features)]


def variant_rows(variants, positions, base, steered) -> list[dict]:
    """Per variant: log-odds of ALT against REF before and after steering, and the change."""
    rows = []
    for v in variants:
        i = int(np.searchsorted(positions[v.record], v.pos))
        b, s = log_odds(base[v.record][i], v), log_odds(steered[v.record][i], v)
        rows.append({"variant": str(v), "record": v.record, "pos": v.pos + 1,
                     "ref": NUCLEOTIDES[v.ref], "alt": NUCLEOTIDES[v.alt], "log_odds_base": b,
                     "log_odds_steered": s, "delta_log_odds": s - b, "control": []})
    return rows


def run_controls(adapter, sae, key, records, variants, rows, raw_edits, maxima,
                 req: SteerRequest, bar=None) -> list[list[int]]:
    """Steer random features of matched maximum activation instead of the chosen ones
    (:func:`~dnatlas.sae.steering.matched_features`), with the same edits (a multiple of
    the maximum taken of each control feature's own), ``req.control`` times; appends each
    draw's change of log-odds to ``rows[i]["control"]``. Returns the drawn features."""
    from dnatlas.sae.steering import matched_features

    targets = sorted({e.feature for e in raw_edits})
    draws = matched_features(maxima, targets, req.control, req.control_pool, req.seed)
    for draw in draws:
        swap = dict(zip(targets, draw))
        fn = SteeringIntervention(sae, [FeatureEdit(swap[e.feature], e.op, e.value).resolve(maxima)
                                        for e in raw_edits])
        for rid in dict.fromkeys(v.record for v in variants):
            mine = [i for i, v in enumerate(variants) if v.record == rid]
            lp = masked_predictions(adapter, records[rid].seq,
                                    [(variants[i].pos, variants[i].pos + 1) for i in mine],
                                    {key: fn}, batch_size=req.batch_size, bar=bar)
            for i, row_lp in zip(mine, lp):
                rows[i]["control"].append(log_odds(row_lp, variants[i]) - rows[i]["log_odds_base"])
    return draws


@dataclass
class SteerResult:
    """What :func:`steer` computed (also written to ``out``): ``summary`` is ``steer.json``;
    ``n_positions``, ``mean_tv`` and ``max_tv`` the total-variation change of the masked
    predictions over the positions steered; ``variant_effects`` each variant's change."""

    positions: dict
    base: dict
    steered: dict
    variants: list
    edits: list
    codons: list
    summary: dict
    out: Path | None = None
    n_positions: int = 0
    mean_tv: float = float("nan")
    max_tv: float = float("nan")
    variant_effects: list = field(default_factory=list)


def _load(model, req: SteerRequest, device):
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import resolve_bundled_genome
    from dnatlas.pipelines.sae_site import load_sae_for

    adapter = resolve_model(model, device)
    sae, sae_dir, key = load_sae_for(req.sae, adapter, hook=req.hook)
    fasta = resolve_bundled_genome(req.fasta)
    records = {r.id: r for r in read_records(fasta)}
    return adapter, sae, sae_dir, key, fasta, records


def steer(model: str | ModelAdapter | None, req: SteerRequest, out: str | Path | None,
          device: str | None = None, force: bool = False) -> SteerResult:
    """Steer SAE features and report the change of masked predictions (module docstring).

    Writes ``positions.tsv``, ``variants.tsv``, ``codons.tsv`` (with a frame),
    ``feature_max.tsv``, ``steer.json`` and ``steer.png`` into ``out`` (None: nothing
    written); an existing result there is refused unless ``force``.
    """
    from dnatlas.files import check_output_dir
    from dnatlas.pipelines import steer_report as report

    specs = [parse_edit(e) for e in req.edits]
    if not specs:
        raise InputError("no edits given", setting="edits")
    variants = [parse_variant(v) for v in req.variants]
    if req.control and not variants:
        raise InputError("control compares variants: give variants",
                         setting=("control", "variants"))
    if req.top_max_frequency is not None and not 0 <= req.top_max_frequency <= 1:
        raise InputError("top_max_frequency must be a fraction between 0 and 1",
                         setting="top_max_frequency")
    if req.top_by not in ("excess", "mean"):
        raise InputError(f"top_by must be excess or mean, got {req.top_by!r}",
                         setting="top_by")
    if req.frame_strand not in ("+", "-"):
        raise InputError(f"frame_strand must be + or -, got {req.frame_strand!r}",
                         setting="frame_strand")
    for name in ("max_sample", "max_window", "batch_size", "control_pool"):
        if getattr(req, name) < 1:
            raise InputError(f"{name} must be at least 1", setting=name)
    if out is not None:
        check_output_dir(out, "output folder")  # writable, before the inputs are read
    adapter, sae, sae_dir, key, fasta, records = _load(model, req, device)
    check_features([f for s in specs for f in s.features], sae.d_sae)
    if req.frame_start is not None and not adapter.predicts_codons:
        raise InputError(f"{adapter.name}: codon and amino-acid probabilities need a windowed-"
                         "MLM model with triplet outputs (DNAtlas)")
    with contextlib.ExitStack() as stack:  # locked from here to the completion marker
        folder = None if out is None else stack.enter_context(report.open_out(out, force))
        result = _steer(adapter, sae, sae_dir, key, fasta, records, req, specs, variants,
                        None if folder is None else folder.path)
        if folder is not None:
            folder.complete([name for name in report.OUTPUTS if (folder / name).exists()])
        return result


def _steer(adapter, sae, sae_dir, key, fasta, records, req: SteerRequest, specs, variants,
           out) -> SteerResult:
    from dnatlas.pipelines import steer_report as report
    from dnatlas.progress import progress

    check_variants(variants, records)
    positions = select_positions(records, req.regions, req.bed, req.all_positions, variants)

    ranked = any(s.top for s in specs)
    need = {"max"} if req.control > 0 or any(s.op == "set_max" for s in specs) else set()
    need |= {"mean"} if ranked and req.top_by == "excess" else set()
    need |= {"frequency"} if ranked and req.top_max_frequency is not None else set()
    stats = {} if req.max_activations is None else read_feature_stats(
        req.max_activations, sae.d_sae, sae_dir)
    if need - set(stats):  # given columns are kept, the missing ones sampled
        sampled = sample_stats(adapter, sae, key, fasta, req, [len(r) for r in records.values()])
        stats = {**{k: v for k, v in sampled.items() if k != "n"}, **stats}
    maxima = stats.get("max")
    means = site_means(adapter, sae, key, records, positions, req.top_around) if ranked else None
    ranking = []
    if ranked:
        score = means - stats["mean"] if req.top_by == "excess" else means.clone()
        if req.top_max_frequency is not None:
            score[stats["frequency"] > req.top_max_frequency] = -float("inf")
        ranking = [f for f in torch.argsort(score, descending=True, stable=True).tolist()
                   if score[f] > -float("inf")]
        if len(ranking) < max(s.top for s in specs):
            raise InputError(f"only {len(ranking)} features fire on at most "
                             f"{req.top_max_frequency} of the sample: too few for top:N")
    raw_edits = expand_edits(specs, ranking)
    edits = [e.resolve(maxima) for e in raw_edits]
    steer_fn = SteeringIntervention(sae, edits)

    n_pos = sum(len(p) for p in positions.values())
    bar = progress(total=2 * n_pos + req.control * len(variants), unit="window", desc="steer",
                   disable=req.progress is False)
    base, steered = {}, {}
    for rid, pos in positions.items():
        spans = [(int(p), int(p) + 1) for p in pos]
        seq = records[rid].seq
        base[rid] = masked_predictions(adapter, seq, spans, None, batch_size=req.batch_size,
                                       bar=bar)
        steered[rid] = masked_predictions(adapter, seq, spans, {key: steer_fn},
                                          batch_size=req.batch_size, bar=bar)
    rows = variant_rows(variants, positions, base, steered)
    draws = (run_controls(adapter, sae, key, records, variants, rows, raw_edits, maxima, req, bar)
             if req.control else [])
    bar.close()
    codon_rows = []
    if req.frame_start is not None:
        codon_rows = report.codon_rows(records, req, codon_predictions(
            adapter, records, positions, req.frame_start, req.frame_strand, {key: steer_fn},
            req.batch_size))
    summary = report.summary(adapter, sae_dir, key, req, edits, draws, stats, means, ranking,
                             records, positions, base, steered, rows, codon_rows)
    if out is not None:
        report.write_all(out, records, positions, base, steered, rows, codon_rows, summary,
                         stats, req)
    return SteerResult(positions, base, steered, rows, edits, codon_rows, summary, out,
                       summary["n_positions"], summary["mean_tv"], summary["max_tv"],
                       report.variant_effects(rows))

