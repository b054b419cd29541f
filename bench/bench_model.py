"""DNAtlas throughput per preset: forward and training step (forward + backward + AdamW).

Prints nt/s, model FLOPs per nucleotide, achieved FLOP/s, and that as a fraction of a
dense fp32 matmul peak measured in the same run on the same device (ratios are what to
compare: the machines are shared and noisy).

    python bench/bench_model.py                   # CPU, presets tiny and small
    python bench/bench_model.py --presets tiny small thin wide --device cuda --bf16
"""

from __future__ import annotations

import argparse
import time

import torch

from dnatlas.model import DNAtlas, DNAtlasConfig, mask_tokens, windowed_mlm_loss
from dnatlas.model.activation import compile_activation


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
    args = ap.parse_args()
    device = torch.device(args.device)
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
