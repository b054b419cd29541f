"""dnatlas on one GPU, proven in one prepared run of at most 8 minutes (issue 14).

Sections, in order, each time-boxed; a failure prints ``FAIL <section>: <reason>`` and the
run goes on; the exit code is non-zero if any failed:

  peak      bf16 and fp32 matmul peaks (bench_model.matmul_peak, 8192^3), the yardsticks;
  parity    a few DNAtlas training steps (the gpu preset's micro-batch, AdamW, clipping)
            under bf16 autocast + torch.compile equal fp32 eager (TF32 off) within
            LOSS_TOL per step and WEIGHT_TOL of the update on the final weights;
  mfu       training (and forward) MFU of the thin and wide presets, FLOPs per nt as
            bench_model counts them, against the bf16 peak (eager bf16 unless --mfu-compile);
  torchrun  ``torchrun --nproc_per_node=1``: ``dnatlas train`` (its CLI entry point) for a
            few steps on a tiny store built from bundled genome slices, then an NCCL process
            group: all_reduce and a DDP step whose gradients equal a plain step's;
  extract   extract_activations of the bundled model over 2 Mb of MG1655 (all layers,
            float16): nt/s and the fraction of the peak by forward FLOPs;
  sae       SAE training rows/s, dnatlas against sae_lens (bench_sae.run_ours/run_sae_lens);
  train     the gpu preset (src/dnatlas/presets/gpu.yaml) on the bundled store (train:
            E. coli + K. pneumoniae, val: V. cholerae) for what is left of the budget (at most
            5 minutes); its weights saved as fp16 safetensors shards (at most 16 MB each,
            64 MB in all) and loaded back through the model layer; held-out bits/nt
            (dnatlas.training.evaluate) and the start/stop-codon neuron AUPRC (the neuron
            catalog pipeline on a region of MG1655) against the bundled model.

Tables are printed as each section ends, then a summary; ``--out`` gets everything as JSON,
rewritten after every section (so a killed run still leaves its figures).

On the lent GPU machine (no internet; its python3 has torch + CUDA, numpy, safetensors,
huggingface_hub, scipy, scikit-learn, matplotlib; it lacks biopython and sae_lens and
sae_lens's own dependencies), dnatlas runs from ``src/`` without installing, and the
missing packages travel as wheels made here first::

    bash bench/gpu_check.sh wheels        # here: ~29 MB of cp312 wheels into .whl/ (ignored)
    # then one device call, carry [".whl"], timeout_s 560:
    bash bench/gpu_check.sh run           # pip-installs .whl/ into /tmp/site (~15 s), then
    #   PYTHONPATH=/tmp/site timeout 450 python3 bench/gpu_check.py \\
    #       --out $OUT/gpu.json --model-out $OUT/gpu-model 2>&1 | tee $OUT/gpu.log
    # (this script puts src/ on sys.path itself, and on the torchrun worker's PYTHONPATH)

(7 files come back: gpu.json, gpu.log, and the model folder's config, index and shards.)
Elsewhere, with a CUDA build of torch in .venv: ``make setup-dev TORCH_SPEC=torch
PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu126 && .venv/bin/python
bench/gpu_check.py --out runs/gpu.json``.

``--dry-run``: the same code paths on the CPU with tiny sizes (a 1-block tiny model, a few
steps, 10-20 kb slices, gloo for torchrun, torch.compile with the ``eager`` backend, fp32
peaks; sae_lens skipped unless ``--sae-lens yes``): about 30 CPU seconds, so half a minute
on an idle 2-core machine and one to two minutes on a shared one; run by
tests/test_gpu_check.py.

Notes. ``dnatlas train`` at WORLD_SIZE 1 creates no process group (it needs none), so the
torchrun section opens one itself to prove NCCL. The neuron catalogs run without drawing
their PNGs (``--catalog-figures`` keeps them): 3-5 figures per layer would cost ~1 s each.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT / "src")):  # bench_model, bench_sae; dnatlas without install
    if _p not in sys.path:
        sys.path.insert(0, _p)

#: parity tolerances. bf16 keeps 8 significant bits (relative rounding 2^-8 = 0.4%), and
#: fp32 accumulation leaves each step's loss within ~0.1% of fp32; over a few steps the runs
#: drift apart through their updates (measured on CPU bf16 over 4 steps of the tiny model:
#: 2e-4, 8e-4, 3e-3, 7e-3). LOSS_TOL = 2e-2 (5 bf16 roundings) allows that drift and still
#: catches a wrong graph (a bad gradient moves the loss by > 5% within a few steps).
LOSS_TOL = 2e-2
#: final weights: ||w_bf16 - w_fp32|| / ||w_fp32 - w_0||, the difference as a fraction of
#: what training moved them. Adam divides by sqrt(v), so bf16 noise flips the sign of the
#: tiny updates of near-zero gradients: 0.17 measured (CPU bf16, 4 steps); updates from a
#: wrong gradient are uncorrelated (ratio ~1.4) or opposed (~2), so 0.5 separates them.
WEIGHT_TOL = 0.5
SECTIONS = ("peak", "parity", "mfu", "torchrun", "extract", "sae", "train")
#: the most seconds each section may take (train takes what is left, at most TRAIN_MAX_S)
BOXES = {"peak": 30, "parity": 150, "mfu": 75, "torchrun": 90, "extract": 60, "sae": 90}
TRAIN_MAX_S = 300
MIN_BOX_S = 5  # a section with less time left than this is skipped (and fails)
TRAIN_RESERVE_S = 100  # after training: fp16 shards, evaluation, two neuron catalogs
BUNDLED_EVAL = 1.8869  # the bundled model's README: V. cholerae, 256 x 1024-nt windows

GPU = dict(peak_n=8192, parity_steps=6, parity_shape=None, mfu_presets=("thin", "wide"),
           mfu_length=4096, mfu_repeat=3, tr_slice=(200_000, 50_000), tr_steps=4,
           tr_window=1024, tr_batch=8, extract_nt=2_000_000, extract_chunk=1 << 15,
           extract_batch=8, sae=dict(d_in=512, expansion=16, k=32, batch_size=4096, steps=50,
                                     warmup=5, repeats=3), sae_archs=("topk", "relu"),
           store_slice=None, region="K-12-MG1655:1-200000", layers="all", eval_window=1024,
           eval_windows=256, shard="16MB", compile_backend="inductor")
DRY = dict(peak_n=256, parity_steps=3, parity_shape=(1, 256), mfu_presets=("tiny",),
           mfu_length=256, mfu_repeat=1, tr_slice=(20_000, 10_000), tr_steps=2,
           tr_window=256, tr_batch=2, extract_nt=10_000, extract_chunk=4096, extract_batch=1,
           sae=dict(d_in=32, expansion=4, k=4, batch_size=256, steps=3, warmup=1,
                    repeats=1), sae_archs=("topk",), store_slice=(20_000, 10_000),
           region="K-12-MG1655:1-10000", layers=0, eval_window=256, eval_windows=4, shard="100KB",
           compile_backend="eager")
#: the dry run's model: the tiny preset cut to 1 block
DRY_MODEL = {"n_layers": 1, "dilations": [1]}
#: fp16 weights: shards of at most 16 MB (dry run 200 kB), 64 MB in all (under the 16 MiB
#: per file and 64 MiB in all that come back from the device's $OUT)
SHARD_LIMIT, DRY_SHARD_LIMIT, MODEL_LIMIT = 16 * 10**6, 2 * 10**5, 64 * 10**6
VAL = "vibrio_cholerae_h1"
TRAIN_GENOMES = ("ecoli_k12_mg1655", "klebsiella_pneumoniae_klebs_hs11286",
                 "klebsiella_pneumoniae_klebs_kp1084", "klebsiella_pneumoniae_mgh78578",
                 "klebsiella_pneumoniae_ntuh_k2044")


def say(*parts) -> None:
    print(*parts, flush=True)


def table(headers, rows) -> None:
    say("| " + " | ".join(headers) + " |")
    say("|" + "---|" * len(headers))
    for row in rows:
        say("| " + " | ".join(str(v) for v in row) + " |")


def fmt(x, digits=3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x and digits > 0 and (abs(x) >= 1e5 or abs(x) < 10 ** -digits):
            return f"{x:.{digits - 1}e}"  # digits 0 (counts, rates): always 123,456
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


class Failed(Exception):
    """A check did not hold (the message is the one-line reason)."""


class SectionTimeout(BaseException):
    """The section ran past its time box (BaseException: no library swallows it)."""


class Check:
    """Runs the sections with time boxes and a global budget; collects results and JSON."""

    def __init__(self, args, torch):
        self.args, self.torch = args, torch
        self.dry = args.dry_run
        self.size = DRY if self.dry else GPU
        self.device = torch.device("cpu" if self.dry else "cuda")
        self.t0 = time.perf_counter()
        self.results: dict = {}
        self.meta: dict = {}
        self.ctx: dict = {}
        self.work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check_"))
        self.work.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ bookkeeping
    def left(self) -> float:
        return self.args.budget - (time.perf_counter() - self.t0)

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def write_json(self) -> None:
        if not self.args.out:
            return
        from dnatlas.files import write_json

        doc = {"meta": self.meta, "sections": self.results,
               "ok": all(r["ok"] for r in self.results.values()),
               "elapsed_s": time.perf_counter() - self.t0}
        write_json(self.args.out, doc)

    def run_section(self, i: int, name: str, fn) -> None:
        box = BOXES.get(name, TRAIN_MAX_S + TRAIN_RESERVE_S)
        box = min(box, self.left())
        say(f"\n== [{i}/{len(SECTIONS)}] {name} (at most {box:.0f} s)")
        t, cpu = time.perf_counter(), _cpu_seconds()
        entry = {"ok": False, "seconds": None, "reason": None, "result": {}}
        if box < MIN_BOX_S:
            entry["reason"] = f"skipped: {self.left():.0f} s of the {self.args.budget} s budget left"
        else:
            done = threading.Event()
            watchdog = threading.Thread(target=self._watchdog, args=(name, box + 60, done),
                                        daemon=True)
            watchdog.start()
            signal.signal(signal.SIGALRM, _raise_timeout)
            signal.setitimer(signal.ITIMER_REAL, box)
            try:
                summary, result = fn(self)
                entry.update(ok=True, reason=summary, result=result)
            except SectionTimeout:
                entry["reason"] = f"timed out after {box:.0f} s"
            except Failed as exc:
                entry.update(reason=str(exc), result=getattr(exc, "result", {}))
            except Exception as exc:  # noqa: BLE001 - any failure is reported, then on to the next
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                entry["reason"] = f"{type(exc).__name__}: {first}"
                traceback.print_exc(limit=6)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                done.set()
            self._free()
        entry["seconds"] = round(time.perf_counter() - t, 2)
        entry["cpu_seconds"] = round(_cpu_seconds() - cpu, 2)  # this process and its children
        self.results[name] = entry
        verdict = "OK" if entry["ok"] else "FAIL"
        say(f"{verdict} {name}: {entry['reason']} ({entry['seconds']:.1f} s)")
        self.write_json()

    def _watchdog(self, name: str, limit: float, done: threading.Event) -> None:
        """A section stuck where the alarm cannot reach (inside one C call) ends the run."""
        if done.wait(limit):
            return
        self.results[name] = {"ok": False, "seconds": limit, "result": {},
                              "reason": f"hung past {limit:.0f} s (not interruptible); run ended"}
        say(f"FAIL {name}: hung past {limit:.0f} s; ending the run")
        with contextlib.suppress(Exception):
            self.write_json()
        os._exit(3)

    def _free(self) -> None:
        """Give the GPU memory of a finished section back (a no-op on the CPU)."""
        if self.device.type == "cuda":
            import gc

            gc.collect()
            self.torch.cuda.empty_cache()

    # ------------------------------------------------------------------ shared inputs
    def genome(self, name: str):
        """The first record of a bundled genome (cached)."""
        key = f"genome:{name}"
        if key not in self.ctx:
            from dnatlas import bundled
            from dnatlas.genome.readers import read_records

            self.ctx[key] = next(iter(read_records(bundled.genome_path(name))))
        return self.ctx[key]

    def fasta_slice(self, name: str, length: int) -> Path:
        """The first ``length`` nt of a bundled genome as ``WORK/slices-N/NAME.fa`` (its
        genome ID stays NAME)."""
        from dnatlas.genome.alphabet import decode

        path = self.work / f"slices-{length}" / f"{name}.fa"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            rec = self.genome(name)
            path.write_text(f">{rec.id}\n{decode(rec.seq[:length])}\n")
        return path

    def peak(self, dtype_name: str) -> float:
        """FLOP/s of an n^3 matmul in ``bf16``/``fp32`` (the peak section's, else measured now)."""
        key = f"peak_{dtype_name}"
        if key not in self.ctx:
            from bench_model import matmul_peak

            dtype = self.torch.bfloat16 if dtype_name == "bf16" else self.torch.float32
            self.ctx[key] = matmul_peak(self.device, dtype, n=self.size["peak_n"])
        return self.ctx[key]

    def mfu_peak(self) -> tuple[str, float]:
        """The peak MFU is measured against: bf16 on the GPU, fp32 in the dry run."""
        name = "fp32" if self.dry else "bf16"
        return name, self.peak(name)

    def autocast(self):
        return self.torch.autocast(self.device.type, dtype=self.torch.bfloat16)

    def train_config(self, extra: list[str] = ()):
        """The gpu preset; in the dry run with the 2-block tiny model and small windows."""
        from dnatlas.training.config import load_train_config

        over = list(extra)
        if self.dry:
            over = ["preset=tiny", f"model_overrides={json.dumps(DRY_MODEL)}", "window=256",
                    "batch_size=2", "micro_batch_size=2", "warmup_steps=1", *over]
        return load_train_config("gpu", over)


def _raise_timeout(signum, frame):
    raise SectionTimeout()


def _cpu_seconds() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# ============================================================================ sections
def sec_peak(c: Check):
    from bench_model import matmul_peak

    n = c.size["peak_n"]
    torch = c.torch
    rows, result = [], {"n": n}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        c.ctx[f"peak_{name}"] = flops = matmul_peak(c.device, dtype, n=n)
        result[f"{name}_tflops"] = flops / 1e12
        rows.append((name, f"{n}^3", fmt(flops / 1e12, 2)))
    result["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
    table(("dtype", "matmul", "TFLOP/s"), rows)
    return (f"bf16 {result['bf16_tflops']:.1f} TFLOP/s, fp32 {result['fp32_tflops']:.1f} "
            f"TFLOP/s"), result


def _batches(c: Check, cfg, steps: int, shape):
    """``steps`` (seq, mask) micro-batches of MG1655 windows with the training masking."""
    import numpy as np

    from dnatlas.architectures.dnatlas import MarkovMasking

    B, L = shape
    seq = c.genome("ecoli_k12_mg1655").seq
    masking = MarkovMasking(cfg.eligible_fraction, cfg.mask_rate, cfg.run_length_range)
    rng = np.random.default_rng(0)
    out = []
    for s in range(steps):
        starts = rng.integers(0, len(seq) - L, B)
        tokens = np.stack([seq[a:a + L] for a in starts]).astype(np.int64)
        mask = masking.mask_batch(L, [(0, s * B + j) for j in range(B)])
        out.append((c.torch.from_numpy(tokens).to(c.device), c.torch.from_numpy(mask).to(c.device)))
    return out


def _flat(model):
    """All parameters as one float32 vector."""
    import torch

    return torch.cat([p.detach().float().flatten() for p in model.parameters()])


def sec_parity(c: Check):
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
    from dnatlas.training.objective import loss_sum_and_count
    from dnatlas.training.trainer import make_optimizer

    torch = c.torch
    cfg = c.train_config()
    shape = c.size["parity_shape"] or (cfg.micro_batch_size, cfg.window)
    steps = c.size["parity_steps"]
    batches = _batches(c, cfg, steps, shape)
    torch.manual_seed(0)
    base = DNAtlas(DNAtlasConfig.preset(cfg.preset, **cfg.model_overrides))
    w0 = _flat(base)
    backend = c.args.compile_backend or c.size["compile_backend"]

    def run(bf16: bool, compiled: bool):
        model = copy.deepcopy(base).to(c.device).train()
        opt = make_optimizer(model, cfg)
        step_model = torch.compile(model, backend=backend) if compiled else model
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        if not bf16:  # the reference in true fp32 (cuDNN would use TF32 by default)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        losses, times = [], []
        try:
            for seq, mask in batches:
                t = time.perf_counter()
                with c.autocast() if bf16 else contextlib.nullcontext():
                    s, n = loss_sum_and_count(step_model, "dnatlas", seq, mask)
                    loss = s / n
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                c.sync()
                times.append(time.perf_counter() - t)
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
        return losses, _flat(model).cpu(), times

    runs = {"fp32 eager": run(False, False), "bf16 eager": run(True, False),
            "bf16 compiled": run(True, True)}
    ref_loss, ref_w, _ = runs["fp32 eager"]
    update = float((ref_w - w0).norm())
    stats = {}
    for name, (losses, w, times) in runs.items():
        rel = [abs(a - b) / abs(a) for a, b in zip(ref_loss, losses)]
        stats[name] = {"losses": losses, "loss_rel_diff": rel, "step_s": times,
                       "weight_diff_of_update": float((w - ref_w).norm()) / update,
                       "weight_rel_diff": float((w - ref_w).norm() / ref_w.norm())}
    table(("step", *runs, "rel. diff bf16 eager", "rel. diff bf16 compiled"),
          [(s + 1, *(fmt(r[0][s], 5) for r in runs.values()),
            fmt(stats["bf16 eager"]["loss_rel_diff"][s]),
            fmt(stats["bf16 compiled"]["loss_rel_diff"][s])) for s in range(steps)])
    comp = stats["bf16 compiled"]
    timed = comp["step_s"][2:] or comp["step_s"][-1:]
    nt_s = shape[0] * shape[1] / statistics.median(timed)
    c.ctx["train_nt_s"] = nt_s
    result = {"shape": list(shape), "steps": steps, "compile_backend": backend,
              "loss_tol": LOSS_TOL, "weight_tol": WEIGHT_TOL, "update_norm": update,
              "runs": stats, "compiled_nt_s": nt_s,
              "compile_s": comp["step_s"][0] - statistics.median(timed)}
    say(f"final weights, ||w - w_fp32|| / ||w_fp32 - w0||: bf16 eager "
        f"{stats['bf16 eager']['weight_diff_of_update']:.3f}, bf16 compiled "
        f"{comp['weight_diff_of_update']:.3f}; compiled micro-batch {shape[0]} x {shape[1]}: "
        f"{nt_s:,.0f} nt/s, first step {comp['step_s'][0]:.1f} s")
    worst = max(comp["loss_rel_diff"])
    summary = (f"loss rel. diff max {worst:.1e} <= {LOSS_TOL:g}, weights "
               f"{comp['weight_diff_of_update']:.3f} of the update <= {WEIGHT_TOL:g}")
    if not all(math.isfinite(x) for r in runs.values() for x in r[0]):
        raise _failed("a non-finite loss", result)
    if worst > LOSS_TOL or comp["weight_diff_of_update"] > WEIGHT_TOL:
        raise _failed(summary.replace("<=", "vs"), result)
    return summary, result


def _failed(reason: str, result: dict) -> Failed:
    exc = Failed(reason)
    exc.result = result
    return exc


def sec_mfu(c: Check):
    from bench_model import bench_preset
    from dnatlas.architectures.dnatlas.activation import compile_activation
    from dnatlas.training.config import load_train_config

    compile_activation(False)
    peak_name, peak = c.mfu_peak()
    bf16 = not c.dry
    rows, result = [], {"peak": peak_name, "peak_flops": peak, "compile": c.args.mfu_compile,
                        "bf16": bf16, "presets": {}}
    oom = getattr(c.torch, "OutOfMemoryError", c.torch.cuda.OutOfMemoryError)
    for name in c.size["mfu_presets"]:
        # the preset's micro-batch, halved if it does not fit (fp32 eager keeps ~54 kB per
        # nt per block of 1024 neurons for backward: thin at 24 x 4096 ~64 GB, wide ~96 GB;
        # bf16 less)
        batch = 1 if c.dry else load_train_config(name).micro_batch_size
        while True:
            try:
                r = bench_preset(name, batch, c.size["mfu_length"], c.device, bf16,
                                 c.args.mfu_compile, c.size["mfu_repeat"])
                break
            except oom:
                if batch == 1:
                    raise
                say(f"{name}: out of memory at batch {batch} x {c.size['mfu_length']}; halving")
                batch //= 2
                c._free()
        r.update(batch=batch, length=c.size["mfu_length"], train_mfu=r["train_flops"] / peak,
                 forward_mfu=r["fwd_flops"] / peak)
        result["presets"][name] = r
        rows.append((name, f"{r['params'] / 1e6:.2f} M", f"{batch} x {r['length']}",
                     f"{r['flops_nt'] / 1e6:.1f}", fmt(r["train_nt_s"], 0), fmt(r["fwd_nt_s"], 0),
                     f"{100 * r['train_mfu']:.1f}%", f"{100 * r['forward_mfu']:.1f}%"))
        c._free()
    table(("preset", "params", "batch", "MFLOP/nt fwd", "train nt/s", "forward nt/s",
           f"train MFU ({peak_name})", f"forward MFU ({peak_name})"), rows)
    bad = [n for n, r in result["presets"].items() if not 0 < r["train_mfu"] <= 1]
    summary = ", ".join(f"{n} train MFU {100 * r['train_mfu']:.1f}%"
                        for n, r in result["presets"].items())
    if bad:
        raise _failed(f"MFU outside (0, 1] for {bad}: a FLOP count or timing error", result)
    return summary + (" (compiled)" if c.args.mfu_compile else " (eager)"), result


def sec_torchrun(c: Check):
    from dnatlas.cli import main as cli

    n_train, n_val = c.size["tr_slice"]
    store = c.work / "tr-store"
    rc = cli(["data", "build", str(c.fasta_slice("ecoli_k12_mg1655", n_train)),
              str(c.fasta_slice(VAL, n_val)), "--val-genomes", VAL, "--out", str(store),
              "--force"])
    if rc != 0:
        raise Failed(f"dnatlas data build exited {rc}")
    spec = {"store": str(store), "run": str(c.work / "tr-run"), "steps": c.size["tr_steps"],
            "window": c.size["tr_window"], "batch": c.size["tr_batch"],
            "device": c.device.type, "result": str(c.work / "tr-result.json")}
    Path(spec["result"]).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(Path(__file__).resolve()), "--torchrun-worker", json.dumps(spec)]
    say("$ " + " ".join(cmd[:5]) + " bench/gpu_check.py --torchrun-worker ...")
    rc, tail = run_logged(cmd, c.work / "torchrun.log", timeout=max(5.0, c.left() - 5))
    for line in tail[-12:]:
        say("  | " + line)
    res = json.loads(Path(spec["result"]).read_text()) if Path(spec["result"]).exists() else {}
    res["exit_code"] = rc
    if res:
        table(("check", "result"), [(k, v) for k, v in res.items() if k != "ddp"])
    if rc != 0 or not res.get("ok"):
        raise _failed(res.get("reason") or f"torchrun exited {rc}", res)
    return (f"dnatlas train {res['train_steps']} steps under torchrun, {res['backend']} "
            f"all_reduce and DDP gradients = plain (max diff {res['ddp_max_diff']:.1e})"), res


def run_logged(cmd, log: Path, timeout: float, env=None) -> tuple[int, list[str]]:
    """Run ``cmd`` in its own session with output to ``log``; kill the whole group at
    ``timeout`` s (return code 124). Returns (code, last lines)."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(HERE),
                                         *filter(None, [env.get("PYTHONPATH")])])
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=ROOT)
        try:
            rc = proc.wait(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
                raise
            rc = 124
    return rc, log.read_text(errors="replace").splitlines()


def torchrun_worker(spec: dict) -> int:
    """Inside torchrun: ``dnatlas train`` (the CLI's own entry point), then an explicit
    process group (nccl on CUDA, gloo on CPU): all_reduce, and a DDP step against a plain one."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
    from dnatlas.cli import main as cli
    from dnatlas.training.objective import loss_sum_and_count

    if spec["device"] == "cpu":
        torch.set_num_threads(1)
    out = {"ok": False, "world_size": int(os.environ.get("WORLD_SIZE", 0)),
           "rank": int(os.environ.get("RANK", -1))}
    try:
        args = ["train", "--config", "tiny", "--data", spec["store"], "--out", spec["run"],
                "--force", "--no-progress", "--device", spec["device"]]
        for kv in (f"steps={spec['steps']}", f"window={spec['window']}",
                   f"batch_size={spec['batch']}", f"micro_batch_size={spec['batch']}",
                   "warmup_steps=1", f"eval_every={spec['steps']}", "eval_windows=4",
                   f"checkpoint_every={spec['steps']}", "log_every=1", "tensorboard=false"):
            args += ["--set", kv]
        out["train_exit_code"] = rc = cli(args)
        with open(Path(spec["run"]) / "metrics.csv") as fh:
            rows = list(csv.DictReader(fh))
        train = [r for r in rows if r["split"] == "train"]
        out["train_steps"] = len(train)
        out["train_loss_bits"] = float(train[-1]["loss_bits"]) if train else None
        val = [r for r in rows if r["split"] == "val"]
        out["val_bits_per_nt"] = float(val[-1]["bits_per_nt"]) if val else None
        out["model_saved"] = (Path(spec["run"]) / "model" / "config.json").is_file()
        if rc != 0 or len(train) != spec["steps"] or not out["model_saved"]:
            out["reason"] = f"dnatlas train: exit {rc}, {len(train)} steps logged"
            return 1
        cuda = spec["device"] == "cuda"
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(dev)
        if not dist.is_initialized():  # dnatlas train inits one only for WORLD_SIZE > 1
            dist.init_process_group("nccl" if cuda else "gloo")
        out["backend"] = dist.get_backend()
        if cuda:
            out["nccl_version"] = ".".join(map(str, torch.cuda.nccl.version()))
        world = dist.get_world_size()
        x = torch.full((1024,), float(dist.get_rank() + 1), device=dev)
        dist.all_reduce(x)
        out["all_reduce_ok"] = bool(torch.all(x == world * (world + 1) / 2))
        torch.manual_seed(0)
        plain = DNAtlas(DNAtlasConfig.preset("tiny", **DRY_MODEL)).to(dev)
        ddp = DistributedDataParallel(copy.deepcopy(plain), device_ids=[dev.index] if cuda else None)
        seq = torch.randint(0, 4, (2, 256), device=dev)
        mask = torch.rand(2, 256, device=dev) < 0.15
        for m in (plain, ddp):
            s, n = loss_sum_and_count(m, "dnatlas", seq, mask)
            (s / n).backward()
        diffs = [float((a.grad - b.grad).abs().max()) for a, b in
                 zip(plain.parameters(), ddp.module.parameters())]
        out["ddp_max_diff"] = max(diffs)
        dist.barrier()
        dist.destroy_process_group()
        out["ok"] = out["all_reduce_ok"] and out["ddp_max_diff"] <= 1e-6
        if not out["ok"]:
            out["reason"] = (f"all_reduce ok {out['all_reduce_ok']}, DDP gradient diff "
                             f"{out['ddp_max_diff']:.2e}")
        return 0 if out["ok"] else 1
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out["reason"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"
        traceback.print_exc()
        return 1
    finally:
        Path(spec["result"]).write_text(json.dumps(out))


def sec_extract(c: Check):
    import numpy as np

    from dnatlas.analysis.extract import extract_activations
    from dnatlas.models import load_model

    torch = c.torch
    adapter = load_model("default", device=str(c.device))
    seq = c.genome("ecoli_k12_mg1655").seq
    n = min(c.size["extract_nt"], len(seq))
    kw = dict(layers="all", dtype=np.float16, layout="CL", chunk_size=c.size["extract_chunk"],
              batch_size=c.size["extract_batch"], progress=False)
    extract_activations(adapter, seq, start=0, end=min(n, c.size["extract_chunk"]), **kw)
    c.sync()
    t = time.perf_counter()
    acts = extract_activations(adapter, seq, start=0, end=n, **kw)
    c.sync()
    seconds = time.perf_counter() - t
    # the streamed activations equal one direct forward pass over the first positions
    head = 2048
    window = torch.from_numpy(seq[:head + adapter.receptive_field].astype(np.int64))[None]
    direct = adapter.activations(window, list(acts))
    worst = max(float(np.abs(acts[k][:, :head].astype(np.float32)
                             - direct[k][0, :head].float().cpu().numpy().T).max()
                      / (np.abs(acts[k][:, :head].astype(np.float32)).max() + 1e-6))
                for k in acts)
    flops_nt = adapter.model.config.flops_per_nucleotide()
    achieved = flops_nt * n / seconds
    peaks = {name: c.peak(name) for name in ("fp32", "bf16")}
    result = {"nt": n, "seconds": seconds, "nt_per_s": n / seconds, "layers": list(acts),
              "flops_per_nt": flops_nt, "achieved_flops": achieved,
              "fraction_of_fp32_peak": achieved / peaks["fp32"],
              "fraction_of_bf16_peak": achieved / peaks["bf16"],
              "chunk_size": kw["chunk_size"], "batch_size": kw["batch_size"],
              "max_rel_diff_vs_direct": worst}
    table(("model", "nt", "layers (float16, CL)", "seconds", "nt/s", "GFLOP/s (fwd)",
           "of fp32 peak", "of bf16 peak", "vs direct pass"),
          [(adapter.name, f"{n:,}", len(acts), f"{seconds:.2f}", fmt(n / seconds, 0),
            fmt(achieved / 1e9, 1), f"{100 * result['fraction_of_fp32_peak']:.2f}%",
            f"{100 * result['fraction_of_bf16_peak']:.2f}%", f"{worst:.1e}")])
    if worst > 1e-2:
        raise _failed(f"streamed activations differ from a direct pass by {worst:.1e}", result)
    return (f"{n / seconds:,.0f} nt/s over {n:,} nt, {100 * result['fraction_of_fp32_peak']:.2f}% "
            f"of the fp32 peak by forward FLOPs"), result


def sec_sae(c: Check):
    import importlib.util

    import bench_sae

    s = c.size["sae"]
    args = argparse.Namespace(device=str(c.device), **s)
    data = bench_sae.make_data(s["d_in"], s["batch_size"], 8, str(c.device))
    want = c.args.sae_lens if c.args.sae_lens != "auto" else ("no" if c.dry else "yes")
    lens, lens_error = None, None
    if want == "yes":
        try:
            if importlib.util.find_spec("sae_lens") is None:
                raise ImportError("No module named 'sae_lens'")
            import sae_lens

            lens = sae_lens.__version__
        except Exception as exc:  # noqa: BLE001 - a broken install is reported, ours still runs
            lens_error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    result = {"config": s, "sae_lens": lens or lens_error or "skipped", "archs": {}}
    rows = []
    for arch in c.size["sae_archs"]:
        ours, theirs = [], []
        for _ in range(s["repeats"]):
            ours.append(bench_sae.run_ours(arch, args, data)[0])  # (rows/s, L0)
            if lens:
                theirs.append(bench_sae.run_sae_lens(arch, args, data)[0])
        o = statistics.median(ours)
        t = statistics.median(theirs) if theirs else None
        result["archs"][arch] = {"dnatlas_rows_s": o, "sae_lens_rows_s": t,
                                 "ratio": o / t if t else None}
        rows.append((arch, fmt(o, 0), fmt(t, 0) if t else "-", f"{o / t:.2f}x" if t else "-"))
        c._free()
    say(f"sae_lens: {result['sae_lens']}; d_in {s['d_in']}, d_sae {s['d_in'] * s['expansion']}, "
        f"batch {s['batch_size']}, {s['steps']} timed steps, median of {s['repeats']}")
    table(("arch", "dnatlas rows/s", "sae_lens rows/s", "dnatlas / sae_lens"), rows)
    summary = ", ".join(f"{a} {r['dnatlas_rows_s']:,.0f} rows/s"
                        + (f" ({r['ratio']:.2f}x sae_lens)" if r["ratio"] else "")
                        for a, r in result["archs"].items())
    if lens_error:
        raise _failed(f"sae_lens not usable ({lens_error}); dnatlas: {summary}", result)
    return summary + ("" if lens else " (sae_lens skipped)"), result


def sec_train(c: Check):
    from dnatlas.cli import main as cli

    started = time.perf_counter()
    store = c.work / "store"
    if c.size["store_slice"]:  # dry run: the same genomes, cut
        n_train, n_val = c.size["store_slice"]
        inputs = [str(c.fasta_slice(g, n_train)) for g in TRAIN_GENOMES[:2]]
        inputs.append(str(c.fasta_slice(VAL, n_val)))
    else:
        inputs = [*TRAIN_GENOMES, VAL]
    if cli(["data", "build", *inputs, "--val-genomes", VAL, "--out", str(store), "--force"]):
        raise Failed("dnatlas data build failed")
    phases = {"store_s": time.perf_counter() - started}
    base = c.train_config()
    budget = min(TRAIN_MAX_S, c.left() - TRAIN_RESERVE_S)
    if c.dry:
        budget = max(budget, 60.0)
    nt_step = base.batch_size * base.window
    rate = c.ctx.get("train_nt_s")
    source = "measured by parity" if rate else "assumed: 1/3 of the bf16 peak"
    if c.dry:
        steps = 3
    else:
        if rate is None:  # no parity figure: assume a third of the bf16 peak
            from dnatlas.architectures.dnatlas import DNAtlasConfig

            mc = DNAtlasConfig.preset(base.preset, **base.model_overrides)
            rate = c.peak("bf16") / 3 / (3 * mc.flops_per_nucleotide())
        steps = int(0.85 * max(0.0, budget - 20) * rate / nt_step)
        if steps < 20:
            raise Failed(f"{budget:.0f} s left for training: too little for 20 steps")
    cfg = c.train_config([f"steps={steps}", f"eval_every={steps}",
                          f"checkpoint_every={max(1, steps // 4)}", "tensorboard=false",
                          f"warmup_steps={min(base.warmup_steps, max(1, steps // 10))}",
                          f"compile={'true' if not c.dry else 'false'}",
                          f"log_every={1 if c.dry else 10}"])
    run = c.work / "train-run"
    say(f"training {cfg.preset} + {cfg.model_overrides}: {steps} steps x {nt_step:,} nt "
        f"(budget {budget:.0f} s at {rate or 0:,.0f} nt/s, {source})")
    t = time.perf_counter()
    steps_done, truncated = _train_within(c, cfg, store, run, budget)
    phases["train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model_out = Path(c.args.model_out or (c.work / "gpu-model"))
    fp16 = _save_fp16_shards(c, run / "model", model_out)
    phases["shards_s"] = time.perf_counter() - t
    t = time.perf_counter()
    summary, result = _compare_with_bundled(c, cfg, store, run, model_out, fp16, steps_done)
    phases["evaluate_and_catalogs_s"] = time.perf_counter() - t
    result.update(budget_s=budget, planned_steps=steps, planned_from_nt_s=rate,
                  rate_source=source, truncated=truncated, phases=phases)
    say("phases: " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    return summary, result


class _OutOfTime(Exception):
    pass


def _train_within(c: Check, cfg, store: Path, run: Path, budget: float):
    """Train; past ``budget`` s stop and keep the last checkpoint's weights as the model.
    Returns (steps in the model, None or what was cut)."""
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
    from dnatlas.training.trainer import train

    t_train = time.perf_counter()

    def guard(step, loss):  # after each step's evaluation and checkpoint
        if step < cfg.steps and time.perf_counter() - t_train > budget:
            raise _OutOfTime(step)

    try:
        done = train(cfg, store, run, progress=False, device=str(c.device), on_step=guard,
                     force=True)
        return done.step, None
    except _OutOfTime as exc:
        state = c.torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
        model = DNAtlas(DNAtlasConfig.preset(cfg.preset, **cfg.model_overrides))
        model.load_state_dict(state["model"])
        model.save_pretrained(run / "model")
        say(f"stopped at step {exc.args[0]} of {cfg.steps} (budget); model = checkpoint "
            f"of step {state['step']}")
        return state["step"], {"stopped_at": exc.args[0], "checkpoint_step": state["step"]}


def _save_fp16_shards(c: Check, trained: Path, model_out: Path) -> dict:
    """The trained model as fp16 shards in ``model_out``; sizes checked, loaded back exact."""
    from dnatlas.architectures.dnatlas import DNAtlas
    from dnatlas.models import load_model

    model = DNAtlas.from_pretrained(trained)
    half = copy.deepcopy(model).half()
    half.save_pretrained(model_out, max_shard_size=c.size["shard"])
    files = {p.name: p.stat().st_size for p in sorted(model_out.iterdir())}
    shards = {k: v for k, v in files.items() if k.endswith(".safetensors")}
    limit = DRY_SHARD_LIMIT if c.dry else SHARD_LIMIT
    back = load_model(str(model_out), device="cpu")
    exact = all(c.torch.equal(b, a.half().float()) for a, b in
                zip(model.state_dict().values(), back.model.state_dict().values()))
    info = {"folder": str(model_out), "files": files, "n_shards": len(shards),
            "total_bytes": sum(shards.values()), "params": model.num_parameters(),
            "loaded_back_exact": exact}
    table(("file", "bytes"), [(k, f"{v:,}") for k, v in files.items()])
    problems = []
    if max(shards.values()) > limit:
        problems.append(f"a shard of {max(shards.values()):,} bytes > {limit:,}")
    if info["total_bytes"] > MODEL_LIMIT:
        problems.append(f"{info['total_bytes']:,} bytes in all > {MODEL_LIMIT:,}")
    if len(files) > 6:
        problems.append(f"{len(files)} files (with gpu.json and gpu.log over the 8 that return)")
    if not exact:
        problems.append("the shards do not load back to the fp16-rounded weights")
    if problems:
        raise _failed("; ".join(problems), info)
    return info


def _compare_with_bundled(c: Check, cfg, store: Path, run: Path, model_out: Path, fp16: dict,
                          steps_done: int):
    """Held-out bits/nt and start/stop-codon neuron AUPRC of the run's model (loaded from
    its fp16 shards) and the bundled model; whether the run beats it on both."""
    from dnatlas.genome.store import GenomeStore
    from dnatlas.models import load_model
    from dnatlas.pipelines.neurons import CatalogSettings, neuron_catalog
    from dnatlas.training.evaluate import evaluate

    st = GenomeStore.open(store)
    with open(run / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    train_rows = [r for r in rows if r["split"] == "train"]
    rates = [float(r["nt_per_s"]) for r in train_rows[1:] if r["nt_per_s"]]
    nt_s = statistics.median(rates) if rates else None
    flops = cfg_flops(cfg)
    peak_name, peak = c.mfu_peak()
    models = {"bundled (tiny)": load_model("default", device=str(c.device)),
              "gpu run (fp16 shards)": load_model(str(model_out), device=str(c.device))}
    settings = CatalogSettings(region=c.size["region"], tracks=["start_codon", "stop_codon"],
                               footnote6=True, windows=0, top=5,
                               jobs=1 if c.dry else max(1, (os.cpu_count() or 2) - 2),
                               batch_size=c.size["extract_batch"])
    out, table_rows = {}, []
    for i, (label, adapter) in enumerate(models.items()):
        ev = evaluate(adapter.nucleotide_log_probs, st, "val", c.size["eval_window"],
                      c.size["eval_windows"], batch_size=16, device=adapter.device)
        with _figures(c.args.catalog_figures):
            cat = neuron_catalog(adapter, "ecoli_k12_mg1655", "ecoli_k12_mg1655",
                                 c.size["layers"], c.work / f"catalog-{i}", settings=settings,
                                 force=True)
        best = {}
        for track in ("start_codon_2nd", "stop_codon_1st"):
            layer, neuron, ap = max(((k.layer, *k.best(track)) for k in cat.catalogs),
                                    key=lambda x: -1 if math.isnan(x[2]) else x[2])
            best[track] = {"layer": layer, "neuron": neuron, "auprc": ap}
        out[label] = {"params": adapter.model.num_parameters(), "val": ev, "neurons": best}
        table_rows.append((label, f"{adapter.model.num_parameters() / 1e6:.2f} M",
                           f"{ev['bits_per_nt']:.4f}", f"{ev['accuracy']:.4f}",
                           *(f"{best[t]['auprc']:.3f} ({best[t]['layer']} #{best[t]['neuron']})"
                             for t in best)))
    b, g = out["bundled (tiny)"], out["gpu run (fp16 shards)"]
    beats = {"bits_per_nt": g["val"]["bits_per_nt"] < b["val"]["bits_per_nt"],
             **{t: g["neurons"][t]["auprc"] > b["neurons"][t]["auprc"] for t in b["neurons"]}}
    region = c.size["region"]
    say(f"held-out {VAL}: {c.size['eval_windows']} windows of {c.size['eval_window']} nt; "
        f"neurons: AUPRC on {region}, both strands, footnote 6 positions")
    table(("model", "params", "val bits/nt", "val accuracy", "start codon AUPRC",
           "stop codon AUPRC"), table_rows)
    train_mfu = 3 * flops * nt_s / peak if nt_s else None
    verdict = "yes" if all(beats.values()) else "no"
    say(f"beats the bundled model on both (bits/nt and start/stop AUPRC): {verdict} {beats}")
    if not c.dry:
        say(f"bundled model's bits/nt here {b['val']['bits_per_nt']:.4f} vs its README "
            f"{BUNDLED_EVAL} (same store and windows)")
    result = {"config": cfg.to_dict(), "steps_done": steps_done,
              "train_nt_s": nt_s, "train_mfu": train_mfu, "mfu_peak": peak_name,
              "final_train_loss_bits": float(train_rows[-1]["loss_bits"]) if train_rows else None,
              "train_nt": steps_done * cfg.batch_size * cfg.window,
              "weights": fp16, "models": out, "beats_bundled": beats, "beats_both": verdict == "yes",
              "region": region}
    summary = (f"{steps_done} steps at {fmt(nt_s, 0)} nt/s"
               + (f" ({100 * train_mfu:.1f}% {peak_name} MFU)" if train_mfu else "")
               + f"; val {g['val']['bits_per_nt']:.4f} bits/nt vs bundled "
               f"{b['val']['bits_per_nt']:.4f}; beats bundled on both: {verdict}")
    return summary, result


def _figures(keep: bool):
    """The catalog pipeline without its PNGs (3-5 per layer, ~1 s each; scratch here) unless
    ``keep``: everything it computes is kept."""
    from unittest import mock

    from dnatlas.pipelines import neuron_figures

    if keep:
        return contextlib.nullcontext()
    return mock.patch.object(neuron_figures, "neuron_figures", lambda *a, **k: None)


def cfg_flops(cfg) -> int:
    from dnatlas.architectures.dnatlas import DNAtlasConfig

    return DNAtlasConfig.preset(cfg.preset, **cfg.model_overrides).flops_per_nucleotide()


FUNCTIONS = {"peak": sec_peak, "parity": sec_parity, "mfu": sec_mfu, "torchrun": sec_torchrun,
             "extract": sec_extract, "sae": sec_sae, "train": sec_train}


# ============================================================================ driver
INSTALL_HINT = ("PyTorch with CUDA is needed. On the lent GPU machine use its python3 (it "
                "has torch + CUDA): `bash bench/gpu_check.sh run`. Elsewhere: `python3 -m pip "
                "install torch --index-url https://download.pytorch.org/whl/cu126` (or `make "
                "setup-dev TORCH_SPEC=torch PIP_EXTRA_INDEX_URL=https://download.pytorch.org/"
                "whl/cu126`). Without a GPU: --dry-run.")


def environment(torch) -> dict:
    import importlib.util

    env = {"python": platform.python_version(), "executable": sys.executable,
           "torch": torch.__version__, "cuda_build": torch.version.cuda,
           "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "machine": platform.machine()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, gpus=torch.cuda.device_count(), capability=f"{p.major}.{p.minor}",
                   gpu_memory_gib=round(p.total_memory / 2**30, 1),
                   multiprocessors=p.multi_processor_count,
                   cudnn=torch.backends.cudnn.version())
        with contextlib.suppress(Exception):
            env["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    from importlib import metadata

    for mod, dist in (("triton", "triton"), ("numpy", "numpy"), ("safetensors", "safetensors"),
                      ("huggingface_hub", "huggingface_hub"), ("sae_lens", "sae_lens"),
                      ("Bio", "biopython"), ("sklearn", "scikit-learn"),
                      ("matplotlib", "matplotlib")):  # versions without importing (sae_lens: ~20 s)
        env[mod] = None
        if importlib.util.find_spec(mod) is not None:
            try:
                env[mod] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                env[mod] = "?"
    with contextlib.suppress(Exception):
        env["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                    capture_output=True, text=True, timeout=5).stdout.strip()
    return env


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="JSON file of every section's figures (rewritten as it goes)")
    p.add_argument("--model-out", help="folder for the trained model's fp16 shards "
                                       "(default: beside --out, gpu-model/)")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (see the docstring)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for the whole run (default 420 on a GPU, 300 dry)")
    p.add_argument("--mfu-compile", action="store_true",
                   help="time the mfu presets compiled (about a minute of compiling each)")
    p.add_argument("--compile-backend", default=None,
                   help="torch.compile backend of the parity run (inductor; dry: eager)")
    p.add_argument("--sae-lens", choices=("auto", "yes", "no"), default="auto",
                   help="also time sae_lens (auto: yes on a GPU, no in the dry run)")
    p.add_argument("--catalog-figures", action="store_true",
                   help="let the neuron catalogs draw their PNGs (into --work)")
    p.add_argument("--work", help="scratch folder (default: a new temporary one, removed)")
    p.add_argument("--torchrun-worker", metavar="JSON", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.budget is None:
        args.budget = 300.0 if args.dry_run else 420.0
    if args.model_out is None and args.out:
        args.model_out = str(Path(args.out).resolve().parent / "gpu-model")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.torchrun_worker:
        return torchrun_worker(json.loads(args.torchrun_worker))
    say(f"# dnatlas GPU check{' (dry run, CPU)' if args.dry_run else ''}: python "
        f"{platform.python_version()} ({sys.executable})")
    try:
        import torch
    except ImportError as exc:
        say(f"torch: not importable ({exc})\n{INSTALL_HINT}\nFAIL env: no torch")
        return 2
    env = environment(torch)
    say(f"torch {env['torch']}, CUDA build {env['cuda_build']}, CUDA available "
        f"{env['cuda_available']}" + (f", {env.get('gpus')} x {env.get('gpu')} (sm "
                                      f"{env.get('capability')}, {env.get('gpu_memory_gib')} GiB), "
                                      f"cuDNN {env.get('cudnn')}, NCCL {env.get('nccl')}"
                                      if env["cuda_available"] else ""))
    say("packages: " + ", ".join(f"{k} {env[k]}" for k in ("triton", "numpy", "safetensors",
                                                        "huggingface_hub", "sae_lens", "Bio")))
    if not args.dry_run and not env["cuda_available"]:
        say(INSTALL_HINT)
        say("FAIL env: no CUDA device")
        return 2
    if args.dry_run:
        torch.set_num_threads(1)  # 2 shared cores: one thread avoids OpenMP spin contention
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        say(f"unknown section(s) {unknown}; sections: {', '.join(SECTIONS)}")
        return 2
    c = Check(args, torch)
    c.meta = {"env": env, "dry_run": args.dry_run, "budget_s": args.budget,
              "sizes": {k: v for k, v in c.size.items()}, "argv": sys.argv[1:]}
    try:
        for i, name in enumerate(SECTIONS, start=1):
            if name in wanted:
                c.run_section(i, name, FUNCTIONS[name])
    finally:
        if not args.work:
            import shutil

            shutil.rmtree(c.work, ignore_errors=True)
    say("\n== summary")
    table(("section", "result", "seconds", "CPU s", "figures"),
          [(n, "OK" if r["ok"] else "FAIL", f"{r['seconds']:.1f}", f"{r.get('cpu_seconds', 0):.1f}",
            r["reason"]) for n, r in c.results.items()])
    ok = all(r["ok"] for r in c.results.values())
    say(f"{'all sections passed' if ok else 'some sections FAILED'} in "
        f"{time.perf_counter() - c.t0:.0f} s ({_cpu_seconds():.0f} CPU s since start)"
        + (f"; JSON: {args.out}" if args.out else ""))
    c.write_json()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
