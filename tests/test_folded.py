"""The RC-folded inference path (dnatlas.architectures.dnatlas.folded): every RC-shared matmul as two
half-size products in the folded channel order, equal to the full layer; the folded
activation (eager and compiled) equal to the standard one; the whole model equal to its
plain tiled path at every site, and RC-equivariant."""

import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig, activation, folded
from dnatlas.architectures.dnatlas.rcps import RCConv1d, RCLinear, rc_channels


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fold_is_an_involution_that_puts_partners_at_i_and_half_plus_i():
    x = torch.arange(8.0)
    f = folded.fold(x)
    assert f.tolist() == [0, 1, 2, 3, 7, 6, 5, 4]
    assert torch.equal(folded.unfold(f), x)
    pairs = f[:4] + f[4:]  # channel c pairs with C - 1 - c: every pair sums to 7
    assert (pairs == 7).all()


@pytest.mark.parametrize("d_in, d_out", [(8, 6), (64, 256), (256, 64)])
def test_halves_of_a_linear_map_give_its_folded_output(d_in, d_out):
    torch.manual_seed(0)
    layer = RCLinear(d_in, d_out, bias=True)
    layer.bias.param.data.normal_()
    x = torch.randn(5, 3, d_in)
    xf, h = folded.fold(x), d_in // 2
    s, d = folded.sum_and_difference(xf[..., :h], xf[..., h:], h)
    u, v = folded.halves_matmul(s, d, folded.linear_halves(layer.stored_weight),
                                layer.bias.param)
    with torch.no_grad():
        want = folded.fold(layer(x)).reshape(15, d_out)
    _close(torch.cat([u + v, u - v], 1), want)


@pytest.mark.parametrize("k, dilation", [(9, 4), (3, 1), (5, 16)])
def test_halves_of_a_convolution_give_its_folded_output(k, dilation):
    torch.manual_seed(1)
    d, n, L = 8, 12, 70
    conv = RCConv1d(d, n, k, dilation, bias=True)
    conv.bias.param.data.normal_()
    x = torch.randn(2, L, d)
    with torch.no_grad():
        want = folded.fold(conv(x)).reshape(2 * L, n)
    pad, h = conv.padding, d // 2
    xp = torch.nn.functional.pad(folded.fold(x), (0, 0, pad, pad))
    Lp = L + 2 * pad
    shape, strides = (2, L, k, h), (Lp * d, d, dilation * d, 1)
    first = xp.as_strided(shape, strides, 0)
    second = xp.as_strided(shape, strides, h).flip(2)
    s, dd = folded.sum_and_difference(first, second, k * h)
    u, v = folded.halves_matmul(s, dd, folded.conv_halves(conv.stored_weight),
                                conv.bias.param)
    _close(torch.cat([u + v, u - v], 1), want)


@pytest.mark.parametrize("compiled, want", [(False, "z"), (False, "yz"), (False, "hyz"),
                                            (True, "hyz")])  # one compile: ~10 s
def test_folded_activation_equals_the_standard_one(compiled, want):
    torch.manual_seed(2)
    n, rows = 16, 37
    a_half, b_half = 1.5 + torch.rand(n // 2), 0.1 + torch.rand(n // 2)
    a, b = torch.cat([a_half, a_half.flip(0)]), torch.cat([b_half, b_half.flip(0)])
    gamma = torch.tensor(1.3)
    g, c = torch.randn(rows, n) * 2, torch.randn(rows, n) * 2
    gf, cf = folded.fold(g), folded.fold(c)
    ug, vg = (gf[:, :8] + gf[:, 8:]) / 2, (gf[:, :8] - gf[:, 8:]) / 2
    uc, vc = (cf[:, :8] + cf[:, 8:]) / 2, (cf[:, :8] - cf[:, 8:]) / 2
    ref = activation.fused_activation(g, c, a, b, gamma, 0.01, 1e-6, True, "hyz")
    activation.compile_activation(compiled)
    try:
        got = activation.folded_activation(ug, vg, uc, vc, a_half, b_half, gamma, 0.01,
                                           1e-6, True, want)
    finally:
        activation.compile_activation(None)
    *sites, sz, dz = got
    for first, second, theirs in zip(sites[::2], sites[1::2],
                                     ref[3 - len(want):] if want != "z" else []):
        _close(folded.unfold(torch.cat([first, second], 1)), theirs)
    zf = folded.fold(ref[2])
    _close(sz, zf[:, :8] + zf[:, 8:])
    _close(dz, zf[:, :8] - zf[:, 8:])


def _model():
    torch.manual_seed(3)
    model = DNAtlas(DNAtlasConfig.preset("tiny", n_layers=3, dilations=(1, 4, 16))).eval()
    for block in model.blocks:
        for p in (block.act.a_raw.param, block.act.b_raw.param, block.norm.gain.param,
                  block.gate.bias.param, block.conv.bias.param, block.out.bias.param):
            p.data.normal_(0, 0.5)
    return model


def test_the_folded_model_equals_the_plain_path_at_every_site_and_is_rc_equivariant():
    model = _model()
    tokens = torch.randint(0, 4, (2, 333), generator=torch.Generator().manual_seed(4))
    sites = model.site_names()
    with torch.inference_mode():
        out = model(tokens, output_activations=sites)
        with folded.plain_inference():  # the plain tiled path (same weights)
            plain = model(tokens, output_activations=sites)
        for key in sites:
            _close(out.activations[key], plain.activations[key])
        _close(out.logits, plain.logits)
        rc_tokens = (3 - tokens).flip(1)  # A<->T, C<->G, reversed
        rc = model(rc_tokens, output_activations=sites)
        for key in sites:
            _close(rc_channels(rc.activations[key]), out.activations[key])


def test_a_residual_intervention_runs_folded_and_equals_the_plain_path():
    model = _model()
    tokens = torch.randint(0, 4, (2, 150), generator=torch.Generator().manual_seed(5))
    edit = {"blocks.1.residual": lambda x: x * 1.5 + 0.1}
    calls = []
    run_folded = folded.folded_block

    def counted(block, *args):
        calls.append(block.name)
        return run_folded(block, *args)

    with torch.inference_mode():
        folded.folded_block = counted
        try:
            out = model(tokens, output_activations=["blocks.2.neurons"], intervene=edit)
        finally:
            folded.folded_block = run_folded
        assert calls == ["blocks.0", "blocks.1", "blocks.2"]  # the edit kept the folded path
        with folded.plain_inference():
            plain = model(tokens, output_activations=["blocks.2.neurons"], intervene=edit)
    _close(out.activations["blocks.2.neurons"], plain.activations["blocks.2.neurons"])
    _close(out.logits, plain.logits)
