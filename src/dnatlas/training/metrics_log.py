"""Training metrics: a CSV file (always) and TensorBoard (when installed).

Columns of ``metrics.csv`` name their units (:data:`UNITS`): ``loss_bits`` is the training
loss in bits per loss term (the objective's natural-log loss divided by ln 2),
``bits_per_nt`` the validation masked-nucleotide cross-entropy in bits per nucleotide.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from dnatlas.files import atomic_write_text

FIELDS = ["step", "split", "loss_bits", "bits_per_nt", "accuracy", "lr", "grad_norm",
          "nt_per_s", "elapsed_s"]
#: What each column of ``metrics.csv`` holds, with its unit.
UNITS = {
    "step": "optimiser steps done",
    "split": "train or val",
    "loss_bits": "training loss, bits per loss term",
    "bits_per_nt": "validation cross-entropy, bits per masked nucleotide",
    "accuracy": "validation accuracy, fraction of masked nucleotides",
    "lr": "learning rate",
    "grad_norm": "gradient L2 norm before clipping",
    "nt_per_s": "training throughput, nucleotides per second",
    "elapsed_s": "seconds since the run (or resume) started",
}


def nats_to_bits(value: float) -> float:
    """A natural-log loss in bits."""
    return value / math.log(2)


class MetricsLog:
    """Appends rows to ``metrics.csv``; on resume, drops rows after the resumed step.

    The caller holds the run folder's lock (:func:`dnatlas.training.checkpoint.lock_run`),
    so no other process appends to the same file.
    """

    def __init__(self, directory: str | Path, resume_step: int = 0, tensorboard: bool = True):
        self.path = Path(directory) / "metrics.csv"
        rows = []
        if resume_step and self.path.exists():
            with open(self.path, newline="") as fh:
                rows = [{k: r.get(k, "") for k in FIELDS} for r in csv.DictReader(fh)
                        if r.get("step", "").isdigit() and int(r["step"]) <= resume_step]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, text.getvalue())
        self.writer = None
        from dnatlas import extras

        if tensorboard and extras.optional("train", "the TensorBoard log (metrics.csv is "
                                           "written)"):
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass
            else:  # purge_step: a resumed run hides the old events after its step
                self.writer = SummaryWriter(str(Path(directory) / "tensorboard"),
                                            purge_step=resume_step or None)

    def log(self, step: int, split: str, **values) -> None:
        """Append one row; ``values`` are columns of :data:`FIELDS` (others are refused)."""
        unknown = set(values) - set(FIELDS[2:])
        if unknown:
            raise ValueError(f"unknown metrics column(s) {sorted(unknown)}; columns: {FIELDS}")
        row = {"step": step, "split": split, **{k: values.get(k, "") for k in FIELDS[2:]}}
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, FIELDS).writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                if value != "" and value is not None:
                    self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
