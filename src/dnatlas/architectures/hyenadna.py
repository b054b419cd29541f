"""HyenaDNA (Nguyen et al. 2023), self-contained, loadable from the published checkpoints.

The ``LongSafari/hyenadna-*-hf`` checkpoints need remote code; this module carries a compact
implementation of the same architecture whose module names reproduce the published state
dict, so a local copy of a checkpoint folder (``config.json`` + ``model.safetensors`` or
``pytorch_model.bin``) loads offline with :meth:`HyenaDNAAdapter.from_pretrained`:

    hyena.backbone.embeddings.word_embeddings.weight          (vocab padded to a multiple of 8)
    hyena.backbone.layers.{i}.norm1 / norm2                   LayerNorm (eps 1e-5)
    hyena.backbone.layers.{i}.mixer.in_proj / out_proj        Linear
    hyena.backbone.layers.{i}.mixer.short_filter              depthwise Conv1d, causal
    hyena.backbone.layers.{i}.mixer.filter_fn.bias            (d_model * (order - 1),)
    hyena.backbone.layers.{i}.mixer.filter_fn.implicit_filter.{0,2,4,6}   filter MLP
    hyena.backbone.layers.{i}.mixer.filter_fn.implicit_filter.{1,3,5}.freq (one shared Sin)
    hyena.backbone.layers.{i}.mixer.filter_fn.pos_emb.z / .t, modulation.deltas  (buffers)
    hyena.backbone.layers.{i}.mlp.fc1 / fc2                   MLP, tanh-GELU
    hyena.backbone.ln_f                                       final LayerNorm
    lm_head.weight                                            (tied to the embedding if absent)

Original (non-HF) checkpoints with keys ``model.backbone...`` or ``backbone...`` and a
config with a nested ``layer`` dict (``l_max``, ``emb_dim``, ``filter_order``, ``w``...)
load too.

Each block is pre-norm: ``h = h + mixer(norm1(h)); h = h + mlp(norm2(h))``. The Hyena
operator (order 2) projects to three streams, applies a causal short depthwise convolution,
gates, convolves with an implicit long filter (an MLP with sine activations over positional
features, with an exponential decay window) by FFT, gates again and projects out. All of it
is causal, so the activation at position p depends on nucleotides <= p.

Tokens: the character tokenizer's ids are CLS=0 SEP=1 BOS=2 MASK=3 PAD=4 RESERVED=5
UNK=6 A=7 C=8 G=9 T=10 N=11, i.e. id = code + 7 for our codes; windows are fed without
special tokens (the published tokenizer appends SEP, which a causal model never sees from
earlier positions). Activations are one per nucleotide: ``blocks.{i}.residual`` is the
residual stream after block i (HF ``hidden_states[i + 1]``; paper 001's "third layer" is
``blocks.2.residual``). ``mlm_loss`` is the model's own objective, next-nucleotide
cross-entropy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dnatlas.errors import InputError
from dnatlas.model_files import load_weights, read_config


@dataclass
class HyenaConfig:
    """Architecture of a HyenaDNA model; names follow the published HF ``config.json``."""

    vocab_size: int = 12
    d_model: int = 256
    d_inner: int | None = None
    n_layer: int = 4
    max_seq_len: int = 32770
    emb_dim: int = 5
    filter_order: int = 64
    short_filter_order: int = 3
    hyena_order: int = 2
    num_inner_mlps: int = 2
    activation_freq: float = 10.0
    train_freq: bool = True
    use_bias: bool = True
    layer_norm_epsilon: float = 1e-5
    pad_vocab_size_multiple: int = 8
    tie_word_embeddings: bool = False

    def __post_init__(self):
        if self.d_inner is None:
            self.d_inner = 4 * self.d_model
        if self.emb_dim < 3 or self.emb_dim % 2 == 0:
            raise ValueError("emb_dim must be odd and >= 3")

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return (self.vocab_size + m - 1) // m * m

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HyenaConfig:
        """From an HF config.json, or an original one with a nested ``layer`` dict."""
        data = dict(data)
        layer = data.pop("layer", None)
        if isinstance(layer, dict):  # original HyenaDNA config
            data.setdefault("max_seq_len", layer.get("l_max"))
            data.setdefault("emb_dim", layer.get("emb_dim", 3))
            data.setdefault("filter_order", layer.get("filter_order", 64))
            data.setdefault("short_filter_order",
                            layer.get("local_order", layer.get("short_filter_order", 3)))
            data.setdefault("activation_freq", layer.get("w", 1))
            data.setdefault("hyena_order", layer.get("order", 2))
            data.setdefault("num_inner_mlps", layer.get("num_inner_mlps", 2))
        if "l_max" in data:
            data.setdefault("max_seq_len", data.pop("l_max"))
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": "hyenadna", **asdict(self)}


class HyenaSin(nn.Module):
    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        freq = cfg.activation_freq * torch.ones(1, cfg.filter_order)
        if cfg.train_freq:
            self.freq = nn.Parameter(freq)
        else:
            self.register_buffer("freq", freq)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.freq * x)


class HyenaPositionalEmbedding(nn.Module):
    """Features z (1, L, emb_dim) = [t, cos(f w), -sin(f w)] and times t (1, L, 1)."""

    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        L = cfg.max_seq_len
        t = torch.linspace(0, 1, L)[None, :, None]
        bands = (cfg.emb_dim - 1) // 2
        w = 2 * math.pi * torch.linspace(0, L - 1, L)[None, :, None] / L
        f = torch.linspace(1e-4, bands - 1, bands)[None, None]
        self.register_buffer("z", torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1))
        self.register_buffer("t", t)

    def forward(self, L: int) -> tuple[Tensor, Tensor]:
        return self.z[:, :L], self.t[:, :L]


class HyenaExponentialModulation(nn.Module):
    def __init__(self, d_model: int, fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5,
                 target: float = 1e-2, shift: float = 0.05):
        super().__init__()
        self.shift = shift
        deltas = torch.linspace(math.log(target) / slow_decay_pct, math.log(target) / fast_decay_pct,
                                d_model)[None, None]
        self.register_buffer("deltas", deltas)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return x * (torch.exp(-t * self.deltas.abs()) + self.shift)


def fft_causal_conv(u: Tensor, k: Tensor, D: Tensor) -> Tensor:
    """Causal convolution of u (B, C, L) with filters k (C, L) by FFT, plus skip D (C,)."""
    L = u.shape[-1]
    n = 2 * L
    k_f = torch.fft.rfft(k.float(), n=n) / n
    u_f = torch.fft.rfft(u.float(), n=n)
    y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :L]
    return (y + u * D.unsqueeze(-1)).to(u.dtype)


class HyenaFilter(nn.Module):
    """Implicit long filter: MLP with sine activations over positional features, windowed."""

    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(cfg.d_model * (cfg.hyena_order - 1)))
        self.pos_emb = HyenaPositionalEmbedding(cfg)
        act = HyenaSin(cfg)  # one module, shared by every sine layer (as published)
        layers: list[nn.Module] = [nn.Linear(cfg.emb_dim, cfg.filter_order), act]
        for _ in range(cfg.num_inner_mlps):
            layers += [nn.Linear(cfg.filter_order, cfg.filter_order), act]
        layers.append(nn.Linear(cfg.filter_order, cfg.d_model, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.modulation = HyenaExponentialModulation(cfg.d_model)

    def filter(self, L: int) -> Tensor:
        """Filters (1, L, d_model)."""
        z, t = self.pos_emb(L)
        h = self.implicit_filter(z.to(self.implicit_filter[0].weight.dtype))
        return self.modulation(t, h)


class HyenaOperator(nn.Module):
    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.d_model, self.order, self.l_max = cfg.d_model, cfg.hyena_order, cfg.max_seq_len
        inner = cfg.d_model * (cfg.hyena_order + 1)
        self.in_proj = nn.Linear(cfg.d_model, inner)
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.short_filter = nn.Conv1d(inner, inner, cfg.short_filter_order,
                                      padding=cfg.short_filter_order - 1, groups=inner)
        self.filter_fn = HyenaFilter(cfg)

    def forward(self, u: Tensor) -> Tensor:
        """(B, L, d_model) -> (B, L, d_model), causal."""
        L = u.shape[1]
        if L > self.l_max:
            raise ValueError(f"sequence length {L} exceeds the model's maximum {self.l_max}")
        uc = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :L]
        *x, v = uc.split(self.d_model, dim=1)
        k = self.filter_fn.filter(L)[0].transpose(0, 1).reshape(self.order - 1, self.d_model, L)
        bias = self.filter_fn.bias.reshape(self.order - 1, self.d_model)
        for o, x_i in enumerate(reversed(x[1:])):
            v = fft_causal_conv(v * x_i, k[o], bias[o])
        return self.out_proj((v * x[0]).transpose(1, 2))


class HyenaMlp(nn.Module):
    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_inner)
        self.fc2 = nn.Linear(cfg.d_inner, cfg.d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class HyenaBlock(nn.Module):
    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.mixer = HyenaOperator(cfg)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)
        self.mlp = HyenaMlp(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)

    def forward(self, h: Tensor) -> Tensor:
        h = h + self.mixer(self.norm1(h))
        return h + self.mlp(self.norm2(h))


class HyenaEmbeddings(nn.Module):
    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.d_model)


class HyenaBackbone(nn.Module):
    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.embeddings = HyenaEmbeddings(cfg)
        self.layers = nn.ModuleList(HyenaBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)


class HyenaModel(nn.Module):
    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.backbone = HyenaBackbone(cfg)


class HyenaDNA(nn.Module):
    """HyenaDNA for causal LM; state-dict names match ``HyenaDNAForCausalLM``."""

    def __init__(self, cfg: HyenaConfig):
        super().__init__()
        self.config = cfg
        self.hyena = HyenaModel(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.padded_vocab_size, bias=False)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self, std: float = 0.02) -> None:
        """The published models' initialisation: N(0, 0.02) linear and embedding weights,
        zero linear biases; convolutions and the filter bias keep their defaults."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.hyena.backbone.embeddings.word_embeddings.weight

    @property
    def layers(self) -> nn.ModuleList:
        return self.hyena.backbone.layers

    def forward(self, input_ids: Tensor) -> Tensor:
        """Logits (B, L, padded vocab) of input ids (B, L)."""
        h = self.hyena.backbone.embeddings.word_embeddings(input_ids)
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.hyena.backbone.ln_f(h))


