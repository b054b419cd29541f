"""The one interface through which dnatlas reaches any DNA language model.

Every model (DNAtlas, HyenaDNA, Nucleotide Transformer, the k-mer and Transformer
baselines) is wrapped in a :class:`ModelAdapter`. Analysis, SAEs, evaluation and training
see only this interface, whatever the model's tokenisation:

* ``activations(tokens, keys, intervene=None)``: tokens LongTensor (B, L) of nucleotide
  codes A=0 C=1 G=2 T=3 N=4 -> ``{key: (B, L, d(key))}``, one vector per input nucleotide.
* ``nucleotide_log_probs(tokens, intervene=None)``: tokens (B, L) with MASK=5 at hidden
  positions -> (B, L, 4) natural-log probabilities of A, C, G, T at every position.
* ``mlm_loss(tokens, intervene=None, seed=0)``: the model's own training loss (scalar).
* ``codon_log_probs(tokens, intervene=None)``: (B, L, 64) log-probabilities of the triplet
  centred at each position, for models that predict triplets (``predicts_codons``: DNAtlas'
  windowed MLM); codon and amino-acid read-outs (steering) use it.
* ``intervene`` maps a key to a function ``(..., d) -> (..., d)`` that replaces that
  site's activations downstream (SAE splicing, zero-ablation, steering). It is applied at
  the model's own positions (tokens, not nucleotides).
* Geometry of the context: ``receptive_field`` (one-sided radius R, when finite: output i
  depends only on inputs i-R..i+R), ``causal`` (output i depends only on inputs <= i) and
  ``max_length`` (the longest window the model accepts, in nucleotides), which together
  tell the extraction engine how to cut a genome into windows.
* ``rc_permutation(key)``: for reverse-complement-equivariant models, the channel
  permutation p with ``act(revcomp(x)) = act(x)[::-1, p]`` (None otherwise).
* ``fingerprint()``: a hash of the architecture and weights, which every activation cache
  records, so that a cache written by another model is refused.
* ``random_init(seed)``: the same architecture with freshly initialised weights (the
  random-initialisation control of paper 003).

Keys are ``blocks.{i}.{site}`` with 0-based block ``i``; every model has at least the
``residual`` site (the residual stream after block i). Models may have extra keys (DNAtlas:
``embed``).

A kind that ``dnatlas train`` trains (its registry record says ``trainable``) also gives its
adapter class the three static methods of :class:`Trainable`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from dnatlas.errors import InputError

Intervention = Callable[[Tensor], Tensor]


@runtime_checkable
class Trainable(Protocol):
    """What the trainer needs of a model kind, provided by its adapter class as static
    methods (:class:`~dnatlas.models.dnatlas.DNAtlasAdapter`,
    :class:`~dnatlas.models.baselines.TransformerAdapter`); found through
    :func:`dnatlas.models.registry.trainable_adapter`.

    The objective is a *sum* and a *count* so that the trainer can normalise by the global
    number of loss terms across micro-batches and ranks.
    """

    @staticmethod
    def build(preset: str, overrides: dict) -> torch.nn.Module:
        """A freshly initialised module of a DNAtlas preset's size, with config overrides."""
        ...

    @staticmethod
    def training_loss(module: torch.nn.Module, seq: Tensor, mask: Tensor
                      ) -> tuple[Tensor, Tensor]:
        """Summed loss (nats) and its number of terms for true codes ``seq`` (B, L) and a
        bool ``mask`` (B, L); ``module`` may be wrapped (DDP, torch.compile)."""
        ...

    @staticmethod
    def count_loss_terms(seq: Tensor, mask: Tensor) -> Tensor:
        """The number of loss terms of a batch, without running the model."""
        ...


