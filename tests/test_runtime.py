"""Process settings (dnatlas.runtime) and the inference paths built on them: DNAtlas's tiled
forward in worker threads, its early stop, the activation's compile policy, and extraction's
piecewise conversions. Every fast path is checked against the plain autograd path."""

import numpy as np
import pytest
import torch

from dnatlas import runtime
from dnatlas.analysis import extract as E
from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig, activation, folded
from dnatlas.genome.alphabet import reverse_complement
from dnatlas.training.config import TrainConfig


def _model(seed=0, rcps=True):
    torch.manual_seed(seed)
    model = DNAtlas(DNAtlasConfig.preset("tiny", n_layers=3, dilations=(1, 4, 16),
                                         rcps=rcps)).eval()
    for block in model.blocks:  # non-trivial per-neuron parameters and biases
        for p in (block.act.a_raw.param, block.act.b_raw.param, block.norm.gain.param,
                  block.gate.bias.param, block.conv.bias.param, block.out.bias.param):
            p.data.normal_(0, 0.5)
    return model


def _reference(model, tokens, sites):
    """The autograd path (no tiles, no fused activation, no early stop)."""
    out = model(tokens, output_activations=sites)
    return {k: v.detach() for k, v in out.activations.items()}, out.logits.detach()


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rcps", [True, False])  # the folded path, the plain tiled one
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(3, 130), (1, 300)])
def test_tiled_inference_equals_the_autograd_path(monkeypatch, rcps, threads, shape):
    monkeypatch.setattr(folded, "TILE_ROWS", 50)  # many tiles; several sequences per tile
    model = _model(rcps=rcps)
    tokens = torch.randint(0, 6, shape, generator=torch.Generator().manual_seed(1))
    sites = model.site_names()
    ref, logits = _reference(model, tokens, sites)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            out = model(tokens, output_activations=sites)
            for k in sites:
                _close(out.activations[k], ref[k])
            _close(out.logits, logits)
            assert torch.get_num_threads() == threads  # restored after the worker threads
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("rcps", [True, False])
def test_forward_stops_after_the_last_requested_block_and_logits_come_later(monkeypatch, rcps):
    model = _model(rcps=rcps)
    tokens = torch.randint(0, 4, (2, 90))
    _, logits = _reference(model, tokens, [])
    calls = []
    run_folded = folded.folded_block

    def counted(block, *args):
        calls.append(int(block.name.split(".")[1]))
        return run_folded(block, *args)

    monkeypatch.setattr(folded, "folded_block", counted)
    for i, block in enumerate(model.blocks):
        forward = block.forward
        monkeypatch.setattr(block, "forward", lambda x, s=None, i=i, f=forward: (calls.append(i), f(x, s))[1])
    with torch.no_grad():
        out = model(tokens, output_activations=["blocks.1.neurons"])
        assert calls == [0, 1]
        _close(out.logits, logits)  # runs block 2 and the head now
        assert calls == [0, 1, 2]


def test_an_intervention_inside_a_block_takes_the_untiled_path():
    model = _model()
    tokens = torch.randint(0, 4, (2, 70))
    zero = {"blocks.1.neurons": torch.zeros_like}
    ref = model(tokens, intervene=zero, output_activations=["blocks.2.residual"])
    with torch.inference_mode():
        out = model(tokens, intervene=zero, output_activations=["blocks.2.residual"])
    _close(out.activations["blocks.2.residual"], ref.activations["blocks.2.residual"].detach())
    _close(out.logits, ref.logits.detach())


