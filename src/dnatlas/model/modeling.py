"""The DNAtlas model (report section 2.1, Figure 1a), readable top to bottom.

Each block is a pre-norm residual gated MLP whose second branch is a dense dilated
convolution, followed by the thresholding + SoLU activation::

    n = RMSNorm(x)
    pre_act = f(W_g n) * conv_dil(n)          # site "pre_act"
    y, z    = ThresholdSoLU(pre_act)          # sites "neurons" (y) and "post_act" (z)
    x       = x + W_o z                       # site "residual"

The head reads the final residual stream through an RMSNorm and predicts, at every
position, the 64-way triplet centred on it (windowed MLM, section 2.2.1).

Activation sites are named ``blocks.{i}.{pre_act|neurons|post_act|residual}`` and
``embed`` (the residual stream before block 0). ``forward`` can return any of them and can
replace any of them through ``intervene`` (used for SAE splicing and steering).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dnatlas.model.activation import ThresholdSoLU
from dnatlas.model.config import DNAtlasConfig
from dnatlas.model.rcps import RCConv1d, RCEmbedding, RCLinear, RCRMSNorm, RCTripletHead

SITES = ("pre_act", "neurons", "post_act", "residual")
Intervention = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class DNAtlasOutput:
    """``logits``: (B, L, 64) triplet logits (no consistency mask applied);
    ``activations``: requested site name -> (B, L, C) tensor."""

    logits: torch.Tensor
    activations: dict[str, torch.Tensor] = field(default_factory=dict)


class _Sites:
    """Records requested activations and applies interventions at named sites."""

    def __init__(self, wanted: Iterable[str], intervene: Mapping[str, Intervention] | None):
        self.wanted = set(wanted)
        self.intervene = dict(intervene or {})
        self.store: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        fn = self.intervene.get(name)
        if fn is not None:
            x = fn(x)
        if name in self.wanted:
            self.store[name] = x
        return x

    @property
    def active(self) -> bool:
        return bool(self.wanted or self.intervene)


class DNAtlasBlock(nn.Module):
    """One gated-convolution block; (B, L, d) -> (B, L, d)."""

    def __init__(self, cfg: DNAtlasConfig, layer: int):
        super().__init__()
        d, n, rc = cfg.d_model, cfg.n_neurons, cfg.rcps
        self.name = f"blocks.{layer}"
        self.norm = RCRMSNorm(d, cfg.norm_eps, rc)
        self.gate = RCLinear(d, n, bias=True, rcps=rc)
        self.conv = RCConv1d(d, n, cfg.kernel_size, cfg.dilation(layer), bias=True, rcps=rc)
        self.act = ThresholdSoLU(n, cfg.threshold_init, cfg.sharpness_init, cfg.leaky_slope,
                                 cfg.norm_eps, rc)
        out_std = (2 * cfg.n_layers) ** -0.5 / n ** 0.5
        self.out = RCLinear(n, d, bias=True, rcps=rc, init_std=out_std)
        self.gate_activation = F.silu if cfg.gate_activation == "silu" else None

    def forward(self, x: torch.Tensor, sites: _Sites | None = None) -> torch.Tensor:
        n = self.norm(x)
        g = self.gate(n)
        if self.gate_activation is not None:
            g = self.gate_activation(g)
        h = g * self.conv(n)
        if sites is None or not sites.active:
            _, z = self.act(h)
            return x + self.out(z.to(x.dtype))
        p = self.name
        h = sites(f"{p}.pre_act", h)
        y = sites(f"{p}.neurons", self.act.threshold(h))
        z = sites(f"{p}.post_act", self.act.normalize(y))
        return sites(f"{p}.residual", x + self.out(z.to(x.dtype)))


def check_tokens(tokens: torch.Tensor, vocab_size: int = 6) -> torch.Tensor:
    """``tokens`` (B, L) as int64, after checking that they are nucleotide codes.

    Any integer dtype is accepted (the readers give uint8). Raises ValueError for a float
    or bool tensor, a shape other than (B, L), L == 0, or a code outside ``0..vocab_size-1``.
    """
    if not isinstance(tokens, torch.Tensor):
        raise ValueError(f"tokens must be a torch tensor of shape (B, L), got "
                         f"{type(tokens).__name__}")
    if tokens.dtype == torch.bool or tokens.is_floating_point() or tokens.is_complex():
        raise ValueError(f"tokens must be integer nucleotide codes, got dtype {tokens.dtype} "
                         f"({_CODES})")
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
    if tokens.shape[1] == 0:
        raise ValueError("tokens have length 0: the model needs at least 1 nucleotide")
    tokens = tokens.long()
    if tokens.numel() and not torch.compiler.is_compiling():
        bad = (tokens < 0) | (tokens >= vocab_size)
        if bool(bad.any()):
            value = int(tokens[bad][0])
            codes = " ".join(_CODES.split()[:vocab_size])
            raise ValueError(f"token {value} is not a nucleotide code ({codes})")
    return tokens


_CODES = "A=0 C=1 G=2 T=3 N=4 MASK=5"


class DNAtlas(nn.Module):
    """DNAtlas masked DNA language model.

    Input tokens (B, L) long over A=0 C=1 G=2 T=3 N=4 MASK=5; output triplet logits
    (B, L, 64) with triplet index 16*first + 4*middle + last.
    """

    config_class = DNAtlasConfig

    def __init__(self, config: DNAtlasConfig):
        super().__init__()
        self.config = config
        rc = config.rcps
        self.embed = RCEmbedding(config.vocab_size, config.d_model, rc)
        self.blocks = nn.ModuleList(DNAtlasBlock(config, i) for i in range(config.n_layers))
        self.norm = RCRMSNorm(config.d_model, config.norm_eps, rc)
        self.head = RCTripletHead(config.d_model, rc)

    # ------------------------------------------------------------------ forward
    def forward(self, tokens: torch.Tensor, output_activations: Iterable[str] = (),
                intervene: Mapping[str, Intervention] | None = None) -> DNAtlasOutput:
        """Run the model.

        Args:
            tokens: (B, L) integer tokens (any integer dtype, e.g. the readers' uint8
                codes) over A=0 C=1 G=2 T=3 N=4 MASK=5, L >= 1.
            output_activations: site names to return, e.g. ``["blocks.7.neurons"]`` (one
                name as a plain string is accepted too).
            intervene: site name -> function applied to that site's tensor (B, L, C),
                whose result replaces it downstream.
        Returns:
            :class:`DNAtlasOutput` with logits (B, L, 64) and the requested activations.
        Raises:
            ValueError: tokens of a float dtype, of the wrong shape, empty, or outside
                the vocabulary.
        """
        tokens = check_tokens(tokens, self.config.vocab_size)
        wanted = ([output_activations] if isinstance(output_activations, str)
                  else list(output_activations))
        self._check_sites(wanted + list(intervene or {}))
        sites = _Sites(wanted, intervene)
        x = sites("embed", self.embed(tokens))
        for block in self.blocks:
            x = block(x, sites)
        logits = self.head(self.norm(x)).float()
        return DNAtlasOutput(logits, sites.store)

    def _check_sites(self, names: Iterable[str]) -> None:
        valid = set(self.site_names())
        bad = [n for n in names if n not in valid]
        if bad:
            raise KeyError(f"unknown activation site(s) {bad}; valid: 'embed' and "
                           f"'blocks.{{0..{self.config.n_layers - 1}}}.{{{','.join(SITES)}}}'")

    def site_names(self) -> list[str]:
        return ["embed"] + [f"blocks.{i}.{s}" for i in range(self.config.n_layers) for s in SITES]

    def site_width(self, name: str) -> int:
        """Channel count C of a site."""
        return self.config.n_neurons if name.split(".")[-1] in ("pre_act", "neurons", "post_act") \
            else self.config.d_model

    def rc_channel_permutation(self, name: str) -> torch.Tensor:
        """p (C,) such that activations on the reverse complement are ``act[..., p].flip(1)``."""
        return torch.arange(self.site_width(name) - 1, -1, -1)

    @property
    def receptive_field(self) -> int:
        """One-sided context radius in nucleotides (see :attr:`DNAtlasConfig.receptive_field`)."""
        return self.config.receptive_field

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | Path, max_shard_size: int | str | None = None
                        ) -> None:
        """Write ``config.json`` and the weights (stored half-parameters) atomically.

        Args:
            max_shard_size: None (default) writes one ``model.safetensors``; a size in
                bytes (an int, or a string such as ``"16MB"``, ``"500KB"``, ``"2GiB"``)
                splits the tensors, in ``state_dict`` order, into shards of at most that
                many bytes, written as transformers does: ``model-00001-of-0000N.safetensors``
                + ``model.safetensors.index.json`` (:mod:`dnatlas.model.weights_files`);
                one ``model.safetensors`` when everything fits. Weights of the other layout
                left in the folder by an earlier save are removed.

        The tensors are saved in the parameters' dtype (``model.half()`` first for fp16).
        """
        from dnatlas.files import atomic_write_text, check_output_dir
        from dnatlas.model.weights_files import parse_size, save_weights

        if max_shard_size is not None:
            parse_size(max_shard_size)  # a bad size fails before anything is written
        directory = check_output_dir(directory, "model folder")
        cfg = {**self.config.to_dict(), "architectures": ["DNAtlas"]}
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_weights(directory, state, max_shard_size,
                     metadata={"format": "pt", "model_type": "dnatlas"})
        atomic_write_text(directory / "config.json", json.dumps(cfg, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> DNAtlas:
        """Load a folder written by :meth:`save_pretrained`, one file or sharded (damaged
        or missing weights: InputError)."""
        directory = Path(directory)
        config = DNAtlasConfig.load(directory / "config.json")
        model = cls(config)
        from dnatlas.model.weights_files import load_weights

        model.load_state_dict(load_weights(directory, device=str(map_location)))
        return model.to(map_location).eval()

