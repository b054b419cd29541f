"""The fused ReLU / JumpReLU SAE nodes equal plain autograd, gradients included."""

import pytest
import torch

from dnatlas.sae import build_sae, make_config
from dnatlas.sae.sparse_ops import JumpReLUCodes, JumpReLUFunction, ReLUCodes

B, D, S = 40, 6, 24


def _inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    W_enc = torch.randn(D, S, generator=g, dtype=torch.float64).requires_grad_()
    bias = (torch.randn(S, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    W_dec = torch.randn(S, D, generator=g, dtype=torch.float64).requires_grad_()
    b_dec = torch.randn(D, generator=g, dtype=torch.float64).requires_grad_()
    read = torch.randn(B, D, generator=g, dtype=torch.float64)  # a linear read-out of x_hat
    return x, W_enc, bias, W_dec, b_dec, read, g


def _grads(loss, params):
    return torch.autograd.grad(loss, params)


def test_relu_codes_equal_autograd():
    x, W_enc, bias, W_dec, b_dec, read, g = _inputs(0)
    dead = torch.tensor([2, 7, 11])
    w_sum = torch.randn(S, generator=g, dtype=torch.float64)
    w_dead = torch.randn(B, 3, generator=g, dtype=torch.float64)
    params = (W_enc, bias, W_dec, b_dec)
    x_hat, f_sum, pre_dead, l0 = ReLUCodes.apply(x, W_enc, bias, W_dec, b_dec, dead, True)
    ours = _grads((read * x_hat).sum() + f_sum @ w_sum + (w_dead * pre_dead).sum(), params)
    pre = x @ W_enc + bias
    f = pre.relu()
    ref_x_hat = f @ W_dec + b_dec
    torch.testing.assert_close(x_hat, ref_x_hat)
    torch.testing.assert_close(f_sum, f.sum(0))
    torch.testing.assert_close(pre_dead, pre[:, dead])
    assert float(l0) == pytest.approx(float((f > 0).sum(-1).double().mean()))
    ref = _grads((read * ref_x_hat).sum() + f.sum(0) @ w_sum + (w_dead * pre[:, dead]).sum(),
                 params)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_jumprelu_codes_equal_autograd_with_the_straight_through_threshold():
    x, W_enc, bias, W_dec, b_dec, read, g = _inputs(1)
    eps = 0.4  # wide: many entries in the kernel's window
    theta = torch.linspace(0.0, 1.0, S, dtype=torch.float64).requires_grad_()
    dead = torch.tensor([0, 5])
    w_l0 = torch.randn(B, generator=g, dtype=torch.float64)
    w_dead = torch.randn(B, 2, generator=g, dtype=torch.float64)
    params = (W_enc, bias, W_dec, b_dec, theta)
    x_hat, l0, pre_dead, fired = JumpReLUCodes.apply(x, W_enc, bias, W_dec, b_dec, theta, eps,
                                                     dead)
    ours = _grads((read * x_hat).sum() + (w_l0 * l0).sum() + (w_dead * pre_dead).sum(), params)
    pre = x @ W_enc + bias
    assert ((pre - theta).abs() < eps / 2).sum() > 20
    f, ref_l0 = JumpReLUFunction.apply(pre, theta, eps)
    ref_x_hat = f @ W_dec + b_dec
    torch.testing.assert_close(x_hat, ref_x_hat)
    torch.testing.assert_close(l0, ref_l0)
    assert torch.equal(fired, (pre > theta).any(0))
    ref = _grads((read * ref_x_hat).sum() + (w_l0 * ref_l0).sum() + (w_dead * pre[:, dead]).sum(),
                 params)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_jumprelu_sae_with_a_negative_threshold_uses_the_composite_path():
    sae = build_sae(make_config("jumprelu", d_in=D, d_sae=S)).double()
    x = torch.randn(B, D, dtype=torch.float64)
    with torch.no_grad():
        sae.threshold.copy_(torch.linspace(-0.5, 0.5, S, dtype=torch.float64))
    out = sae.forward_train(x, metrics=True)
    pre = sae.pre_activations(x)
    f = pre * (pre > sae.threshold)
    torch.testing.assert_close(out.terms["mse"], (f @ sae.W_dec + sae.b_dec - x).pow(2).sum(-1).mean())
    assert torch.equal(out.fired, (pre > sae.threshold).any(0))
