"""Tests of dnatlas.architectures.kmer.model (bidirectional k-mer context model)."""

import bisect
from collections import defaultdict

import numpy as np
import pytest
import torch

from dnatlas.architectures.kmer import model as kmer
from dnatlas.architectures.kmer.counts import context_code
from dnatlas.architectures.kmer.model import KmerContextModel
from dnatlas.architectures.kmer.selection import evaluate_masked, masked_batches, select_k
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import MASK, N, encode, reverse_complement


def brute_force_counts(seqs, k, strand_symmetric):
    """{order: {context code: counts (4,)}} by looping over every position and order."""
    counts = [defaultdict(lambda: np.zeros(4, dtype=np.int64)) for _ in range(k + 1)]
    strands = [s for x in seqs for s in ([x, reverse_complement(x)] if strand_symmetric else [x])]
    for x in strands:
        for p in range(len(x)):
            if x[p] >= 4:
                continue
            for j in range(k + 1):
                if p - j < 0 or p + j >= len(x):
                    break
                left, right = x[p - j:p], x[p + 1:p + j + 1]
                if (left >= 4).any() or (right >= 4).any():
                    break
                counts[j][context_code(left, right)][x[p]] += 1
    return counts


def as_dict(model, order):
    ctx, cnt = model.context_counts(order)
    return {int(c): row for c, row in zip(ctx, cnt)}


def markov_chain(rng, order, length, alpha=0.3):
    """Sequence from a random order-``order`` Markov chain with sharp transitions."""
    cum = rng.dirichlet([alpha] * 4, size=4 ** order).cumsum(axis=1)[:, :3].tolist()
    u = rng.random(length).tolist()
    out, state, mod = [], 0, 4 ** order
    for i in range(length):
        b = bisect.bisect(cum[state], u[i])
        out.append(b)
        state = (state * 4 + b) % mod
    return np.array(out, dtype=np.uint8)


# ---------------------------------------------------------------------- counting


@pytest.mark.parametrize("strand_symmetric", [False, True])
def test_counts_match_brute_force(monkeypatch, strand_symmetric):
    # Tiny chunks so that chunk boundaries in fit() and the order aggregation are exercised.
    monkeypatch.setattr(kmer, "_FIT_CHUNK", 37)
    monkeypatch.setattr(kmer, "_AGG_CHUNK", 5)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, 400).astype(np.uint8)
    x[50] = N
    x[120:124] = N
    x[300] = MASK  # MASK in training data breaks windows like N
    seqs = [x, encode("ACGTA"), encode(""), encode("NNACN")]
    model = KmerContextModel(3, strand_symmetric=strand_symmetric).fit(seqs)
    expected = brute_force_counts([np.minimum(s, N) for s in seqs], 3, strand_symmetric)
    for j in range(4):
        got = as_dict(model, j)
        assert set(got) == set(expected[j])
        for c, row in expected[j].items():
            np.testing.assert_array_equal(got[c], row)
    assert model.n_positions == sum(int((np.minimum(s, N) < 4).sum()) for s in seqs)


def test_truncated_equals_fresh_fit():
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, 4, 3000).astype(np.uint8) for _ in range(2)]
    big = KmerContextModel(4).fit(seqs)
    small = KmerContextModel(2).fit(seqs)
    view = big.truncated(2)
    for j in range(3):
        for a, b in zip(view.context_counts(j), small.context_counts(j)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(view.discounts, small.discounts)
    tokens = torch.from_numpy(seqs[0][:500].astype(np.int64)).reshape(5, 100)
    torch.testing.assert_close(view.predict_nucleotides(tokens),
                               small.predict_nucleotides(tokens), rtol=0, atol=0)


def test_invalid_codes_raise():
    with pytest.raises(ValueError):
        KmerContextModel(2).fit([np.array([0, 1, 7], dtype=np.uint8)])
    model = KmerContextModel(1).fit([encode("ACGTACGT")])
    with pytest.raises(ValueError):
        model.predict_nucleotides(torch.tensor([[0, 1, 6]]))


# ---------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("smoothing", ["absolute", "witten_bell"])
def test_probabilities_sum_to_one(smoothing):
    rng = np.random.default_rng(3)
    model = KmerContextModel(4, smoothing=smoothing).fit([rng.integers(0, 4, 5000)])
    tokens = torch.from_numpy(rng.integers(0, 6, (3, 200)))  # A C G T N MASK everywhere
    logp = model.predict_nucleotides(tokens)
    assert logp.shape == (3, 200, 4) and logp.dtype == torch.float32
    assert torch.isfinite(logp).all()
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3, 200), rtol=0, atol=1e-5)


