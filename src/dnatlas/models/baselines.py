"""The baselines through the model protocol: the Transformer MLM and the k-mer model.

:class:`TransformerAdapter` exposes ``blocks.{i}.residual`` (the residual stream after
block i) through forward hooks, so Gram maps, neuron scans and SAEs work on it as on any
model. :class:`KmerAdapter` has no layers: it predicts nucleotides and scores masked
positions, nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dnatlas.architectures.dnatlas.masking import MarkovMasking
from dnatlas.architectures.dnatlas.windowed_mlm import mask_tokens
from dnatlas.errors import InputError
from dnatlas.models.protocol import ModelAdapter, ModuleAdapter, check_codes, module_state


def _masked_nll(log_probs: Tensor, seq: Tensor, mask: Tensor) -> Tensor:
    """Mean NLL (nats) of the true A/C/G/T at masked positions; log_probs (B, L, 4)."""
    keep = mask & (seq < 4)
    return -log_probs[keep].gather(-1, seq[keep][:, None]).mean()


def _markov_mask(seq: Tensor, seed: int) -> Tensor:
    B, L = seq.shape
    mask = MarkovMasking().mask_batch(L, [(seed, i) for i in range(B)])
    return torch.from_numpy(mask).to(seq.device)


class TransformerAdapter(ModuleAdapter):
    """The bidirectional Transformer baseline (:class:`dnatlas.architectures.transformer.TransformerMLM`)."""

    kind = "transformer"
    sites = ("residual",)

    def __init__(self, model, name: str = "transformer"):
        self.model = model.eval()
        self.name = name
        self.n_layers = model.config.n_layers
        self.max_length = model.config.max_len

    @classmethod
    def load(cls, path: Path, random: bool = False, seed: int = 0,
             name: str = "transformer") -> TransformerAdapter:
        from dnatlas.architectures.transformer import TransformerConfig, TransformerMLM
        from dnatlas.model_files import read_config

        if not random:
            return cls(TransformerMLM.from_pretrained(path), name=name)
        raw = read_config(path)
        try:
            config = TransformerConfig.from_dict({k: v for k, v in raw.items() if k != "model_type"})
        except (TypeError, ValueError) as exc:
            raise InputError(f"invalid config: {exc}", path=path / "config.json") from None
        torch.manual_seed(seed)
        return cls(TransformerMLM(config), name=name)

    def d(self, key: str) -> int:
        self.check_keys([key])
        return self.model.config.d_model

    def _run(self, tokens: Tensor, keys, intervene) -> tuple[Tensor, dict[str, Tensor]]:
        self.check_keys(list(keys) + list(intervene or {}))
        tokens = check_codes(tokens, allow_mask=True).to(self.device)
        acts: dict[str, Tensor] = {}
        handles = []
        for i, block in enumerate(self.model.blocks):
            key = f"blocks.{i}.residual"
            if key not in keys and key not in (intervene or {}):
                continue

            def hook(module, inputs, output, key=key):
                if intervene and key in intervene:
                    output = intervene[key](output)
                if key in keys:
                    acts[key] = output
                return output

            handles.append(block.register_forward_hook(hook))
        try:
            logits = self.model(tokens)
        finally:
            for h in handles:
                h.remove()
        return logits, acts

    @torch.inference_mode()
    def activations(self, tokens, keys, intervene=None):
        return self._run(tokens, list(keys), intervene)[1]

    @torch.inference_mode()
    def nucleotide_log_probs(self, tokens, intervene=None):
        return F.log_softmax(self._run(tokens, [], intervene)[0], dim=-1)

    @torch.inference_mode()
    def mlm_loss(self, tokens, intervene=None, seed: int = 0):
        seq = check_codes(tokens).to(self.device)
        mask = _markov_mask(seq, seed)
        logits, _ = self._run(mask_tokens(seq, mask), [], intervene)
        return _masked_nll(F.log_softmax(logits, -1), seq, mask)

    @staticmethod
    def build(preset: str, overrides: dict):
        """A fresh Transformer baseline sized like a DNAtlas preset (for the trainer)."""
        from dnatlas.architectures.transformer import TransformerConfig, TransformerMLM

        return TransformerMLM(TransformerConfig.preset(preset, **overrides))

    @staticmethod
    def training_loss(module, seq: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Summed cross-entropy (nats) at masked A/C/G/T positions, and their count."""
        logits = module(mask_tokens(seq, mask))
        keep = mask & (seq < 4)
        return F.cross_entropy(logits[keep], seq[keep], reduction="sum"), keep.sum()

    @staticmethod
    def count_loss_terms(seq: Tensor, mask: Tensor) -> Tensor:
        return (mask & (seq < 4)).sum()

    def random_init(self, seed: int = 0) -> TransformerAdapter:
        from dnatlas.architectures.transformer import TransformerMLM

        torch.manual_seed(seed)
        return TransformerAdapter(TransformerMLM(self.model.config),
                                  name=f"{self.name}:random-init").to(self.device)

    def state_for_fingerprint(self):
        return module_state(self.model, self.model.config.to_dict())


class KmerAdapter(ModelAdapter):
    """The k-mer context model: nucleotide predictions only (no layers, no activations)."""

    kind = "kmer"
    sites = ()

    def __init__(self, model, name: str = "kmer"):
        self.model = model
        self.name = name
        self.n_layers = 0
        self.receptive_field = model.k

    @classmethod
    def load(cls, path: Path, name: str = "kmer") -> KmerAdapter:
        from dnatlas.architectures.kmer.model import KmerContextModel

        return cls(KmerContextModel.load(path), name=name)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, device) -> KmerAdapter:
        return self

    def d(self, key: str) -> int:
        raise InputError(f"{self.name}: a k-mer model has no activations")

    def activations(self, tokens, keys, intervene=None):
        raise InputError(f"{self.name}: a k-mer model has no activations")

    def nucleotide_log_probs(self, tokens, intervene=None):
        if intervene:
            raise InputError(f"{self.name}: a k-mer model has no sites to intervene on")
        return self.model.predict_nucleotides(check_codes(tokens, allow_mask=True))

    def mlm_loss(self, tokens, intervene=None, seed: int = 0):
        seq = check_codes(tokens)
        mask = _markov_mask(seq, seed)
        return _masked_nll(self.nucleotide_log_probs(mask_tokens(seq, mask)), seq, mask)

    def random_init(self, seed: int = 0) -> KmerAdapter:
        raise InputError(f"{self.name}: a k-mer model has no random initialisation")

    def state_for_fingerprint(self):
        yield "k", self.model.k
        for j, (keys, counts) in enumerate(zip(self.model._keys, self.model._counts)):
            yield f"keys_{j}", np.asarray(keys)
            yield f"counts_{j}", np.asarray(counts)
