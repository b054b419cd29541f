"""The sparse training path of the ReLU / JumpReLU SAEs (SparseCodes) equals the dense one.

Both branches (``sparse_below`` 0: dense, 1: sparse) are checked against plain autograd at
several densities of active entries, dead-feature loss included, and a short Adam run gives
the same parameters on either branch.
"""

import pytest
import torch

from dnatlas.sae import build_sae, make_config
from dnatlas.sae.sparse_ops import JumpReLUFunction, SparseCodes

B, D, S = 48, 8, 64
DENSITIES = (0.02, 0.1, 0.5)


def _sae(arch, density, dead=(3, 17, 40)):
    """A double SAE whose pre-activations (on _data()) are active at about ``density``."""
    sae = build_sae(make_config(arch, d_in=D, d_sae=S, seed=5, aux_coefficient=0.5)).double()
    x = _data()
    with torch.no_grad():
        g = torch.Generator().manual_seed(2)
        sae.b_dec.copy_(0.1 * torch.randn(D, generator=g, dtype=torch.float64))
        sae.W_dec.mul_(1 + torch.rand(S, 1, generator=g, dtype=torch.float64))  # free norms
        if arch == "jumprelu":
            sae.threshold.copy_(0.2 * torch.rand(S, generator=g, dtype=torch.float64))
        pre = sae.pre_activations(x) - sae.b_enc
        theta = sae.threshold if arch == "jumprelu" else 0.0
        sae.b_enc.copy_(theta - pre.quantile(1 - density, dim=0))  # ~density per feature
        sae.steps_since_fired[list(dead)] = sae.cfg.dead_after
    return sae, x


