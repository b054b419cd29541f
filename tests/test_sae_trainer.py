"""SAE trainer: resume, several SAEs from one pass, schedules, outputs."""

import csv
import itertools

import pytest
import torch

from dnatlas.errors import InputError
from dnatlas.sae import make_config
from dnatlas.sae.saelens_format import load_sae
from dnatlas.sae.trainer import SAESpec, SAETrainer, SAETrainingConfig, preset, train_saes

D, S, B = 8, 32, 64


def batches(start=0):
    for i in itertools.count(start):
        g = torch.Generator().manual_seed(i)
        base = torch.randn(B, D, generator=g) * 3 + 1
        yield {"a": base, "b": torch.randn(B, D, generator=g) ** 3}


def specs():
    return [
        SAESpec("topk", "a", make_config("topk", D, S, k=3, dead_after=2, seed=1)),
        SAESpec("relu", "b", make_config("relu", D, S, l1_coefficient=0.05, aux_coefficient=0.1,
                                       dead_after=2, seed=2)),
        SAESpec("jump", "a", make_config("jumprelu", D, S, l0_coefficient=0.01, seed=3)),
        SAESpec("btk", "b", make_config("batchtopk", D, S, k=3, dead_after=2, seed=4)),
    ]


def cfg(**kw):
    base = dict(steps=12, lr=3e-3, log_every=2, checkpoint_every=5, norm_batches=2,
                sparsity_warmup_frac=0.25, lr_decay_frac=0.2, progress=False)
    base.update(kw)
    return SAETrainingConfig(**base)


def interrupted(stop):
    for i, batch in enumerate(batches()):
        if i == stop:
            raise KeyboardInterrupt
        yield batch


def states(saes):
    return {name: {k: v.clone() for k, v in sae.state_dict().items()} for name, sae in saes.items()}


def assert_same_states(a, b):
    assert a.keys() == b.keys()
    for name in a:
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), (name, k)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize("factory", [True, False])
def test_resume_equals_uninterrupted(tmp_path, factory):
    full = train_saes(specs(), batches(), cfg(), tmp_path / "full")
    ref = states(full)

    with pytest.raises(KeyboardInterrupt):
        SAETrainer(specs(), cfg(), tmp_path / "cut").fit(interrupted(8))
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 5
    data = batches if factory else batches()
    resumed = SAETrainer(specs(), cfg(), tmp_path / "cut").fit(data, resume=True)
    assert_same_states(states(resumed), ref)
    for name in ("topk", "relu", "jump", "btk"):
        assert read_csv(tmp_path / "cut" / name / "metrics.csv") == \
            read_csv(tmp_path / "full" / name / "metrics.csv")
    # the dead-feature machinery was exercised
    assert any(float(r[5]) > 0 for r in read_csv(tmp_path / "full" / "topk" / "metrics.csv")[1:])


def test_several_saes_from_one_pass_equal_separate_runs(tmp_path):
    together = states(train_saes(specs(), batches(), cfg(), tmp_path / "all"))
    for spec in specs():
        alone = states(train_saes([spec], batches(), cfg(), tmp_path / spec.name))
        assert_same_states({spec.name: together[spec.name]}, alone)


