"""SAE architectures against brute-force references on small inputs."""

import pytest
import torch

from dnatlas.sae import build_sae, config_from_record, make_config, saved_record
from dnatlas.sae.sparse_ops import JumpReLUFunction, batch_topk_indices

D, S, B = 8, 32, 12


def make(arch, **kw):
    cfg = make_config(arch, d_in=D, d_sae=S, k=kw.pop("k", 4 if arch in ("topk", "batchtopk") else None),
                    seed=kw.pop("seed", 3), **kw)
    sae = build_sae(cfg).double()
    with torch.no_grad():  # non-trivial biases and scale
        g = torch.Generator().manual_seed(11)
        sae.b_enc.copy_(0.1 * torch.randn(S, generator=g, dtype=torch.float64))
        sae.b_dec.copy_(0.2 * torch.randn(D, generator=g, dtype=torch.float64))
        sae.set_input_scale(0.7)
    return sae


def data(seed=0, rows=B):
    return torch.randn(rows, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def params(sae):
    return {n: p for n, p in sae.named_parameters()}


def grads(loss, sae):
    ps = params(sae)
    gs = torch.autograd.grad(loss, list(ps.values()), allow_unused=True)
    return {n: (torch.zeros_like(p) if g is None else g) for (n, p), g in zip(ps.items(), gs)}


def reference_pre(sae, x):
    x_n = x * sae.input_scale
    return x_n, (x_n - sae.b_dec) @ sae.W_enc + sae.b_enc


def topk_mask_loop(pre, k):
    mask = torch.zeros_like(pre, dtype=torch.bool)
    for b in range(pre.shape[0]):
        order = sorted(range(pre.shape[1]), key=lambda i: -float(pre[b, i]))
        for i in order[:k]:
            mask[b, i] = True
    return mask


def batch_topk_mask_loop(pre, m):
    flat = [(float(v), i) for i, v in enumerate(pre.relu().reshape(-1))]
    flat.sort(key=lambda t: -t[0])
    mask = torch.zeros(pre.numel(), dtype=torch.bool)
    for v, i in flat[:m]:
        if v > 0:
            mask[i] = True
    return mask.reshape(pre.shape)


def reference_aux_k(sae, x_n, pre, x_hat, dead, k_aux, coef):
    pre_aux = (x_n - sae.b_dec.detach()) @ sae.W_enc + sae.b_enc
    mask = torch.zeros_like(pre, dtype=torch.bool)
    dead_list = [int(i) for i in torch.nonzero(dead)]
    for b in range(pre.shape[0]):
        order = sorted(dead_list, key=lambda i: -float(pre[b, i]))
        for i in order[:k_aux]:
            mask[b, i] = True
    a = torch.where(mask, pre_aux.relu(), torch.zeros_like(pre_aux))
    recon = a @ sae.W_dec
    return coef * (recon - (x_n - x_hat).detach()).pow(2).sum(-1).mean()


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_topk_styles_match_brute_force(arch):
    sae = make(arch, aux_coefficient=0.5, aux_k=3, dead_after=2)
    with torch.no_grad():
        sae.steps_since_fired[::3] = 5  # some dead features
    x = data()
    out = sae.forward_train(x, metrics=True)

    x_n, pre = reference_pre(sae, x)
    if arch == "topk":
        mask = topk_mask_loop(pre.detach(), sae.cfg.k)
    else:
        mask = batch_topk_mask_loop(pre.detach(), sae.cfg.k * B)
    f = torch.where(mask, pre.relu(), torch.zeros_like(pre))
    x_hat = f @ sae.W_dec + sae.b_dec
    mse = (x_hat - x_n).pow(2).sum(-1).mean()
    aux = reference_aux_k(sae, x_n, pre.detach(), x_hat, sae.dead_mask, 3, 0.5)

    torch.testing.assert_close(out.terms["mse"], mse)
    torch.testing.assert_close(out.terms["aux"], aux)
    assert out.terms["aux"].item() > 0
    torch.testing.assert_close(out.l0, (f > 0).sum(-1).double().mean())
    fired_ref = (f > 0).any(0)
    assert torch.equal(out.fired, fired_ref)
    ours, ref = grads(out.loss, sae), grads(mse + aux, sae)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        torch.testing.assert_close(ours[name], ref[name], msg=name)


def test_topk_encode_matches_loop_and_row_independence():
    sae = make("topk")
    x = data(1)
    f = sae.encode(x)
    _, pre = reference_pre(sae, x)
    mask = topk_mask_loop(pre.detach(), sae.cfg.k)
    torch.testing.assert_close(f, torch.where(mask, pre.relu(), torch.zeros_like(pre)).detach())
    torch.testing.assert_close(sae.encode(x[:3]), f[:3])


def test_batchtopk_encode_batch_and_threshold_inference():
    sae = make("batchtopk")
    x = data(2)
    f = sae.encode_batch(x).detach()
    _, pre = reference_pre(sae, x)
    mask = batch_topk_mask_loop(pre.detach(), sae.cfg.k * B)
    torch.testing.assert_close(f, torch.where(mask, pre.relu(), torch.zeros_like(pre)).detach())
    # training updates the threshold; inference is then JumpReLU with it, per row
    sae.forward_train(x)
    theta = float(sae.threshold[0])
    assert theta > 0 and torch.all(sae.threshold == theta)
    torch.testing.assert_close(float(f[f > 0].min()), theta)
    inf = sae.encode(x)
    torch.testing.assert_close(inf, (pre.relu() * (pre > theta)).detach())
    torch.testing.assert_close(sae.encode(x[:1]), inf[:1])


@pytest.mark.parametrize("n,m", [(1000, 37), (600_000, 4000), (600_000, 200_000)])
def test_batch_topk_indices_exact(n, m):
    values = torch.randn(n, generator=torch.Generator().manual_seed(n + m))
    idx, vals = batch_topk_indices(values, m)
    ref = values.relu().topk(m).indices
    ref = torch.sort(ref[values[ref] > 0]).values
    assert torch.equal(idx, ref)
    assert torch.equal(vals, values[ref])


def test_relu_l1_weighted_by_decoder_norm():
    sae = make("relu", l1_coefficient=0.3)
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.5, 2.0, S, dtype=torch.float64)[:, None])
    x = data(3)
    out = sae.forward_train(x, metrics=True)
    x_n, pre = reference_pre(sae, x)
    f = pre.relu()
    x_hat = f @ sae.W_dec + sae.b_dec
    mse = (x_hat - x_n).pow(2).sum(-1).mean()
    l1 = 0.3 * sum(f[b, i].item() * sae.W_dec[i].norm().item() for b in range(B) for i in range(S)) / B
    torch.testing.assert_close(out.terms["mse"], mse)
    torch.testing.assert_close(out.terms["sparsity"].item(), l1)
    l1_t = 0.3 * (f * sae.W_dec.norm(dim=1)).sum(-1).mean()
    ours, ref = grads(out.loss, sae), grads(mse + l1_t, sae)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        torch.testing.assert_close(ours[name], ref[name], msg=name)
    # sparsity warm-up scales the penalty
    half = sae.forward_train(x, sparsity_scale=0.5)
    torch.testing.assert_close(half.terms["sparsity"].item(), l1 / 2)


