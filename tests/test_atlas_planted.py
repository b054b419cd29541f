"""A planted feature, end to end through the Builder, the store and the reader.

A random genome with CDSs on both strands carries a Shine-Dalgarno-like motif
(TAAGGAGGT, annotated as ``RBS``) ending 8 nt before every CDS start, on the gene's
strand. Feature 0 fires at the motif's centre (12 nt upstream of the start) when the
model reads the gene's strand; feature 1, the control, fires as often at shuffled
positions; features 2 and 3 are sparse noise. The atlas must name feature 0's motif and
landmark in its description, rank it first for RBS, and explain none of the others.
"""

import numpy as np
import scipy.sparse as sp

from dnatlas.annotation.features import Interval
from dnatlas.atlas.accumulate import AtlasContext, Chunk
from dnatlas.atlas.build import Builder
from dnatlas.atlas.columns import rows
from dnatlas.atlas.reader import Atlas
from dnatlas.atlas.store import write_atlas
from dnatlas.concepts.controls import shuffled_labels
from dnatlas.concepts.labels import from_intervals

MOTIF = "TAAGGAGGT"
L, CHUNK, HALO, F = 60_000, 4_000, 64, 4
CODE = {c: i for i, c in enumerate("ACGT")}


def planted_genome(rng):
    genome = rng.integers(0, 4, L).astype(np.uint8)
    motif = np.array([CODE[c] for c in MOTIF], dtype=np.uint8)
    ivs, centres = [], []
    pos = 100
    while pos < L - 800:
        length = 3 * int(rng.integers(100, 160))
        strand = int(rng.choice([1, -1]))
        start, end = pos, pos + length
        if strand > 0:
            site = (start - 17, start - 8)            # motif, then 8 nt, then the start codon
            genome[site[0]:site[1]] = motif
            centre = start - 12
        else:
            site = (end + 8, end + 17)
            genome[site[0]:site[1]] = (3 - motif)[::-1]
            centre = end - 1 + 12
        ivs += [Interval("chr", start, end, strand, "CDS"),
                Interval("chr", site[0], site[1], strand, "RBS")]
        centres.append((centre, strand))
        pos = end + int(rng.integers(60, 200))
    return genome, ivs, centres


def activations(rng, centres):
    acts = {s: np.zeros((L, F), dtype=np.float32) for s in (1, -1)}
    for centre, strand in centres:
        acts[strand][centre, 0] = 1.0
    for _ in centres:
        acts[int(rng.choice([1, -1]))][int(rng.integers(0, L)), 1] = 1.0
    for s in (1, -1):
        noise = rng.random((L, 2)) < 0.002
        acts[s][:, 2:] = noise * rng.random((L, 2)).astype(np.float32)
    return acts


def test_planted_feature_end_to_end(tmp_path):
    rng = np.random.default_rng(7)
    genome, ivs, centres = planted_genome(rng)
    acts = activations(rng, centres)
    labels = from_intervals(ivs, {"chr": L}, concepts=("CDS", "RBS"))
    context = AtlasContext(
        "sae:planted", F, {"chr": genome}, ["chr"], {"chr": 0}, intervals=ivs,
        settings={"thresholds": (0.0, 0.5), "top_k": 20},
        extra={"maxima": np.array([1.0, 1.0, 1.0, 1.0]),
               "label_sets": {"real": labels, "shuffled": shuffled_labels(labels, seed=1)},
               "decoder": rng.normal(size=(F, 8))})
    builder = Builder({"sae:planted": context})
    index = 0
    for strand, sign in (("+", 1), ("-", -1)):
        for start in range(0, L, CHUNK):
            end = min(L, start + CHUNK)
            lo, hi = max(0, start - HALO), min(L, end + HALO)
            chunk = Chunk("chr", start, end, strand, genome[lo:hi],
                          split="valid" if start < L // 2 else "test", index=index,
                          lo=lo, hi=hi, record_length=L)
            builder.feed(chunk, {"sae:planted": sp.csr_matrix(acts[sign][lo:hi])})
            index += 1
    tables = builder.finish()
    feats = {r["feature"]: r for r in rows(tables["features"])}
    planted, control = feats[0], feats[1]

    # the biology the planted feature was built with
    assert planted["best_landmark"] == "cds_start/sense"
    assert planted["landmark_offset"] == -12
    assert MOTIF in planted["top_motif"] or "AGGAGG" in planted["top_motif"]
    assert planted["best_concept"] == "RBS" and planted["best_f1"] > 0.9
    assert planted["explained"]
    text = planted["description"]
    assert "peaks 12 nt upstream of CDS starts on the sense strand" in text
    assert f"top motif {planted['top_motif']}" in text and "against RBS" in text
    # the shuffled-position control, and the noise, are explained by nothing
    for f in (1, 2, 3):
        assert feats[f]["best_landmark"] is None and feats[f]["top_motif"] is None
        assert not feats[f]["explained"], feats[f]["description"]
        assert feats[f]["score_unexplained"] > 0
    assert "no concept beyond shuffled" in control["description"] \
        or control["best_concept"] is None
    assert planted["score_unexplained"] == 0.0

    # through the store and the reader: first for its concept, found by its motif
    write_atlas(tmp_path / "atlas", tables, {"key": {}})
    atlas = Atlas.open(tmp_path / "atlas")
    best = atlas.best_for_concept("RBS")
    assert best[0]["feature"] == 0 and best[0]["f1"] - best[0]["f1_shuffled"] > 0.5
    assert any(h.get("feature") == 0 for h in atlas.search("AGGAGG"))
    page = atlas.feature("sae:planted", 0)
    assert {(r["landmark"], r["orientation"]) for r in page["landmarks"]} == {
        ("cds_start", "sense"), ("cds_start", "antisense"), ("cds_end", "sense"),
        ("cds_end", "antisense")}
    assert page["motif"]["n_sites"] >= 15
    rels = {r["relation"] for r in page["relations"]}
    assert "decoder_neighbour" in rels
    top = atlas.features("sae:planted", order="score_concept", limit=1)["rows"][0]
    assert top["feature"] == 0
    atlas.close()
