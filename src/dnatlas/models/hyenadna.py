"""HyenaDNA through the model protocol (architecture: :mod:`dnatlas.architectures.hyenadna`).

Tokens: the character tokenizer's ids are CLS=0 SEP=1 BOS=2 MASK=3 PAD=4 RESERVED=5
UNK=6 A=7 C=8 G=9 T=10 N=11, i.e. id = code + 7 for our codes A C G T N (and our MASK=5
becomes HyenaDNA's MASK=3); windows are fed without special tokens (the published tokenizer
appends SEP, which a causal model never sees from earlier positions).

Activations are one per nucleotide: ``blocks.{i}.residual`` is the residual stream after
block i (``mixer`` and ``mlp``: the outputs of block i's Hyena operator and MLP, before their
residual adds; paper 001's "third layer" is ``blocks.2.residual``).

``nucleotide_log_probs`` is next-nucleotide prediction: the log-probs at position p are the
model's prediction of p from positions < p, i.e. the logits at p - 1 over the ids of A, C, G,
T, renormalised among those four; position 0 gets log(1/4). ``mlm_loss`` is the model's own
objective, next-nucleotide cross-entropy over the full vocabulary (nats per token).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from dnatlas.architectures.hyenadna import HyenaConfig, HyenaDNA, load_hyenadna
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import MASK as MASK_CODE  # our code of a hidden nucleotide
from dnatlas.model_files import read_config_file
from dnatlas.models.protocol import (
    Intervention,
    ModuleAdapter,
    check_codes,
    module_state,
)

TOKEN_OFFSET = 7  # id = code + 7 (A=7 C=8 G=9 T=10 N=11)
HYENA_MASK = 3    # HyenaDNA's [MASK] id


def codes_to_ids(tokens: Tensor) -> Tensor:
    """Our codes (B, L) (A C G T N, MASK=5) -> HyenaDNA token ids (B, L)."""
    tokens = tokens.long()
    return torch.where(tokens == MASK_CODE, HYENA_MASK, tokens + TOKEN_OFFSET)


def hyena_config(config=None) -> HyenaConfig:
    """A :class:`HyenaConfig` from None (HyenaDNA-small-32k's shape), a config, a dict, or a
    folder / ``config.json`` path (HF or original layout)."""
    if config is None or isinstance(config, HyenaConfig):
        return config or HyenaConfig()
    if isinstance(config, (str, Path)):
        path = Path(config)
        config = read_config_file(path / "config.json" if path.is_dir() else path)
    if not isinstance(config, dict):
        raise InputError(f"cannot build a HyenaDNA config from {type(config).__name__}")
    return HyenaConfig.from_dict(config)


class HyenaDNAAdapter(ModuleAdapter):
    """Activations and next-nucleotide predictions of a :class:`HyenaDNA` model."""

    kind = "hyenadna"
    sites = ("residual", "mixer", "mlp")
    causal = True
    receptive_field = None

    def __init__(self, model: HyenaDNA, name: str = "hyenadna"):
        self.model = model.eval()
        self.name = name
        self.n_layers = model.config.n_layer
        self.max_length = model.config.max_seq_len

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> HyenaDNAAdapter:
        return cls(load_hyenadna(directory), name=f"hyenadna:{Path(directory).name}")

    @classmethod
    def from_config(cls, cfg=None, seed: int = 0, name: str = "hyenadna") -> HyenaDNAAdapter:
        """A randomly initialised model; ``cfg`` as :func:`hyena_config` takes it (a folder
        holding only ``config.json`` will do)."""
        cfg = hyena_config(cfg)
        torch.manual_seed(seed)
        return cls(HyenaDNA(cfg), name=name)

    def d(self, key: str) -> int:
        self.check_keys([key])
        return self.model.config.d_model

    def _run(self, ids: Tensor, keys: list[str], intervene: dict[str, Intervention]
             ) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits (B, L, padded vocab) of ids (B, L), collecting/replacing sites on the way."""
        self.check_keys(list(keys) + list(intervene))
        bb = self.model.hyena.backbone
        h = bb.embeddings.word_embeddings(ids.to(self.device))
        acts: dict[str, Tensor] = {}

        def site(name: str, value: Tensor) -> Tensor:
            if name in intervene:
                value = intervene[name](value)
            if name in keys:
                acts[name] = value
            return value

        for i, block in enumerate(bb.layers):
            h = h + site(f"blocks.{i}.mixer", block.mixer(block.norm1(h)))
            h = site(f"blocks.{i}.residual", h + site(f"blocks.{i}.mlp", block.mlp(block.norm2(h))))
        return self.model.lm_head(bb.ln_f(h)), acts

    @torch.no_grad()
    def activations(self, tokens: Tensor, keys: list[str],
                    intervene: dict[str, Intervention] | None = None) -> dict[str, Tensor]:
        """Per-nucleotide activations: tokens (B, L) -> {key: (B, L, d_model)}."""
        ids = codes_to_ids(check_codes(tokens))
        return self._run(ids, list(keys), intervene or {})[1]

    @torch.no_grad()
    def nucleotide_log_probs(self, tokens: Tensor,
                             intervene: dict[str, Intervention] | None = None) -> Tensor:
        """Log-probs (B, L, 4) of A C G T at p given positions < p (module docstring)."""
        ids = codes_to_ids(check_codes(tokens, allow_mask=True))
        logits, _ = self._run(ids, [], intervene or {})
        bases = torch.arange(4, device=logits.device) + TOKEN_OFFSET
        nxt = torch.log_softmax(logits[..., bases].float(), dim=-1)
        first = torch.full_like(nxt[:, :1], -math.log(4.0))
        return torch.cat([first, nxt[:, :-1]], dim=1)

    @torch.no_grad()
    def mlm_loss(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None,
                 seed: int = 0) -> Tensor:
        """Next-nucleotide cross-entropy (HyenaDNA's training objective), nats per token."""
        ids = codes_to_ids(check_codes(tokens)).to(self.device)
        logits, _ = self._run(ids, [], intervene or {})
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                               ids[:, 1:].reshape(-1))

    def random_init(self, seed: int = 0) -> HyenaDNAAdapter:
        torch.manual_seed(seed)
        model = HyenaDNA(self.model.config).to(self.device)
        return HyenaDNAAdapter(model, name=f"{self.name}:random-init")

    def state_for_fingerprint(self):
        return module_state(self.model, asdict(self.model.config))