def test_jumprelu_forward_and_loss():
    sae = make("jumprelu", l0_coefficient=0.2)
    with torch.no_grad():
        sae.threshold.copy_(torch.linspace(0.0, 0.5, S, dtype=torch.float64))
    x = data(4)
    out = sae.forward_train(x, metrics=True)
    x_n, pre = reference_pre(sae, x)
    f = torch.zeros_like(pre)
    for b in range(B):
        for i in range(S):
            if pre[b, i] > sae.threshold[i]:
                f[b, i] = pre[b, i]
    x_hat = f @ sae.W_dec + sae.b_dec
    torch.testing.assert_close(out.terms["mse"], (x_hat - x_n).pow(2).sum(-1).mean())
    l0 = (pre > sae.threshold).sum(-1).double().mean()
    torch.testing.assert_close(out.terms["sparsity"], 0.2 * l0)
    torch.testing.assert_close(out.l0, l0)
    torch.testing.assert_close(sae.encode(x), f.detach())


def _smoothed_jumprelu(z, theta, eps):
    """z * H(z - theta) with the jump spread linearly... exactly as the STE implies:
    z for theta <= z - eps/2, 0 for theta >= z + eps/2, z - (theta^2 - (z - eps/2)^2) / (2 eps) between."""
    lo = z - eps / 2
    mid = z - (theta**2 - lo**2) / (2 * eps)
    return torch.where(theta <= lo, z, torch.where(theta >= z + eps / 2, torch.zeros_like(z), mid))


