import json

import pytest

from dnatlas.cli import main


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    """The README's main job: store, brief training, evaluation, figures (several minutes)."""
    assert main(["demo", "--out", str(tmp_path), "--train-steps", "3", "--eval-windows", "4"]) == 0
    results = json.loads((tmp_path / "eval.json").read_text())
    assert "brief run" in results and any(k.startswith("k-mer") for k in results)
    # what the brief run is for, on screen and in its summary (3 steps lose to the k-mer model)
    assert "training engine" in results["brief run"]["purpose"]
    assert "does not beat the k-mer baseline" in results["brief run"]["note"]
    out = capsys.readouterr().out
    assert "training engine" in out and "nats" not in out
    assert (tmp_path / "figures" / "neurons" / "catalog.json").exists()
    assert list((tmp_path / "figures").glob("fig2a_*.png"))
    # the quick SAE, its atlas and the static explorer (issue 20)
    assert (tmp_path / "atlas" / "manifest.json").exists()
    assert list((tmp_path / "sae").glob("*/cfg.json"))
    index = tmp_path / "explorer" / "index.html"
    assert "data/index.js" in index.read_text()
    assert (tmp_path / "explorer" / "data" / "index.js").exists()
    assert str(index.resolve()) in out          # the file to open, printed