@pytest.mark.parametrize("smoothing", kmer.SMOOTHINGS)
def test_backoff_when_context_unseen(smoothing):
    model = KmerContextModel(2, smoothing=smoothing).fit([encode("ACGT" * 50)])
    query = torch.from_numpy(encode("TCGTCACACA").astype(np.int64))[None]
    full = model.predict_proba(query.numpy())[0]
    order1 = model.truncated(1).predict_proba(query.numpy())[0]
    order0 = model.truncated(0).predict_proba(query.numpy())[0]
    # Centre of TCGTC: (C, T) was seen around G, (T ... C) never -> order 1 decides.
    np.testing.assert_allclose(full[2], order1[2], rtol=0, atol=1e-12)
    assert full[2].argmax() == 2 and full[2, 2] > 0.85
    assert not np.allclose(order1[2], order0[2])
    # Centre of CAC: (C, C) never seen around anything -> base composition.
    np.testing.assert_allclose(full[7], order0[7], rtol=0, atol=1e-12)


def test_masked_neighbours_are_marginalised():
    rng = np.random.default_rng(4)
    x = markov_chain(rng, 1, 4000)
    model = KmerContextModel(1, smoothing="absolute", max_marginal=1,
                             strand_symmetric=False).fit([x])
    tokens = np.array([[0, MASK, 2, 3, 1]])  # predict position 2: left masked, right = T
    got = model.predict_proba(tokens)[0, 2]
    ctx, cnt = model.context_counts(1)
    table = dict(zip(ctx.tolist(), cnt))
    counts = sum(table.get(context_code([l], [3]), np.zeros(4)) for l in range(4))
    c0 = model.context_counts(0)[1][0]
    d0, d1 = model.discounts
    p0 = (np.maximum(c0 - d0, 0) + d0 * np.count_nonzero(c0) * 0.25) / c0.sum()
    expected = (np.maximum(counts - d1, 0) + d1 * np.count_nonzero(counts) * p0) / counts.sum()
    np.testing.assert_allclose(got, expected, rtol=1e-12)

    # With max_marginal=0 a masked neighbour stops the window: back off to order 0.
    plain = KmerContextModel(1, smoothing="absolute", max_marginal=0,
                             strand_symmetric=False).fit([x])
    np.testing.assert_allclose(plain.predict_proba(tokens)[0, 2], p0, rtol=1e-12)


@pytest.mark.parametrize("smoothing, alpha", [("absolute", 1.0), ("witten_bell", 1.0),
                                              ("dirichlet", 1.0)])
def test_deterministic_rule_gives_near_zero_cross_entropy(smoothing, alpha):
    """Triplets (a, b, f(b, c)) with a, b, c random in {A, C} and f in {G, T}."""
    def make(rng, n_triplets):
        x = rng.choice(np.array([0, 1], dtype=np.uint8), size=3 * n_triplets + 1)
        # the checksum at 3i+2 depends on both its neighbours (3i+1 and 3i+3)
        x[2::3] = np.where(x[1:-1:3] == x[3::3], 2, 3)
        return x

    rng = np.random.default_rng(5)
    train, test = make(rng, 10_000), make(rng, 1000)
    tokens = torch.from_numpy(test.astype(np.int64))[None]
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[0, 2::3] = True
    mask[0, -1] = False
    inputs = tokens.masked_fill(mask, MASK)
    for strand_symmetric in (False, True):
        model = KmerContextModel(2, smoothing=smoothing, alpha=alpha,
                                 strand_symmetric=strand_symmetric).fit([train])
        score = evaluate_masked(model, [(inputs, tokens, mask)])
        assert score.n == 1000
        assert score.bits_per_nt < 0.02 and score.accuracy == 1.0
    # Without context (k = 0) the checksum base is a coin flip between G and T.
    score = evaluate_masked(model.truncated(0), [(inputs, tokens, mask)])
    assert score.bits_per_nt > 1.0


