import math

import pytest
import torch

from dnatlas.architectures.dnatlas.activation import ThresholdSoLU, solu_norm, threshold


def test_threshold_matches_equation_1():
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    a, b = torch.tensor(4.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    ref = torch.where(x > 0, x, 0.01 * x) / (1 + torch.exp(-a * (x - b)))
    assert torch.allclose(threshold(x, a, b), ref)


def test_solu_norm_matches_equation_3_where_no_overflow():
    y = torch.randn(5, 32, dtype=torch.float64)
    gamma = torch.tensor(1.7, dtype=torch.float64)
    u = y * torch.exp(y)
    ref = gamma * u / torch.sqrt((u ** 2).mean(-1, keepdim=True))
    assert torch.allclose(solu_norm(y, gamma, eps=0.0), ref, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_large_activations_do_not_overflow(dtype):
    act = ThresholdSoLU(16)
    x = torch.tensor([[1000.0, 500.0, 3.0] + [0.0] * 13], dtype=dtype)
    y, z = act(x)
    assert torch.isfinite(z).all()
    assert z.dtype == torch.float32
    # the largest neuron dominates: e^500 suppression leaves only neuron 0
    assert z[0, 0].item() == pytest.approx(act.gamma.item() * math.sqrt(16), rel=1e-4)
    assert z[0, 1:].abs().max() < 1e-6
    z.sum().backward()  # gradients are finite too
    assert all(torch.isfinite(p.grad).all() for p in act.parameters())


def test_constraints_hold_for_any_raw_parameters():
    act = ThresholdSoLU(8)
    for p in act.parameters():
        p.data.fill_(-50.0)
    assert (act.a > 1).all() and (act.b > 0).all() and act.gamma > 0
    for p in act.parameters():
        p.data.fill_(50.0)
    assert (act.a > 1).all() and (act.b > 0).all() and act.gamma > 0


def test_output_has_rms_gamma():
    act = ThresholdSoLU(64)
    _, z = act(torch.randn(10, 64) * 3)
    rms = z.square().mean(-1).sqrt()
    assert torch.allclose(rms, act.gamma.detach().expand(10), rtol=1e-4)


def test_compiled_activation_matches_eager():
    from dnatlas.architectures.dnatlas import activation as A

    act = ThresholdSoLU(32)
    x = torch.randn(4, 7, 32, requires_grad=True)
    y0, z0 = act(x)
    (z0.square().sum() + y0.sum()).backward()
    g0 = x.grad.clone()
    x.grad = None
    A.compile_activation(True)
    try:
        y1, z1 = act(x)
        (z1.square().sum() + y1.sum()).backward()
    finally:
        A.compile_activation(False)
    assert torch.allclose(y0, y1, atol=1e-6) and torch.allclose(z0, z1, atol=1e-5)
    assert torch.allclose(g0, x.grad, atol=1e-4)
