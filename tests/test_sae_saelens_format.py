"""SAELens folder format: round trips, cfg schema, and loading with sae_lens itself."""

import importlib.util
import json

import pytest
import torch
from safetensors.torch import load_file

from dnatlas.errors import InputError
from dnatlas.sae import build_sae, make_config
from dnatlas.sae.saelens_format import load_sae, save_sae

D, S = 8, 32
HAS_SAE_LENS = importlib.util.find_spec("sae_lens") is not None


def trained_like(arch, scale=0.37):
    """An SAE with non-trivial weights, biases, input scale and threshold."""
    cfg = make_config(arch, d_in=D, d_sae=S, k=4 if arch in ("topk", "batchtopk") else None,
                    hook_name="blocks.2.residual", model_name="hyenadna:toy", seed=7)
    sae = build_sae(cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        sae.W_enc.add_(0.1 * torch.randn(D, S, generator=g))
        sae.b_enc.copy_(0.1 * torch.randn(S, generator=g))
        sae.b_dec.copy_(torch.randn(D, generator=g))
        sae.set_input_scale(scale)
        if arch == "jumprelu":
            sae.threshold.copy_(0.2 * torch.rand(S, generator=g))
    if arch == "batchtopk":
        sae.forward_train(torch.randn(64, D, generator=g) / scale)
    return sae


def raw_inputs():
    return torch.randn(50, D, generator=torch.Generator().manual_seed(2)) * 3 + 1


@pytest.mark.parametrize("arch", ["relu", "topk", "batchtopk", "jumprelu"])
def test_round_trip(tmp_path, arch):
    sae = trained_like(arch)
    save_sae(sae, tmp_path)
    loaded = load_sae(tmp_path)
    assert loaded.cfg.arch == arch and loaded.cfg.hook_name == "blocks.2.residual"
    assert float(loaded.input_scale) == 1.0
    x = raw_inputs()
    torch.testing.assert_close(loaded.encode(x), sae.encode(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loaded(x)[0], sae(x)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch,saelens_arch", [("relu", "standard"), ("topk", "topk"),
                                               ("batchtopk", "jumprelu"), ("jumprelu", "jumprelu")])
def test_cfg_and_weight_names(tmp_path, arch, saelens_arch):
    save_sae(trained_like(arch), tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == saelens_arch
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"], cfg["device"]) == (D, S, "float32", "cpu")
    assert cfg["normalize_activations"] == "none" and cfg["apply_b_dec_to_input"] is True
    assert cfg["hook_name"] == cfg["metadata"]["hook_name"] == "blocks.2.residual"
    assert cfg["model_name"] == "hyenadna:toy" and cfg["metadata"]["hook_layer"] == 2
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")
    if arch == "topk":
        assert cfg["k"] == 4 and cfg["rescale_acts_by_decoder_norm"] is False
    weights = load_file(str(tmp_path / "sae_weights.safetensors"))
    expected = {"W_enc": (D, S), "b_enc": (S,), "W_dec": (S, D), "b_dec": (D,)}
    if saelens_arch == "jumprelu":
        expected["threshold"] = (S,)
    assert {k: tuple(v.shape) for k, v in weights.items()} == expected


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="cfg.json"):
        load_sae(tmp_path)
    save_sae(trained_like("relu"), tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg["d_sae"] = 99
    del cfg["metadata"]["dnatlas"]
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="shape"):
        load_sae(tmp_path)


@pytest.mark.skipif(not HAS_SAE_LENS, reason="sae_lens is not installed")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("arch", ["relu", "topk", "batchtopk", "jumprelu"])
def test_sae_lens_loads_our_folder(tmp_path, arch):
    from sae_lens import SAE

    ours = trained_like(arch)
    save_sae(ours, tmp_path)
    theirs = SAE.load_from_disk(str(tmp_path), device="cpu")
    assert theirs.cfg.metadata.hook_name == "blocks.2.residual"
    x = raw_inputs()
    with torch.no_grad():
        f_theirs = theirs.encode(x)
        torch.testing.assert_close(f_theirs, ours.encode(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(theirs.decode(f_theirs), ours.decode(f_theirs), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(theirs(x), ours(x)[0], atol=1e-5, rtol=1e-5)
        # exact on the folded weights: same operations
        folded = load_sae(tmp_path)
        assert torch.equal(theirs.encode(x), folded.encode(x))


@pytest.mark.skipif(not HAS_SAE_LENS, reason="sae_lens is not installed")
def test_we_load_a_sae_lens_saved_topk(tmp_path):
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    cfg = TopKTrainingSAEConfig(d_in=D, d_sae=S, k=3, rescale_acts_by_decoder_norm=True)
    theirs = TopKTrainingSAE(cfg)
    with torch.no_grad():
        theirs.W_dec.mul_(torch.linspace(0.5, 2, S)[:, None])
        theirs.b_enc.normal_()
    theirs.save_inference_model(str(tmp_path))
    ours = load_sae(tmp_path)
    x = raw_inputs()
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], theirs(x), atol=1e-5, rtol=1e-5)