# ---------------------------------------------------------------------- selection, files


def sparse_masking(spacing=9, seed=0):
    """Masks every ``spacing``-th position (random phase per row): no masked neighbours."""
    g = torch.Generator().manual_seed(seed)

    def mask_fn(tokens):
        phase = torch.randint(spacing, (tokens.shape[0], 1), generator=g)
        return (torch.arange(tokens.shape[1])[None] % spacing) == phase
    return mask_fn


@pytest.mark.parametrize("order, n_train", [(1, 40_000), (2, 150_000), (3, 150_000)])
def test_select_k_finds_markov_blanket(order, n_train):
    """In an order-m Markov chain a base depends on m bases each side: the best k is m.

    Masks are isolated (a masked neighbour would widen the useful context).
    """
    chain = markov_chain(np.random.default_rng(10 + order), order, n_train + 50_000)
    train, val = [chain[:n_train]], [chain[n_train:]]
    result = select_k(train, val, ks=[0, 1, 2, 3, 4], masking_fn=sparse_masking(),
                      seq_len=1000, strand_symmetric=False)
    assert result.best_k == order, result.bits_per_nt
    assert result.n_scored > 5000
    assert result.model.k == order and result.model.alpha == result.best_alpha
    assert result.bits_per_nt[0] > result.bits_per_nt[order]
    # The returned model reproduces its validation score on the same masking.
    again = evaluate_masked(result.model, masked_batches(val, sparse_masking(), seq_len=1000))
    assert again.n == result.n_scored
    assert again.bits_per_nt == pytest.approx(result.bits_per_nt[order], rel=1e-5)


def test_masked_batches_shapes_and_tuple_masking():
    seqs = [np.arange(2500) % 4, np.arange(700) % 5]
    def masking(tokens):
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        mask[:, ::10] = True
        return tokens.masked_fill(mask, MASK), mask
    batches = list(masked_batches(seqs, masking, seq_len=1000, batch_size=2))
    assert [tuple(b[0].shape) for b in batches] == [(2, 1000), (1, 500), (1, 700)]
    inputs, targets, mask = batches[0]
    assert (inputs[mask] == MASK).all() and (inputs[~mask] == targets[~mask]).all()


def test_select_k_with_markov_masking_numpy_masks():
    """The project's Markov masking returns numpy masks; select_k takes them as they are."""
    from dnatlas.architectures.dnatlas.masking import MarkovMasking

    masking, seeds = MarkovMasking(), iter(range(10**6))
    chain = markov_chain(np.random.default_rng(7), 2, 60_000)
    result = select_k([chain[:50_000]], [chain[50_000:]], ks=[0, 2],
                      masking_fn=lambda t: masking.mask_batch(t.shape[1], [next(seeds) for _ in t]),
                      seq_len=500, alphas=[4.0])
    assert result.best_k == 2 and result.best_alpha == 4.0 and result.n_scored > 500


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    model = KmerContextModel(7, smoothing="witten_bell", alpha=3.0, max_marginal=1).fit(
        [rng.integers(0, 4, 5000)])
    model.save(tmp_path / "kmer")
    loaded = KmerContextModel.load(tmp_path / "kmer")
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.discounts, model.discounts)
    tokens = torch.from_numpy(rng.integers(0, 6, (2, 300)))
    torch.testing.assert_close(loaded.predict_nucleotides(tokens),
                               model.predict_nucleotides(tokens), rtol=0, atol=0)
    with pytest.raises(InputError):
        KmerContextModel.load(tmp_path / "missing")
    (tmp_path / "kmer" / "counts.npz").write_bytes(b"not a zip file")
    with pytest.raises(InputError):
        KmerContextModel.load(tmp_path / "kmer")
