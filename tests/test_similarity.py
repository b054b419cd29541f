import numpy as np
import pytest
from scipy.stats import ortho_group, spearmanr

from dnatlas.analysis.gram import gram_matrix
from dnatlas.analysis.similarity import cka_from_grams, codon_pool, gram_spearman, linear_cka


@pytest.fixture
def reps():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 10))
    y = x @ rng.normal(size=(10, 6)) + 0.5 * rng.normal(size=(80, 6))
    return x, y


def test_cka_matches_hsic_definition(reps):
    x, y = reps
    assert linear_cka(x, y) == pytest.approx(cka_from_grams(x @ x.T, y @ y.T), rel=1e-10)
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert 0 < linear_cka(x, y) < 1


def test_cka_invariances(reps):
    x, y = reps
    q = ortho_group.rvs(10, random_state=1)
    ref = linear_cka(x, y)
    assert linear_cka(x @ q, y) == pytest.approx(ref, rel=1e-10)
    assert linear_cka(3.7 * x, 0.2 * y) == pytest.approx(ref, rel=1e-10)
    assert linear_cka(x + 5.0, y - 2.0) == pytest.approx(ref, rel=1e-10)  # centring
    # not invariant to anisotropic scaling
    assert linear_cka(x * np.arange(1, 11), y) != pytest.approx(ref, rel=1e-3)
    with pytest.raises(ValueError):
        linear_cka(x, y[:-1])


def test_gram_spearman_definition(reps):
    x, y = reps
    gx, gy = gram_matrix(x, center=True), gram_matrix(y, center=True)
    off = ~np.eye(80, dtype=bool)
    expected = spearmanr(gx[off], gy[off]).statistic  # all off-diagonal pairs
    assert gram_spearman(x, y) == pytest.approx(expected, abs=1e-6)
    assert gram_spearman(x, x) == pytest.approx(1.0)
    # invariant to per-position rescaling after centring? no: but to global scale yes
    assert gram_spearman(2 * x, y) == pytest.approx(gram_spearman(x, y), abs=1e-6)


def test_codon_pool():
    acts = np.arange(10 * 2).reshape(10, 2).astype(float)
    pooled = codon_pool(acts, frame=1)
    assert pooled.shape == (3, 2)
    np.testing.assert_allclose(pooled[0], acts[1:4].mean(0))
    np.testing.assert_allclose(codon_pool(acts, frame=1, reduce=2)[1], acts[6])
    rev = codon_pool(acts, frame=0, reduce=0, reverse=True)
    np.testing.assert_allclose(rev[0], acts[9])
    with pytest.raises(ValueError):
        codon_pool(acts, reduce="median")
