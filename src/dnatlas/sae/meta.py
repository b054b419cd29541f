"""Meta-SAEs: sparse autoencoders trained on the decoder directions of another SAE.

A meta-SAE's training rows are the unit-normalised decoder rows ``W_dec[i] / ||W_dec[i]||``
(one per base latent, shape (n, d_in)) of a base SAE; a meta-latent that several base
latents share is a direction common to their decoders, a candidate parent concept
(Bussmann et al. 2024, "Showing SAE latents are not atomic using meta-SAEs"; Decode-gLM,
Maiwald et al. 2025: one meta-latent above several HIV annotations). It is trained with the
ordinary :class:`~dnatlas.sae.trainer.SAETrainer` on batches ``{key: (B, d_in)}`` from
:func:`decoder_batches`.

Two published setups are :data:`META_PRESETS`:

* ``saebench`` (SAEBench's meta-structure evaluation, after Bussmann et al. 2025, Matryoshka
  SAEs, appendix D.1): BatchTopK, width ceil(0.25 x the rows), k = 4, 1,500 steps of 1,024
  rows drawn with replacement, Adam lr 5e-4 constant, dead after 2,000 steps, seed 42.
* ``decode-glm`` (Decode-gLM's notebook ``train_metaSAE.ipynb``): JumpReLU with D = 128
  meta-latents (the dictionary size), L0 coefficient 0.019 (their published meta-SAE,
  L0 about 6), kernel bandwidth 0.01, initial threshold 0.001, Adam lr 2e-4 warmed up over
  10 of 5,000 epochs, L0 coefficient warmed up over the first 1,000 epochs (they use a
  cosine ramp, the trainer a linear one), batches of 512 rows shuffled each epoch (without
  replacement), no gradient clipping; trained only on the base latents that matched a
  concept.

One ``seed`` drives three generators through :func:`derived_seed`: the meta-SAE's weight
initialisation, the batch indices and the random dictionary. Each is a hash of the seed
and its purpose, so none replays another's stream or a base SAE's own initialisation
(an SAE initialised with seed s draws ``randn(d_sae, d_in)`` from seed s: a meta-SAE or a
random dictionary drawn from the same seed would start on the base SAE's initial decoder
rows).

Neither preset normalises inputs further (the rows already have unit norm). The quality measure is
the decoder fraction of variance explained, FVE = 1 - sum ||x - x_hat||^2 / sum ||x -
mean(x)||^2 over all rows (SAEBench's ``decoder_fraction_variance_explained``), next to the
same meta-SAE trained on :func:`random_dictionary` (Gaussian rows, unit-normalised, same
shape): a dictionary with no shared structure.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from dnatlas.errors import InputError
from dnatlas.sae.autoencoder import SparseAutoencoder

__all__ = ["META_PRESETS", "MetaPreset", "decoder_batches", "decoder_rows", "derived_seed",
           "decoder_variance_explained", "meta_children", "meta_codes", "meta_preset",
           "meta_width", "random_dictionary", "steps_for"]


@dataclass(frozen=True)
class MetaPreset:
    """A published meta-SAE setup.

    Attributes:
        arch: the meta-SAE's architecture.
        width: meta-latents (None: ``ceil(width_ratio * rows)``).
        width_ratio: meta-latents per training row when ``width`` is None.
        sae: further config fields of the architecture (k, coefficients...; see
            :func:`dnatlas.sae.registry.make_config`).
        train: :class:`~dnatlas.sae.training_config.SAETrainingConfig` keywords.
        epochs: when set, steps = epochs * ceil(rows / batch_size) (passes over the rows).
        replacement: rows drawn with replacement (True) or shuffled once per epoch (False).
        train_on: ``all`` base latents or only those ``matched`` to a concept.
        seed: default seed (weights, batches, random dictionary).
    """

    arch: str
    width: int | None = None
    width_ratio: float | None = None
    sae: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    replacement: bool = True
    train_on: str = "all"
    seed: int = 0


META_PRESETS: dict[str, MetaPreset] = {
    "saebench": MetaPreset(
        arch="batchtopk", width_ratio=0.25,
        sae={"k": 4, "dead_after": 2000, "normalize": False},
        train={"steps": 1500, "batch_size": 1024, "lr": 5e-4, "lr_warmup_frac": 0.0,
               "lr_decay_frac": 0.0},
        replacement=True, train_on="all", seed=42),
    "decode-glm": MetaPreset(
        arch="jumprelu", width=128,
        sae={"l0_coefficient": 0.019, "jumprelu_bandwidth": 0.01,
             "jumprelu_init_threshold": 0.001, "normalize": False},
        train={"batch_size": 512, "lr": 2e-4, "lr_warmup_frac": 10 / 5000,
               "sparsity_warmup_frac": 1000 / 5000, "lr_decay_frac": 0.0, "grad_clip": None},
        epochs=5000, replacement=False, train_on="matched", seed=0),
}


def meta_preset(name: str) -> MetaPreset:
    """The preset ``name`` of :data:`META_PRESETS`; InputError for an unknown name."""
    if name not in META_PRESETS:
        raise InputError(f"unknown meta-SAE preset {name!r}; choose from "
                         f"{', '.join(META_PRESETS)}")
    return META_PRESETS[name]


def meta_width(preset: MetaPreset, n_rows: int, k: int | None = None) -> int:
    """Meta-latents of ``preset`` for ``n_rows`` training rows (at least ``k`` when given)."""
    width = preset.width if preset.width is not None else math.ceil(preset.width_ratio * n_rows)
    return max(int(width), int(k or 1))


def steps_for(preset: MetaPreset, n_rows: int, batch_size: int) -> int | None:
    """Training steps of an epoch-based preset (None when the preset counts steps)."""
    if preset.epochs is None:
        return None
    return preset.epochs * math.ceil(n_rows / min(batch_size, n_rows))


def derived_seed(seed: int, purpose: str) -> int:
    """A seed in [0, 2^31) for ``purpose`` (``init``, ``batches``, ``random-dictionary``):
    the first 4 bytes of SHA-256 of ``"dnatlas-meta-sae:<purpose>:<seed>"``."""
    digest = hashlib.sha256(f"dnatlas-meta-sae:{purpose}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@torch.no_grad()
def decoder_rows(sae: SparseAutoencoder, latents: Sequence[int] | None = None) -> Tensor:
    """Unit-normalised decoder rows of ``sae``: float32 (n, d_in), row i = W_dec[latents[i]]
    / ||W_dec[latents[i]]|| (all d_sae latents when ``latents`` is None).

    Raises:
        InputError: a latent id outside [0, d_sae), or a decoder row of zero norm.
    """
    W = sae.W_dec.detach().to("cpu", torch.float32)
    ids = list(range(sae.d_sae)) if latents is None else [int(i) for i in latents]
    bad = [i for i in ids if not 0 <= i < sae.d_sae]
    if bad:
        raise InputError(f"latent id {bad[0]} is out of range: the SAE has {sae.d_sae} "
                         f"latents (0 to {sae.d_sae - 1})")
    rows = W[torch.tensor(ids, dtype=torch.long)]
    norms = rows.norm(dim=1, keepdim=True)
    zero = torch.nonzero(norms.squeeze(1) == 0).squeeze(1)
    if zero.numel():
        raise InputError(f"latent {ids[int(zero[0])]} has an all-zero decoder row; leave it out")
    return rows / norms


def random_dictionary(n: int, d: int, seed: int = 0) -> Tensor:
    """A dictionary with no shared structure: n Gaussian rows of width d, each divided by
    its norm (uniform on the sphere), float32 (n, d), from a generator seeded
    ``derived_seed(seed, "random-dictionary")``."""
    gen = torch.Generator().manual_seed(derived_seed(seed, "random-dictionary"))
    rows = torch.randn(n, d, generator=gen)
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)


def decoder_batches(rows: dict[str, Tensor], batch_size: int, seed: int = 0,
                    replacement: bool = True, steps: int | None = None
                    ) -> Iterator[dict[str, Tensor]]:
    """Batches ``{key: rows[key][idx]}`` for the trainer; every key gets the same indices.

    Args:
        rows: key -> (n, d) tensor; all keys have the same n.
        batch_size: rows per batch, B. Without replacement, min(B, n), the last batch of
            an epoch holding the remainder.
        seed: the index generator (a CPU ``torch.Generator``) is seeded
            ``derived_seed(seed, "batches")``.
        replacement: draw B indices uniformly with replacement per batch (SAEBench), or
            shuffle the n rows once per epoch and cut them into batches (Decode-gLM).
        steps: stop after this many batches (None: never stop).
    """
    sizes = {int(t.shape[0]) for t in rows.values()}
    if len(sizes) != 1:
        raise ValueError(f"all keys need the same number of rows, got {sorted(sizes)}")
    n = sizes.pop()
    if n < 1 or batch_size < 1:
        raise ValueError("need at least one row and a positive batch size")
    gen = torch.Generator().manual_seed(derived_seed(seed, "batches"))
    done = 0

    def index_batches() -> Iterator[Tensor]:
        while True:
            if replacement:
                yield torch.randint(0, n, (batch_size,), generator=gen)
            else:
                order = torch.randperm(n, generator=gen)
                yield from order.split(min(batch_size, n))

    for idx in index_batches():
        if steps is not None and done >= steps:
            return
        yield {key: t[idx] for key, t in rows.items()}
        done += 1


@torch.no_grad()
def meta_codes(meta: SparseAutoencoder, rows: Tensor, batch_size: int = 4096) -> Tensor:
    """The meta-SAE's (inference) encoding of each row: float32 (n, d_meta), >= 0."""
    device = meta.W_enc.device
    parts = [meta.encode(chunk.to(device)).float().cpu() for chunk in rows.split(batch_size)]
    return torch.cat(parts) if parts else rows.new_zeros(0, meta.d_sae)


