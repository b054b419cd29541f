"""The training loop, readable top to bottom.

One optimiser step on W data-parallel ranks:

1. rank r takes its ``batch_size / W`` windows of the global draw stream for this step
   (:class:`~dnatlas.genome.sampler.WindowSampler`), and masks each window with the
   Markov masking seeded by ``(seed, global draw index)``;
2. the number of loss terms of the *global* batch is all-reduced first, so every
   micro-batch's summed loss is divided by the same global count;
3. micro-batches accumulate gradients (DDP syncs only on the last one);
4. the gradient norm is clipped, and a non-finite loss stops the run cleanly, naming the
   step, with the last good checkpoint kept;
5. AdamW steps; the learning rate follows warmup + cosine (or constant).

Because masks depend on the global draw index and the loss is normalised globally, W
ranks give the same update as one process with the same global batch, up to float
summation order. Checkpoints are atomic and hold everything needed to resume exactly.

The run folder is locked for the whole run (a second run into it fails at once), and a
new run refuses a folder that holds an earlier one unless it resumes it or is forced to
replace it (which removes only the files a run writes). Losses are logged in bits per loss
term; progress is a bar on a terminal and a plain line every 10 s in a log file.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dnatlas.architectures.dnatlas.activation import AUTO_MIN_ELEMENTS, compile_activation
from dnatlas.architectures.dnatlas.masking import MarkovMasking
from dnatlas.errors import DnatlasError, InputError
from dnatlas.files import atomic_write_text, check_output_dir
from dnatlas.genome.sampler import WindowSampler
from dnatlas.genome.store import GenomeStore
from dnatlas.progress import progress as progress_bar
from dnatlas.runtime import tune_allocator
from dnatlas.training import distributed
from dnatlas.training.checkpoint import (
    load_checkpoint,
    lock_run,
    prepare_run_folder,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from dnatlas.training.config import TrainConfig
from dnatlas.training.evaluate import evaluate
from dnatlas.training.metrics_log import MetricsLog, nats_to_bits
from dnatlas.training.objective import build_model, count_loss_terms, loss_sum_and_count


class TrainingDiverged(DnatlasError):
    """The loss became non-finite; the run stopped and kept its last good checkpoint."""


@dataclass
class TrainResult:
    """What :func:`train` did: the run folder, the last step, the training losses and the
    final validation metrics (:func:`dnatlas.training.evaluate.evaluate`), if any."""

    out: Path
    step: int
    train_losses: list[float] = field(default_factory=list)  # nats per loss term, per step
    final_eval: dict | None = None

    @property
    def final_bits_per_nt(self) -> float | None:
        """Validation bits/nt at the end (None when no final evaluation ran)."""
        return self.final_eval["bits_per_nt"] if self.final_eval else None


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Multiplier of ``cfg.lr`` at a step: linear warmup, then cosine to min_lr_ratio or flat."""
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and kernels only (not embeddings, gains, biases, a, b)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embed" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas,
                             fused=torch.cuda.is_available() or None)


def compiles_activation(cfg: TrainConfig, model: nn.Module) -> bool:
    """Whether a run compiles the DNAtlas activation: ``cfg.compile_activation``, or for
    None (auto) whether the whole run's activation work (steps x batch x window x neurons
    x layers elements) exceeds what pays for a compile (``AUTO_MIN_ELEMENTS``).

    Decided from the config alone, never from what the process did before, so a resumed
    run decides as the uninterrupted one did and their losses stay equal bit for bit.
    """
    if cfg.compile_activation is not None:
        return bool(cfg.compile_activation)
    c = getattr(unwrap(model), "config", None)
    if not hasattr(c, "n_neurons"):  # the Transformer baseline has no such activation
        return False
    return cfg.steps * cfg.batch_size * cfg.window * c.n_neurons * c.n_layers > AUTO_MIN_ELEMENTS


def unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return model.module if isinstance(model, DistributedDataParallel) else model


def predictor_for(model: nn.Module, kind: str):
    """Nucleotide log-probabilities (B, L) -> (B, L, 4) of an unwrapped model, through its
    adapter (``kind`` is checked to be trainable)."""
    from dnatlas.models.registry import as_adapter, trainable_adapter

    trainable_adapter(kind)
    return as_adapter(model).nucleotide_log_probs


def train(cfg: TrainConfig, data: str | Path, out: str | Path, resume: bool = False,
          progress: bool = True, device: str | None = None,
          on_step: Callable[[int, float], None] | None = None,
          force: bool = False) -> TrainResult:
    """Train a model on the ``train`` split of a genome store; write checkpoints and metrics
    into ``out`` and the final model (``save_pretrained`` folder) into ``out/model``.

    ``resume`` continues from ``out``'s checkpoint; ``force`` replaces an earlier run in
    ``out`` (removing only its files). ``on_step(step, loss)`` is called after each
    optimiser step (used by tests to interrupt a run). Launch under ``torchrun`` for data
    parallelism.

    Raises:
        InputError: ``out`` holds an earlier run (without ``resume``/``force``) or is in
            use by another run, the checkpoint does not fit the model, a bad device...
    """
    info = distributed.setup(device)
    try:
        out = Path(out)
        if not info.is_main:
            return _train(cfg, Path(data), out, resume, progress, info, on_step, force)
        check_output_dir(out, "run folder")
        with lock_run(out):
            return _train(cfg, Path(data), out, resume, progress, info, on_step, force)
    finally:
        distributed.teardown(info)