def _rename(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map original-checkpoint names (``model.backbone.*``, ``backbone.*``, and the
    ``.mixer.layer.`` / ``.mlp.layer.`` of models trained with checkpointing) to the HF ones."""
    out = {}
    for k, v in state.items():
        k = k.replace(".mixer.layer.", ".mixer.").replace(".mlp.layer.", ".mlp.")
        k = k.removeprefix("model.")
        if k.startswith("backbone."):
            k = "hyena." + k
        if k.startswith("head."):
            k = "lm_head." + k[len("head."):]
        out[k] = v
    return out


def load_hyenadna(directory: str | Path) -> HyenaDNA:
    """Build a :class:`HyenaDNA` from a local checkpoint folder."""
    directory = Path(directory)
    cfg = HyenaConfig.from_dict(read_config(directory))
    model = HyenaDNA(cfg)
    state = _rename(load_weights(directory, also=("pytorch_model.bin", "weights.ckpt"),
                                 weights_only=False,  # original ckpts pickle more
                                 missing="no model.safetensors, pytorch_model.bin or weights.ckpt"))
    own = model.state_dict()
    # every sine layer shares one frequency parameter; checkpoints may keep any of its names
    freq_keys = [k for k in state if k.endswith(".freq")]
    for k in own:
        if k.endswith(".freq") and k not in state:
            prefix = k.rsplit(".implicit_filter.", 1)[0]
            alias = next((f for f in freq_keys if f.startswith(prefix + ".implicit_filter.")), None)
            if alias is not None:
                state[k] = state[alias]
    if "lm_head.weight" not in state:
        state["lm_head.weight"] = state["hyena.backbone.embeddings.word_embeddings.weight"]
    derived = (".pos_emb.z", ".pos_emb.t", ".modulation.deltas", ".freq")
    missing = [k for k in own if k not in state and not k.endswith(derived)]
    if missing:
        raise InputError(f"checkpoint lacks {len(missing)} weights, e.g. {missing[0]!r}",
                         path=directory)
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model