def _smoothed_step(z, theta, eps):
    return ((z - theta) / eps + 0.5).clamp(0, 1)


def test_jumprelu_ste_equals_finite_differences_of_smoothed_objective():
    g = torch.Generator().manual_seed(5)
    eps = 0.05
    z = torch.rand(64, 6, generator=g, dtype=torch.float64) * 0.6
    theta = torch.tensor([0.1, 0.2, 0.25, 0.3, 0.4, 0.45], dtype=torch.float64, requires_grad=True)
    c = torch.randn(64, 6, generator=g, dtype=torch.float64)   # linear read-out of f
    w = torch.randn(64, generator=g, dtype=torch.float64)      # weights of the per-row L0
    f, l0 = JumpReLUFunction.apply(z, theta, eps)
    (grad_theta,) = torch.autograd.grad((c * f).sum() + (w * l0).sum(), theta)

    def smoothed(t):
        return (c * _smoothed_jumprelu(z, t, eps)).sum() + (w[:, None] * _smoothed_step(z, t, eps)).sum()

    h = 1e-6
    fd = torch.zeros(6, dtype=torch.float64)
    for i in range(6):
        e = torch.zeros(6, dtype=torch.float64)
        e[i] = h
        fd[i] = (smoothed(theta.detach() + e) - smoothed(theta.detach() - e)) / (2 * h)
    torch.testing.assert_close(grad_theta, fd, atol=1e-6, rtol=1e-5)
    assert fd.abs().sum() > 0
    # input gradient of f is H(z - theta); L0 passes none to z
    zr = z.clone().requires_grad_()
    f, l0 = JumpReLUFunction.apply(zr, theta.detach(), eps)
    (gz,) = torch.autograd.grad((c * f).sum() + (w * l0).sum(), zr)
    torch.testing.assert_close(gz, c * (z > theta.detach()))


