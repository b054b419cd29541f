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

Without autograd, blocks run in tiles of positions; an RC-shared model runs on the folded
residual stream of :mod:`dnatlas.architectures.dnatlas.folded` (half the multiply-adds, the same results to
rounding) unless an intervention reaches inside a block (pre_act, neurons, post_act).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dnatlas.architectures.dnatlas import folded as rc_folded
from dnatlas.architectures.dnatlas.activation import ThresholdSoLU, fused_activation
from dnatlas.architectures.dnatlas.config import DNAtlasConfig
from dnatlas.architectures.dnatlas.rcps import RCConv1d, RCEmbedding, RCLinear, RCRMSNorm, RCTripletHead
from dnatlas.runtime import parallel, worker_threads

SITES = ("pre_act", "neurons", "post_act", "residual")
Intervention = Callable[[torch.Tensor], torch.Tensor]


class DNAtlasOutput:
    """``logits``: (B, L, 64) triplet logits (no consistency mask applied);
    ``activations``: requested site name -> (B, L, C) tensor.

    Without gradients, a forward that was asked only for activations stops after the last
    block it needs; ``logits`` then runs the remaining blocks and the head when first read.
    """

    def __init__(self, logits: torch.Tensor | None = None,
                 activations: dict[str, torch.Tensor] | None = None,
                 rest: Callable[[], torch.Tensor] | None = None):
        self._logits, self._rest = logits, rest
        self.activations = {} if activations is None else activations

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None and self._rest is not None:
            self._logits, self._rest = self._rest(), None
        return self._logits

    @logits.setter
    def logits(self, value: torch.Tensor) -> None:
        self._logits, self._rest = value, None

    def __repr__(self) -> str:
        return f"DNAtlasOutput(logits={self._logits!r}, activations={list(self.activations)})"


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
        p = self.name
        inner = (f"{p}.pre_act", f"{p}.neurons", f"{p}.post_act")
        intervened = sites is not None and any(k in sites.intervene for k in inner)
        if not torch.is_grad_enabled() and not intervened:
            return self._forward_tiled(x, sites)
        n = self.norm(x)
        g = self.gate(n)
        if sites is None or not sites.active:
            z, = fused_activation(g, self.conv(n), self.act.a, self.act.b, self.act.gamma,
                                  self.act.slope, self.act.eps, self.gate_activation is not None)
            return x + self.out(z.to(x.dtype))
        if self.gate_activation is not None:
            g = self.gate_activation(g)
        h = g * self.conv(n)
        h = sites(f"{p}.pre_act", h)
        y = sites(f"{p}.neurons", self.act.threshold(h))
        z = sites(f"{p}.post_act", self.act.normalize(y))
        return sites(f"{p}.residual", x + self.out(z.to(x.dtype)))

    def _forward_tiled(self, x: torch.Tensor, sites: _Sites | None) -> torch.Tensor:
        """The same block without autograd, in tiles of positions (``folded.TILE_ROWS``);
        RC-shared models take :func:`dnatlas.architectures.dnatlas.folded.folded_block` instead.

        The convolution is one matmul per tile over its dilated taps (im2col), so nothing
        but the small (B, L, d) residual stream and the requested sites is ever held for
        the whole input: each tile's (rows, n_neurons) intermediates stay in cache.
        """
        B, L, d = x.shape
        wanted = [s for s in ("pre_act", "neurons", "post_act")
                  if sites is not None and f"{self.name}.{s}" in sites.wanted]
        variant = "hyz" if "pre_act" in wanted else "yz" if "neurons" in wanted else "z"
        conv, act = self.conv, self.act
        wc = conv.full_weight()  # (N, d, k)
        N, k = wc.shape[0], wc.shape[2]
        wcol = wc.permute(0, 2, 1).reshape(N, k * d)  # column j * d + i is tap j, channel i
        pad, Lp = conv.padding, L + 2 * conv.padding
        tiles = list(rc_folded.position_tiles(B, L))
        # the normalised input with the convolution's zero padding
        npad = rc_folded.padded_norm(x, pad, self.norm, tiles)
        wg, bg = self.gate.full_weight(), _bias(self.gate)
        wo, bo = self.out.full_weight(), _bias(self.out)
        a, b, gamma, silu = act.a, act.b, act.gamma, self.gate_activation is not None
        x_rows = x.reshape(B * L, d)
        out = torch.empty_like(x_rows)
        bc, names = _bias(conv), ("pre_act", "neurons", "post_act")[3 - len(variant):]
        stores = rc_folded.site_buffers(x, wanted, N)

        def tile(bounds):
            b0, b1, t0, t1 = bounds
            r0, r1 = b0 * L + t0, (b1 - 1) * L + t1  # rows of the tile in (B * L)
            cols = npad.as_strided((b1 - b0, t1 - t0, k, d), (Lp * d, d, conv.dilation * d, 1),
                                   npad.storage_offset() + (b0 * Lp + t0) * d)
            c = _affine(cols.reshape(-1, k * d), wcol, bc)
            g = _affine(npad[b0:b1, pad + t0:pad + t1].reshape(-1, d), wg, bg)
            outs = fused_activation(g, c, a, b, gamma, act.slope, act.eps, silu, variant)
            o = torch.addmm(x_rows[r0:r1], outs[-1].to(x.dtype), wo.t(), out=out[r0:r1])
            if bo is not None:
                o += bo
            for site, t in zip(names, outs):
                if site in stores:
                    stores[site][r0:r1] = t

        parallel(tile, tiles)
        out = out.view(B, L, d)
        if sites is None:
            return out
        for site in wanted:
            sites.store[f"{self.name}.{site}"] = stores[site].view(B, L, -1)
        return sites(f"{self.name}.residual", out)


