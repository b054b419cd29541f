"""Transformer MLM baseline: a bidirectional Transformer encoder on single nucleotides.

The architecture follows the modern recipe the DNAtlas report's baseline drew on (the
modded-nanoGPT speedrun), made bidirectional for masked language modelling:

- token embedding over the 6 input codes (A C G T N MASK), RMS-normalised;
- ``n_layers`` pre-norm blocks ``x + attn(norm(x))``, ``x + mlp(norm(x))`` with parameter-free
  RMSNorm (``F.rms_norm``);
- attention: fused QKV projection, QK-norm (RMSNorm of queries and keys per head), rotary
  position embeddings (RoPE), non-causal ``F.scaled_dot_product_attention``;
- MLP: ReLU² (``relu(x W1)^2 W2``, the speedrun's choice) or SwiGLU;
- final RMSNorm and an untied 4-way head (A, C, G, T), optional tanh logit soft-capping.

Output projections of attention and MLP and the head start at zero (speedrun initialisation):
an untrained model predicts the uniform distribution and every block starts as the identity.

Parameter count (no biases, parameter-free norms), with ``h = round(mlp_ratio * d)`` and
``f = 2`` for ReLU², ``3`` for SwiGLU::

    n_params = 6 d + n_layers (4 d^2 + f d h) + 4 d

:meth:`TransformerConfig.matched` sizes a model to a parameter budget (e.g. a DNAtlas
model's), :meth:`TransformerConfig.preset` matches a DNAtlas preset by name, and
:meth:`TransformerConfig.flops_per_token` gives FLOPs so that runs can be matched in compute
(compare with :meth:`dnatlas.architectures.dnatlas.DNAtlasConfig.flops_per_nucleotide`, forward only).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dnatlas.errors import InputError
from dnatlas.files import atomic_write_text
from dnatlas.model_files import WEIGHTS_NAME, load_weights, read_config, save_weights

MODEL_TYPE = "dnatlas-transformer-mlm"
CONFIG_NAME = "config.json"
VOCAB_SIZE = 6   # A C G T N MASK
N_OUTPUTS = 4    # A C G T
MLP_KINDS = {"relu2": 2, "swiglu": 3}  # weight matrices of size d x h per MLP

def dnatlas_param_estimate(d_model: int, n_layers: int, n_neurons: int, kernel_size: int = 9,
                           rcps: bool = True) -> int:
    """Parameter count of a DNAtlas model, from its gated convolutional blocks.

    Each block has a dense convolution ``d_model -> n_neurons`` of width ``kernel_size``, a
    gate ``d_model -> n_neurons`` and an output ``n_neurons -> d_model``:
    ``d * n * (kernel_size + 2)`` weights. RCPS shares each weight between a channel and its
    reverse-complement mirror, halving the count. Embedding, head and per-neuron scalars are
    left out: the estimate is 0.1-1.2% below the built models of the four presets.
    """
    total = n_layers * d_model * n_neurons * (kernel_size + 2)
    return total // 2 if rcps else total


def dnatlas_preset_params(name: str) -> tuple[int, int]:
    """``(parameter estimate, n_layers)`` of DNAtlas preset ``name`` (see ``dnatlas.architectures.dnatlas``)."""
    from dnatlas.architectures.dnatlas.config import DNAtlasConfig

    c = DNAtlasConfig.preset(name)
    return (dnatlas_param_estimate(c.d_model, c.n_layers, c.n_neurons, c.kernel_size, c.rcps),
            c.n_layers)


@dataclass
class TransformerConfig:
    """Size and options of :class:`TransformerMLM`.

    Attributes:
        d_model: residual width.
        n_layers: number of blocks.
        n_heads: attention heads; ``d_model / n_heads`` must be even (RoPE rotates pairs).
        mlp_ratio: MLP hidden width ``h = round(mlp_ratio * d_model)``.
        max_len: longest input (tokens) the model accepts.
        mlp: ``"relu2"`` or ``"swiglu"``.
        rope_base: RoPE base period.
        logit_softcap: if > 0, logits become ``c * tanh(logits / c)``.
    """

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: float = 4.0
    max_len: int = 4096
    mlp: str = "relu2"
    rope_base: float = 10000.0
    logit_softcap: float = 0.0

    def __post_init__(self):
        if self.d_model < 2 or self.n_layers < 1 or self.n_heads < 1 or self.max_len < 1:
            raise ValueError(f"invalid sizes in {self}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(f"d_model={self.d_model} must split into {self.n_heads} heads "
                             "of even size")
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"mlp must be one of {sorted(MLP_KINDS)}, got {self.mlp!r}")
        if self.d_hidden < 1:
            raise ValueError(f"mlp_ratio={self.mlp_ratio} gives an empty MLP")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_hidden(self) -> int:
        return int(round(self.mlp_ratio * self.d_model))

    @property
    def n_params(self) -> int:
        """Exact number of parameters of :class:`TransformerMLM` with this config."""
        d = self.d_model
        per_layer = 4 * d * d + MLP_KINDS[self.mlp] * d * self.d_hidden
        return VOCAB_SIZE * d + self.n_layers * per_layer + N_OUTPUTS * d

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        """Matmul FLOPs per token at sequence length ``seq_len``.

        Forward: ``2 * (weights used per token)`` for the linear layers (all but the
        embedding lookup) plus ``4 * seq_len * d_model`` per layer for the attention scores
        and the weighted sum of values (full, non-causal attention). Training (forward and
        backward) is counted as 3x forward. Norms, RoPE and softmax are left out.
        """
        d = self.d_model
        linear = self.n_layers * (4 * d * d + MLP_KINDS[self.mlp] * d * self.d_hidden)
        linear += N_OUTPUTS * d
        forward = 2 * linear + self.n_layers * 4 * seq_len * d
        return float(3 * forward if training else forward)

    @classmethod
    def matched(cls, n_params: int, n_layers_hint: int | None = None, *,
                multiple_of: int = 8, tolerance: float = 0.04,
                **kwargs) -> TransformerConfig:
        """A config with about ``n_params`` parameters.

        Among the widths (multiples of ``multiple_of``) whose count is within ``tolerance``
        of the target, the one minimising ``shape + 5 * relative_error`` is chosen, where
        ``shape`` is ``|log(head_dim / 32)|`` (64 from ``d_model`` 512) plus, without a depth
        hint, ``|log(d_model / (32 * n_layers))|`` (the aspect ratio of the DNAtlas
        report's presets). If no width is within tolerance, the closest in count.

        Args:
            n_params: target parameter count (e.g. of a DNAtlas model).
            n_layers_hint: number of layers to use; if None, any depth from 1 to 64.
            multiple_of: ``d_model`` is a multiple of this.
            tolerance: relative parameter mismatch accepted in exchange for a better shape.
            kwargs: other fields (``mlp_ratio``, ``mlp``, ``max_len``, ``n_heads``...);
                ``n_heads`` is chosen per width unless given.
        """
        if n_params <= 0:
            raise ValueError(f"n_params must be positive, got {n_params}")
        n_heads = kwargs.pop("n_heads", None)
        probe = cls(d_model=2, n_layers=1, n_heads=1, **kwargs)
        per_d2 = 4 + MLP_KINDS[probe.mlp] * probe.mlp_ratio
        depths = [n_layers_hint] if n_layers_hint else range(1, 65)
        best, best_score = None, None
        for L in depths:
            a, b = L * per_d2, VOCAB_SIZE + N_OUTPUTS
            d = (-b + math.sqrt(b * b + 4 * a * n_params)) / (2 * a)
            lo = max(1, math.floor(0.9 * d / multiple_of))
            hi = max(lo, math.ceil(1.1 * d / multiple_of))
            for width in range(lo * multiple_of, (hi + 1) * multiple_of, multiple_of):
                try:
                    cfg = cls(d_model=width, n_layers=L, n_heads=n_heads or _pick_heads(width),
                              **kwargs)
                except ValueError:
                    continue
                err = abs(cfg.n_params - n_params) / n_params
                shape = abs(math.log(cfg.head_dim / _target_head_dim(width)))
                if not n_layers_hint:
                    shape += abs(math.log(width / (32 * L)))
                score = (0, shape + 5 * err) if err <= tolerance else (1, err)
                if best_score is None or score < best_score:
                    best, best_score = cfg, score
        if best is None:
            raise ValueError(f"no config matches {n_params} parameters with {kwargs}")
        return best

    @classmethod
    def preset(cls, name: str, **kwargs) -> TransformerConfig:
        """Config matched in parameters and depth to DNAtlas preset ``name``.

        ``name`` is a preset of :class:`dnatlas.architectures.dnatlas.DNAtlasConfig` (``tiny``, ``small``,
        ``thin``, ``wide``); ``kwargs`` go to :meth:`matched` (e.g. ``max_len``, ``mlp``,
        ``n_layers`` to match at another depth). An explicit ``d_model`` skips the matching.
        """
        try:
            n_params, n_layers = dnatlas_preset_params(name)
        except ValueError as e:
            raise ValueError(f"no DNAtlas preset to match: {e}") from None
        if "d_model" in kwargs:  # an explicit width overrides the matching
            kwargs.setdefault("n_layers", n_layers)
            kwargs.setdefault("n_heads", _pick_heads(kwargs["d_model"]))
            return cls(**kwargs)
        return cls.matched(n_params, kwargs.pop("n_layers", n_layers), **kwargs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TransformerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _target_head_dim(d_model: int) -> int:
    return 64 if d_model >= 512 else 32


def _pick_heads(d_model: int) -> int:
    """Number of heads giving an even head size closest to 32 (64 for ``d_model >= 512``)."""
    target = _target_head_dim(d_model)
    options = [h for h in range(1, d_model + 1)
               if d_model % h == 0 and (d_model // h) % 2 == 0]
    return min(options, key=lambda h: (abs(math.log(d_model / h / target)), -h))


# ---------------------------------------------------------------------- modules


def _linear(d_in: int, d_out: int, zero: bool = False) -> nn.Linear:
    """Bias-free linear layer; uniform init with std ``0.5 / sqrt(d_in)`` or zeros."""
    layer = nn.Linear(d_in, d_out, bias=False)
    with torch.no_grad():
        if zero:
            layer.weight.zero_()
        else:
            bound = math.sqrt(3) * 0.5 / math.sqrt(d_in)
            layer.weight.uniform_(-bound, bound)
    return layer


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on x (B, L, H, Dh) with cos, sin (L, 1, Dh/2): rotates the pairs (i, i + Dh/2)."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)


class Attention(nn.Module):
    """Bidirectional multi-head self-attention with QK-norm and RoPE."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.qkv = _linear(config.d_model, 3 * config.d_model)
        self.proj = _linear(config.d_model, config.d_model, zero=True)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x (B, L, d) -> (B, L, d)."""
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, self.head_dim).unbind(2)
        # (rms_norm may run in float32 under autocast: keep q, k in v's dtype for SDPA)
        q = _rotate(F.rms_norm(q, (self.head_dim,)).to(v.dtype), cos, sin)
        k = _rotate(F.rms_norm(k, (self.head_dim,)).to(v.dtype), cos, sin)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=False)
        return self.proj(y.transpose(1, 2).reshape(B, L, d))


class MLP(nn.Module):
    """ReLU² (``relu(x W1)^2 W2``) or SwiGLU (``(silu(x Wg) * x Wu) W2``) MLP."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.kind = config.mlp
        n_in = 2 if self.kind == "swiglu" else 1
        self.fc = _linear(config.d_model, n_in * config.d_hidden)
        self.proj = _linear(config.d_hidden, config.d_model, zero=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.kind == "swiglu":
            up, gate = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.relu(h).square()
        return self.proj(h)


class Block(nn.Module):
    """Pre-norm Transformer block."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.d_model = config.d_model
        self.attn = Attention(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(F.rms_norm(x, (self.d_model,)), cos, sin)
        return x + self.mlp(F.rms_norm(x, (self.d_model,)))


class TransformerMLM(nn.Module):
    """Bidirectional Transformer masked language model over nucleotides.

    ``model(tokens)`` maps a LongTensor (B, L) of codes A=0 C=1 G=2 T=3 N=4 MASK=5 to float32
    logits (B, L, 4) over A, C, G, T.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(VOCAB_SIZE, config.d_model)
        nn.init.normal_(self.embed.weight)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.head = _linear(config.d_model, N_OUTPUTS, zero=True)
        self._rope_cache: dict = {}

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _rope(self, length: int, device: torch.device, dtype: torch.dtype):
        key = (length, device, dtype)
        if key not in self._rope_cache:
            half = self.config.head_dim // 2
            inv_freq = self.config.rope_base ** (-torch.arange(half, dtype=torch.float64) / half)
            angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
            self._rope_cache = {key: (angles.cos()[:, None].to(device, dtype),
                                      angles.sin()[:, None].to(device, dtype))}
        return self._rope_cache[key]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, 4), float32, for tokens (B, L)."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
        if tokens.shape[1] > self.config.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len "
                             f"{self.config.max_len}")
        d = self.config.d_model
        x = F.rms_norm(self.embed(tokens), (d,))
        cos, sin = self._rope(tokens.shape[1], x.device, x.dtype)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.head(F.rms_norm(x, (d,))).float()
        cap = self.config.logit_softcap
        return cap * torch.tanh(logits / cap) if cap > 0 else logits

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor,
             loss_mask: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats) over masked positions whose target is A/C/G/T.

        Args:
            tokens: (B, L) masked input codes.
            targets: (B, L) true codes 0..4 (N targets are skipped).
            loss_mask: (B, L) bool, true where the loss is taken.

        Returns:
            Scalar tensor; 0 (still attached to the graph) if no position qualifies.
        """
        logits = self(tokens)
        sel = loss_mask.bool() & (targets < N_OUTPUTS)
        if not sel.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[sel], targets[sel].long())

    @torch.no_grad()
    def predict_nucleotides(self, tokens: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, L, 4) of A, C, G, T, float32, on ``tokens.device``."""
        device = next(self.parameters()).device
        logits = self(tokens.to(device).long())
        return F.log_softmax(logits, dim=-1).to(tokens.device)

    # ------------------------------------------------------------------ files

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into folder ``path`` atomically."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_weights(path, state, metadata={"format": "pt", "model_type": MODEL_TYPE})
        atomic_write_text(path / CONFIG_NAME, json.dumps(
            {"model_type": MODEL_TYPE, **self.config.to_dict()}, indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path,
                        map_location: str | torch.device = "cpu") -> TransformerMLM:
        """Load a folder written by :meth:`save_pretrained`; the model is in eval mode."""
        path = Path(path)
        cfg_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
        raw = read_config(path, WEIGHTS_NAME, what="Transformer baseline")
        if raw.get("model_type") != MODEL_TYPE:
            raise InputError(f"model_type is {raw.get('model_type')!r}, not {MODEL_TYPE!r}",
                             path=cfg_path)
        try:
            config = TransformerConfig.from_dict(raw)
        except (TypeError, ValueError) as e:
            raise InputError(f"invalid config: {e}", path=cfg_path) from None
        model = cls(config)
        state = load_weights(path, device=str(map_location))  # damaged: InputError
        try:
            model.load_state_dict(state)
        except RuntimeError as e:  # wrong shapes or keys
            raise InputError(f"cannot load weights: {str(e).splitlines()[0]}",
                             path=weights_path) from None
        return model.to(map_location).eval()
