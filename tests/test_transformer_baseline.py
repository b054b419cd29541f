"""Tests of dnatlas.architectures.transformer (bidirectional Transformer MLM baseline)."""

import json

import pytest
import torch
import torch.nn.functional as F

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
from dnatlas.architectures.transformer import (
    TransformerConfig,
    TransformerMLM,
    dnatlas_param_estimate,
    dnatlas_preset_params,
)
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import MASK, encode

TINY = TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_len=128)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and the test machine's cores are shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def random_model(config=TINY, seed=0):
    """A model with every weight random (the default init zeroes output projections)."""
    torch.manual_seed(seed)
    model = TransformerMLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def test_bidirectional():
    model = random_model()
    tokens = torch.randint(0, 6, (1, 40), generator=torch.Generator().manual_seed(1))
    base = model(tokens)[0, 20]
    for j in (5, 19, 21, 35):  # positions left and right of i = 20
        changed = tokens.clone()
        changed[0, j] = (changed[0, j] + 1) % 6
        assert not torch.allclose(model(changed)[0, 20], base), f"position {j} is invisible"


@pytest.mark.parametrize("mlp", ["relu2", "swiglu"])
def test_param_count_formula_is_exact(mlp):
    config = TransformerConfig(d_model=48, n_layers=3, n_heads=3, mlp_ratio=2.5, mlp=mlp)
    assert TransformerMLM(config).n_params == config.n_params


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_presets_match_built_dnatlas_within_5_percent(name):
    dnatlas = DNAtlas(DNAtlasConfig.preset(name))
    target = sum(p.numel() for p in dnatlas.parameters())
    config = TransformerConfig.preset(name)
    assert abs(TransformerMLM(config).n_params / target - 1) < 0.05
    assert config.n_layers == dnatlas.config.n_layers
    assert abs(dnatlas_preset_params(name)[0] / target - 1) < 0.02


def test_preset_overrides():
    assert TransformerConfig.preset("tiny", max_len=8192).max_len == 8192
    assert TransformerConfig.preset("small", n_layers=4).n_layers == 4
    explicit = TransformerConfig.preset("tiny", d_model=64)
    assert explicit.d_model == 64 and explicit.n_layers == DNAtlasConfig.preset("tiny").n_layers
    with pytest.raises(ValueError):
        TransformerConfig.preset("nonexistent")


def test_param_estimate_formula():
    # per block d * n * (kernel + 2), halved by RCPS
    assert dnatlas_param_estimate(128, 4, 512, 9) == 128 * 512 * 11 * 4 // 2
    assert dnatlas_param_estimate(128, 4, 512, 9, rcps=False) == 128 * 512 * 11 * 4


@pytest.mark.parametrize("target, hint, mlp", [(200_000, None, "relu2"), (700_000, 4, "relu2"),
                                               (5_800_000, 8, "relu2"), (3_000_000, 6, "swiglu"),
                                               (30_000_000, None, "swiglu")])
def test_matched_within_5_percent(target, hint, mlp):
    config = TransformerConfig.matched(target, hint, mlp=mlp)
    assert abs(config.n_params / target - 1) < 0.05
    if hint:
        assert config.n_layers == hint
    assert config.mlp == mlp and config.head_dim % 2 == 0


def test_flops_per_token():
    c = TransformerConfig(d_model=64, n_layers=2, n_heads=2)
    linear = 2 * (4 * 64 * 64 + 2 * 64 * 256) + 4 * 64
    assert c.flops_per_token(100, training=False) == 2 * linear + 2 * 4 * 100 * 64
    assert c.flops_per_token(100) == 3 * c.flops_per_token(100, training=False)
    assert c.flops_per_token(1000) > c.flops_per_token(100)


def test_loss_equals_brute_force_reference():
    model = random_model()
    g = torch.Generator().manual_seed(2)
    targets = torch.randint(0, 5, (3, 30), generator=g)  # includes N targets (skipped)
    mask = torch.rand(3, 30, generator=g) < 0.3
    tokens = targets.masked_fill(mask, MASK)
    logits = model(tokens)
    terms = [-F.log_softmax(logits[b, i], -1)[targets[b, i]]
             for b in range(3) for i in range(30) if mask[b, i] and targets[b, i] < 4]
    assert len(terms) > 10
    torch.testing.assert_close(model.loss(tokens, targets, mask), torch.stack(terms).mean())


def test_loss_without_positions_is_zero_and_differentiable():
    model = random_model()
    tokens = torch.zeros(1, 8, dtype=torch.long)
    loss = model.loss(tokens, tokens, torch.zeros(1, 8, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0


def test_predict_nucleotides_is_normalised_and_untrained_is_uniform():
    tokens = torch.randint(0, 6, (2, 50))
    logp = random_model().predict_nucleotides(tokens)
    assert logp.shape == (2, 50, 4) and logp.dtype == torch.float32
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, 50))
    fresh = TransformerMLM(TINY).predict_nucleotides(tokens)  # zero-initialised head
    torch.testing.assert_close(fresh, torch.full((2, 50, 4), -torch.log(torch.tensor(4.0))))


def test_bf16_autocast_trains():
    model = random_model()
    tokens = torch.randint(0, 6, (2, 40))
    mask = torch.rand(2, 40) < 0.3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(tokens, tokens.clamp(max=3), mask)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_rejects_sequences_longer_than_max_len():
    with pytest.raises(ValueError):
        TransformerMLM(TINY)(torch.zeros(1, TINY.max_len + 1, dtype=torch.long))


def test_logit_softcap_bounds_logits():
    config = TransformerConfig(d_model=32, n_layers=1, n_heads=2, logit_softcap=2.0)
    logits = random_model(config)(torch.randint(0, 6, (2, 20)))
    assert logits.abs().max() < 2.0


def test_save_load_round_trip_is_bit_exact(tmp_path):
    config = TransformerConfig(d_model=32, n_layers=2, n_heads=4, mlp="swiglu",
                               logit_softcap=15.0, max_len=64)
    model = random_model(config)
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"]
    loaded = TransformerMLM.from_pretrained(tmp_path / "m")
    assert loaded.config == config
    ref, new = model.state_dict(), loaded.state_dict()
    assert ref.keys() == new.keys()
    for k in ref:
        assert torch.equal(ref[k], new[k]), k
    tokens = torch.randint(0, 6, (2, 64))
    assert torch.equal(model(tokens), loaded(tokens))


def test_from_pretrained_reports_bad_folders(tmp_path):
    with pytest.raises(InputError):
        TransformerMLM.from_pretrained(tmp_path / "missing")
    random_model().save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "model_type": "other"}))
    with pytest.raises(InputError):
        TransformerMLM.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "d_model": 64}))
    with pytest.raises(InputError):
        TransformerMLM.from_pretrained(tmp_path / "m")


def test_tiny_model_overfits_repeated_sequence():
    """A period-7 repeat: every masked base is visible 7 positions away."""
    torch.manual_seed(0)
    model = TransformerMLM(TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_len=64))
    seq = torch.from_numpy(encode("ACGTTGC" * 10)[:64].astype("int64"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    targets = seq.repeat(16, 1)
    for _ in range(150):
        mask = torch.rand(targets.shape, generator=g) < 0.15
        loss = model.loss(targets.masked_fill(mask, MASK), targets, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    mask = torch.rand(targets.shape, generator=g) < 0.15
    with torch.no_grad():
        final = model.loss(targets.masked_fill(mask, MASK), targets, mask).item()
    assert final < 0.05, final
