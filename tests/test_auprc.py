import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from sklearn.metrics import precision_recall_curve as sk_pr_curve

from dnatlas.analysis.auprc import (
    LabelIndex,
    average_precision,
    average_precision_column,
    chance_rate,
    precision_recall_curve,
    score_keys,
)


def _labels(rng, n, rates):
    return np.stack([rng.random(n) < r for r in rates], axis=1)


def _sklearn_ap(scores, labels):
    return np.array([[average_precision_score(labels[:, t], scores[:, c])
                      for t in range(labels.shape[1])] for c in range(scores.shape[1])])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16, np.uint8])
def test_matches_sklearn_with_ties(dtype):
    rng = np.random.default_rng(0)
    n = 3000
    # few distinct values -> many ties; a sparse "neuron" with most values exactly zero
    scores = np.stack([
        rng.integers(0, 5, n),
        np.where(rng.random(n) < 0.9, 0, rng.integers(1, 100, n)),
        rng.integers(0, 200, n),
    ], axis=1).astype(dtype)
    labels = _labels(rng, n, [0.01, 0.3, 0.5, 0.9])
    labels[:, 0] |= scores[:, 1] > 50  # make one track learnable
    np.testing.assert_allclose(average_precision(scores, labels),
                               _sklearn_ap(scores, labels), rtol=1e-10)


def test_continuous_float32_and_negative_zero():
    rng = np.random.default_rng(1)
    n = 2000
    scores = rng.normal(size=(n, 4)).astype(np.float32)
    scores[:100, 0] = -0.0
    scores[100:200, 0] = 0.0
    labels = _labels(rng, n, [0.05, 0.5])
    np.testing.assert_allclose(average_precision(scores, labels), _sklearn_ap(scores, labels),
                               rtol=1e-10)
    s16 = scores.astype(np.float16)
    np.testing.assert_allclose(average_precision(s16, labels), _sklearn_ap(s16, labels),
                               rtol=1e-10)


def test_by_track_path_matches(monkeypatch):
    import dnatlas.analysis.auprc as auprc

    rng = np.random.default_rng(2)
    scores = rng.normal(size=(500, 2))
    labels = _labels(rng, 500, [0.1, 0.2, 0.6])
    expected = average_precision(scores, labels)
    monkeypatch.setattr(auprc, "_MAX_HIST", 0)
    np.testing.assert_allclose(average_precision(scores, labels), expected, rtol=1e-12)


def test_pooled_blocks_equal_concatenation():
    rng = np.random.default_rng(3)
    a, b = rng.random(700).astype(np.float16), rng.random(300).astype(np.float16)
    la, lb = _labels(rng, 700, [0.1, 0.4]), _labels(rng, 300, [0.1, 0.4])
    pooled = average_precision_column([(a, LabelIndex.from_labels(la)),
                                       (b, LabelIndex.from_labels(lb))])
    whole = average_precision(np.r_[a, b], np.r_[la, lb])[0]
    np.testing.assert_allclose(pooled, whole, rtol=1e-12)
    # float32 blocks share one ranking
    pooled32 = average_precision_column([(a.astype(np.float32), LabelIndex.from_labels(la)),
                                         (b.astype(np.float32), LabelIndex.from_labels(lb))])
    np.testing.assert_allclose(pooled32, whole, rtol=1e-12)


def test_no_positives_is_nan_and_chance_rate():
    labels = np.zeros((10, 2), dtype=bool)
    labels[:3, 1] = True
    ap = average_precision(np.arange(10.0), labels)
    assert np.isnan(ap[0, 0]) and ap[0, 1] == pytest.approx(average_precision_score(
        labels[:, 1], np.arange(10.0)))
    np.testing.assert_allclose(chance_rate(LabelIndex.from_labels(labels)), [0.0, 0.3])


def test_many_tracks_packed_beyond_64():
    rng = np.random.default_rng(4)
    labels = _labels(rng, 400, [0.3] * 70)
    index = LabelIndex.from_labels(labels)
    assert index.n_tracks == 70
    scores = rng.random((400, 1)).astype(np.float16)
    np.testing.assert_allclose(average_precision(scores, index)[0, :5],
                               _sklearn_ap(scores, labels[:, :5])[0], rtol=1e-10)


def test_score_keys_preserve_order():
    x = np.array([-np.inf, -2, -0.0, 0.0, 1e-7, 1, 65504, np.inf], dtype=np.float16)
    keys, n = score_keys(x)
    assert n == 65536
    assert np.all(np.diff(keys.astype(int)) >= 0)
    assert keys[2] == keys[3]  # -0 ties with +0
    with pytest.raises(ValueError):
        score_keys(np.array([np.nan, 1.0]))


def test_precision_recall_curve_matches_sklearn():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 30, 500).astype(np.float32)
    labels = rng.random(500) < 0.2
    for ours, theirs in zip(precision_recall_curve(scores, labels), sk_pr_curve(labels, scores)):
        np.testing.assert_allclose(ours, theirs)
