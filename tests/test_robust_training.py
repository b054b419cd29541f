"""Training refuses bad settings, devices, folders and checkpoints with one line; runs do
not trample each other; logs name their units and hold no carriage returns."""

import argparse
import csv
import io
import math
import os
import stat

import numpy as np
import pytest
import torch

import dnatlas.cli as cli
from dnatlas.devices import resolve_device
from dnatlas.errors import InputError
from dnatlas.genome.store_build import build_store
from dnatlas.progress import PlainProgress, progress
from dnatlas.training.checkpoint import load_checkpoint, lock_run, save_checkpoint
from dnatlas.training.config import TrainConfig, load_train_config
from dnatlas.training.trainer import train
from tests.helpers import one_line as _one_line

MICRO = dict(d_model=16, n_neurons=32, n_layers=2, dilations=[1, 4])


def _cfg(**kw) -> TrainConfig:
    base = dict(preset="tiny", model_overrides=MICRO, window=64, batch_size=4,
                micro_batch_size=4, steps=2, lr=5e-3, warmup_steps=1, eval_every=2,
                eval_windows=2, checkpoint_every=1, log_every=1, tensorboard=False)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    for name, n in (("g1", 4_000), ("g2", 2_000)):
        (root / f"{name}.fa").write_text(f">{name}\n{''.join('ACGT'[i] for i in rng.integers(0, 4, n))}\n")
    return build_store([root / "g1.fa", root / "g2.fa"], root / "store", val_genomes=["g2"],
                       progress=False).path


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def run_cli(argv, capsys, monkeypatch):
    """``dnatlas ARGV`` with only the train command registered."""
    from dnatlas.cli import train as train_cli

    def build_parser():
        parser = argparse.ArgumentParser(prog="dnatlas")
        train_cli.register(parser.add_subparsers(dest="command"))
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize("setting, value, words", [
    ("checkpoint_every", 0, "checkpoint_every must be a positive integer"),
    ("eval_every", 0, "eval_every must be a positive integer"),
    ("log_every", 0, "log_every must be a positive integer"),
    ("eval_windows", 0, "eval_windows must be a positive integer"),
    ("seed", -1, "seed must be 0 or more"),
    ("lr", -1e-3, "lr must be in (0, inf)"),
    ("lr", float("nan"), "lr must be in (0, inf), got nan"),
    ("lr", 0, "lr must be in (0, inf)"),
    ("mask_rate", 2, "mask_rate must be in (0, 1]"),
    ("eligible_fraction", 1.5, "eligible_fraction must be in (0, 1)"),
    ("min_lr_ratio", 2, "min_lr_ratio must be in [0, 1]"),
    ("grad_clip", float("inf"), "grad_clip must be in (0, inf)"),
    ("betas", (0.9, 1.0), "betas must be in [0, 1)"),
    ("warmup_steps", -5, "warmup_steps must be 0 or more"),
    ("run_length_range", (5.0, 2.0), "run_length_range must be in [5, inf)"),
    ("preset", "huge", "unknown preset 'huge'; presets: wide, thin, small, tiny"),
])
def test_out_of_range_settings(setting, value, words):
    with pytest.raises(ValueError) as caught:
        _cfg(**{setting: value})
    assert words in str(caught.value)


def test_unknown_model_override_lists_valid_keys():
    with pytest.raises(InputError, match=r"model_overrides: unknown model setting\(s\) "
                                         r"n_layrs; valid keys: .*n_layers"):
        load_train_config("tiny", ["model_overrides.n_layrs=6"])
    with pytest.raises(InputError, match="d_model must be a positive integer"):
        load_train_config("tiny", ["model_overrides.d_model=0"])


def test_mask_rate_above_eligible_fraction():
    with pytest.raises(ValueError, match="must not exceed eligible_fraction"):
        _cfg(mask_rate=0.9, eligible_fraction=0.7)


