"""DNAtlas adapter: a thin wrapper over :class:`dnatlas.model.DNAtlas`.

DNAtlas works on nucleotides directly, so activations are the model's own
``output_activations`` (B, L, C) and interventions are passed through. Keys are the model's
site names: ``embed`` and ``blocks.{i}.{pre_act|neurons|post_act|residual}``.

``mlm_loss`` is the windowed-MLM loss the model is trained with (triplet cross-entropy over
positions touched by a mask), with masks drawn by :class:`dnatlas.model.MarkovMasking`
from per-window seeds ``(seed, row)``, so every call with the same seed masks the same
positions.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from dnatlas.errors import InputError
from dnatlas.sae.adapters.base import ActivationAdapter, Intervention

def default_model_dir() -> Path:
    """The bundled DNAtlas model (``dnatlas:default``)."""
    from dnatlas.model.pretrained import default_model_path

    return default_model_path()


class DNAtlasAdapter(ActivationAdapter):
    """Activations and spliced windowed-MLM loss of a DNAtlas model."""

    def __init__(self, model, name: str = "dnatlas"):
        from dnatlas.model import SITES

        self.model = model.eval()
        self.name = name
        self.n_layers = model.config.n_layers
        self.sites = tuple(SITES)

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> DNAtlasAdapter:
        """Load a ``save_pretrained`` folder; None or ``"default"`` is the bundled model."""
        from dnatlas.model import DNAtlas

        if directory is None or str(directory) == "default":
            directory = default_model_dir()
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise InputError("no DNAtlas model here (config.json missing)", path=directory)
        return cls(DNAtlas.from_pretrained(directory), name=f"dnatlas:{directory.name}")

    @classmethod
    def from_preset(cls, preset: str = "tiny", seed: int = 0) -> DNAtlasAdapter:
        """A randomly initialised model of a :class:`~dnatlas.model.DNAtlasConfig` preset."""
        from dnatlas.model import DNAtlas, DNAtlasConfig

        torch.manual_seed(seed)
        return cls(DNAtlas(DNAtlasConfig.preset(preset)), name=f"dnatlas:{preset}:random-init")

    @property
    def keys(self) -> list[str]:
        return ["embed", *super().keys]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> DNAtlasAdapter:
        self.model.to(device)
        return self

    def d(self, key: str) -> int:
        self.check_keys([key])
        return self.model.site_width(key)

    @torch.no_grad()
    def activations(self, tokens: Tensor, keys: list[str]) -> dict[str, Tensor]:
        self.check_keys(keys)
        out = self.model(tokens.long().to(self.device), output_activations=list(keys))
        return dict(out.activations)

    @torch.no_grad()
    def mlm_loss(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None,
                 seed: int = 0) -> Tensor:
        from dnatlas.model import MarkovMasking, mask_tokens, windowed_mlm_loss

        self.check_keys(list(intervene or {}))
        seq = tokens.long().to(self.device)
        B, L = seq.shape
        mask = MarkovMasking().mask_batch(L, [(seed, i) for i in range(B)])
        mask = torch.from_numpy(mask).to(self.device)
        logits = self.model(mask_tokens(seq, mask), intervene=intervene or None).logits
        return windowed_mlm_loss(logits, seq, mask)

    def random_init(self, seed: int = 0) -> DNAtlasAdapter:
        from dnatlas.model import DNAtlas

        torch.manual_seed(seed)
        model = DNAtlas(self.model.config).to(self.device)
        return DNAtlasAdapter(model, name=f"{self.name}:random-init")
