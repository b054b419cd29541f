"""The interface between SAEs and the DNA language models they read.

An adapter turns nucleotide codes into per-nucleotide activations and runs the model's own
training loss with activations replaced ("spliced"), whatever the model's tokenisation:

* ``activations(tokens, keys)``: tokens LongTensor (B, L) with A=0 C=1 G=2 T=3 N=4 ->
  ``{key: (B, L, d(key))}``, one vector per input nucleotide.
* ``mlm_loss(tokens, intervene={key: fn})``: the model's language-modelling loss on
  ``tokens``, with each site's activations replaced by ``fn(acts)``. ``fn`` maps a tensor
  (..., d) to one of the same shape, row by row (an SAE's reconstruction, zeros...); it is
  applied at the model's own positions (tokens, not nucleotides).
* ``random_init(seed)``: the same architecture with freshly initialised weights (the
  random-initialisation control of paper 003).

Keys are ``blocks.{i}.{site}`` with 0-based block ``i``; every adapter has at least the
``residual`` site (the residual stream after block i).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor

Intervention = Callable[[Tensor], Tensor]


class ActivationAdapter(ABC):
    """Per-nucleotide activations and spliced losses of one model (see module docstring).

    Attributes:
        name: short model description saved with SAEs (``model_name``).
        n_layers: number of blocks.
        sites: site names available in every block.
    """

    name: str = ""
    n_layers: int = 0
    sites: tuple[str, ...] = ("residual",)

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

    def check_keys(self, keys) -> None:
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

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def to(self, device) -> ActivationAdapter: ...

    @abstractmethod
    def d(self, key: str) -> int:
        """Width of the activations at ``key``."""

    @abstractmethod
    def activations(self, tokens: Tensor, keys: list[str]) -> dict[str, Tensor]:
        """Per-nucleotide activations: tokens (B, L) -> {key: (B, L, d(key))}."""

    @abstractmethod
    def mlm_loss(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None,
                 seed: int = 0) -> Tensor:
        """The model's training loss on tokens (B, L) (scalar), with interventions.

        ``seed`` fixes any randomness (which positions a masked LM masks), so calls with
        and without interventions compare like with like.
        """

    @abstractmethod
    def random_init(self, seed: int = 0) -> ActivationAdapter:
        """Same architecture, freshly initialised weights."""


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