@pytest.mark.parametrize("arch", ["relu", "jumprelu"])
def test_pre_act_aux_only_reaches_dead_features(arch):
    sae = make(arch, aux_coefficient=1.0, dead_after=3, l1_coefficient=0.0, l0_coefficient=0.0)
    x = data(6)
    assert sae.forward_train(x).terms["aux"].item() == 0.0  # nothing dead yet
    dead = torch.zeros(S, dtype=torch.bool)
    dead[[1, 5, 9, 20]] = True
    with torch.no_grad():
        sae.steps_since_fired[dead] = 3
        sae.W_enc[:, dead] -= 1.0  # make sure dead pre-activations sit below the threshold
    aux = sae.forward_train(x).terms["aux"]
    assert aux.item() > 0
    g = grads(aux, sae)
    assert torch.all(g["W_enc"][:, ~dead] == 0) and g["W_enc"][:, dead].abs().sum() > 0
    assert torch.all(g["b_enc"][~dead] == 0)
    assert torch.all(g["W_dec"][~dead] == 0)


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_aux_k_only_reaches_dead_features(arch):
    sae = make(arch, aux_coefficient=1.0, aux_k=2, dead_after=3)
    x = data(7)
    assert sae.forward_train(x).terms["aux"].item() == 0.0
    dead = torch.zeros(S, dtype=torch.bool)
    dead[[0, 4, 17, 30]] = True
    with torch.no_grad():
        sae.steps_since_fired[dead] = 10
    aux = sae.forward_train(x).terms["aux"]
    g = grads(aux, sae)
    assert aux.item() > 0
    assert torch.all(g["W_enc"][:, ~dead] == 0) and g["W_enc"][:, dead].abs().sum() > 0
    assert torch.all(g["b_enc"][~dead] == 0)
    assert torch.all(g["W_dec"][~dead] == 0) and g["W_dec"][dead].abs().sum() > 0
    assert torch.all(g["b_dec"] == 0)


def test_dead_counters():
    sae = make("topk", dead_after=2)
    fired = torch.zeros(S, dtype=torch.bool)
    fired[:4] = True
    sae.update_dead(fired)
    sae.update_dead(fired)
    assert sae.dead_mask[4:].all() and not sae.dead_mask[:4].any()
    sae.update_dead(~fired)
    assert sae.steps_since_fired[4:].eq(0).all() and sae.steps_since_fired[:4].eq(1).all()


@pytest.mark.parametrize("arch", ["relu", "topk", "batchtopk", "jumprelu"])
def test_folding_keeps_outputs(arch):
    sae = make(arch)
    x = data(8) * 5
    if arch == "batchtopk":
        sae.forward_train(x)  # sets the threshold
    folded = sae.folded()
    assert float(folded.input_scale) == 1.0
    torch.testing.assert_close(folded.encode(x), sae.encode(x))
    torch.testing.assert_close(folded(x)[0], sae(x)[0])
    # the trained SAE on normalised inputs, in normalised units, equals the folded one on raw x
    s = float(sae.input_scale)
    x_n = x * s
    pre_n = (x_n - sae.b_dec) @ sae.W_enc + sae.b_enc
    f_n = sae.activation(pre_n)
    torch.testing.assert_close(folded.encode(x), f_n)
    torch.testing.assert_close(folded.decode(f_n) * s, f_n @ sae.W_dec + sae.b_dec)


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "jumprelu"])
def test_decoder_rows_stay_unit_norm(arch):
    cfg = make_config(arch, d_in=D, d_sae=S, k=4 if arch != "jumprelu" else None)
    sae = build_sae(cfg)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for step in range(5):
        loss = sae.forward_train(data(step).float()).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sae.after_step()
        torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(S))
    if arch == "jumprelu":
        assert torch.all(sae.threshold >= 0)


def test_relu_decoder_is_free():
    sae = build_sae(make_config("relu", d_in=D, d_sae=S))
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.full((S,), 0.1))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    loss = sae.forward_train(data().float()).loss
    loss.backward()
    opt.step()
    sae.after_step()
    assert not torch.allclose(sae.W_dec.norm(dim=1), torch.full((S,), 0.1))


def test_config_validation_and_loss_dict():
    with pytest.raises(ValueError):
        make_config("gated", d_in=4, d_sae=8)
    with pytest.raises(ValueError):
        make_config("topk", d_in=4, d_sae=8)
    cfg = make_config("topk", 4, expansion=8, k=2)
    assert cfg.d_sae == 32 and cfg.aux_k == 2
    assert config_from_record(saved_record(cfg)) == cfg
    terms = build_sae(cfg).loss(torch.randn(5, 4))
    assert set(terms) == {"loss", "mse", "sparsity", "aux"}
    torch.testing.assert_close(terms["loss"], terms["mse"] + terms["sparsity"] + terms["aux"])