def _bias(layer) -> torch.Tensor | None:
    return None if layer.bias is None else layer.bias()


def _affine(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ w.T + bias`` for x (rows, I), w (O, I)."""
    return x @ w.t() if bias is None else torch.addmm(bias, x, w.t())


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


def _blocks(model, x: torch.Tensor, sites: _Sites, start: int, stop: int,
            folded: bool) -> torch.Tensor:
    """Blocks ``start..stop-1`` on the residual stream x (B, L, d), folded or not."""
    for block in model.blocks[start:stop]:
        if not folded:
            x = block(x, sites)
            continue
        inner = [s for s in SITES[:3] if f"{block.name}.{s}" in sites.wanted]
        x = rc_folded.folded_block(block, x, inner, sites.store)
        name = f"{block.name}.residual"
        if name in sites.wanted or name in sites.intervene:
            x_std = sites(name, rc_folded.unfold(x))  # stored and edited unfolded
            if name in sites.intervene:
                x = rc_folded.fold(x_std)
    return x


def _finish(model, x: torch.Tensor, sites: _Sites, start: int, folded: bool) -> torch.Tensor:
    """Blocks ``start..`` and the head: the logits (B, L, 64) from the residual stream x."""
    x = _blocks(model, x, sites, start, len(model.blocks), folded)
    return model.head(model.norm(rc_folded.unfold(x) if folded else x)).float()


@torch.no_grad()
def _later(model, x: torch.Tensor, sites: _Sites, start: int, folded: bool) -> torch.Tensor:
    with worker_threads(x.device):
        return _finish(model, x, sites, start, folded)


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
        inference = not torch.is_grad_enabled()
        # RC-shared inference runs on the folded residual stream (half the multiply-adds),
        # also with interventions on the residual stream (SAE splicing, steering)
        folded = inference and self.config.rcps and rc_folded.ENABLED and all(
            n == "embed" or n.endswith(".residual") for n in sites.intervene)
        if folded:
            x = rc_folded.fold(x)
        stop = len(self.blocks)
        if wanted and inference:  # only what the activations need now
            stop = 1 + max(-1 if n == "embed" else int(n.split(".")[1]) for n in wanted)
        if stop < len(self.blocks):
            with worker_threads(x.device):
                x = _blocks(self, x, sites, 0, stop, folded)
            return DNAtlasOutput(None, sites.store,
                                 rest=lambda: _later(self, x, sites, stop, folded))
        with worker_threads(x.device) if inference else contextlib.nullcontext():
            return DNAtlasOutput(_finish(self, x, sites, 0, folded), sites.store)

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
                + ``model.safetensors.index.json`` (:mod:`dnatlas.model_files`);
                one ``model.safetensors`` when everything fits. Weights of the other layout
                left in the folder by an earlier save are removed.

        The tensors are saved in the parameters' dtype (``model.half()`` first for fp16).
        """
        from dnatlas.files import atomic_write_text, check_output_dir
        from dnatlas.model_files import parse_size, save_weights

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
        from dnatlas.errors import InputError
        from dnatlas.model_files import load_weights, weights_file

        directory = Path(directory)
        model = cls(DNAtlasConfig.from_folder(directory))
        state = load_weights(directory, device=str(map_location))  # one file, or shards
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise InputError(_state_mismatch(exc), path=weights_file(directory)) from None
        return model.to(map_location).eval()


def _state_mismatch(exc: RuntimeError) -> str:
    """A one-line summary of a ``load_state_dict`` error."""
    text = str(exc)
    missing = text.count("Missing key")
    unexpected = text.count("Unexpected key")
    shapes = text.count("size mismatch")
    parts = [f"{n} {what}" for n, what in ((missing, "missing"), (unexpected, "unexpected"),
                                           (shapes, "shape-mismatched")) if n]
    return ("weights do not fit the config (" + ", ".join(parts) + " tensor groups)"
            if parts else "weights do not fit the config")