class ModelAdapter(ABC):
    """Per-nucleotide activations, predictions and spliced losses of one model.

    Attributes:
        kind: registry name of the model family (``dnatlas``, ``hyenadna``, ``nt``,
            ``kmer``, ``transformer``).
        name: how the model is named in outputs (its spec, e.g. ``dnatlas:my-run``).
        n_layers: number of blocks.
        sites: site names available in every block; ``sites[0]`` is the default site.
        receptive_field: one-sided context radius in nucleotides, or None if unbounded.
        causal: outputs depend only on the current and earlier nucleotides.
        max_length: longest accepted window in nucleotides, or None (any length).
    """

    kind: str = ""
    name: str = ""
    n_layers: int = 0
    sites: tuple[str, ...] = ("residual",)
    receptive_field: int | None = None
    causal: bool = False
    max_length: int | None = None

    # ------------------------------------------------------------------ keys
    @property
    def layers(self) -> list[int]:
        return list(range(self.n_layers))

    @property
    def keys(self) -> list[str]:
        """All activation keys, ``blocks.{i}.{site}``."""
        return [f"blocks.{i}.{s}" for i in self.layers for s in self.sites]

    def key(self, layer: int, site: str = "residual") -> str:
        """The key of a (0-based) layer and site; raises ValueError if it does not exist."""
        key = f"blocks.{layer}.{site}"
        self.check_keys([key])
        return key

    def check_keys(self, keys: Iterable[str]) -> None:
        """Raise ValueError naming the first key this model does not have."""
        if isinstance(keys, str):
            raise ValueError(f"keys must be a list of names, not the string {keys!r}")
        known = set(self.keys)
        for k in keys:
            if k not in known:
                raise ValueError(f"{self.name or type(self).__name__} has no activation {k!r} "
                                 f"(layers 0..{self.n_layers - 1}, sites {', '.join(self.sites)})")

    @staticmethod
    def parse_key(key: str) -> tuple[int, str]:
        """``"blocks.3.residual"`` -> (3, "residual")."""
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "blocks" or not parts[1].isdigit():
            raise ValueError(f"activation key {key!r} is not of the form blocks.<i>.<site>")
        return int(parts[1]), parts[2]

    def select_keys(self, layers="all", site: str | None = None) -> list[str]:
        """Activation keys of a layer selection (raises :class:`InputError`).

        Args:
            layers: ``"all"``, an int (0-based: the report's "layer 8" is 7), a full key
                like ``"blocks.7.neurons"``, a comma-separated string of these, or a list.
            site: the site of integer layers (default: ``sites[0]``).
        """
        site = self.sites[0] if site is None else site
        if site not in self.sites:
            raise InputError(f"{self.name}: unknown site {site!r}; choose one of "
                             f"{', '.join(self.sites)}")
        if isinstance(layers, (int, np.integer)):
            items = [int(layers)]
        elif isinstance(layers, str):
            if layers.strip() == "all":
                return [f"blocks.{i}.{site}" for i in self.layers]
            items = [s.strip() for s in layers.split(",") if s.strip()]
        else:
            items = list(layers)
        if not items:
            raise InputError("no layer given")
        keys = []
        for item in items:
            if isinstance(item, str) and not item.lstrip("-").isdigit():
                if item not in set(self.keys):
                    raise InputError(f"{self.name}: no activation {item!r}: expected a 0-based "
                                     f"layer, 'all' or one of blocks.0..{self.n_layers - 1}."
                                     f"{{{','.join(self.sites)}}}")
                keys.append(item)
                continue
            index = int(item)
            if not 0 <= index < self.n_layers:
                raise InputError(f"layer {index} out of range: {self.name} has {self.n_layers} "
                                 f"layers (0..{self.n_layers - 1})")
            keys.append(f"blocks.{index}.{site}")
        return keys

    def check_window(self, length: int) -> None:
        """Refuse (InputError) windows of ``length`` nt longer than the model accepts."""
        if self.max_length is not None and length > self.max_length:
            raise InputError(f"window {length} is longer than {self.name} accepts "
                             f"({self.max_length} nt)", setting="window")

    # ------------------------------------------------------------------ device
    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def to(self, device) -> ModelAdapter: ...

    # ------------------------------------------------------------------ shapes
    @abstractmethod
    def d(self, key: str) -> int:
        """Width of the activations at ``key``."""

    def rc_permutation(self, key: str) -> np.ndarray | None:
        """Channel permutation of ``key`` under reverse complement, or None (not equivariant)."""
        return None

    # ------------------------------------------------------------------ running
    @abstractmethod
    def activations(self, tokens: Tensor, keys: list[str],
                    intervene: dict[str, Intervention] | None = None) -> dict[str, Tensor]:
        """Per-nucleotide activations: tokens (B, L) -> {key: (B, L, d(key))}."""

    @abstractmethod
    def nucleotide_log_probs(self, tokens: Tensor,
                             intervene: dict[str, Intervention] | None = None) -> Tensor:
        """Log-probabilities (B, L, 4) of A, C, G, T at every position of tokens (B, L).

        Tokens may hold MASK=5 where the nucleotide is hidden; masked-nucleotide scoring
        (:func:`dnatlas.training.evaluate.evaluate`) reads these at masked positions.
        """

    @abstractmethod
    def mlm_loss(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None,
                 seed: int = 0) -> Tensor:
        """The model's training loss on tokens (B, L) (scalar, nats), with interventions.

        ``seed`` fixes any randomness (which positions a masked LM masks), so calls with
        and without interventions compare like with like.
        """

    #: whether :meth:`codon_log_probs` is available (the model predicts triplets)
    predicts_codons: bool = False

    def codon_log_probs(self, tokens: Tensor,
                        intervene: dict[str, Intervention] | None = None) -> Tensor:
        """Log-probabilities (B, L, 64) of the triplet centred at every position of tokens
        (B, L) (MASK=5 where hidden): at position ``l`` the triplet ``x[l-1:l+2]``, index
        16*first + 4*middle + last, with the same ``intervene`` as
        :meth:`nucleotide_log_probs`. Only models that predict triplets
        (:attr:`predicts_codons`) have it; the others raise :class:`InputError`."""
        raise InputError(f"{self.name}: codon and amino-acid probabilities need a windowed-"
                         "MLM model with triplet outputs (DNAtlas)")

    @abstractmethod
    def random_init(self, seed: int = 0) -> ModelAdapter:
        """Same architecture, freshly initialised weights."""

    # ------------------------------------------------------------------ identity
    @abstractmethod
    def state_for_fingerprint(self) -> Iterable[tuple[str, object]]:
        """``(name, tensor or array or JSON-able value)`` pairs that define the model."""

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of the model's kind, configuration and weights."""
        cached = getattr(self, "_fingerprint", None)
        if cached is not None:
            return cached
        h = hashlib.sha256(self.kind.encode())
        for name, value in self.state_for_fingerprint():
            h.update(name.encode())
            if isinstance(value, Tensor):
                value = value.detach().cpu().contiguous().reshape(-1)
                h.update(str(value.dtype).encode() + str(tuple(value.shape)).encode())
                h.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
            elif isinstance(value, np.ndarray):
                h.update(np.ascontiguousarray(value).tobytes())
            else:
                h.update(repr(value).encode())
        self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.n_layers} layers)"


