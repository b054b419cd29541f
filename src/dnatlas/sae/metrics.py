"""SAE evaluation: sparsity, reconstruction, feature health, and spliced-model loss.

:func:`evaluate_reconstruction` streams activation batches (B, d) and reports

* ``l0``: mean number of active features per row;
* ``fvu``: fraction of variance unexplained, sum ||x - x_hat||^2 / sum ||x - mean(x)||^2
  over all rows (raw units);
* ``mse``: mean over rows of ||x - x_hat||^2;
* ``feature_frequency`` (d_sae,): fraction of rows on which each feature fires, and the
  flags ``dead`` (frequency <= ``dead_threshold``, default 0: never fired) and ``dense``
  (frequency > ``dense_threshold``, default 0.1), with their counts and fractions.

:func:`loss_recovered` splices the SAE into the model through the adapter's intervention
hook and compares the model's own loss (masked-LM for DNAtlas and NT, next-nucleotide for
HyenaDNA) with the clean model and with the site zero-ablated:

    recovered = (loss_zero - loss_sae) / (loss_zero - loss_clean)

1 means the reconstruction is as good as the real activations, 0 as bad as zeros.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dnatlas.sae.autoencoder import SparseAutoencoder


@torch.no_grad()
def evaluate_reconstruction(sae: SparseAutoencoder, batches: Iterable[Tensor | dict[str, Tensor]],
                            key: str | None = None, max_batches: int | None = None,
                            dead_threshold: float = 0.0, dense_threshold: float = 0.1
                            ) -> dict[str, Any]:
    """Reconstruction and sparsity metrics of ``sae`` over activation batches.

    Args:
        batches: tensors (B, d_in), or dicts from which ``key`` (default: the SAE's
            ``hook_name``) is read.
        max_batches: stop after this many batches.

    Returns:
        dict with ``n_rows``, ``l0``, ``fvu``, ``mse``, ``feature_frequency`` (a list),
        ``dead_features``, ``dense_features``, ``dead_fraction``, ``dense_fraction``,
        ``dead_threshold``, ``dense_threshold``.
    """
    key = key or sae.cfg.hook_name
    device = sae.W_enc.device
    counts = torch.zeros(sae.d_sae, dtype=torch.float64, device=device)
    n = 0
    sse = active = 0.0
    sum_x = torch.zeros(sae.d_in, dtype=torch.float64, device=device)
    sum_sq = 0.0
    for batch in itertools.islice(batches, max_batches):
        x = batch if isinstance(batch, Tensor) else batch[key]
        x = x.to(device=device, dtype=sae.W_enc.dtype)
        x_hat, f = sae(x)
        fires = f != 0
        counts += fires.sum(0)
        active += float(fires.sum())
        sse += float((x - x_hat).double().pow(2).sum())
        sum_x += x.double().sum(0)
        sum_sq += float(x.double().pow(2).sum())
        n += x.shape[0]
    if n == 0:
        raise ValueError("no activation rows to evaluate")
    total_var = sum_sq - float(sum_x.pow(2).sum()) / n
    freq = (counts / n).cpu()
    dead = int((freq <= dead_threshold).sum())
    dense = int((freq > dense_threshold).sum())
    return {
        "n_rows": n,
        "l0": active / n,
        "fvu": sse / total_var if total_var > 0 else float("nan"),
        "mse": sse / n,
        "dead_features": dead,
        "dense_features": dense,
        "dead_fraction": dead / sae.d_sae,
        "dense_fraction": dense / sae.d_sae,
        "dead_threshold": dead_threshold,
        "dense_threshold": dense_threshold,
        "feature_frequency": freq.tolist(),
    }


@torch.no_grad()
def loss_recovered(adapter, sae: SparseAutoencoder, token_batches: Iterable[np.ndarray | Tensor],
                   key: str | None = None, max_batches: int | None = None, seed: int = 0
                   ) -> dict[str, float]:
    """Model loss with the SAE reconstruction spliced in at ``key``, vs clean and zero-ablated.

    Args:
        adapter: the model's :class:`~dnatlas.models.ModelAdapter`.
        token_batches: windows of nucleotide codes (B, L).
        key: the site (default: the SAE's ``hook_name``).
        seed: masking seed (batch i uses seed + i, the same for all three runs).

    Returns:
        ``loss_clean``, ``loss_sae``, ``loss_zero`` (means over batches) and
        ``loss_recovered`` = (zero - sae) / (zero - clean).
    """
    key = key or sae.cfg.hook_name
    adapter.check_keys([key])

    def splice(acts: Tensor) -> Tensor:
        shape = acts.shape
        x_hat, _ = sae(acts.reshape(-1, shape[-1]).to(sae.W_enc.device))
        return x_hat.reshape(shape).to(acts.dtype)

    totals = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    n = 0
    for i, tokens in enumerate(itertools.islice(token_batches, max_batches)):
        t = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        totals["clean"] += float(adapter.mlm_loss(t, seed=seed + i))
        totals["sae"] += float(adapter.mlm_loss(t, intervene={key: splice}, seed=seed + i))
        totals["zero"] += float(adapter.mlm_loss(t, intervene={key: torch.zeros_like}, seed=seed + i))
        n += 1
    if n == 0:
        raise ValueError("no token batches to evaluate")
    clean, spliced, zero = (totals[k] / n for k in ("clean", "sae", "zero"))
    denom = zero - clean
    return {
        "loss_clean": clean,
        "loss_sae": spliced,
        "loss_zero": zero,
        "loss_recovered": (zero - spliced) / denom if denom != 0 else float("nan"),
    }