def _data(seed=0):
    return torch.randn(B, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _reference_loss(sae, x):
    """The training loss written with plain autograd (JumpReLUFunction for theta's STE)."""
    x_n = x * sae.input_scale
    pre = (x_n - sae.b_dec) @ sae.W_enc + sae.b_enc
    dead = torch.nonzero(sae.dead_mask).squeeze(1)
    norms = sae.W_dec.norm(dim=1)
    if sae.arch == "relu":
        f = pre.relu()
        sparsity = sae.cfg.l1_coefficient * (f * norms).sum(-1).mean()
        theta_d = 0.0
    else:
        f, l0 = JumpReLUFunction.apply(pre, sae.threshold, sae.cfg.jumprelu_bandwidth)
        sparsity = sae.cfg.l0_coefficient * l0.mean()
        theta_d = sae.threshold[dead]
    mse = (f @ sae.W_dec + sae.b_dec - x_n).pow(2).sum(-1).mean()
    aux = sae.cfg.aux_coefficient * ((theta_d - pre[:, dead]).relu() * norms[dead]).sum(-1).mean()
    return mse + sparsity + aux, (pre > (sae.threshold if sae.arch == "jumprelu" else 0)).any(0)


def _grads(sae, loss):
    return dict(zip([n for n, _ in sae.named_parameters()],
                    torch.autograd.grad(loss, list(sae.parameters()))))


@pytest.mark.parametrize("arch", ["relu", "jumprelu"])
@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("sparse_below", [0.0, 1.0])
def test_both_branches_equal_autograd(arch, density, sparse_below, monkeypatch):
    calls = []
    apply = SparseCodes.apply
    monkeypatch.setattr(SparseCodes, "apply", lambda *a: calls.append(1) or apply(*a))
    sae, x = _sae(arch, density)
    if arch == "jumprelu":
        sae.cfg.jumprelu_bandwidth = 0.1  # wide: many entries in the STE's window
    sae.sparse_below = sparse_below
    ref_loss, ref_fired = _reference_loss(sae, x)
    active = float((sae.pre_activations(x) > (sae.threshold if arch == "jumprelu" else 0))
                    .double().mean())
    assert active == pytest.approx(density, abs=0.05)
    out = sae.forward_train(x, metrics=True)
    assert len(calls) == int(sparse_below)
    assert out.terms["aux"] > 0
    torch.testing.assert_close(out.loss, ref_loss, rtol=1e-10, atol=0)
    assert torch.equal(out.fired, ref_fired)
    ours, ref = _grads(sae, out.loss), _grads(sae, ref_loss)
    for name in ref:
        assert ref[name].abs().max() > 0, name
        torch.testing.assert_close(ours[name], ref[name], rtol=1e-5, atol=1e-5 * float(
            ref[name].abs().max()), msg=name)


@pytest.mark.parametrize("arch", ["relu", "jumprelu"])
def test_the_switch_follows_the_density(arch):
    sae, x = _sae(arch, 0.05)
    sae.sparse_below = 0.2
    pre = sae.pre_activations(x)
    theta = sae.threshold if arch == "jumprelu" else 0.0
    assert sae._sparse_codes(pre, theta)
    assert not sae._sparse_codes(pre + 10.0, theta)
    sae.sparse_below = 0.0
    assert not sae._sparse_codes(pre, theta)


def test_sparse_codes_function_equals_autograd_including_f_sum_and_l0():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(B, D, generator=g, dtype=torch.float64)
    W_enc = torch.randn(D, S, generator=g, dtype=torch.float64).requires_grad_()
    bias = torch.randn(S, generator=g, dtype=torch.float64).requires_grad_()
    W_dec = torch.randn(S, D, generator=g, dtype=torch.float64).requires_grad_()
    b_dec = torch.randn(D, generator=g, dtype=torch.float64).requires_grad_()
    theta = torch.rand(S, generator=g, dtype=torch.float64).requires_grad_()
    read, w_sum, w_l0 = (torch.randn(*shape, generator=g, dtype=torch.float64)
                         for shape in ((B, D), (S,), (B,)))
    eps, params = 0.5, (W_enc, bias, W_dec, b_dec, theta)
    with torch.no_grad():
        pre = torch.addmm(bias, x, W_enc)
        mask = pre > theta
        window = torch.nonzero((pre - theta).abs() < eps / 2).t()
    x_hat, f_sum, l0 = SparseCodes.apply(x, W_enc, bias, W_dec, b_dec, theta, pre, mask, window,
                                         eps)
    ours = torch.autograd.grad((read * x_hat).sum() + f_sum @ w_sum + l0 @ w_l0, params)
    f, ref_l0 = JumpReLUFunction.apply(x @ W_enc + bias, theta, eps)
    ref_x_hat = f @ W_dec + b_dec
    torch.testing.assert_close(x_hat, ref_x_hat)
    torch.testing.assert_close(f_sum, f.sum(0))
    torch.testing.assert_close(l0, ref_l0)
    ref = torch.autograd.grad((read * ref_x_hat).sum() + f.sum(0) @ w_sum + ref_l0 @ w_l0,
                              params)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_sparse_codes_with_no_active_entry():
    sae, x = _sae("relu", 0.02, dead=())
    with torch.no_grad():
        sae.b_enc.fill_(-100.0)
    sae.sparse_below = 1.0
    out = sae.forward_train(x)
    out.loss.backward()
    assert not out.fired.any()
    assert torch.equal(sae.W_dec.grad, torch.zeros_like(sae.W_dec))


@pytest.mark.parametrize("arch", ["relu", "jumprelu"])
def test_adam_runs_agree_on_both_branches(arch):
    results = []
    for sparse_below in (0.0, 1.0):
        sae, _ = _sae(arch, 0.1)
        sae.sparse_below = sparse_below
        opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
        for step in range(5):
            out = sae.forward_train(_data(step))
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            sae.after_step()
            sae.update_dead(out.fired)
        results.append({k: v.clone() for k, v in sae.state_dict().items()})
    for k in results[0]:
        torch.testing.assert_close(results[1][k], results[0][k], rtol=1e-7, atol=1e-9, msg=k)


def test_the_default_crossover_is_per_device():
    sae, x = _sae("relu", 0.02)
    assert sae.sparse_below is None
    pre = sae.pre_activations(x)
    assert sae._sparse_codes(pre, 0.0)  # CPU: below the measured crossover
    assert not sae._sparse_codes(pre.to("meta"), 0.0)  # unmeasured device: dense
