import numpy as np
import pytest

from dnatlas.analysis.gram import gram_matrix, phase_positions, signed_parts, unit_normalize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_nonnegative_gram_in_unit_interval_with_unit_diagonal():
    rng = np.random.default_rng(0)
    acts = np.maximum(rng.normal(size=(50, 16)), 0).astype(np.float16)
    acts[7] = 0  # an all-zero row has zero similarity
    g = gram_matrix(acts)
    assert g.shape == (50, 50) and g.dtype == np.float32
    assert g.min() >= 0 and g.max() <= 1
    np.testing.assert_allclose(g, g.T)
    diag = np.diag(g)
    assert diag[7] == 0 and np.allclose(np.delete(diag, 7), 1, atol=1e-6)
    # scale invariance per position
    np.testing.assert_allclose(gram_matrix(acts.astype(np.float32) * 3), g, atol=1e-6)


def test_centered_gram_matches_definition():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 8)) + 5
    g = gram_matrix(x, center=True)
    xc = x - x.mean(0)
    xc /= np.linalg.norm(xc, axis=1, keepdims=True)
    np.testing.assert_allclose(g, xc @ xc.T, atol=1e-5)
    assert g.min() < 0
    pos, neg = signed_parts(g)
    np.testing.assert_allclose(pos - neg, g)
    assert pos.min() >= 0 and neg.min() >= 0


def test_positions_and_size_guard():
    x = np.eye(6)
    g = gram_matrix(x, positions=np.array([0, 3]))
    np.testing.assert_allclose(g, np.eye(2))
    with pytest.raises(ValueError, match="too large"):
        gram_matrix(np.ones((11, 2)), max_length=10)
    assert np.allclose(np.linalg.norm(unit_normalize(x[:, :3]), axis=1), [1, 1, 1, 0, 0, 0])


def test_phase_positions():
    cp = np.full((2, 12), -1, dtype=np.int8)
    cp[0, 3:9] = [0, 1, 2, 0, 1, 2]
    assert phase_positions(cp, 0).tolist() == [3, 6]
    assert phase_positions(cp, 2).tolist() == [5, 8]
    # − strand gene: phase counted in the gene's direction (highest coordinate first)
    cp[1, 0:12] = [2, 1, 0] * 4
    assert phase_positions(cp, 0, strand=-1).tolist() == [2, 5, 8, 11]
    assert phase_positions(cp, 0).tolist() == [2, 5, 8, 11]  # row with more CDS
    assert phase_positions(cp[0], 1).tolist() == [4, 7]
    with pytest.raises(ValueError):
        phase_positions(cp, 3)


@pytest.mark.slow
def test_cli_gram(tmp_path, capsys):
    import json

    from dnatlas.cli import main
    from tests.helpers import write_inputs

    model, fasta, gff = write_inputs(tmp_path)
    common = ["--model", str(model), "--genome", str(fasta), "--region", "chrA:101-1300"]
    assert main(["gram", *common, "--layer", "1", "--annotations", str(gff), "--stats",
                 str(tmp_path / "s.json"), "--out", str(tmp_path / "g.png")]) == 0
    assert "toeplitz=" in capsys.readouterr().out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert {"toeplitz_score", "periodicity3", "profile_coding"} <= set(stats["blocks.1.neurons"])
    assert (tmp_path / "s.offsets.png").exists() and (tmp_path / "g.png").exists()
    assert main(["gram", *common, "--layer", "1", "--annotations", str(gff), "--phase", "all",
                 "--scale", "power", "--out", str(tmp_path / "p.png")]) == 0
    # from extracted activations: all layers, a sub-region
    main(["extract", "--model", str(model), "--genome", str(fasta), "--region", "chrA",
          "--site", "residual", "--out", str(tmp_path / "acts")])
    assert main(["gram", "--acts", str(tmp_path / "acts"), "--layers", "all", "--center",
                 "--region", "chrA:1-500", "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").exists()
    assert main(["gram", "--acts", str(tmp_path / "acts"), "--out", str(tmp_path / "x.png")]) == 2
    assert main(["gram", *common, "--layer", "1", "--phase", "0", "--out",
                 str(tmp_path / "x.png")]) == 2  # --phase without annotations
