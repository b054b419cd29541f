"""Training metrics: a CSV file (always) and TensorBoard (when installed)."""

from __future__ import annotations

import csv
from pathlib import Path

FIELDS = ["step", "split", "loss", "bits_per_nt", "accuracy", "lr", "grad_norm", "nt_per_s",
          "elapsed_s"]


class MetricsLog:
    """Appends rows to ``metrics.csv``; on resume, drops rows after the resumed step."""

    def __init__(self, directory: str | Path, resume_step: int = 0, tensorboard: bool = True):
        self.path = Path(directory) / "metrics.csv"
        rows = []
        if resume_step and self.path.exists():
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(Path(directory) / "tensorboard"))
            except ImportError:
                pass

    def log(self, step: int, split: str, **values) -> None:
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
