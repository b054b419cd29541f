"""DNAtlas throughput per preset: forward and training step (forward + backward + AdamW).

Prints nt/s, model FLOPs per nucleotide, achieved FLOP/s, and that as a fraction of a
dense fp32 matmul peak measured in the same run on the same device (ratios are what to
compare: the machines are shared and noisy).

    python bench/bench_model.py                   # CPU, presets tiny and small
    python bench/bench_model.py --presets tiny small thin wide --device cuda --bf16
    python bench/bench_model.py --train-default   # steps as `dnatlas train` runs them
    python bench/bench_model.py --sweep           # tiny: window length x batch

``--train-default`` times optimiser steps exactly as ``dnatlas train PRESET`` runs them by
default: the preset's window, batch and micro-batch, Markov masking, the trainer's AdamW
(``make_optimizer``), loss normalisation, gradient clipping and schedule, the default
activation policy (``trainer.compiles_activation``: compiled when the preset's whole run
does enough work; the warm-up includes the compile), and the allocator setting of :mod:`dnatlas.runtime`. Each repeat measures the
matmul peak before and after the step and reports the step's share of their mean.
"""

from __future__ import annotations

import argparse
import time

import torch

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig, mask_tokens, windowed_mlm_loss
from dnatlas.architectures.dnatlas.activation import compile_activation


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device, repeat: int) -> float:
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def matmul_peak(device, dtype, n: int = 2048) -> float:
    """Best FLOP/s of an n x n x n matmul."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = _time(lambda: a @ b, device, 5)
    return 2 * n ** 3 / t


def bench_preset(name: str, batch: int, length: int, device, bf16: bool, compile_: bool,
                 repeat: int) -> dict:
    torch.manual_seed(0)
    cfg = DNAtlasConfig.preset(name)
    model = DNAtlas(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    run = torch.compile(model) if compile_ else model
    seq = torch.randint(0, 4, (batch, length), device=device)
    mask = torch.rand(batch, length, device=device) < 0.15
    tokens = mask_tokens(seq, mask)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    @torch.no_grad()
    def forward():
        with autocast:
            run(tokens)

    def train_step():
        with autocast:
            loss = windowed_mlm_loss(run(tokens).logits, seq, mask)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    nt = batch * length
    t_fwd = _time(forward, device, repeat)
    t_train = _time(train_step, device, repeat)
    flops = cfg.flops_per_nucleotide()
    return dict(preset=name, params=model.num_parameters(), flops_nt=flops,
                fwd_nt_s=nt / t_fwd, train_nt_s=nt / t_train,
                fwd_flops=flops * nt / t_fwd, train_flops=3 * flops * nt / t_train)


def train_default(name: str, repeat: int, device, overrides: tuple[str, ...] = ()) -> dict:
    """Optimiser steps of ``dnatlas train NAME`` with its defaults (see the module doc)."""
    import math

    import numpy as np

    from dnatlas.architectures.dnatlas import activation
    from dnatlas.architectures.dnatlas.masking import MarkovMasking
    from dnatlas.runtime import tune_allocator
    from dnatlas.training.config import load_train_config
    from dnatlas.training.objective import build_model, count_loss_terms, loss_sum_and_count
    from dnatlas.training.trainer import compiles_activation, lr_lambda, make_optimizer

    tune_allocator()
    cfg = load_train_config(name, list(overrides))
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.preset, cfg.model_overrides).to(device).train()
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    compile_activation(compiles_activation(cfg, model))
    masking = MarkovMasking(cfg.eligible_fraction, cfg.mask_rate, cfg.run_length_range)
    rng = np.random.default_rng(0)
    state = {"step": 0}

    def step():
        seq = torch.from_numpy(rng.integers(0, 4, (cfg.batch_size, cfg.window))).to(device)
        seeds = [(cfg.seed, state["step"] * cfg.batch_size + i) for i in range(cfg.batch_size)]
        mask = torch.from_numpy(masking.mask_batch(cfg.window, seeds)).to(device)
        count = count_loss_terms(cfg.model, seq, mask).double().clamp(min=1)
        for m in range(math.ceil(cfg.batch_size / cfg.micro_batch_size)):
            sl = slice(m * cfg.micro_batch_size, (m + 1) * cfg.micro_batch_size)
            s_, _ = loss_sum_and_count(model, cfg.model, seq[sl], mask[sl])
            (s_ * (1 / count).float()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        state["step"] += 1

    t = time.perf_counter()
    warm = 0
    while warm < 2 or (activation.FUSED.mode is None and not activation.FUSED.failed
                       and activation.FUSED.work <= activation.AUTO_MIN_ELEMENTS) or warm < 4:
        step()
        warm += 1
    warm_s = time.perf_counter() - t
    nt = cfg.batch_size * cfg.window
    flops = 3 * DNAtlasConfig.preset(cfg.preset, **cfg.model_overrides).flops_per_nucleotide()
    shares, rates = [], []
    for _ in range(repeat):
        before = matmul_peak(device, torch.float32)
        secs = _time_once(step, device)
        after = matmul_peak(device, torch.float32)
        rates.append(nt / secs)
        shares.append(flops * nt / secs / ((before + after) / 2))
    compiled = bool(activation.FUSED.compiled) and not activation.FUSED.failed
    return dict(preset=name, window=cfg.window, batch=cfg.batch_size,
                micro=cfg.micro_batch_size, warm=warm, warm_s=warm_s, compiled=compiled,
                rates=rates, shares=shares, peak=(before + after) / 2)


def _time_once(fn, device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def _train_table(args, device) -> None:
    import statistics

    print("Optimiser steps as `dnatlas train PRESET` runs them by default "
          f"({args.repeat} steps after the warm-up; % of the matmul peak around each):\n")
    print("| preset | window x batch (micro) | activation | warm-up steps (s) | train nt/s "
          "median (range) | % of peak best | % of peak median | peak GFLOP/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    runs = [(p, ()) for p in args.presets]
    if args.sweep:
        runs = [("tiny", (f"window={w}", f"batch_size={b}", f"micro_batch_size={b}"))
                for w in (256, 1024, 4096) for b in (4, 16)]
    for name, overrides in runs:
        r = train_default(name, args.repeat, device, overrides)
        print(f"| {name} | {r['window']} x {r['batch']} ({r['micro']}) | "
              f"{'compiled' if r['compiled'] else 'eager'} | {r['warm']} ({r['warm_s']:.0f}) | "
              f"{statistics.median(r['rates']):,.0f} ({min(r['rates']):,.0f}-"
              f"{max(r['rates']):,.0f}) | {100 * max(r['shares']):.0f}% | "
              f"{100 * statistics.median(r['shares']):.0f}% | {r['peak'] / 1e9:.0f} |",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--compile-activation", action="store_true",
                    help="also time each preset with only the activation compiled")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--train-default", action="store_true",
                    help="time optimiser steps as `dnatlas train PRESET` runs them")
    ap.add_argument("--sweep", action="store_true",
                    help="with --train-default: tiny at windows 256-4096 x batches 4, 16")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.train_default or args.sweep:
        print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}\n")
        _train_table(args, device)
        return
    peak = matmul_peak(device, torch.bfloat16 if args.bf16 else torch.float32)
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch} x "
          f"{args.length} nt, matmul peak {peak / 1e9:.1f} GFLOP/s "
          f"({'bf16' if args.bf16 else 'fp32'})\n")
    print("| preset | params | MFLOP/nt (fwd) | forward nt/s | train nt/s | forward % of peak "
          "| train % of peak |")
    print("|---|---|---|---|---|---|---|")
    variants = [False, True] if args.compile_activation else [False]
    for name, fused in [(n, f) for n in args.presets for f in variants]:
        compile_activation(fused)
        r = bench_preset(name, args.batch, args.length, device, args.bf16, args.compile,
                         args.repeat)
        label = f"{name} (compiled activation)" if fused else name
        print(f"| {label} | {r['params'] / 1e6:.2f} M | {r['flops_nt'] / 1e6:.1f} | "
              f"{r['fwd_nt_s']:,.0f} | {r['train_nt_s']:,.0f} | "
              f"{100 * r['fwd_flops'] / peak:.0f}% | {100 * r['train_flops'] / peak:.0f}% |",
              flush=True)


if __name__ == "__main__":
    main()
