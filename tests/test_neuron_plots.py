import matplotlib

matplotlib.use("Agg")

import numpy as np

from dnatlas.analysis import neuron_plots
from tests.helpers import INTERVALS, save_png


def test_neuron_plots(tmp_path):
    rng = np.random.default_rng(2)
    acts = np.maximum(rng.normal(size=(400, 6)), 0)
    fig = neuron_plots.neuron_window_figure(acts, [0, 2], start=300, perm=np.array([3, 4, 5, 0, 1, 2]),
                                     intervals=INTERVALS, seqid="chr", labels={0: "start"})
    save_png(fig, tmp_path, "window.png")
    values = rng.random(100_000)
    fig = neuron_plots.manhattan_figure(values, rng.random(100_000), n_bins=1000,
                                 annotate=[(500, "ompG")], title="neuron 2654")
    assert len(fig.axes[0].collections[0].get_offsets()) == 1000
    save_png(fig, tmp_path, "manhattan.png")
    curve = (np.array([0.5, 1.0]), np.array([1.0, 0.0]), 0.8)
    save_png(neuron_plots.pr_curve_figure({"start": curve}, chance={"start": 0.001}), tmp_path, "pr.png")
    windows = [{"sequence": "ACGTACGTA", "values": rng.random(9), "label": "chr:10 +"}] * 3
    save_png(neuron_plots.top_windows_figure(windows, title="neuron 962"), tmp_path, "top.png")


def test_pr_figure_log_scale_with_chance_and_codon_match_lines():
    curve = (np.array([0.001, 0.01, 0.2, 1.0]), np.array([1.0, 0.5, 0.1, 0.0]), 0.036)
    fig = neuron_plots.pr_curve_figure({"neuron 0": curve}, chance=0.00045, reference=0.023,
                                       log=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] < 0.00045
    lines = {line.get_linestyle(): line.get_ydata()[0] for line in ax.get_lines()[1:]}
    assert lines == {"--": 0.00045, ":": 0.023}
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("chance" in t for t in texts) and any("exact codon match" in t for t in texts)
    fig.canvas.draw()  # the legend sits outside the axes: it covers no curve
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    two = neuron_plots.pr_curve_figure({"start": curve, "stop": curve},
                                       chance={"start": 0.001, "stop": 0.002},
                                       reference={"start": 0.02})
    assert len(two.axes[0].get_lines()) == 2 + 3 and two.axes[0].get_yscale() == "linear"


def test_repeated_windows_collapse_with_count():
    rng = np.random.default_rng(3)
    rrn = {"sequence": "ACGTACGTAAC", "values": rng.random(11)}
    windows = [{**rrn, "label": f"chr:{i} + rrl{c}"} for i, c in enumerate("ABCDEGH")]
    windows.insert(2, {"sequence": "TTTTTGGGGGA", "values": rng.random(11), "label": "other"})
    rows = neuron_plots.collapse_windows(windows)
    assert [r["count"] for r in rows] == [7, 1]
    fig = neuron_plots.top_windows_figure(windows)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["chr:0 + rrlA  \u00d77", "other"]
    ticks = dict(zip(ax.get_xticks(), [t.get_text() for t in ax.get_xticklabels()]))
    assert ticks[5] == "0" and "offset" in ax.get_xlabel()  # a position axis
    assert fig.axes[1].get_ylabel() == "activation"  # colour bar


def test_manhattan_gene_labels_do_not_overlap():
    rng = np.random.default_rng(4)
    values = rng.random(100_000)
    genes = [(1000 + 300 * i, f"gene{i:02d}") for i in range(30)] + [(90_000, "far")]
    fig = neuron_plots.manhattan_figure(values, None, n_bins=500,
                                        annotate=[*genes, (1200, "far")])
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    boxes = [Text.get_window_extent(t, renderer) for t in fig.axes[0].texts]  # not the lines
    assert 1 < len(boxes) < 31  # crowded labels stacked, the rest dropped
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    assert [t.get_text() for t in fig.axes[0].texts].count("far") == 1  # once, at its peak
    assert neuron_plots.label_levels([0, 1, 2, 10], [3, 3, 3, 3], levels=2) == [0, 1, None, 0]


def test_neuron_window_rows_name_layer_neuron_and_strands():
    acts = np.maximum(np.random.default_rng(5).normal(size=(200, 4)), 0)
    fig = neuron_plots.neuron_window_figure(acts, [0, 1], 100, np.array([2, 3, 0, 1]),
                                            labels={0: "start_codon_2nd"}, layer="layer 3")
    assert fig.axes[0].get_ylabel() == "layer 3 #0\nstart_codon_2nd"
    assert fig.axes[1].get_ylabel() == "layer 3 #1"
    assert len(fig.axes[0].get_yticks()) == 2  # a y scale
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["+ strand (forward)", "\u2212 strand (RC partner)"]
