import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib import colors

from dnatlas.analysis import plots
from dnatlas.analysis.gram import gram_matrix, signed_parts
from dnatlas.analysis.offsets import offset_profile
from tests.helpers import INTERVALS, ToyAdapter, ToyRCModel, save_png


@pytest.fixture
def gram():
    rng = np.random.default_rng(0)
    return gram_matrix(np.abs(rng.normal(size=(300, 16))))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_feature_category():
    cats = [plots.feature_category(iv) for iv in INTERVALS]
    assert cats == ["CDS", None, "tRNA", "REP", "terminator", "CRISPR", "CDS"]
    assert plots.feature_category(INTERVALS[1], has_cds=False) == "CDS"


def test_gram_figure_with_tracks(gram, tmp_path):
    fig = plots.gram_figure(gram, start=350, intervals=INTERVALS, seqid="chr", title="layer 8")
    top = fig.axes[1]
    assert len(top.patches) == 5  # CDS, tRNA, REP, terminator, CRISPR in [350, 650)
    assert any(t.get_text() == "tRNA-Ile" for t in top.texts)
    save_png(fig, tmp_path, "gram.png")


def test_norms():
    assert isinstance(plots.gram_norm("power"), colors.PowerNorm)
    signed = plots.gram_norm("power", signed=True)
    assert np.asarray(signed(np.array([-0.25, 0.0, 0.25]))) == pytest.approx([0.25, 0.5, 0.75])
    with pytest.raises(ValueError):
        plots.gram_norm("log")


def test_panels_grid_phase_and_pooling(gram, tmp_path):
    centred = gram_matrix(np.random.default_rng(1).normal(size=(300, 8)), center=True)
    pos, neg = signed_parts(centred)
    fig = plots.gram_panels_figure({"raw": gram, "positive": pos, "negative": neg}, scale="power")
    save_png(fig, tmp_path, "fig3.png")
    fig = plots.gram_grid_figure({f"layer {i}": gram for i in range(1, 3)}, start=400,
                                 intervals=INTERVALS, seqid="chr", ncols=2)
    save_png(fig, tmp_path, "grid.png")
    save_png(plots.phase_gram_figure([gram[::3, ::3]] * 3, gene="cpoB"), tmp_path, "phase.png")
    big = np.ones((3000, 3000), dtype=np.float32)
    fig = plots.gram_panels_figure({"big": big})
    assert fig.axes[0].images[0].get_array().shape[0] == 1500


def test_offset_profile_plot(tmp_path):
    prof = offset_profile(np.eye(50), 20)
    save_png(plots.offset_profile_figure({"coding": prof, "raw": (prof.offsets, prof.mean)}),
             tmp_path, "offsets.png")


def test_figure_recipes(tmp_path):
    from dnatlas.analysis import figures

    model = ToyAdapter(ToyRCModel())
    seq = np.random.default_rng(3).integers(0, 4, 900).astype(np.uint8)
    cds = figures.find_feature(INTERVALS, "geneA")
    assert cds.type == "CDS"
    with pytest.raises(Exception):
        figures.find_feature(INTERVALS, "nope")
    fig = figures.region_gram_figure(model, seq, 300, 700, layer=2, intervals=INTERVALS,
                                     seqid="chr")
    save_png(fig, tmp_path, "region.png")
    fig = figures.codon_phase_figure(model, seq, cds, layer=1)
    assert fig.axes[0].images[0].get_array().shape == (100, 100)
    other = np.random.default_rng(4).normal(size=(100, 5))
    fig = figures.offset_similarity_figure(model, seq, cds, layer=1, other=other)
    assert len(fig.axes) == 8 and "Spearman" in fig._suptitle.get_text()
    save_png(figures.layer_grid_figure(model, seq, 300, 500, INTERVALS, "chr"), tmp_path, "g.png")
    save_png(figures.neuron_window(model, seq, 300, 700, [0, 3], layer=2, intervals=INTERVALS,
                                   seqid="chr"), tmp_path, "w.png")
