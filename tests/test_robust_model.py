"""The model API refuses bad sizes and bad tokens with clear messages."""

import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

MICRO = dict(d_model=16, n_neurons=32, n_layers=2, dilations=(1, 4))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DNAtlas(DNAtlasConfig(**MICRO)).eval()


@pytest.mark.parametrize("name", ["d_model", "n_neurons", "n_layers", "kernel_size"])
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_sizes_are_value_errors(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {value}"):
        DNAtlasConfig(**{**MICRO, name: value})


@pytest.mark.parametrize("dilations", [(), (0, 1), (1, -2)])
def test_bad_dilations(dilations):
    with pytest.raises(ValueError, match="dilations must be"):
        DNAtlasConfig(**{**MICRO, "dilations": dilations})


def test_unknown_preset_override_lists_valid_keys():
    with pytest.raises(ValueError, match="unknown model setting.*n_layrs; valid keys: .*n_layers"):
        DNAtlasConfig.preset("tiny", n_layrs=6)


def test_uint8_codes_are_accepted(model, one_torch_thread):
    codes = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 1]])
    expected = model(codes).logits
    torch.testing.assert_close(model(codes.to(torch.uint8)).logits, expected)
    torch.testing.assert_close(model(codes.to(torch.int32)).logits, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_float_tokens_are_refused(model, dtype):
    with pytest.raises(ValueError, match="integer nucleotide codes"):
        model(torch.zeros(1, 8, dtype=dtype))


@pytest.mark.parametrize("value", [7, -1, 6])
def test_out_of_range_token_names_the_codes(model, value):
    with pytest.raises(ValueError, match=rf"token {value} is not a nucleotide code "
                                         r"\(A=0 C=1 G=2 T=3 N=4 MASK=5\)"):
        model(torch.tensor([[0, 1, value, 3]]))


def test_empty_or_misshapen_input(model):
    with pytest.raises(ValueError, match="length 0"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        model(torch.zeros(8, dtype=torch.long))


def test_one_site_name_as_a_string(model, one_torch_thread):
    out = model(torch.tensor([[0, 1, 2, 3]]), output_activations="blocks.1.neurons")
    assert list(out.activations) == ["blocks.1.neurons"]
    assert out.activations["blocks.1.neurons"].shape == (1, 4, 32)


def test_save_pretrained_is_atomic_with_normal_permissions(model, tmp_path):
    import os
    import stat

    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json",
                                                                  "model.safetensors"]
    mask = os.umask(0)
    os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "m" / "model.safetensors").stat().st_mode)
    assert mode == 0o666 & ~mask
    assert DNAtlas.from_pretrained(tmp_path / "m").config.d_model == 16
