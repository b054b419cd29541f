"""bench/gpu_check.py: the one prepared GPU run, kept from rotting by its CPU dry run.

The dry run goes through every section's code (tiny sizes, gloo, the ``eager`` compile
backend) and must pass; the driver's failure handling (one ``FAIL`` line, the run goes on,
a non-zero exit) is tested with stand-in sections; the gpu preset must stay GPU-sized.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
from dnatlas.training.config import load_train_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"
SECTIONS = ("peak", "parity", "mfu", "torchrun", "extract", "sae", "train")


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import gpu_check

    return gpu_check


def test_dry_run_passes_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    seconds = time.perf_counter() - t
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    for name in SECTIONS:
        assert re.search(rf"^OK {name}: ", proc.stdout, re.M), f"no result line for {name}"
    assert not re.search(r"^FAIL ", proc.stdout, re.M)
    assert proc.stdout.splitlines()[1].startswith("torch "), "versions come first"
    doc = json.loads(out.read_text())
    assert doc["ok"] and list(doc["sections"]) == list(SECTIONS)
    parity = doc["sections"]["parity"]["result"]
    compiled = parity["runs"]["bf16 compiled"]
    assert max(compiled["loss_rel_diff"]) <= parity["loss_tol"]
    assert compiled["weight_diff_of_update"] <= parity["weight_tol"]
    assert parity["runs"]["fp32 eager"]["loss_rel_diff"] == [0.0] * parity["steps"]
    tr = doc["sections"]["torchrun"]["result"]
    assert tr["backend"] == "gloo" and tr["world_size"] == 1 and tr["ddp_max_diff"] <= 1e-6
    train = doc["sections"]["train"]["result"]
    weights = train["weights"]
    assert weights["n_shards"] >= 2 and weights["loaded_back_exact"]
    folder = Path(weights["folder"])
    assert folder == tmp_path / "gpu-model"  # beside --out, as $OUT/gpu-model on the device
    assert (folder / "model.safetensors.index.json").is_file()
    assert set(train["models"]) == {"bundled (tiny)", "gpu run (fp16 shards)"}
    for model in train["models"].values():
        assert 1.5 < model["val"]["bits_per_nt"] < 3
        assert set(model["neurons"]) == {"start_codon_2nd", "stop_codon_1st"}
    print(f"dry run: {seconds:.1f} s wall")  # shown with -s; the brief asks for it


def test_gpu_preset_is_gpu_sized_and_fits_the_device_limits():
    cfg = load_train_config("gpu")
    assert cfg.bf16 and cfg.compile and cfg.model == "dnatlas"
    mcfg = DNAtlasConfig.preset(cfg.preset, **cfg.model_overrides)
    n = DNAtlas(mcfg).num_parameters()
    assert 15e6 < n <= 25e6
    assert 2 * n <= 64 * 10**6  # fp16 weights within the 64 MB that come back
    assert cfg.batch_size % cfg.micro_batch_size == 0
    assert mcfg.receptive_field < cfg.window


def test_a_failing_section_prints_one_fail_line_and_the_run_goes_on(gpu_check, monkeypatch,
                                                                    capsys, tmp_path):
    def broken(c):
        raise RuntimeError("planted failure\nsecond line")

    def slow(c):
        time.sleep(30)
        return "never", {}

    def fine(c):
        return "fine", {"x": 1}

    monkeypatch.setattr(gpu_check, "FUNCTIONS", {**gpu_check.FUNCTIONS, "peak": broken,
                                                 "parity": slow, "mfu": fine})
    monkeypatch.setitem(gpu_check.BOXES, "parity", 1)
    monkeypatch.setattr(gpu_check, "MIN_BOX_S", 0)
    out = tmp_path / "r.json"
    t = time.perf_counter()
    rc = gpu_check.main(["--dry-run", "--sections", "peak,parity,mfu", "--out", str(out)])
    assert time.perf_counter() - t < 20
    text = capsys.readouterr().out
    assert rc == 1
    assert re.search(r"^FAIL peak: RuntimeError: planted failure \(", text, re.M)
    assert re.search(r"^FAIL parity: timed out after 1 s", text, re.M)
    assert re.search(r"^OK mfu: fine", text, re.M)
    assert "| peak | FAIL |" in text and "| mfu | OK |" in text
    doc = json.loads(out.read_text())
    assert not doc["ok"] and doc["sections"]["mfu"]["result"] == {"x": 1}
    assert not doc["sections"]["parity"]["ok"]


def test_without_cuda_the_gpu_run_says_how_to_install(gpu_check, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc = gpu_check.main([])
    text = capsys.readouterr().out
    assert rc == 2
    assert text.splitlines()[1].startswith("torch ")
    assert "pip install torch --index-url" in text and "--dry-run" in text
    assert re.search(r"^FAIL env: no CUDA device", text, re.M)
