"""SAE training throughput: dnatlas vs sae_lens on the same config, data and machine.

    python bench/bench_sae.py [--archs topk,relu] [--d-in 256] [--expansion 16]
                              [--batch-size 4096] [--steps 30] [--repeats 3] [--device cpu]

Both trainers run their full training loop (Adam, gradient clipping at 1, dead-feature
tracking; no input normalisation, no logging service) on the same random activations (a
fixed set of correlated Gaussian batches, cycled). Throughput is measured between the
moments the trainer asks for batch ``warmup`` and for its last batch, so set-up and final
saving are excluded. Runs alternate between the two libraries and the median of
``repeats`` runs is reported (with the range), with the ratio ours / sae_lens (> 1: dnatlas
is faster). Every run is a fresh process, so no process setting of one library reaches the
other: dnatlas tunes glibc's allocator for its (B, d_sae) codes (``dnatlas.runtime``); the
column "sae_lens, tuned" runs sae_lens with the same allocator setting, to show how much of
the ratio that setting explains. Both get the same hyperparameters (dnatlas's defaults:
L1 0.1, JumpReLU threshold and bandwidth 0.001, decoder init norm).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch


class TimedBatches:
    """Cycles through ``batches`` for ``total`` pulls, timing pulls ``warmup`` to the last."""

    def __init__(self, batches, total: int, warmup: int, wrap=lambda b: b):
        self.batches, self.total, self.warmup, self.wrap = batches, total, warmup, wrap
        self.i = 0
        self.t_start = self.t_end = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= self.total:
            raise StopIteration
        if self.batches[0].is_cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if self.i == self.warmup:
            self.t_start = now
        if self.i == self.total - 1:
            self.t_end = now
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        return self.wrap(batch)

    def rows_per_second(self) -> float:
        steps = self.total - 1 - self.warmup
        return steps * self.batches[0].shape[0] / (self.t_end - self.t_start)


def make_data(d_in: int, batch_size: int, n: int, device: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(d_in, d_in, generator=g) / d_in**0.5
    return [(torch.randn(batch_size, d_in, generator=g) @ mix + 0.1).to(device) for _ in range(n)]


def run_ours(arch, args, data) -> float:
    from dnatlas.sae.architectures import SAEConfig
    from dnatlas.sae.trainer import SAESpec, SAETrainer, SAETrainingConfig

    kw = {"k": args.k} if arch in ("topk", "batchtopk") else {}
    cfg = SAEConfig.from_expansion(arch, args.d_in, args.expansion, normalize=False, **kw)
    total = args.steps + args.warmup
    train = SAETrainingConfig(steps=total, batch_size=args.batch_size, lr=4e-4, lr_warmup_frac=0.0,
                        log_every=total, checkpoint_every=10**9, device=args.device, progress=False)
    timed = TimedBatches(data, total, args.warmup)
    with tempfile.TemporaryDirectory() as out:
        SAETrainer([SAESpec(None, "x", cfg)], train, out).fit(timed)
    return timed.rows_per_second()


def run_sae_lens(arch, args, data) -> float:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    from dnatlas.sae.architectures import SAEConfig

    ours = SAEConfig.from_expansion(arch, args.d_in, args.expansion,
                                    k=args.k if arch in ("topk", "batchtopk") else None)
    d_sae = int(args.d_in * args.expansion)
    common = dict(d_in=args.d_in, d_sae=d_sae, device=args.device,
                  decoder_init_norm=ours.decoder_init_norm)
    if arch == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(k=args.k, **common))
    elif arch == "batchtopk":
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(k=args.k, **common))
    elif arch == "jumprelu":
        sae = JumpReLUTrainingSAE(JumpReLUTrainingSAEConfig(
            jumprelu_init_threshold=ours.jumprelu_init_threshold,
            jumprelu_bandwidth=ours.jumprelu_bandwidth, l0_coefficient=ours.l0_coefficient,
            **common))
    else:
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(l1_coefficient=ours.l1_coefficient,
                                                            **common))
    total = args.steps + args.warmup
    cfg = SAETrainerConfig(total_training_samples=total * args.batch_size,
                           train_batch_size_samples=args.batch_size, lr=4e-4, lr_end=4e-4,
                           device=args.device)
    timed = TimedBatches(data, total, args.warmup)
    SAETrainer(cfg, sae, data_provider=timed).fit()
    return timed.rows_per_second()


def _worker(spec: str, args) -> None:
    """One run in this (fresh) process: ``LIB,ARCH,TUNED``; prints rows/s as JSON."""
    lib, arch, tuned = spec.split(",")
    if tuned == "1":
        from dnatlas.runtime import tune_allocator

        tune_allocator()
    data = make_data(args.d_in, args.batch_size, 8, args.device)
    rate = (run_ours if lib == "dnatlas" else run_sae_lens)(arch, args, data)
    print(json.dumps({"rows_per_s": rate}))


def _run(spec: str, argv: list[str]) -> float:
    out = subprocess.run([sys.executable, __file__, *argv, "--worker", spec], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["rows_per_s"]


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", default="topk,relu")
    p.add_argument("--d-in", type=int, default=256)
    p.add_argument("--expansion", type=int, default=16)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-tuned", action="store_true",
                   help="skip the sae_lens runs with the tuned allocator")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.worker:
        _worker(args.worker, args)
        return 0
    argv = [a for a in argv if a != "--no-tuned"]

    have_sae_lens = importlib.util.find_spec("sae_lens") is not None
    if have_sae_lens:
        import sae_lens

        lens_version = sae_lens.__version__
    else:
        lens_version = "not installed"
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(f"# SAE training throughput ({device}; torch {torch.__version__}; sae_lens {lens_version})")
    print(f"d_in={args.d_in}, d_sae={args.d_in * args.expansion}, batch={args.batch_size}, "
          f"k={args.k} (topk/batchtopk), {args.steps} timed steps, median (range) of "
          f"{args.repeats} runs, each in a fresh process\n")
    print("| arch | dnatlas rows/s | sae_lens rows/s | dnatlas / sae_lens "
          "| sae_lens, tuned allocator, rows/s | dnatlas / sae_lens tuned |")
    print("|---|---:|---:|---:|---:|---:|")
    for arch in args.archs.split(","):
        runs: dict[str, list[float]] = {"ours": [], "lens": [], "tuned": []}
        for _ in range(args.repeats):
            runs["ours"].append(_run(f"dnatlas,{arch},1", argv))
            if have_sae_lens:
                runs["lens"].append(_run(f"sae_lens,{arch},0", argv))
                if not args.no_tuned:
                    runs["tuned"].append(_run(f"sae_lens,{arch},1", argv))
        o = statistics.median(runs["ours"])
        cells = [_cell(runs["ours"])]
        for key in ("lens", "tuned"):
            if runs[key]:
                cells += [_cell(runs[key]), f"{o / statistics.median(runs[key]):.2f}x"]
            else:
                cells += ["n/a", "n/a"]
        print(f"| {arch} | " + " | ".join(cells) + " |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
