"""Resuming an SAE run: time and model forward passes, against the uninterrupted run.

    python bench/bench_sae_resume.py [--steps 300] [--stop-at 240] [--batch-size 1024]

An SAE is trained on the bundled model's ``blocks.2.residual`` over windows of the bundled
E. coli genome (the same stream ``dnatlas sae train`` uses). Three runs, in one process:

* ``whole``: ``--steps`` steps uninterrupted;
* ``killed``: the same run, stopped (as by a kill) after ``--stop-at`` steps; its last
  checkpoint (every ``--checkpoint-every`` steps) holds the activation stream;
* ``resume``: continues the killed run from that checkpoint to ``--steps``.

The table gives wall time and model forward passes of each, and checks that the resumed
SAE equals the uninterrupted one exactly. Before the stream was checkpointed, a resume
replayed every trained step's forward passes; now it runs only the ones still to come.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch


class Counting:
    """A model adapter that counts forward passes."""

    def __init__(self, adapter):
        self.adapter, self.calls = adapter, 0
        self.device = adapter.device

    def activations(self, tokens, keys):
        self.calls += 1
        return self.adapter.activations(tokens, keys)


class Killed(Exception):
    pass


def run(model, steps, out, batch_size, every, resume=False, kill_after=None, replay=False):
    from dnatlas import bundled
    from dnatlas.pipelines.windows import window_source
    from dnatlas.sae import make_config
    from dnatlas.sae.activation_store import ActivationStore
    from dnatlas.sae.trainer import SAESpec, SAETrainer, SAETrainingConfig

    key = "blocks.2.residual"
    class Store(ActivationStore):
        def __iter__(self):
            stream = super().__iter__()

            def batches():
                for i, batch in enumerate(stream):
                    if kill_after is not None and i == kill_after:
                        raise Killed
                    yield batch

            return batches()

    counting = Counting(model)
    windows = window_source(bundled.genome_path("ecoli_k12_mg1655"), "train", 1024, 8, seed=0)
    store = Store(counting, windows, [key], batch_size=batch_size, buffer_rows=1 << 15, seed=0)
    spec = SAESpec(None, key, make_config("topk", model.d(key), expansion=16, k=16))
    cfg = SAETrainingConfig(steps=steps, batch_size=batch_size, checkpoint_every=every,
                            progress=False)
    trainer = SAETrainer([spec], cfg, out)
    t0 = time.perf_counter()
    data = (batch for batch in store) if replay else store  # replay: a plain iterable
    try:
        trainer.fit(data, resume=resume)
    except Killed:
        pass
    return time.perf_counter() - t0, counting.calls, trainer.slots[0].sae.state_dict()


def main() -> None:
    from dnatlas.models import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--stop-at", type=int, default=250, help="steps before the kill")
    p.add_argument("--checkpoint-every", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=1024)
    args = p.parse_args()
    torch.manual_seed(0)
    model = load_model("default")
    with tempfile.TemporaryDirectory() as tmp:
        every = args.checkpoint_every
        whole = run(model, args.steps, Path(tmp) / "whole", args.batch_size, every)
        part = run(model, args.steps, Path(tmp) / "part", args.batch_size, every,
                   kill_after=args.stop_at)  # the first 8 batches also estimate the scale
        start = torch.load(Path(tmp) / "part" / "checkpoint.pt", weights_only=False)["step"]
        shutil.copytree(Path(tmp) / "part", Path(tmp) / "part-replay")
        resumed = run(model, args.steps, Path(tmp) / "part", args.batch_size, every,
                      resume=True)
        replayed = run(model, args.steps, Path(tmp) / "part-replay", args.batch_size, every,
                       resume=True, replay=True)
    same = all(torch.equal(a, b) for a, b in zip(whole[2].values(), resumed[2].values()))
    same_replay = all(torch.equal(a, b) for a, b in zip(whole[2].values(), replayed[2].values()))
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.steps} steps of {args.batch_size} rows")
    print(f"{'run':<26} {'steps':>11} {'seconds':>8} {'forward passes':>15}")
    for name, steps, (t, calls, _) in (("whole", f"0-{args.steps}", whole),
                                       ("killed", f"0-{args.stop_at}", part),
                                       ("resume", f"{start}-{args.steps}", resumed),
                                       ("resume by replay (before)", f"{start}-{args.steps}",
                                        replayed)):
        print(f"{name:<26} {steps:>11} {t:8.1f} {calls:15d}")
    print(f"resume / whole time: {resumed[0] / whole[0]:.2f} (by replay: "
          f"{replayed[0] / whole[0]:.2f}); both resumed SAEs equal the uninterrupted one "
          f"exactly: {same and same_replay}")


if __name__ == "__main__":
    main()
