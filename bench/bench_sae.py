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

Two rows per ReLU / JumpReLU architecture, because their cost depends on how many codes are
active: "from init" (each library's own initialisation, about half the codes active, the
dense regime) and "steady L0=N" (``--steady-l0``, 0 to skip): both libraries start from the
same SAE state: dnatlas's initial directions at unit norm (decoder_init_norm 1, so the
pre-activations have a trained SAE's spread and 15 fresh Adam steps at lr 4e-4 move L0
little; at 0.1 it climbs from 64 to ~900), with each feature's encoder bias set so that it
is active on N / d_sae of the first batch's rows (its pre-activation quantile; JumpReLU:
the threshold plus that quantile), i.e. L0 = N, the sparsity of a trained SAE. The column
"L0 at end" is measured on the first batch after the run (dnatlas / sae_lens), to show that
both stayed in that regime (each library's ``encode``: for BatchTopK dnatlas's is the
inference JumpReLU at the running threshold, not the batch top-k). ``--sparse-sweep`` instead prints dnatlas's forward + backward
time of its dense and sparse code paths against the fraction of active codes (the
crossover behind ``SparseAutoencoder.sparse_below``).
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


def steady_state(arch, args, data) -> dict[str, torch.Tensor] | None:
    """dnatlas's initial SAE state, unit-norm rows, encoder biases giving L0 = ``args.steady_l0``.

    Feature j's bias is theta_j - (its pre-activation's quantile 1 - L0 / d_sae on
    data[0]) with theta the JumpReLU threshold (0 for the others); None when steady_l0 is 0.
    """
    if not args.steady_l0:
        return None
    from dnatlas.sae import build_sae, make_config

    kw = {"k": args.k} if arch in ("topk", "batchtopk") else {}
    sae = build_sae(make_config(arch, args.d_in, expansion=args.expansion, normalize=False,
                                             decoder_init_norm=1.0, **kw)).to(args.device)
    with torch.no_grad():
        pre = (data[0] - sae.b_dec) @ sae.W_enc
        B = pre.shape[0]
        above = max(1, round(B * args.steady_l0 / sae.d_sae))
        theta = sae.threshold if arch == "jumprelu" else 0.0
        sae.b_enc.copy_(theta - pre.kthvalue(B - above, dim=0).values)
    return {k: v.detach().clone() for k, v in sae.named_parameters()}


def _load(sae, state) -> None:
    with torch.no_grad():
        for name, value in (state or {}).items():
            getattr(sae, name).copy_(value)


def _l0(sae, x) -> float:
    with torch.no_grad():
        return float((sae.encode(x) != 0).sum(-1).float().mean())


def run_ours(arch, args, data, state=None) -> tuple[float, float]:
    from dnatlas.sae import make_config
    from dnatlas.sae.trainer import SAESpec, SAETrainer, SAETrainingConfig

    kw = {"k": args.k} if arch in ("topk", "batchtopk") else {}
    cfg = make_config(arch, args.d_in, expansion=args.expansion, normalize=False, **kw)
    total = args.steps + args.warmup
    train = SAETrainingConfig(steps=total, batch_size=args.batch_size, lr=4e-4, lr_warmup_frac=0.0,
                        log_every=total, checkpoint_every=10**9, device=args.device, progress=False)
    timed = TimedBatches(data, total, args.warmup)
    with tempfile.TemporaryDirectory() as out:
        trainer = SAETrainer([SAESpec(None, "x", cfg)], train, out)
        sae = trainer.slots[0].sae
        _load(sae, state)
        trainer.fit(timed)
    return timed.rows_per_second(), _l0(sae, data[0])


