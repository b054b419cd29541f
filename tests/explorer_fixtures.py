"""A synthetic but plausible atlas for the explorer's tests, benchmark and front end.

Real inputs, made-up statistics: the genome is the first ``length`` nt of the bundled
E. coli K-12 genome (``length=None``: all of it), the annotation the bundled RefSeq +
TransTermHP/pilercr features on it, the model and SAE the bundled ones; every atlas table
gets deterministic, plausible rows through :func:`dnatlas.atlas.store.write_atlas`
(examples are real windows of the genome, on the strand they name).

    python tests/explorer_fixtures.py OUT [LENGTH]     # writes OUT/{genome.fa,genome.gff3,atlas}
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from dnatlas import bundled
from dnatlas.atlas import schema
from dnatlas.atlas.store import write_atlas

SITE = "blocks.2.residual"
CONCEPTS = ("CDS", "terminator", "REP", "start_codon", "stop_codon", "tRNA", "repeat_region")
WORDS = ("start codons", "stop codons", "terminator hairpins", "REP elements", "the coding "
         "strand, codon position 3", "GC-rich stretches", "poly-A tracts", "-10 boxes")


def sae_info() -> tuple[str, Path, int]:
    """(dictionary name, folder, d_sae) of the bundled SAE."""
    folder = bundled.sae_path(bundled.DEFAULT_SAE)
    cfg = json.loads((folder / "cfg.json").read_text())
    return f"sae:{folder.name}", folder, int(cfg["d_sae"])


def make_genome(folder: str | Path, length: int | None = 150_000) -> tuple[Path, Path]:
    """``folder/genome.fa`` (E. coli's first ``length`` nt) and ``folder/genome.gff3``."""
    from dnatlas.annotation.intervals import load_annotations, write_gff3
    from dnatlas.genome.alphabet import decode
    from dnatlas.genome.readers import read_records

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = next(read_records(bundled.genome_path("ecoli_k12_mg1655")))
    seq = record.seq if length is None else record.seq[:length]
    fasta = folder / "genome.fa"
    text = decode(seq)
    fasta.write_text(f">{record.id}\n" + "\n".join(text[i:i + 80]
                                                   for i in range(0, len(text), 80)) + "\n")
    intervals = [iv for iv in load_annotations(bundled.DEFAULT_ANNOTATION)
                 if iv.seqid == record.id and iv.end <= len(seq)]
    gff = folder / "genome.gff3"
    write_gff3(gff, intervals, {record.id: len(seq)})
    return fasta, gff


def _rows(columns: list[str], rows: list[dict]) -> dict:
    return {c: [r[c] for r in rows] for c in columns}


def make_atlas(folder: str | Path, fasta: Path, gff: Path, seed: int = 0,
               bin_size: int = 1_000, n_sae: int | None = None) -> Path:
    """Write a synthetic atlas for ``fasta``/``gff`` into ``folder``; return it.

    ``n_sae``: list only the SAE's first ``n_sae`` latents (small, fast atlases for tests)."""
    import hashlib

    from dnatlas.genome.alphabet import decode, reverse_complement
    from dnatlas.genome.readers import read_records

    rng = np.random.default_rng(seed)
    (rec,) = list(read_records(fasta))
    n = len(rec.seq)
    sae_name, sae_folder, d_sae = sae_info()
    d_sae = d_sae if n_sae is None else min(n_sae, d_sae)
    dicts = [
        {"dictionary": sae_name, "kind": "sae", "site": SITE, "n_features": d_sae,
         "control": False, "model": "default", "source": str(sae_folder), "rc_equivariant": True},
        {"dictionary": f"neurons:{SITE}", "kind": "neurons", "site": SITE, "n_features": 64,
         "control": False, "model": "default", "source": None, "rc_equivariant": True},
        {"dictionary": f"random-init {sae_name}", "kind": "sae", "site": SITE,
         "n_features": 32, "control": True, "model": "default:random-init",
         "source": str(sae_folder), "rc_equivariant": True},
    ]
    n_bins = math.ceil(n / bin_size)
    feats, examples, scores, counts, landmarks, motifs, relations = [], [], [], [], [], [], []
    for d in dicts:
        name = d["dictionary"]
        for f in range(d["n_features"]):
            mx = float(rng.gamma(2.0, 2.0))
            frac = float(rng.beta(1, 30))
            concept = CONCEPTS[int(rng.integers(len(CONCEPTS)))] if rng.random() < 0.6 else None
            f1 = float(rng.beta(2, 5)) if concept else None
            f1s = float(f1 * rng.uniform(0.05, 0.5)) if concept else None
            motif = "".join(rng.choice(list("ACGT"), 6)) if rng.random() < 0.2 else None
            explained = bool(concept and f1 - f1s > 0.1) or motif is not None
            phase = rng.dirichlet([2, 2, 2]).tolist()
            hist = np.zeros(schema.HIST_BINS, dtype=np.int64)
            hist[40:60] = rng.integers(0, 500, 20)
            feats.append({
                "dictionary": name, "feature": f, "max": mx, "mean": mx * frac / 3,
                "frac_active": frac, "max_plus": mx, "max_minus": mx * rng.uniform(0.5, 1),
                "mean_plus": mx * frac / 3, "mean_minus": mx * frac / 3.5, "frac_plus": frac,
                "frac_minus": frac * 0.9, "q50": mx / 4, "q90": mx / 2, "q99": mx * 0.9,
                "hist": hist.tolist(),
                "manhattan": (rng.random(n_bins) * mx * (rng.random(n_bins) < 0.3)).tolist(),
                "gc_top": float(rng.uniform(0.3, 0.7)), "phase": phase,
                "phase_strength": max(phase) - 1 / 3, "coding_strand": float(rng.uniform()),
                "periodicity3": float(rng.beta(1, 6)), "top_motif": motif,
                "motif_enrichment": float(rng.uniform(2, 20)) if motif else None,
                "best_landmark": "cds_start/sense" if f % 7 == 0 else None,
                "landmark_offset": int(rng.integers(-60, 60)) if f % 7 == 0 else None,
                "landmark_ratio": float(rng.uniform(1, 8)) if f % 7 == 0 else None,
                "best_concept": concept, "best_f1": f1, "best_f1_shuffled": f1s,
                "explained": explained,
                "description": (f"fires on {WORDS[f % len(WORDS)]}" + (
                    f"; matches {concept} (F1 {f1:.2f} vs {f1s:.2f} shuffled)" if concept
                    else "") + (f"; motif {motif}" if motif else "")),
                "score_concept": (f1 - f1s) if concept else None, "score_sparsity": 1 - frac,
                "score_unexplained": 0.0 if explained else mx})
            kinds = [("top", 0, r) for r in range(3)] + [("quantile", b, r)
                                                         for b in range(2) for r in range(2)]
            for kind, b, rank in kinds:
                start = int(rng.integers(0, n - 41))
                strand = "+" if rng.random() < 0.5 else "-"
                window = rec.seq[start:start + 41]
                window = window if strand == "+" else reverse_complement(window)
                acts = np.maximum(0, rng.normal(0, 1, 41) + (mx - b) * np.exp(
                    -0.5 * ((np.arange(41) - 20) / 3.0) ** 2)).astype(np.float32)
                examples.append({"dictionary": name, "feature": f, "kind": kind, "bin": b,
                                 "rank": rank, "record": rec.id, "start": start + 1,
                                 "end": start + 41, "peak": start + 21, "strand": strand,
                                 "activation": float(acts[20]), "sequence": decode(window),
                                 "activations": acts.tolist(), "copies": 1})
            if concept:
                for c in {concept, CONCEPTS[f % len(CONCEPTS)]}:
                    g1 = f1 if c == concept else f1 * 0.5
                    scores.append({"dictionary": name, "feature": f, "concept": c,
                                   "threshold": 0.3, "precision": g1 * 1.1, "recall": g1 * 0.9,
                                   "f1": g1, "f1_shuffled": f1s, "f1_random_init": g1 * 0.4,
                                   "f1_neurons": g1 * 0.8 if d["kind"] == "sae" else None})
                    counts.append({"dictionary": name, "labels": "real", "split": "test",
                                   "strand": "+", "concept": c, "feature": f, "threshold": 0.3,
                                   "tp": 40, "fp": 10, "elements_hit": 12, "n_positive": 900,
                                   "n_elements": 30})
            if f % 7 == 0:
                for orient in schema.ORIENTATIONS:
                    landmarks.append({"dictionary": name, "feature": f, "landmark": "cds_start",
                                      "orientation": orient, "offset_min": -100,
                                      "profile": rng.random(201).astype(np.float32).tolist(),
                                      "n": 120})
            if motif:
                pwm = rng.dirichlet([1, 1, 1, 1], 6).ravel().tolist()
                motifs.append({"dictionary": name, "feature": f, "kmer": motif,
                               "enrichment": feats[-1]["motif_enrichment"], "consensus": motif,
                               "pwm": pwm, "width": 6, "n_sites": 25})
            other = int(rng.integers(d["n_features"]))
            relations.append({"dictionary": name, "feature": f, "relation": "decoder_neighbour",
                              "other_dictionary": name, "other_feature": other,
                              "score": float(rng.uniform(0.2, 0.9))})
            if d["kind"] == "sae" and not d["control"]:
                relations.append({"dictionary": name, "feature": f, "relation": "rc_partner",
                                  "other_dictionary": name, "other_feature": d_sae - 1 - f,
                                  "score": 0.95})
    records = [{"record": rec.id, "length": n, "offset": 0,
                "gc": float(np.isin(rec.seq, (1, 2)).mean()),
                "sha256": hashlib.sha256(rec.seq.tobytes()).hexdigest()}]
    tables = {name: _rows(schema.columns(name), rows) for name, rows in (
        ("dictionaries", dicts), ("records", records), ("features", feats),
        ("examples", examples), ("concept_scores", scores), ("concept_counts", counts),
        ("landmarks", landmarks), ("motifs", motifs), ("relations", relations))}
    from dnatlas.models import load_model

    manifest = {"name": "synthetic test atlas", "genome": str(fasta), "annotations": [str(gff)],
                "model": "default", "saes": [str(sae_folder)], "bin_size": bin_size,
                "key": {"model": load_model("default").fingerprint(),
                        "genome": {rec.id: records[0]["sha256"]}},
                "settings": {"synthetic": True, "seed": seed}}
    return write_atlas(folder, tables, manifest)


def make_explorer_inputs(folder: str | Path, length: int | None = 150_000,
                         n_sae: int | None = None) -> dict:
    """Genome, annotation and atlas under ``folder``: ``{"atlas", "fasta", "annotations"}``."""
    folder = Path(folder)
    fasta, gff = make_genome(folder, length)
    atlas = make_atlas(folder / "atlas", fasta, gff, n_sae=n_sae)
    return {"atlas": atlas, "fasta": fasta, "annotations": [gff]}


if __name__ == "__main__":
    out = make_explorer_inputs(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 150_000)
    print(json.dumps({k: str(v) for k, v in out.items()}))
