import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib import colors

from dnatlas.analysis import plots
from dnatlas.analysis.gram import gram_matrix, signed_parts
from dnatlas.analysis.offsets import offset_profile
from dnatlas.annotation.intervals import Interval
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
    assert fig.axes[0].images[0].get_array().shape[0] == 1000  # 3x3 blocks: 1,024 px


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


def test_gram_map_has_labelled_colorbar_legend_and_one_based_axes(gram):
    fig = plots.gram_figure(gram, start=350, intervals=INTERVALS, seqid="chr")
    ax, cax = fig.axes[0], fig.axes[3]
    assert cax.get_ylabel() == plots.CBAR_LABEL
    assert ax.get_xlim() == (350.5, 650.5)  # 0-based [350, 650) = 1-based 351..650
    assert "1-based" in ax.get_xlabel() and "chr" in ax.get_xlabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["CDS", "tRNA", "REP", "terminator", "CRISPR"]
    # at least one pixel per nucleotide
    assert ax.get_position().width * fig.get_figwidth() * fig.dpi >= len(gram)
    grid = plots.gram_grid_figure({"layer 1": gram, "layer 2": gram}, start=350,
                                  intervals=INTERVALS, seqid="chr")
    assert any(a.get_ylabel() == plots.CBAR_LABEL for a in grid.axes) and grid.legends


def test_panels_have_one_pixel_per_nucleotide_and_tracks():
    gram = np.eye(645, dtype=np.float32)
    fig = plots.gram_panels_figure({"a": gram, "b": gram}, scale="power", window=(1000, 1645),
                                   intervals=[Interval("chr", 1000, 1645, 1, "CDS", "adk", {})],
                                   seqid="chr", title="adk")
    maps = [a for a in fig.axes if a.images and a.get_title() == ""]
    assert len(maps) == 2
    for ax in maps:
        assert ax.get_position().width * fig.get_figwidth() * fig.dpi >= 645
    assert any("adk" == t.get_text() for a in fig.axes for t in a.texts)  # the track
    assert sum("power scale" in a.get_ylabel() for a in fig.axes) == 2  # two colour bars
    assert fig.legends


def test_save_figure_is_atomic(gram, tmp_path):
    path = save_png(plots.gram_figure(gram), tmp_path, "map.png")
    before = path.read_bytes()
    fig = plots.gram_figure(gram)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    fig.savefig = broken
    with pytest.raises(RuntimeError):
        plots.save_figure(fig, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]  # no temporary file left


def test_windows_are_strand_aware_and_checked():
    from dnatlas.analysis import figures

    plus = Interval("chr", 100, 200, 1, "CDS", "p", {})
    minus = Interval("chr", 300, 400, -1, "CDS", "m", {})
    assert figures.flank(plus, upstream=50, downstream=10) == (50, 210)
    assert figures.flank(minus, upstream=50, downstream=10) == (290, 450)
    assert figures.between(minus, plus, pad=5) == (195, 305)
    figures.check_window(150, 160, [plus])
    figures.check_window(90, 210, [plus], contain=True)
    with pytest.raises(ValueError, match="does not overlap m"):
        figures.check_window(150, 300, [plus, minus], "fig", seqid="chr")
    with pytest.raises(ValueError, match="does not contain p"):
        figures.check_window(150, 300, [plus], contain=True)
    assert figures.layer_caption("blocks.2.neurons") == "layer 2 (blocks.2.neurons)"  # 0-based


def test_crispr_array_found_by_repeats():
    from dnatlas.genome.alphabet import encode
    from dnatlas.pipelines.figures import _crispr_array

    rng = np.random.default_rng(5)

    def random_dna(n):
        return "".join("ACGT"[i] for i in rng.integers(0, 4, n))

    repeat = "GAGTTCCCCGCGCCAGCGGGGATAAACCG"
    gap = random_dna(40) + "".join(repeat + random_dna(32) for _ in range(4)) + random_dna(40)
    text = random_dna(100) + gap + random_dna(100)
    seq = encode(text)
    left = Interval("chr", 0, 100, 1, "CDS", "iap", {})
    right = Interval("chr", 100 + len(gap), len(text), -1, "CDS", "ygbF", {})
    (name, start, end), how = _crispr_array([], "chr", seq, left, right)
    assert start == 140 and end >= 140 + 3 * (len(repeat) + 32) and "4 copies" in how
    annotated = Interval("chr", 150, 300, 0, "repeat_region", "", {"rpt_family": "CRISPR"})
    assert _crispr_array([annotated], "chr", seq, left, right)[0] == ("CRISPR array", 150, 300)
    plain = encode(random_dna(len(text)))
    with pytest.raises(ValueError, match="no CRISPR array"):
        _crispr_array([], "chr", plain, left, right)


def test_report_windows_hit_their_features():
    """fig2b lies between iap and ygbF (not inside ygbT/cas1), over the CRISPR-I repeats."""
    from dnatlas import bundled
    from dnatlas.analysis import figures
    from dnatlas.annotation.intervals import load_annotations
    from dnatlas.genome.readers import read_records
    from dnatlas.pipelines.figures import _crispr_array

    intervals = load_annotations(bundled.annotation_path())
    record = next(iter(read_records(bundled.genome_path("ecoli_k12_mg1655"))))
    iap, cas2, cas1 = (figures.find_feature(intervals, n) for n in ("iap", "ygbF", "ygbT"))
    start, end = figures.between(iap, cas2, pad=100)
    assert cas2.strand < 0 and end <= cas1.start  # not inside cas1
    (_, lo, hi), how = _crispr_array(intervals, record.id, record.seq, iap, cas2)
    assert start < lo < hi < end and "copies" in how
    figures.check_window(start, end, [("CRISPR", lo, hi), iap, cas2])
