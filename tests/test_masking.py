import numpy as np
import pytest
from scipy import stats

from dnatlas.architectures.dnatlas.masking import MarkovMasking


def _runs(values: np.ndarray, state: bool) -> np.ndarray:
    """Lengths of maximal runs equal to ``state`` that do not touch the ends."""
    edges = np.flatnonzero(np.diff(values.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [values.size]])
    lengths = np.diff(bounds)
    starts_with = values[bounds[:-1]]
    inner = np.ones_like(lengths, dtype=bool)
    inner[[0, -1]] = False
    return lengths[(starts_with == state) & inner]


def test_fraction_masked_and_eligible_match_targets():
    m = MarkovMasking()
    rng = np.random.default_rng(0)
    elig = np.stack([m.eligible(4096, rng) for _ in range(1000)])
    masks = m.mask_batch(4096, [(7, i) for i in range(1000)])
    assert abs(elig.mean() - 0.7) < 0.02
    assert abs(masks.mean() - 0.15) < 0.006
    assert m.mask_probability == pytest.approx(0.15 / 0.7)


@pytest.mark.parametrize("mu", [1.0, 10.0, 300.0])
def test_run_lengths_are_geometric_with_the_drawn_mean(mu):
    m = MarkovMasking()
    rng = np.random.default_rng(1)
    values = m.eligible(3_000_000, rng, mean_ineligible_run=mu)
    inel = _runs(values, False)
    el = _runs(values, True)
    assert inel.mean() == pytest.approx(mu, rel=0.06)
    assert el.mean() == pytest.approx(mu * 0.7 / 0.3, rel=0.06)
    assert values.mean() == pytest.approx(0.7, abs=0.02)


def test_run_mean_is_log_uniform_over_range():
    m = MarkovMasking()
    rng = np.random.default_rng(2)
    logs = np.log([m.draw_run_mean(rng) for _ in range(4000)])
    assert stats.kstest(logs, "uniform", args=(0, np.log(1024))).pvalue > 1e-3


def test_masking_is_seeded_and_per_window():
    m = MarkovMasking()
    a = m.mask_batch(512, [(3, 0), (3, 1)])
    b = m.mask_batch(512, [(3, 1)])
    assert np.array_equal(a[1], b[0])  # a window's mask does not depend on its batch
    assert not np.array_equal(a[0], a[1])


def test_parameters_are_validated():
    with pytest.raises(ValueError):
        MarkovMasking(eligible_fraction=0.1, mask_rate=0.15)
    with pytest.raises(ValueError):
        MarkovMasking(run_length_range=(0.5, 10))