# ------------------------------------------------------------------ devices


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="'nope' is not a torch device"):
        resolve_device("nope")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_on_a_cpu_build_is_one_line(store, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(["train", "--data", str(store), "--out", str(tmp_path / "r"),
                            "--device", "cuda"], capsys, monkeypatch)
    assert code == 2
    _one_line_lenient(err, "--device cuda", "no CUDA")
    code, _, err = run_cli(["train", "--data", str(store), "--out", str(tmp_path / "r"),
                            "--device", "nope"], capsys, monkeypatch)
    assert code == 2
    _one_line_lenient(err, "'nope'")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ the run folder


def test_second_run_into_a_locked_folder_fails_in_one_line(store, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with lock_run(out):
        with pytest.raises(InputError, match="another training run is using this folder"):
            train(_cfg(), store, out, progress=False)
    assert not (out / "metrics.csv").exists()
    train(_cfg(), store, out, progress=False)  # the lock is released with its holder


def test_an_earlier_run_is_not_replaced_without_force(store, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    train(_cfg(), store, out, progress=False)
    before = (out / "model" / "model.safetensors").read_bytes()
    code, _, err = run_cli(["train", "--data", str(store), "--out", str(out),
                            "--set", "model_overrides.d_model=16", "--no-progress"],
                           capsys, monkeypatch)
    assert code == 2
    _one_line_lenient(err, str(out), "earlier training run", "--resume", "--force")
    assert (out / "model" / "model.safetensors").read_bytes() == before


def test_force_removes_only_what_a_run_wrote(store, tmp_path):
    out = tmp_path / "run"
    train(_cfg(tensorboard=True), store, out, progress=False)
    (out / "notes.md").write_text("mine\n")
    (out / "model" / "README.md").write_text("my model card\n")
    old_events = sorted((out / "tensorboard").glob("events.out.tfevents.*"))
    assert old_events
    train(_cfg(tensorboard=True, seed=1), store, out, progress=False, force=True)
    assert (out / "notes.md").read_text() == "mine\n"
    assert (out / "model" / "README.md").read_text() == "my model card\n"
    events = sorted((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0] not in old_events  # stale events are gone
    assert load_checkpoint(out)["config"]["seed"] == 1


def test_resume_without_a_checkpoint(store, tmp_path):
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        train(_cfg(), store, tmp_path / "fresh", resume=True, progress=False)


@pytest.mark.parametrize("change, words", [
    (dict(model_overrides={**MICRO, "n_layers": 3}), "model_overrides"),
    (dict(model="transformer", model_overrides={"n_layers": 2}), "model 'dnatlas'"),
])
def test_resume_from_another_model_is_one_line(store, tmp_path, change, words):
    out = tmp_path / "run"
    train(_cfg(), store, out, progress=False)
    with pytest.raises(InputError) as caught:
        train(_cfg(steps=3, **change), store, out, resume=True, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "checkpoint is of another model" in message
    assert words in message


def test_resume_with_weights_of_another_shape_is_one_line(store, tmp_path):
    out = tmp_path / "run"
    train(_cfg(), store, out, progress=False)
    state = load_checkpoint(out)
    state["config"] = None  # an older checkpoint without its settings
    state["model"] = {k: v[..., :1] if v.ndim else v for k, v in state["model"].items()}
    save_checkpoint(out, state)
    with pytest.raises(InputError) as caught:
        train(_cfg(steps=3), store, out, resume=True, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "do not fit this model" in message and len(message) < 400


# ------------------------------------------------------------------ files and logs


def test_metrics_csv_names_its_units(store, tmp_path):
    out = tmp_path / "run"
    result = train(_cfg(), store, out, progress=False)
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert "loss_bits" in rows[0] and "bits_per_nt" in rows[0] and "loss" not in rows[0]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert float(train_rows[-1]["loss_bits"]) == pytest.approx(
        result.train_losses[-1] / math.log(2))


def test_checkpoint_files_are_atomic_with_normal_permissions(tmp_path):
    save_checkpoint(tmp_path, {"step": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "checkpoint.pt").stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_training_log_has_no_carriage_returns(store, tmp_path, capsys):
    train(_cfg(), store, tmp_path / "run", progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "train: 2/2 step (100.0%)" in err


def test_plain_progress_lines_are_rate_limited():
    stream = io.StringIO()
    bar = progress(total=100, desc="work", unit="genome", file=stream)
    assert isinstance(bar, PlainProgress)
    for _ in range(50):
        bar.update(1)
    assert stream.getvalue() == ""  # less than 10 s went by
    bar.interval = 0
    bar.set_postfix(loss="1.5 bits")
    bar.update(1)
    line = stream.getvalue()
    assert line.startswith("work: 51/100 genome (51.0%) ") and "genome/s, eta " in line
    assert line.rstrip().endswith("loss=1.5 bits")
    bar.close()
    bar.close()
    assert stream.getvalue().count("\n") == 1  # nothing new since the last line


def test_plain_progress_iterates_and_reports_the_end():
    stream = io.StringIO()
    assert list(progress(range(3), desc="x", file=stream)) == [0, 1, 2]
    assert stream.getvalue().startswith("x: 3/3 it (100.0%)")
    quiet = io.StringIO()
    list(progress(range(3), disable=True, file=quiet))
    assert quiet.getvalue() == ""


def test_unknown_transformer_override_is_a_setting_error():
    with pytest.raises(ValueError, match="unknown transformer setting.*n_neurons; valid keys"):
        _cfg(model="transformer")


def _one_line_lenient(err, *words):
    """One error line; progress lines may precede it."""
    return _one_line(err, *words, alone=False)