def _train(cfg, data, out, resume, progress, info, on_step, force=False) -> TrainResult:
    if cfg.batch_size % info.world_size:
        raise DnatlasError(f"batch_size {cfg.batch_size} is not divisible by the "
                           f"{info.world_size} ranks")
    store = GenomeStore.open(data)
    tune_allocator()  # activations above 32 MiB (small: 48 MiB) reused, not re-mapped
    if info.is_main:
        prepare_run_folder(out, resume=resume, force=force)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.preset, cfg.model_overrides).to(info.device)
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    local_batch = cfg.batch_size // info.world_size
    sampler = WindowSampler(store, "train", cfg.window, local_batch, cfg.seed,
                            info.rank, info.world_size)
    masking = MarkovMasking(cfg.eligible_fraction, cfg.mask_rate, cfg.run_length_range)

    start_step = 0
    state = load_checkpoint(out) if resume else None
    if state is not None:
        _load_model_state(model, state, cfg, out)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        start_step = state["step"]
    if info.is_main:  # the settings in effect (a resumed run may change e.g. steps)
        atomic_write_text(out / "train_config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")

    has_val = store.segment_indices("val").size > 0
    log = MetricsLog(out, start_step, cfg.tensorboard) if info.is_main else None
    train_model: nn.Module = model
    if info.enabled:
        train_model = DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    else:
        compile_activation(compiles_activation(cfg, model))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if cfg.bf16 and info.device.type == "cuda" else contextlib.nullcontext())

    result = TrainResult(out, start_step)
    bar = progress_bar(total=cfg.steps, initial=start_step, desc="train", unit="step",
                       disable=not (progress and info.is_main), dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in range(start_step, cfg.steps):
        t_step = time.perf_counter()
        seq_np = sampler.batch(step).tokens
        seeds = [(cfg.seed, int(g)) for g in sampler.draw_indices(step)]
        mask_np = masking.mask_batch(cfg.window, seeds)
        seq = torch.from_numpy(seq_np.astype(np.int64)).to(info.device)
        mask = torch.from_numpy(mask_np).to(info.device)
        global_count = distributed.all_reduce_sum(
            count_loss_terms(cfg.model, seq, mask).double(), info).clamp(min=1)

        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=info.device)
        n_micro = math.ceil(local_batch / cfg.micro_batch_size)
        for m in range(n_micro):
            sl = slice(m * cfg.micro_batch_size, (m + 1) * cfg.micro_batch_size)
            sync = m == n_micro - 1 or not info.enabled
            with (contextlib.nullcontext() if sync else train_model.no_sync()), autocast:
                s, _ = loss_sum_and_count(train_model, cfg.model, seq[sl], mask[sl])
                (s * (info.world_size / global_count).float()).backward()
            loss_sum += s.detach().double()
        loss = float(distributed.all_reduce_sum(loss_sum, info) / global_count)
        if not math.isfinite(loss):
            bar.close()
            raise TrainingDiverged(
                f"non-finite training loss ({loss}) at step {step + 1}; stopped, the last "
                f"good checkpoint in {out} is kept")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        sampler.step = step + 1
        result.train_losses.append(loss)
        result.step = step + 1
        done = step + 1

        nt_per_s = cfg.batch_size * cfg.window / (time.perf_counter() - t_step)
        bar.set_postfix(loss=f"{nats_to_bits(loss):.4f} bits", nt_s=f"{nt_per_s:,.0f}",
                        refresh=False)
        bar.update(1)
        if log is not None and (done % cfg.log_every == 0 or done == cfg.steps):
            log.log(done, "train", loss_bits=nats_to_bits(loss), lr=scheduler.get_last_lr()[0],
                    grad_norm=grad_norm, nt_per_s=nt_per_s, elapsed_s=time.perf_counter() - t0)
        if has_val and info.is_main and (done % cfg.eval_every == 0 or done == cfg.steps):
            model.eval()
            metrics = evaluate(predictor_for(model, cfg.model), store, "val", cfg.window,
                               cfg.eval_windows, cfg.micro_batch_size, device=info.device)
            log.log(done, "val", bits_per_nt=metrics["bits_per_nt"],
                    accuracy=metrics["accuracy"], elapsed_s=time.perf_counter() - t0)
            bar.write(f"step {done}: val {metrics['bits_per_nt']:.4f} bits/nt, "
                      f"accuracy {metrics['accuracy']:.4f}")
            result.final_eval = metrics
        if info.is_main and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            save_checkpoint(out, {
                "step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
                "rng": rng_state(), "config": cfg.to_dict()})
        if on_step is not None:
            on_step(done, loss)
    bar.close()
    if info.is_main:
        unwrap(model).save_pretrained(out / "model")
        if log is not None:
            log.close()
    return result


def _load_model_state(model: nn.Module, state: dict, cfg: TrainConfig, out: Path) -> None:
    """Load a checkpoint's weights, or say in one line why they do not fit ``model``."""
    where = out / "checkpoint.pt"
    saved = state.get("config") or {}
    for key in ("model", "preset", "model_overrides"):
        if key in saved and saved[key] != cfg.to_dict()[key]:
            raise InputError(f"resume=True: the checkpoint is of another model ({key} "
                             f"{saved[key]!r}, this run has {cfg.to_dict()[key]!r}); resume "
                             "with its settings or start a new out", path=where,
                             setting=("resume", "out"))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else (first[0] if first else "")
        raise InputError("resume=True: the checkpoint's weights do not fit this model "
                         f"(another architecture?): {detail[:200]}", path=where,
                         setting="resume") from None
