"""Nucleotide Transformer v2 (Dalla-Torre et al. 2023), self-contained and loadable offline.

The published ``InstaDeepAI/nucleotide-transformer-v2-*`` checkpoints need InstaDeep's remote
code (``modeling_esm.py``), because transformers' built-in ``EsmForMaskedLM`` has no gated
feed-forward. This module carries the same architecture; its module and parameter names
reproduce the published state dict, so a local copy of a checkpoint folder (``config.json`` +
``model.safetensors`` or ``pytorch_model.bin``) loads with :func:`load_nt_v2`::

    esm.embeddings.word_embeddings.weight                     (vocab, d)
    esm.encoder.layer.{i}.attention.LayerNorm                 pre-attention LayerNorm
    esm.encoder.layer.{i}.attention.self.query / key / value  Linear d -> d (with bias)
    esm.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq   (head_dim / 2,) buffer
    esm.encoder.layer.{i}.attention.output.dense              Linear d -> d (with bias)
    esm.encoder.layer.{i}.LayerNorm                           pre-FFN LayerNorm
    esm.encoder.layer.{i}.intermediate.dense                  Linear d -> 2 * ffn (bias: add_bias_fnn)
    esm.encoder.layer.{i}.output.dense                        Linear ffn -> d (bias: add_bias_fnn)
    esm.encoder.emb_layer_norm_after                          final LayerNorm
    lm_head.dense / lm_head.layer_norm / lm_head.decoder (no bias) / lm_head.bias

Architecture (InstaDeep's JAX ``SelfAttentionBlock`` with ``use_glu_in_ffn``, rotary
embeddings and no absolute positions): each layer is pre-norm,
``h = h + Wo attn(rope(Wq LN(h)), rope(Wk LN(h)), Wv LN(h))`` then
``h = h + W2 (silu(x1) * x2)`` with ``(x1, x2) = split(W1 LN(h))``. Rotary embeddings rotate
the two halves of each head (``rotate_half``) with frequencies ``10000^(-2i/head_dim)`` at
token positions 0, 1, ... (``<cls>`` is position 0). The LM head is
``decoder(LN(gelu(dense(LN_after(h))))) + bias`` with the exact (erf) GELU.

Checkpoint keys that the published remote code stores but never uses
(``esm.embeddings.position_embeddings.weight``, ``*.position_ids``, ``esm.contact_head.*``)
are ignored; anything else unknown is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dnatlas.errors import InputError
from dnatlas.model_files import load_weights, read_config

#: checkpoint keys of the published remote code that the forward pass never reads
UNUSED_KEYS = ("esm.embeddings.position_embeddings.weight", "position_ids", "esm.contact_head.")


@dataclass
class NTv2Config:
    """Architecture of an NT-v2 model; names follow the published HF ``config.json``."""

    vocab_size: int = 4107
    hidden_size: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 16
    intermediate_size: int = 2048
    max_position_embeddings: int = 2050
    pad_token_id: int = 1
    mask_token_id: int = 2
    layer_norm_eps: float = 1e-12
    position_embedding_type: str = "rotary"
    add_bias_fnn: bool = False
    emb_layer_norm_before: bool = False
    token_dropout: bool = False

    def __post_init__(self):
        if self.position_embedding_type != "rotary":
            raise InputError(f"NT-v2 architecture needs rotary position embeddings, not "
                             f"{self.position_embedding_type!r}")
        if self.emb_layer_norm_before or self.token_dropout:
            raise InputError("NT-v2 configs with emb_layer_norm_before or token_dropout are "
                             "not supported")
        if self.hidden_size % self.num_attention_heads or (self.head_dim % 2):
            raise InputError(f"hidden_size {self.hidden_size} must split into "
                             f"{self.num_attention_heads} heads of even width")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NTv2Config:
        """From an HF ``config.json`` dict (unknown keys such as ``auto_map`` are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": "esm", **asdict(self)}


def rotate_half(x: Tensor) -> Tensor:
    """(..., 2k) -> (..., 2k): [x1, x2] -> [-x2, x1]."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding of queries and keys (B, heads, T, head_dim)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, dim, 2).float() / dim))

    def forward(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        t = torch.arange(q.shape[-2], device=q.device, dtype=self.inv_freq.dtype)
        freqs = torch.outer(t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(q.dtype), emb.sin().to(q.dtype)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class NTSelfAttention(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        d = cfg.hidden_size
        self.heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.rotary_embeddings = RotaryEmbedding(cfg.head_dim)

    def _split(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, h: Tensor, key_mask: Tensor) -> Tensor:
        """h (B, T, d), key_mask (B, T) bool (True: attend) -> (B, T, d)."""
        q, k = self.rotary_embeddings(self._split(self.query(h)), self._split(self.key(h)))
        out = F.scaled_dot_product_attention(q, k, self._split(self.value(h)),
                                             attn_mask=key_mask[:, None, None, :])
        return out.transpose(1, 2).reshape(h.shape)


class NTSelfOutput(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)


class NTAttention(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.self = NTSelfAttention(cfg)
        self.output = NTSelfOutput(cfg)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: Tensor, key_mask: Tensor) -> Tensor:
        return h + self.output.dense(self.self(self.LayerNorm(h), key_mask))


class NTIntermediate(nn.Module):
    """Gated feed-forward input: (B, T, d) -> silu(x1) * x2, (B, T, ffn)."""

    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=cfg.add_bias_fnn)

    def forward(self, h: Tensor) -> Tensor:
        x1, x2 = self.dense(h).chunk(2, dim=-1)
        return F.silu(x1) * x2


class NTOutput(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=cfg.add_bias_fnn)


class NTLayer(nn.Module):
    """One pre-norm block; forward returns the residual stream (B, T, d)."""

    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.attention = NTAttention(cfg)
        self.intermediate = NTIntermediate(cfg)
        self.output = NTOutput(cfg)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: Tensor, key_mask: Tensor) -> Tensor:
        h = self.attention(h, key_mask)
        return h + self.output.dense(self.intermediate(self.LayerNorm(h)))


class NTEmbeddings(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size,
                                            padding_idx=cfg.pad_token_id)


class NTEncoder(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.layer = nn.ModuleList(NTLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.emb_layer_norm_after = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class NTModel(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.embeddings = NTEmbeddings(cfg)
        self.encoder = NTEncoder(cfg)


class NTLMHead(nn.Module):
    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(h)))) + self.bias


class NTv2ForMaskedLM(nn.Module):
    """NT-v2 masked LM; state-dict names match the published ``EsmForMaskedLM`` remote code."""

    def __init__(self, cfg: NTv2Config):
        super().__init__()
        self.config = cfg
        self.esm = NTModel(cfg)
        self.lm_head = NTLMHead(cfg)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self, std: float = 0.02) -> None:
        """HF ESM initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        self.esm.embeddings.word_embeddings.weight[self.config.pad_token_id].zero_()

    @property
    def layers(self) -> nn.ModuleList:
        return self.esm.encoder.layer

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits (B, T, vocab) of token ids (B, T); attention_mask (B, T), 1 = real token."""
        mask = (input_ids != self.config.pad_token_id) if attention_mask is None \
            else attention_mask.bool()
        h = self.esm.embeddings.word_embeddings(input_ids) * mask.unsqueeze(-1)
        for layer in self.layers:
            h = layer(h, mask)
        return self.lm_head(self.esm.encoder.emb_layer_norm_after(h))


def load_nt_v2(directory: str | Path) -> NTv2ForMaskedLM:
    """Build an :class:`NTv2ForMaskedLM` (float32) from a local checkpoint folder."""
    directory = Path(directory)
    cfg = NTv2Config.from_dict(read_config(directory))
    model = NTv2ForMaskedLM(cfg)
    weights = load_weights(directory, also=("pytorch_model.bin",),
                           missing="no model.safetensors or pytorch_model.bin (for an untrained "
                                   "model of this shape use nt:PATH:random-init)")
    state = {k: v for k, v in weights.items()
             if not any(u in k for u in UNUSED_KEYS)}
    own = model.state_dict()
    unknown = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and not k.endswith(".inv_freq")]
    if unknown or missing:
        what = f"unknown weight {unknown[0]!r}" if unknown else f"missing weight {missing[0]!r}"
        raise InputError(f"not an NT-v2 checkpoint: {what}", path=directory)
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise InputError(f"weight {bad[0]!r} has shape {tuple(state[bad[0]].shape)}, config "
                         f"implies {tuple(own[bad[0]].shape)}", path=directory)
    model.load_state_dict(state, strict=False)
    return model.float().eval()

