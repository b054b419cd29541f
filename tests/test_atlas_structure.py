"""The atlas's structure: RC partners, decoder neighbours, neuron loadings, meta-SAE."""

import numpy as np
import pytest

from dnatlas.atlas.accumulate import AtlasContext
from dnatlas.atlas.columns import rows
from dnatlas.atlas.structure import (
    decoder_neighbours,
    meta_relations,
    structure_finalizer,
)
from dnatlas.errors import InputError


def rc_symmetric_decoder(rng, d=8):
    """Pairs (w, w[P]) and one palindromic row (w = w[P]); P swaps channel i and d-1-i."""
    perm = np.arange(d)[::-1].copy()
    rows_ = []
    for _ in range(3):
        w = rng.normal(size=d)
        rows_ += [w, w[perm]]
    w = rng.normal(size=d)
    rows_.append(w + w[perm])
    return np.array(rows_), perm


def context(name, kind, n, extra, site="blocks.2.residual", control=False, settings=None):
    return AtlasContext(name, n, {}, [], {}, kind=kind, site=site, control=control,
                        extra=extra, settings=settings or {})


def relations_of(out, relation, dictionary=None):
    return [r for r in rows(out["relations"]) if r["relation"] == relation
            and (dictionary is None or r["dictionary"] == dictionary)]


def test_rc_partner_of_a_symmetric_decoder_and_the_layering():
    rng = np.random.default_rng(0)
    decoder, perm = rc_symmetric_decoder(rng)
    contexts = {"sae:x": context("sae:x", "sae", 7, {"decoder": decoder, "rc_permutation": perm}),
                "neurons:blocks.2.residual": context("neurons:blocks.2.residual", "neurons", 8,
                                                     {"rc_permutation": perm})}
    out = structure_finalizer({}, contexts)
    rc = {r["feature"]: (r["other_feature"], r["score"]) for r in relations_of(out, "rc_partner",
                                                                               "sae:x")}
    assert [rc[i][0] for i in range(7)] == [1, 0, 3, 2, 5, 4, 6]
    assert all(s == pytest.approx(1.0) for _, s in rc.values())
    neur = relations_of(out, "rc_partner", "neurons:blocks.2.residual")
    assert [r["other_feature"] for r in neur] == perm.tolist()


def test_decoder_neighbours_equal_brute_force():
    rng = np.random.default_rng(1)
    decoder = rng.normal(size=(40, 6))
    ids, cos = decoder_neighbours(decoder, top=10, block=7)
    unit = decoder / np.linalg.norm(decoder, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    want = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(cos, np.take_along_axis(sims, want, axis=1))


def test_neuron_loadings_and_meta_sae(tmp_path):
    decoder = np.zeros((4, 3))
    decoder[0] = [0, 0, 2]            # feature 0 is neuron 2
    decoder[1] = [1, -3, 0]           # feature 1 loads mostly (negatively) on neuron 1
    decoder[2] = [1, 0, 0]
    decoder[3] = [0, 0.5, 0.1]
    (tmp_path / "children.csv").write_text(
        "meta_latent,child,weight,child_concept,child_f1\n"
        "0,0,0.9,,\n0,1,0.5,,\n0,2,0.2,,\n1,2,0.7,,\n1,3,0.6,,\n")
    contexts = {"sae:x": context("sae:x", "sae", 4, {"decoder": decoder},
                                 settings={"meta_sae": str(tmp_path)}),
                "neurons:s": context("neurons:s", "neurons", 3, {}, site="blocks.2.residual"),
                "random-init sae:x": context("random-init sae:x", "sae", 4,
                                             {"decoder": decoder}, control=True)}
    out = structure_finalizer({}, contexts)
    s2n = relations_of(out, "sae_to_neuron", "sae:x")
    assert (s2n[0]["other_feature"], s2n[0]["score"]) == (2, pytest.approx(1.0))
    f1 = [r for r in s2n if r["feature"] == 1]
    assert f1[0]["other_feature"] == 1 and f1[0]["score"] == pytest.approx(-3 / np.sqrt(10))
    n2s = relations_of(out, "neuron_to_sae", "neurons:s")
    assert [r["other_feature"] for r in n2s if r["feature"] == 2][0] == 0
    assert all(r["other_dictionary"] == "sae:x" for r in n2s)      # not the control's
    parents = {r["feature"]: (r["other_feature"], r["score"])
               for r in relations_of(out, "meta_parent")}
    assert parents == {0: (0, 0.9), 1: (0, 0.5), 2: (1, 0.7), 3: (1, 0.6)}
    sib = [(r["feature"], r["other_feature"]) for r in relations_of(out, "meta_sibling")]
    assert (0, 1) in sib and (0, 2) in sib and (2, 3) in sib and (2, 0) not in sib
    assert all(r["dictionary"] == "sae:x" for r in relations_of(out, "meta_parent"))
    assert relations_of(out, "decoder_neighbour", "random-init sae:x")
    assert meta_relations("d", []) == []
    with pytest.raises(InputError):
        structure_finalizer({}, {"sae:x": context("sae:x", "sae", 4, {"decoder": decoder},
                                                  settings={"meta_sae": str(tmp_path / "no")})})


def test_the_biology_modules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys; import dnatlas.atlas.landmarks, dnatlas.atlas.gene_context, "
            "dnatlas.atlas.motifs, dnatlas.atlas.structure, dnatlas.atlas.describe, "
            "dnatlas.atlas.figures; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