def run_sae_lens(arch, args, data, state=None) -> tuple[float, float]:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    from dnatlas.sae import make_config

    ours = make_config(arch, args.d_in, expansion=args.expansion,
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
    _load(sae, state)
    timed = TimedBatches(data, total, args.warmup)
    SAETrainer(cfg, sae, data_provider=timed).fit()
    return timed.rows_per_second(), _l0(sae, data[0])


def _worker(spec: str, args) -> None:
    """One run in this (fresh) process: ``LIB,ARCH,TUNED,STEADY``; prints rows/s and the
    final L0 as JSON."""
    lib, arch, tuned, steady = spec.split(",")
    if tuned == "1":
        from dnatlas.runtime import tune_allocator

        tune_allocator()
    data = make_data(args.d_in, args.batch_size, 8, args.device)
    state = steady_state(arch, args, data) if steady == "1" else None
    rate, l0 = (run_ours if lib == "dnatlas" else run_sae_lens)(arch, args, data, state)
    print(json.dumps({"rows_per_s": rate, "l0": l0}))


def _run(spec: str, argv: list[str]) -> tuple[float, float]:
    out = subprocess.run([sys.executable, __file__, *argv, "--worker", spec], check=True,
                         capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["rows_per_s"], result["l0"]


def sparse_sweep(args) -> None:
    """dnatlas's forward + backward time, dense vs sparse code path, by active fraction."""
    from dnatlas.runtime import tune_allocator
    from dnatlas.sae import build_sae, make_config

    tune_allocator()
    x = make_data(args.d_in, args.batch_size, 1, args.device)[0]
    print("| arch | active fraction | dense ms | sparse ms | dense / sparse |")
    print("|---|---:|---:|---:|---:|")
    for arch in ("relu", "jumprelu"):
        sae = build_sae(make_config(arch, args.d_in, expansion=args.expansion,
                                                 normalize=False)).to(args.device)
        with torch.no_grad():
            pre = x @ sae.W_enc
        theta = sae.threshold.detach() if arch == "jumprelu" else 0.0
        for frac in (0.005, 0.01, 0.02, 0.04, 0.08, 0.12, 0.16):
            with torch.no_grad():
                k = x.shape[0] - max(1, round(frac * x.shape[0]))
                sae.b_enc.copy_(theta - pre.kthvalue(k, dim=0).values)
            times: dict[float, list[float]] = {0.0: [], 1.0: []}
            for _ in range(4):
                for below in times:  # alternate: same machine state for both
                    sae.sparse_below = below
                    t = time.perf_counter()
                    sae.forward_train(x).loss.backward()
                    if x.is_cuda:
                        torch.cuda.synchronize()
                    times[below].append(time.perf_counter() - t)
                    sae.zero_grad(set_to_none=True)
            dense, sparse = (statistics.median(v[1:]) * 1e3 for v in times.values())
            print(f"| {arch} | {frac:.3f} | {dense:.0f} | {sparse:.0f} | {dense / sparse:.2f} |")
            sys.stdout.flush()


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
    p.add_argument("--steady-l0", type=int, default=64,
                   help="L0 of the steady-state rows (relu, jumprelu); 0: no such rows")
    p.add_argument("--sparse-sweep", action="store_true",
                   help="only time dnatlas's dense vs sparse code paths by active fraction")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.worker:
        _worker(args.worker, args)
        return 0
    if args.sparse_sweep:
        sparse_sweep(args)
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
    print("| arch | start | dnatlas rows/s | sae_lens rows/s | dnatlas / sae_lens "
          "| sae_lens, tuned allocator, rows/s | dnatlas / sae_lens tuned "
          "| L0 at end (dnatlas / sae_lens) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for arch in args.archs.split(","):
        starts = ["0"] + (["1"] if args.steady_l0 and arch in ("relu", "jumprelu") else [])
        for steady in starts:
            runs: dict[str, list[tuple[float, float]]] = {"ours": [], "lens": [], "tuned": []}
            for _ in range(args.repeats):
                runs["ours"].append(_run(f"dnatlas,{arch},1,{steady}", argv))
                if have_sae_lens:
                    runs["lens"].append(_run(f"sae_lens,{arch},0,{steady}", argv))
                    if not args.no_tuned:
                        runs["tuned"].append(_run(f"sae_lens,{arch},1,{steady}", argv))
            rates = {k: [r for r, _ in v] for k, v in runs.items()}
            o = statistics.median(rates["ours"])
            cells = [_cell(rates["ours"])]
            for key in ("lens", "tuned"):
                if rates[key]:
                    cells += [_cell(rates[key]), f"{o / statistics.median(rates[key]):.2f}x"]
                else:
                    cells += ["n/a", "n/a"]
            l0s = [statistics.median(l for _, l in runs[k]) if runs[k] else float("nan")
                   for k in ("ours", "lens")]
            cells.append(f"{l0s[0]:.0f} / {l0s[1]:.0f}")
            start = "from init" if steady == "0" else f"steady L0={args.steady_l0}"
            print(f"| {arch} | {start} | " + " | ".join(cells) + " |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