def test_parallel_runs_every_item_once_in_workers_with_one_thread_each():
    seen = []

    def item(i):
        seen.append((i, torch.get_num_threads(), torch.is_inference_mode_enabled()))

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode(), runtime.worker_threads("cpu"):
            assert torch.get_num_threads() == 1
            runtime.parallel(item, list(range(20)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert sorted(i for i, _, _ in seen) == list(range(20))
    assert all(n == 1 and inference for _, n, inference in seen)
    runtime.parallel(item, [99])  # no enclosing worker_threads: in order, here
    assert seen[-1][0] == 99


def test_tune_allocator_is_idempotent_and_can_be_switched_off(monkeypatch):
    first = runtime.tune_allocator()
    assert runtime.tune_allocator() is first
    monkeypatch.setattr(runtime, "_tuned", None)
    monkeypatch.setenv("DNATLAS_MALLOC_TUNING", "0")
    assert runtime.tune_allocator() is False
    monkeypatch.setattr(runtime, "_tuned", first)


def test_auto_compiles_after_enough_work_and_a_failed_compile_falls_back(monkeypatch, caplog):
    fused = activation._Fused()
    monkeypatch.setattr(activation, "FUSED", fused)
    monkeypatch.setattr(activation, "AUTO_MIN_ELEMENTS", 1000)
    compiled = []

    def broken_compile(fn, **kw):
        compiled.append(fn)

        def run(*a):
            raise RuntimeError("no C++ compiler\nmore")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    g, c = torch.randn(10, 8), torch.randn(10, 8)
    a, b, gamma = torch.full((8,), 3.0), torch.full((8,), 0.2), torch.tensor(1.0)
    ref = activation._act_yz(g, c, a, b, gamma, 0.01, 1e-6, True)
    for _ in range(20):  # 80 elements per call: eager until 1000 are done
        out = activation.fused_activation(g, c, a, b, gamma, 0.01, 1e-6, True, "yz")
        if not compiled:
            assert fused.work <= 1000
    assert compiled and fused.failed
    assert "no C++ compiler" in caplog.text and "eager" in caplog.text
    for x, y in zip(out, ref):
        torch.testing.assert_close(x, y)
    activation.compile_activation(False)
    assert not fused.enabled(10**9)
    activation.compile_activation(None)


@pytest.mark.parametrize("value,expected", [(None, None), ("auto", None), (True, True),
                                            (False, False)])
def test_train_config_compile_activation_is_auto_by_default(value, expected):
    assert TrainConfig().compile_activation is None
    assert TrainConfig(compile_activation=value).compile_activation is expected
    with pytest.raises(ValueError, match="true, false or auto"):
        TrainConfig(compile_activation="sometimes")


def test_extraction_converts_in_pieces_exactly(monkeypatch):
    monkeypatch.setattr(E, "_ROWS", 37)
    model = _model()
    seq = np.random.default_rng(2).integers(0, 4, 700).astype(np.uint8)
    key = "blocks.2.neurons"
    with torch.inference_mode():
        fwd = model(torch.from_numpy(seq.astype(np.int64))[None], output_activations=[key])
        rev = model(torch.from_numpy(reverse_complement(seq).astype(np.int64))[None],
                    output_activations=[key])
    fwd, rev = fwd.activations[key][0].numpy(), rev.activations[key][0].numpy()
    for layout in ("LC", "CL"):
        T = (lambda a: a) if layout == "LC" else (lambda a: a.T)
        both = E.extract_activations(model, seq, [key], strand="both", chunk_size=250,
                                     layout=layout, progress=False)
        paired = E.extract_activations(model, seq, [key], strand="paired", chunk_size=250,
                                       layout=layout, progress=False)[key]
        np.testing.assert_allclose(T(both[key, "+"]), fwd, atol=1e-5)
        np.testing.assert_allclose(T(both[key, "-"]), rev, atol=1e-5)
        np.testing.assert_allclose(T(paired), np.concatenate([fwd, rev[::-1]], 1), atol=1e-5)


def test_a_runs_activation_policy_comes_from_its_config_not_the_process(monkeypatch):
    from dnatlas.training.objective import build_model
    from dnatlas.training.trainer import compiles_activation

    monkeypatch.setattr(activation.FUSED, "work", 10 * activation.AUTO_MIN_ELEMENTS)
    model = build_model("dnatlas", "tiny", {})  # 256 neurons x 5 layers
    short = TrainConfig(steps=6, batch_size=8, window=128)
    long = TrainConfig(steps=100_000, batch_size=16, window=1024)
    assert not compiles_activation(short, model)  # whatever the process did before
    assert compiles_activation(long, model)
    assert compiles_activation(TrainConfig(steps=6, compile_activation=True), model)
    assert not compiles_activation(TrainConfig(steps=100_000, compile_activation=False), model)
    baseline = build_model("transformer", "tiny", {})
    assert not compiles_activation(long, baseline)
