"""Feature steering through an SAE, keeping the reconstruction error (paper 003's steering).

At one site, activations ``x`` (..., d) are encoded, ``f = sae.encode(x)`` (..., S), some
features are changed, ``f' = edit(f)``, and the site is replaced by

    x' = decode(f') + (x - decode(f))        (the reconstruction error is added back)

Because ``decode`` is affine, ``x' = x + (f' - f) @ W_dec / input_scale``: only the edited
features' decoder rows move the activations, and whatever the SAE fails to reconstruct is
kept. With no feature changed ``x' = x`` exactly (``f' - f`` is zero, so nothing is added),
so the steered model reproduces the unsteered one bit for bit. ``error_term=False`` gives
the plain spliced reconstruction ``decode(f')`` instead (for comparison only).

Edits (:class:`FeatureEdit`), applied in order at every position of the site:

* ``set``: ``f_i = value`` (ablation is ``set`` 0);
* ``add``: ``f_i = f_i + value``;
* ``set_max``: ``f_i = value * max_i``, a multiple of the feature's maximum activation
  ``max_i`` (over a sample of activations, :func:`feature_max`, or given);
  :meth:`FeatureEdit.resolve` turns it into ``set``.

:class:`SteeringIntervention` is a model-agnostic ``intervene=`` function of
:class:`~dnatlas.models.ModelAdapter` (``(..., d) -> (..., d)``, applied at the model's own
positions): ``adapter.nucleotide_log_probs(tokens, intervene={sae.cfg.hook_name: steer})``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dnatlas.errors import InputError
from dnatlas.sae.autoencoder import SparseAutoencoder

OPS = ("set", "add", "set_max")


@dataclass(frozen=True)
class FeatureEdit:
    """One change of one SAE feature (see module docstring).

    Attributes:
        feature: 0-based feature index.
        op: ``set``, ``add`` or ``set_max``.
        value: the value set or added, or the multiple of the maximum (``set_max``), in
            the SAE's feature units.
    """

    feature: int
    op: str
    value: float

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"unknown edit {self.op!r} (one of {', '.join(OPS)})")
        if not math.isfinite(self.value):
            raise InputError(f"feature {self.feature}: the edit's value {self.value} is not "
                             "a finite number")

    def resolve(self, max_activation: Mapping[int, float] | Sequence[float] | Tensor | None
                ) -> FeatureEdit:
        """A ``set``/``add`` edit: ``set_max`` becomes ``set`` to ``value * max[feature]``."""
        if self.op != "set_max":
            return self
        if max_activation is None:
            raise InputError(f"feature {self.feature}: a multiple of the maximum activation "
                             "needs the maxima (a sample or given values)")
        top = float(max_activation[self.feature])
        if not top > 0 or top == float("inf"):
            raise InputError(f"feature {self.feature}: its maximum activation is {top:g} (not "
                             "in the --max-activations table, or it never fired in the sample), "
                             f"so {self} would not mean what it says; give its maximum or a "
                             "value")
        return FeatureEdit(self.feature, "set", self.value * top)

    def __str__(self) -> str:
        sign = "+=" if self.op == "add" else "="
        tail = "xmax" if self.op == "set_max" else ""
        return f"{self.feature}{sign}{self.value:g}{tail}"


def check_features(features: Iterable[int], d_sae: int) -> None:
    """Raise :class:`InputError` naming the first feature index the SAE does not have."""
    for f in features:
        if not 0 <= int(f) < d_sae:
            raise InputError(f"unknown feature {f}: the SAE has {d_sae:,} features "
                             f"(0..{d_sae - 1})")


class SteeringIntervention:
    """``x -> decode(edit(encode(x))) + (x - decode(encode(x)))`` at every position.

    Args:
        sae: the SAE of the site (its ``hook_name``); left on its own device, the
            activations are moved to it and the result back.
        edits: :class:`FeatureEdit` s, applied in order; ``set_max`` must be resolved
            first (:meth:`FeatureEdit.resolve`).
        error_term: add the reconstruction error back (default); False splices the plain
            reconstruction ``decode(f')``.

    Calling it on activations (..., d_in) returns the steered activations (..., d_in) in
    their dtype and device.
    """

    def __init__(self, sae: SparseAutoencoder, edits: Sequence[FeatureEdit] = (),
                 error_term: bool = True):
        edits = list(edits)
        check_features([e.feature for e in edits], sae.d_sae)
        for e in edits:
            if e.op == "set_max":
                raise ValueError(f"edit {e} is not resolved: call FeatureEdit.resolve(maxima)")
        self.sae, self.edits, self.error_term = sae, edits, error_term
        self.features = sorted({e.feature for e in edits})

    def edit_codes(self, f: Tensor) -> Tensor:
        """Edited feature activations: f (N, d_sae) -> f' (N, d_sae) (a copy)."""
        g = f.clone()
        for e in self.edits:
            if e.op == "set":
                g[..., e.feature] = e.value
            else:
                g[..., e.feature] += e.value
        return g

    @torch.no_grad()
    def __call__(self, acts: Tensor) -> Tensor:
        sae = self.sae
        shape = acts.shape
        if shape[-1] != sae.d_in:
            raise ValueError(f"activations have width {shape[-1]} but the SAE reads {sae.d_in}")
        x = acts.reshape(-1, shape[-1]).to(device=sae.W_dec.device, dtype=sae.W_dec.dtype)
        f = sae.encode(x)
        g = self.edit_codes(f)
        if not self.error_term:
            return sae.decode(g).to(acts.dtype).to(acts.device).reshape(shape)
        cols = torch.as_tensor(self.features, dtype=torch.long, device=x.device)
        # decode(g) + (x - decode(f)) = x + (g - f) @ W_dec / s: only edited rows contribute
        delta = (g - f).index_select(-1, cols) @ sae.W_dec.index_select(0, cols)
        delta = (delta / sae.input_scale).to(device=acts.device, dtype=acts.dtype)
        return acts + delta.reshape(shape)


@torch.no_grad()
def feature_stats(sae: SparseAutoencoder, batches: Iterable[Tensor]) -> dict[str, Tensor]:
    """Per-feature statistics over activation batches (..., d_in): ``max`` (maximum
    activation, at least 0), ``mean`` (mean activation), ``frequency`` (fraction of rows
    where the feature fires), each (d_sae,) float64 on the CPU, and ``n`` (rows)."""
    top = total = fired = None
    n = 0
    for x in batches:
        f = sae.encode(x.reshape(-1, x.shape[-1]).to(device=sae.W_enc.device,
                                                     dtype=sae.W_enc.dtype)).double()
        if not f.shape[0]:
            continue
        m, t, c = f.amax(0), f.sum(0), (f != 0).sum(0).double()
        top = m if top is None else torch.maximum(top, m)
        total = t if total is None else total + t
        fired = c if fired is None else fired + c
        n += f.shape[0]
    if n == 0:
        raise ValueError("no activations to take statistics over")
    return {"max": top.clamp_min(0.0).cpu(), "mean": (total / n).cpu(),
            "frequency": (fired / n).cpu(), "n": n}


def feature_max(sae: SparseAutoencoder, batches: Iterable[Tensor]) -> Tensor:
    """Per-feature maximum activation (d_sae,) over activation batches (..., d_in)."""
    return feature_stats(sae, batches)["max"]


def matched_features(scale: Tensor, targets: Sequence[int], n_draws: int, pool: int = 10,
                     seed: int = 0) -> list[list[int]]:
    """Random control features of the same activation scale as ``targets``.

    Each draw replaces every target feature by a distinct random feature drawn among the
    ``pool`` live features (``scale > 0``, not a target) whose ``scale`` is nearest on a log
    scale to the target's.

    Args:
        scale: (d_sae,) per-feature scale, e.g. :func:`feature_max`.
        targets: the steered features.
        n_draws: number of control sets.

    Returns:
        ``n_draws`` lists of ``len(targets)`` feature indices.
    """
    scale = torch.as_tensor(scale, dtype=torch.float64)
    excluded = set(int(t) for t in targets)
    live = [i for i in range(scale.numel()) if scale[i] > 0 and i not in excluded]
    if len(live) < len(targets):
        raise InputError(f"only {len(live)} live features outside the steered ones: too few "
                         "for a matched control")
    log_live = torch.log(scale[live])
    gen = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(n_draws):
        taken: set[int] = set()
        chosen = []
        for t in targets:
            ref = torch.log(scale[int(t)].clamp_min(1e-12))
            order = torch.argsort((log_live - ref).abs()).tolist()
            near = [live[j] for j in order if live[j] not in taken][:pool]
            pick = near[int(torch.randint(len(near), (1,), generator=gen))]
            taken.add(pick)
            chosen.append(pick)
        draws.append(chosen)
    return draws
