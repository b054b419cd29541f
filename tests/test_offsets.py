import numpy as np
import pytest
from scipy.linalg import toeplitz

from dnatlas.analysis.gram import gram_matrix
from dnatlas.analysis.offsets import (
    offset_profile,
    offset_profile_acts,
    period3_power,
    periodicity3,
    toeplitz_score,
)


def _codon_acts(n=300, c=24, seed=0):
    """Activations with a distinct subspace per codon phase plus noise."""
    rng = np.random.default_rng(seed)
    base = np.abs(rng.normal(size=(3, c)))
    return np.abs(base[np.arange(n) % 3] + 0.3 * rng.normal(size=(n, c)))


def test_profile_matches_bruteforce_with_mask():
    rng = np.random.default_rng(0)
    g = rng.random((40, 40))
    g = (g + g.T) / 2
    mask = rng.random(40) < 0.6
    prof = offset_profile(g, max_offset=10, mask=mask)
    for k in range(11):
        vals = [g[i, i + k] for i in range(40 - k) if mask[i] and mask[i + k]]
        assert prof.count[k] == len(vals)
        assert prof.mean[k] == pytest.approx(np.mean(vals))


@pytest.mark.parametrize("center", [False, True])
def test_profile_from_acts_equals_gram_version(center):
    acts = _codon_acts(257)
    mask = np.arange(257) % 7 != 0
    ref = offset_profile(gram_matrix(acts, center=center), 20, mask)
    got = offset_profile_acts(acts.astype(np.float32), 20, mask, center=center, chunk=50)
    np.testing.assert_array_equal(got.count, ref.count)
    np.testing.assert_allclose(got.mean, ref.mean, atol=1e-5)


def test_periodicity_detects_codons_not_decay():
    codon = offset_profile(gram_matrix(_codon_acts()), 30)
    assert periodicity3(codon) > 0.05
    assert period3_power(codon) > 10
    decay = np.exp(-np.arange(31) / 5.0)
    assert abs(periodicity3(decay)) < 0.01
    assert periodicity3(np.linspace(1, 0, 31)) == pytest.approx(0, abs=1e-12)
    assert np.isnan(periodicity3(np.ones(3)))


def test_toeplitz_score():
    t = toeplitz(np.exp(-np.arange(60) / 4.0))
    assert toeplitz_score(t) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    noise = rng.random((200, 200))
    noise = (noise + noise.T) / 2
    assert toeplitz_score(noise) < 0.02
    blocks = np.kron(np.eye(4), np.ones((25, 25)))
    mixed = toeplitz_score(blocks)
    assert 0 < mixed < 1
    # matches the R^2 of regressing each upper-triangle entry on its diagonal's mean
    iu = np.triu_indices(100, 1)
    off = iu[1] - iu[0]
    vals = blocks[iu]
    means = np.bincount(off - 1, vals) / np.bincount(off - 1)
    r2 = 1 - ((vals - means[off - 1]) ** 2).sum() / ((vals - vals.mean()) ** 2).sum()
    assert mixed == pytest.approx(r2)
    assert np.isnan(toeplitz_score(np.ones((5, 5))))
    # a mask restricts to pairs inside it: block 0 alone is constant
    assert np.isnan(toeplitz_score(blocks, mask=np.arange(100) < 25))