def test_outputs_and_saved_sae(tmp_path):
    spec = SAESpec(None, "a", make_config("topk", D, S, k=3, model_name="toy"))
    saes = train_saes([spec], batches(), cfg(steps=6, checkpoint_every=100), tmp_path)
    sae = saes[None]
    assert sae.cfg.hook_name == "a" and float(sae.input_scale) != 1.0
    for name in ("cfg.json", "sae_weights.safetensors", "metrics.csv", "checkpoint.pt"):
        assert (tmp_path / name).exists(), name
    rows = read_csv(tmp_path / "metrics.csv")
    assert rows[0] == ["step", "lr", "loss", "mse", "sparsity", "aux", "l0", "fvu", "dead_fraction"]
    assert [int(r[0]) for r in rows[1:]] == [2, 4, 6]
    assert all(abs(float(r[6]) - 3) < 1e-6 for r in rows[1:])  # topk L0 == k
    loaded = load_sae(tmp_path)
    x = next(batches(99))["a"]
    torch.testing.assert_close(loaded.encode(x), sae.encode(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loaded(x)[0], sae(x)[0], rtol=1e-5, atol=1e-5)


def test_tensor_batches_and_errors(tmp_path):
    spec = SAESpec(None, "x", make_config("relu", D, S))
    plain = (b["a"] for b in batches())
    train_saes([spec], plain, cfg(steps=3), tmp_path)
    with pytest.raises(InputError, match="checkpoint already exists"):
        train_saes([spec], (b["a"] for b in batches()), cfg(steps=3), tmp_path)
    with pytest.raises(InputError, match="ran out after 2"):
        train_saes([spec], [torch.randn(B, D)] * 2, cfg(steps=3), tmp_path / "short")
    other = SAESpec(None, "x", make_config("relu", D, S, l1_coefficient=9.0))
    with pytest.raises(InputError, match="l1_coefficient"):
        SAETrainer([other], cfg(steps=4), tmp_path).fit(batches(), resume=True)
    with pytest.raises(ValueError):
        SAETrainer([spec, spec], cfg(), tmp_path)


def test_lr_schedule():
    c = SAETrainingConfig(steps=100, lr=1.0, lr_warmup_frac=0.05)
    assert [c.lr_at(i) for i in range(6)] == [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    assert c.lr_at(99) == 1.0
    d = SAETrainingConfig(steps=100, lr=1.0, lr_warmup_frac=0.0, lr_decay_frac=0.1)
    assert d.lr_at(89) == 1.0 and d.lr_at(90) == pytest.approx(1.0) and d.lr_at(99) == pytest.approx(0.1)
    assert SAETrainingConfig(steps=10, sparsity_warmup_frac=0.5).sparsity_scale_at(1) == pytest.approx(0.4)


def test_preset_hyenadna_001():
    sae_kw, train = preset("hyenadna-001")
    assert sae_kw["arch"] == "relu" and sae_kw["expansion"] == 32 and sae_kw["l1_coefficient"] == 0.1
    assert train.batch_size == 2048 and train.lr_warmup_frac == 0.05 and train.lr_decay_frac == 0.0
    with pytest.raises(InputError):
        preset("nope")


def test_logged_mse_is_in_activation_units_like_sae_eval(tmp_path):
    """metrics.csv's mse and `sae eval`'s mse are one scale, whatever the input scale."""
    from dnatlas.sae.metrics import evaluate_reconstruction

    x = 7.0 * torch.randn(512, 16, generator=torch.Generator().manual_seed(0))  # far from unit norm
    spec = SAESpec(None, "k", make_config("topk", 16, expansion=2, k=4, hook_name="k"))
    trainer = SAETrainer([spec], SAETrainingConfig(steps=1, batch_size=512, lr=1e-30,
                                                    log_every=1, progress=False), tmp_path)
    (sae,) = trainer.fit([{"k": x}] * 9).values()  # 8 batches estimate the scale, 1 trains
    assert float(sae.input_scale) != pytest.approx(1.0, abs=0.1)
    header, *rows = read_csv(tmp_path / "metrics.csv")
    logged = float(rows[-1][header.index("mse")])
    assert logged == pytest.approx(evaluate_reconstruction(sae, [{"k": x}], key="k")["mse"], rel=1e-4)


def test_the_progress_bar_shows_the_current_steps_values(tmp_path, monkeypatch):
    """Between metric rows (log_every) the bar is refreshed with this step's loss, L0 and
    FVU, not the last row's values repeated (issue 22)."""
    from dnatlas.sae import trainer as trainer_module

    shown = []

    class Bar:
        def __init__(self, *args, **kwargs):
            self.n = kwargs.get("initial", 0)

        def update(self, k):
            self.n += k

        def set_postfix(self, values, refresh=False):
            shown.append((self.n, dict(values)))

        def close(self):
            pass

    monkeypatch.setattr(trainer_module, "progress", Bar)
    spec = SAESpec(None, "a", make_config("topk", D, S, k=3, seed=1))
    SAETrainer([spec], cfg(steps=40, log_every=20), tmp_path).fit(batches())
    steps = [n for n, _ in shown]
    assert steps == list(range(2, 41, 2))  # every log_every // 10 steps
    losses = [values["loss"] for _, values in shown]
    assert len(set(losses[:9])) > 1  # between the rows at 20 and 40: values that move
    assert all(set(values) >= {"loss", "L0", "FVU"} for _, values in shown)