@torch.no_grad()
def decoder_variance_explained(meta: SparseAutoencoder, rows: Tensor,
                               codes: Tensor | None = None) -> dict[str, float]:
    """Reconstruction of ``rows`` (n, d) by ``meta``: ``fve``, ``mse``, ``l0``.

    ``fve`` = 1 - sum ||x - x_hat||^2 / sum ||x - mean||^2 (sums over all rows and
    columns, float64); ``mse`` = sum ||x - x_hat||^2 / (n d), in the units of the rows
    (unit-norm rows: at most about 1/d); ``l0`` = mean active meta-latents per row.
    ``codes`` (n, d_meta) defaults to :func:`meta_codes`.
    """
    codes = meta_codes(meta, rows) if codes is None else codes
    device = meta.W_dec.device
    recon = torch.cat([meta.decode(c.to(device)).double().cpu()
                       for c in codes.split(4096)]) if len(codes) else rows.double()
    x = rows.double()
    resid = float((x - recon).pow(2).sum())
    total = float((x - x.mean(0)).pow(2).sum())
    return {"fve": 1.0 - resid / total if total > 0 else 0.0,
            "mse": resid / max(x.numel(), 1),
            "l0": float((codes > 0).sum(1, dtype=torch.float64).mean()) if len(codes) else 0.0}


def meta_children(codes: Tensor, latents: Sequence[int]) -> list[list[tuple[int, float]]]:
    """Children of each meta-latent: ``out[j]`` lists ``(base latent, weight)`` for every
    row whose code on meta-latent j is non-zero, by weight descending (ties: lower id).

    Args:
        codes: (n, d_meta) meta-SAE codes of the base rows (:func:`meta_codes`).
        latents: the base latent id of each row, length n.
    """
    if codes.shape[0] != len(latents):
        raise ValueError(f"{codes.shape[0]} code rows for {len(latents)} latents")
    ids = [int(i) for i in latents]
    out = []
    for column in codes.detach().float().cpu().t():
        nz = torch.nonzero(column > 0).squeeze(1).tolist()
        values = column[nz].tolist()
        out.append(sorted(zip((ids[i] for i in nz), values), key=lambda t: (-t[1], t[0])))
    return out
