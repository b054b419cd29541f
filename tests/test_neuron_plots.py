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
