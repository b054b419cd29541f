"""Model training (``dnatlas train``): a preset or YAML training config, with overrides,
trained on the train split of a genome store (DDP under ``torchrun``).

    from dnatlas.pipelines.train import TrainSettings, train_model
    result = train_model("runs/store", TrainSettings(config="tiny", overrides=["steps=500"]),
                         out="runs/tiny")
    result.out / "model"        # the save_pretrained folder; result.final_eval: bits/nt

A run's checkpoints and metrics are files by nature: ``out`` is required.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dnatlas.training.trainer import TrainResult

__all__ = ["TrainSettings", "train_model"]


@dataclass
class TrainSettings:
    """Options of :func:`train_model`.

    Attributes:
        config: a preset name (``tiny``, ``small``, ``thin``, ``wide``) or a YAML file.
        overrides: ``key=value`` settings over the config (values read as YAML;
            ``model_overrides.KEY=V`` sets a model field).
        device: ``cpu``, ``cuda``, ``cuda:N`` (None: cuda when available).
        progress: show progress.
    """

    config: str = "tiny"
    overrides: Sequence[str] = ()
    device: str | None = None
    progress: bool = True


def train_model(data: str | Path, settings: TrainSettings | None = None, *, out: str | Path,
                force: bool = False, resume: bool = False,
                on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train on the ``train`` split of the store ``data``; checkpoints, metrics and the final
    model (``out/model``) go into ``out``. ``resume`` continues ``out``'s run; ``force``
    replaces it (only the files a run writes). Returns the
    :class:`~dnatlas.training.trainer.TrainResult`."""
    from dnatlas.training.config import load_train_config
    from dnatlas.training.trainer import train

    s = settings or TrainSettings()
    cfg = load_train_config(s.config, list(s.overrides))
    return train(cfg, data, out, resume=resume, force=force, progress=s.progress,
                 device=s.device, on_step=on_step)
