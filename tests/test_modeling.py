import pytest
import torch

from dnatlas.architectures.dnatlas import PRESETS, DNAtlas, DNAtlasConfig, triplet_rc_permutation
from dnatlas.genome.alphabet import reverse_complement_tokens


def _tokens(B, L, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 4, (B, L), generator=g)
    t[:, 5] = 4  # N
    t[:, 7:12] = 5  # MASK
    t[0, -3:] = 5
    return t


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_rc_equivariance_at_every_site_and_preset(preset):
    torch.manual_seed(0)
    model = DNAtlas(DNAtlasConfig.preset(preset)).eval()
    for block in model.blocks:  # random, non-trivial per-channel parameters
        for p in (block.act.a_raw.param, block.act.b_raw.param, block.norm.gain.param):
            p.data.normal_(0, 0.5)
    tokens = _tokens(1, 48 if preset in ("wide", "thin") else 200)
    sites = model.site_names()
    with torch.no_grad():
        fwd = model(tokens, output_activations=sites)
        rev = model(reverse_complement_tokens(tokens), output_activations=sites)
    P = triplet_rc_permutation()
    assert _rel(fwd.logits.flip(1)[..., P], rev.logits) < 1e-5
    for name in sites:
        perm = model.rc_channel_permutation(name)
        assert _rel(fwd.activations[name][..., perm].flip(1), rev.activations[name]) < 1e-5, name


def test_unshared_model_is_not_equivariant_and_has_twice_the_parameters():
    shared = DNAtlas(DNAtlasConfig.preset("tiny"))
    unshared = DNAtlas(DNAtlasConfig.preset("tiny", rcps=False))
    ratio = unshared.num_parameters() / shared.num_parameters()
    assert 1.99 < ratio <= 2.0
    tokens = _tokens(1, 64)
    with torch.no_grad():
        a = unshared(tokens).logits.flip(1)[..., triplet_rc_permutation()]
        b = unshared(reverse_complement_tokens(tokens)).logits
    assert _rel(a, b) > 1e-3


def test_forward_shapes_and_sites():
    cfg = DNAtlasConfig.preset("tiny")
    model = DNAtlas(cfg)
    out = model(_tokens(2, 33), output_activations=["embed", "blocks.1.neurons", "blocks.4.residual"])
    assert out.logits.shape == (2, 33, 64)
    assert out.activations["embed"].shape == (2, 33, cfg.d_model)
    assert out.activations["blocks.1.neurons"].shape == (2, 33, cfg.n_neurons)
    assert out.activations["blocks.4.residual"].shape == (2, 33, cfg.d_model)
    with pytest.raises(KeyError, match="unknown activation site"):
        model(_tokens(1, 8), output_activations=["blocks.9.neurons"])


def test_post_act_is_nonnegative_mostly_and_has_rms_gamma():
    model = DNAtlas(DNAtlasConfig.preset("tiny"))
    out = model(_tokens(1, 64), output_activations=["blocks.2.post_act"])
    z = out.activations["blocks.2.post_act"]
    rms = z.square().mean(-1).sqrt()
    assert torch.allclose(rms, model.blocks[2].act.gamma.detach().expand_as(rms), rtol=1e-3)


def test_receptive_field_is_exact():
    torch.manual_seed(0)
    model = DNAtlas(DNAtlasConfig(d_model=8, n_neurons=16, n_layers=3, dilations=(1, 2, 5))).double()
    R = model.receptive_field
    assert R == 4 * (1 + 2 + 5)
    tokens = _tokens(1, 200)
    changed = tokens.clone()
    changed[0, 100] = (changed[0, 100] + 1) % 4
    with torch.no_grad():
        diff = (model(tokens).logits - model(changed).logits).abs().amax(-1)[0]
    touched = torch.nonzero(diff > 0).squeeze(1)
    assert touched.min() == 100 - R and touched.max() == 100 + R


def test_intervention_replaces_a_site_downstream():
    model = DNAtlas(DNAtlasConfig.preset("tiny"))
    tokens = _tokens(1, 40)
    clean = model(tokens).logits
    same = model(tokens, intervene={"blocks.2.neurons": lambda y: y}).logits
    zeroed = model(tokens, intervene={"blocks.2.post_act": torch.zeros_like},
                   output_activations=["blocks.2.post_act"])
    assert torch.equal(clean, same)
    assert not torch.allclose(clean, zeroed.logits)
    assert torch.count_nonzero(zeroed.activations["blocks.2.post_act"]) == 0


def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(3)
    model = DNAtlas(DNAtlasConfig.preset("tiny", gate_activation="identity"))
    model.save_pretrained(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "model.safetensors"}
    loaded = DNAtlas.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    tokens = _tokens(2, 50)
    assert torch.equal(model.eval()(tokens).logits, loaded(tokens).logits)


def test_config_round_trip_and_presets():
    cfg = DNAtlasConfig.preset("wide")
    assert (cfg.d_model, cfg.n_layers, cfg.n_neurons, cfg.kernel_size) == (512, 12, 3072, 9)
    assert cfg.dilations == (1, 4, 16, 64, 128)
    assert DNAtlasConfig.preset("thin").n_neurons == 1024
    assert DNAtlasConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        DNAtlasConfig.preset("huge")
    with pytest.raises(ValueError):
        DNAtlasConfig(d_model=7)
