"""SAE metrics: reconstruction/sparsity against brute force, loss recovered."""

import numpy as np
import pytest
import torch

from dnatlas.sae import build_sae, make_config
from dnatlas.sae.metrics import evaluate_reconstruction, loss_recovered


def test_evaluate_reconstruction_brute_force():
    torch.manual_seed(0)
    sae = build_sae(make_config("topk", 6, 24, k=2, hook_name="h"))
    with torch.no_grad():
        sae.b_enc[:12] = -100.0  # these features never fire
        sae.b_enc[12] = 100.0    # this one always fires
    batches = [torch.randn(10, 6) * 2 + 1 for _ in range(3)]
    m = evaluate_reconstruction(sae, ({"h": b} for b in batches), dense_threshold=0.5)
    x = torch.cat(batches)
    with torch.no_grad():
        x_hat, f = sae(x)
    assert m["n_rows"] == 30
    assert m["l0"] == pytest.approx(float((f != 0).sum(1).float().mean()))
    fvu = float(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
    assert m["fvu"] == pytest.approx(fvu, rel=1e-5)
    assert m["mse"] == pytest.approx(float(((x - x_hat) ** 2).sum(1).mean()), rel=1e-5)
    freq = (f != 0).float().mean(0)
    assert m["feature_frequency"] == pytest.approx(freq.tolist())
    assert m["dead_features"] == int((freq == 0).sum()) >= 12
    assert m["dense_features"] == int((freq > 0.5).sum()) >= 1
    assert m["dead_fraction"] == m["dead_features"] / 24
    assert evaluate_reconstruction(sae, batches, max_batches=1)["n_rows"] == 10


def identity_sae(d, hook):
    """ReLU SAE with x_hat = relu(x) - relu(-x) = x exactly."""
    sae = build_sae(make_config("relu", d, 2 * d, hook_name=hook))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_loss_recovered():
    from dnatlas.architectures.hyenadna import HyenaConfig
    from dnatlas.models.hyenadna import HyenaDNAAdapter

    adapter = HyenaDNAAdapter.from_config(HyenaConfig(d_model=16, n_layer=2, d_inner=32, max_seq_len=64,
                                                      filter_order=8), seed=0)
    rng = np.random.default_rng(0)
    tokens = [rng.integers(0, 4, size=(2, 32)) for _ in range(2)]
    key = "blocks.0.residual"
    perfect = loss_recovered(adapter, identity_sae(16, key), tokens)
    assert perfect["loss_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert perfect["loss_sae"] == pytest.approx(perfect["loss_clean"], abs=1e-5)
    noisy = build_sae(make_config("relu", 16, 32, hook_name=key, seed=1))
    m = loss_recovered(adapter, noisy, tokens)
    ref = {k: np.mean([float(adapter.mlm_loss(torch.as_tensor(t), intervene=iv, seed=i))
                       for i, t in enumerate(tokens)])
           for k, iv in [("clean", None), ("zero", {key: torch.zeros_like}),
                         ("sae", {key: lambda a: noisy(a)[0]})]}
    assert m["loss_clean"] == pytest.approx(ref["clean"], rel=1e-5)
    assert m["loss_zero"] == pytest.approx(ref["zero"], rel=1e-5)
    assert m["loss_sae"] == pytest.approx(ref["sae"], rel=1e-5)
    assert m["loss_recovered"] == pytest.approx((ref["zero"] - ref["sae"]) / (ref["zero"] - ref["clean"]), rel=1e-4)