class ModuleAdapter(ModelAdapter):
    """An adapter over one torch module, ``self.model``: its device is the module's, and
    :meth:`to` moves the module."""

    model: torch.nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> ModuleAdapter:
        self.model.to(device)
        return self


def check_codes(tokens: Tensor, allow_mask: bool = False) -> Tensor:
    """``tokens`` (B, L) as a long tensor of nucleotide codes (A=0 C=1 G=2 T=3 N=4, and
    MASK=5 with ``allow_mask``), or ValueError naming the bad value: the model's own
    :func:`dnatlas.architectures.dnatlas.modeling.check_tokens`, also taking numpy arrays."""
    from dnatlas.architectures.dnatlas.modeling import check_tokens
    from dnatlas.genome.alphabet import MASK, N

    if not isinstance(tokens, Tensor):
        tokens = torch.as_tensor(np.asarray(tokens))
    return check_tokens(tokens, vocab_size=(MASK if allow_mask else N) + 1)


def mask_positions(shape, rate: float, seed: int, device, allowed: Tensor | None = None) -> Tensor:
    """Deterministic Bernoulli(rate) mask of shape ``shape``, at least one position per row.

    Args:
        allowed: bool mask of positions that may be chosen (None: all).
    """
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=g) < rate
    if allowed is not None:
        mask &= allowed.cpu()
    # guarantee one masked position per row where possible
    scores = torch.rand(shape, generator=g)
    if allowed is not None:
        scores = scores.masked_fill(~allowed.cpu(), -1.0)
    first = scores.argmax(-1, keepdim=True)
    fallback = torch.zeros(shape, dtype=torch.bool).scatter_(-1, first, True)
    if allowed is not None:
        fallback &= allowed.cpu()
    empty = ~mask.any(-1, keepdim=True)
    return (mask | (fallback & empty)).to(device)


def module_state(module: torch.nn.Module, config: object) -> Iterable[tuple[str, object]]:
    """Fingerprint state of an nn.Module adapter: its config and every tensor it holds."""
    yield "config", config
    yield from module.state_dict().items()
