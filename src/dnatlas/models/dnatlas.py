"""DNAtlas through the model protocol: a thin wrapper over :class:`dnatlas.architectures.dnatlas.DNAtlas`.

DNAtlas works on nucleotides directly, so activations are the model's own
``output_activations`` (B, L, C) and interventions are passed through. Keys are the model's
site names: ``embed`` and ``blocks.{i}.{pre_act|neurons|post_act|residual}``. Its outputs
depend on ``receptive_field`` nucleotides on each side, and with RCPS the activations of the
reverse complement are ``act[::-1, p]`` with ``p = rc_permutation(key)``.

``mlm_loss`` is the windowed-MLM loss the model is trained with (triplet cross-entropy over
positions touched by a mask), with masks drawn by :class:`dnatlas.architectures.dnatlas.MarkovMasking`
from per-window seeds ``(seed, row)``, so every call with the same seed masks the same
positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dnatlas.architectures.dnatlas import (
    SITES,
    DNAtlas,
    DNAtlasConfig,
    MarkovMasking,
    mask_tokens,
    nucleotide_log_probs,
    windowed_mlm_loss,
)
from dnatlas.architectures.dnatlas.windowed_mlm import loss_positions, masked_log_probs
from dnatlas.models.protocol import Intervention, ModuleAdapter, check_codes, module_state


class DNAtlasAdapter(ModuleAdapter):
    """Activations, predictions and spliced windowed-MLM loss of a DNAtlas model."""

    kind = "dnatlas"
    sites = ("neurons", "pre_act", "post_act", "residual")
    predicts_codons = True

    def __init__(self, model: DNAtlas, name: str = "dnatlas"):
        assert set(self.sites) == set(SITES)
        self.model = model.eval()
        self.name = name
        self.n_layers = model.config.n_layers
        self.receptive_field = model.config.receptive_field

    @classmethod
    def from_pretrained(cls, directory: str | Path, name: str | None = None) -> DNAtlasAdapter:
        """Load a ``save_pretrained`` folder, one weights file or sharded (raises
        :class:`InputError` if damaged)."""
        directory = Path(directory)
        return cls(DNAtlas.from_pretrained(directory), name=name or f"dnatlas:{directory.name}")

    @classmethod
    def from_config(cls, config: DNAtlasConfig, seed: int = 0, name: str = "dnatlas"
                    ) -> DNAtlasAdapter:
        """A freshly initialised model of ``config`` (seeded)."""
        torch.manual_seed(seed)
        return cls(DNAtlas(config), name=name)

    # ------------------------------------------------------------------ geometry
    @property
    def keys(self) -> list[str]:
        return ["embed", *super().keys]

    def d(self, key: str) -> int:
        self.check_keys([key])
        return self.model.site_width(key)

    def rc_permutation(self, key: str) -> np.ndarray | None:
        self.check_keys([key])
        if not self.model.config.rcps:
            return None
        return self.model.rc_channel_permutation(key).cpu().numpy().astype(np.int64)

    # ------------------------------------------------------------------ running
    @torch.inference_mode()
    def activations(self, tokens: Tensor, keys: list[str],
                    intervene: dict[str, Intervention] | None = None) -> dict[str, Tensor]:
        self.check_keys(list(keys) + list(intervene or {}))
        tokens = check_codes(tokens, allow_mask=True).to(self.device)
        out = self.model(tokens, output_activations=list(keys), intervene=intervene or None)
        return dict(out.activations)

    @torch.inference_mode()
    def nucleotide_log_probs(self, tokens: Tensor,
                             intervene: dict[str, Intervention] | None = None) -> Tensor:
        self.check_keys(list(intervene or {}))
        tokens = check_codes(tokens, allow_mask=True).to(self.device)
        logits = self.model(tokens, intervene=intervene or None).logits
        return nucleotide_log_probs(logits, tokens)

    def logits(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None) -> Tensor:
        """Triplet logits (B, L, 64) of the windowed MLM (for codon/amino-acid read-outs)."""
        self.check_keys(list(intervene or {}))
        tokens = check_codes(tokens, allow_mask=True).to(self.device)
        with torch.inference_mode():
            return self.model(tokens, intervene=intervene or None).logits

    def codon_log_probs(self, tokens: Tensor,
                        intervene: dict[str, Intervention] | None = None) -> Tensor:
        """Triplet log-probabilities (B, L, 64) fp32 of the windowed MLM after the
        consistency mask (codon read-outs: centre ``l`` predicts ``x[l-1:l+2]``)."""
        logits = self.logits(tokens, intervene)
        with torch.inference_mode():
            return masked_log_probs(logits, tokens.to(logits.device))

    @torch.inference_mode()
    def mlm_loss(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None,
                 seed: int = 0) -> Tensor:
        self.check_keys(list(intervene or {}))
        seq = check_codes(tokens).to(self.device)
        B, L = seq.shape
        mask = MarkovMasking().mask_batch(L, [(seed, i) for i in range(B)])
        mask = torch.from_numpy(mask).to(self.device)
        logits = self.model(mask_tokens(seq, mask), intervene=intervene or None).logits
        return windowed_mlm_loss(logits, seq, mask)

    @staticmethod
    def build(preset: str, overrides: dict) -> DNAtlas:
        """A fresh DNAtlas of a preset with overrides (for the trainer)."""
        return DNAtlas(DNAtlasConfig.preset(preset, **overrides))

    @staticmethod
    def training_loss(module, seq: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Summed windowed-MLM loss (nats) and its number of terms, for the trainer.

        ``module`` is the (possibly DDP-wrapped or compiled) DNAtlas; seq, mask (B, L).
        """
        logits = module(mask_tokens(seq, mask)).logits
        nll = windowed_mlm_loss(logits, seq, mask, reduction="none")
        return nll.sum(), loss_positions(seq, mask).sum()

    @staticmethod
    def count_loss_terms(seq: Tensor, mask: Tensor) -> Tensor:
        return loss_positions(seq, mask).sum()

    def random_init(self, seed: int = 0) -> DNAtlasAdapter:
        return DNAtlasAdapter.from_config(self.model.config, seed,
                                          name=f"{self.name}:random-init").to(self.device)

    def state_for_fingerprint(self):
        return module_state(self.model, self.model.config.to_dict())
