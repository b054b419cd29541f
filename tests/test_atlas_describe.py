"""Descriptions, the explained flag and rankings; the figures; a planted feature end to end."""

import re

import numpy as np
import pytest

from dnatlas.atlas import describe as d
from dnatlas.atlas.columns import rows

NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


def random_row(rng, i):
    phase = rng.dirichlet([0.3, 0.3, 0.3]).tolist()
    row = {"dictionary": "sae:x", "feature": i,
           "max": float(rng.choice([0.0, rng.gamma(2.0), 1e-3 * rng.random()])),
           "frac_active": float(rng.choice([rng.random(), rng.random() * 1e-3])),
           "phase": phase, "phase_strength": max(phase) - 1 / 3,
           "coding_strand": float(rng.random()), "periodicity3": float(rng.random()),
           "gc_top": float(rng.random()),
           "top_motif": rng.choice([None, "TAAGGAGGT", "ANNGCA"]),
           "motif_enrichment": float(rng.gamma(2.0) * 10),
           "best_landmark": rng.choice([None, "cds_start/sense", "trna_end/antisense", "tss/sense"]),
           "landmark_offset": int(rng.integers(-100, 101)),
           "landmark_ratio": float(2 + rng.gamma(2.0)),
           "best_concept": rng.choice([None, "CDS", "RBS", "terminator"]),
           "best_f1": float(rng.random()), "best_f1_shuffled": float(rng.random() * 0.5)}
    if row["top_motif"] is None:
        row["motif_enrichment"] = None
    if row["best_landmark"] is None:
        row["landmark_offset"] = row["landmark_ratio"] = None
    return row


def column_values(row):
    values = []
    for key, v in row.items():
        if key in ("feature",) or isinstance(v, str) or v is None:
            continue
        for x in (v if isinstance(v, list) else [v]):
            values += [float(x), abs(float(x)), 100 * float(x)]
    return values


def test_every_number_in_a_description_is_a_column_value():
    rng = np.random.default_rng(0)
    checked = 0
    for i in range(400):
        row = random_row(rng, i)
        text = d.describe(row, genome_gc=0.5)
        for word in ("TAAGGAGGT", "ANNGCA"):
            text = text.replace(word, "")
        values = column_values(row)
        for match in NUMBER.findall(text):
            decimals = len(match.split(".")[1]) if "." in match else 0
            tol = 0.5 * 10 ** -decimals + 1e-9
            assert any(abs(float(match) - v) <= tol for v in values), (match, text, row)
            checked += 1
    assert checked > 1000


def test_clauses_and_flags():
    row = {"max": 2.5, "frac_active": 0.0012, "best_landmark": "cds_start/sense",
           "landmark_offset": -12, "landmark_ratio": 8.14, "top_motif": "TAAGGAGGT",
           "motif_enrichment": 281.4, "best_concept": "RBS", "best_f1": 0.31,
           "best_f1_shuffled": 0.02, "phase": None, "coding_strand": None}
    text = d.describe(row)
    assert text == ("fires at 0.12% of positions (max 2.50); peaks 12 nt upstream of CDS "
                    "starts on the sense strand (8.1x its mean); top motif TAAGGAGGT (281x "
                    "over the genome); F1 0.31 against RBS, shuffled 0.02")
    assert d.is_explained(row)
    dense = {"max": 1.0, "frac_active": 0.41, "phase": [0.1, 0.2, 0.7], "phase_strength": 0.3667,
             "coding_strand": 0.9, "periodicity3": 0.8, "best_concept": "CDS", "best_f1": 0.66,
             "best_f1_shuffled": 0.64}
    text = d.describe(dense)
    assert text.startswith("dense (fires at 41% of positions, max 1.00)")
    assert "prefers the third codon position (70% of in-CDS firing)" in text
    assert "coding strand (90% of in-gene firing)" in text
    assert "three-periodic in CDSs (score 0.80)" in text
    assert text.endswith("no concept beyond shuffled (best CDS: F1 0.66, shuffled 0.64)")
    assert not d.is_explained(dense)
    assert d.describe({"max": 0.0}) == "never fires; no concept"
    assert d.num(0.000123) == "0.00012" and d.pct(0.0012) == "0.12"


def test_the_margin_is_the_concept_evaluations():
    from dnatlas.pipelines.concept_report import BEYOND_SHUFFLED

    assert d.BEYOND_SHUFFLED == BEYOND_SHUFFLED


def test_rankings():
    feats = {"dictionary": ["a"] * 4, "feature": [0, 1, 2, 3], "max": [1.0, 4.0, 0.0, 2.0],
             "frac_active": [0.1, 0.01, 0.0, 0.5], "best_concept": ["CDS", None, None, None],
             "best_f1": [0.5, None, None, None], "best_f1_shuffled": [0.1, None, None, None],
             "top_motif": [None, None, None, "ACGTAC"]}
    out = rows(d.rank_and_describe({"features": feats})["features"])
    assert [r["explained"] for r in out] == [True, False, False, True]
    assert out[0]["score_concept"] == pytest.approx(0.4) and out[1]["score_concept"] is None
    assert out[1]["score_sparsity"] == pytest.approx(0.99)
    # median live max of dictionary 'a' = 2.0: feature 1 scores 4 / 2; explained or dead 0
    assert [r["score_unexplained"] for r in out] == [0.0, 2.0, 0.0, 0.0]
    assert all(r["description"] for r in out)


def test_figures_are_written(tmp_path):
    from dnatlas.atlas.figures import landmark_profiles, sequence_logo

    pfm = np.array([[0.25] * 4, [1, 0, 0, 0], [0, 0, 1, 0], [0, 0.5, 0, 0.5], [0, 0, 0, 1]])
    fig = sequence_logo(pfm.ravel().tolist(), tmp_path / "logo.png", title="planted")
    assert len(fig.axes[0].patches) == 5          # A, G, C and T, T; none in the flat column
    x = np.arange(-20, 21)
    prof = np.exp(-((x + 12) ** 2) / 4.0)
    rows_ = [{"landmark": "cds_start", "orientation": "sense", "offset_min": -20,
              "profile": prof.tolist(), "n": 120},
             {"landmark": "cds_start", "orientation": "antisense", "offset_min": -20,
              "profile": (0.05 + 0 * prof).tolist(), "n": 120}]
    fig = landmark_profiles(rows_, tmp_path / "profile.png", title="planted", mean=0.01)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 4               # two profiles, the 0 mark, the mean
    assert "CDS start, sense (n=120)" in [t.get_text() for t in ax.get_legend().get_texts()]
    for name in ("logo.png", "profile.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_docs_hold_the_current_schema():
    from pathlib import Path

    from dnatlas.atlas import schema

    text = (Path(__file__).resolve().parents[1] / "docs" / "atlas.md").read_text()
    assert schema.markdown() in text, "docs/atlas.md: paste schema.markdown() again"
