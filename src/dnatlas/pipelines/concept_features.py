"""Feature dictionaries of a concept evaluation: SAE latents or the neurons of a site.

A :class:`FeatureDictionary` turns a chunk of one site's activations (n, d) into feature
activations (n, F): an SAE's encoder (sparse output), or the identity (the neurons,
InterPLM's baseline). Dictionaries of one model share one pass over the genome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dnatlas.errors import InputError
from dnatlas.models import ModelAdapter


@dataclass
class FeatureDictionary:
    """One dictionary of F features read at site ``key`` of a model.

    Attributes:
        name: label in tables (``sae:FOLDER``, ``neurons:KEY``, prefixed ``random-init``
            for the control model).
        kind: ``sae`` or ``neurons``; ``control``: read on the random-init model.
        key: the model site; n_features: F.
        encode: float32 (n, d) -> (n, F) numpy or scipy.sparse activations.
        pairs: RC partners of SAE features on RC-equivariant sites (else None).
        source: the SAE folder (None for neurons).
        decoder: float32 (F, d) decoder rows of an SAE (None for neurons).
    """

    name: str
    kind: str
    key: str
    n_features: int
    encode: Callable[[np.ndarray], object]
    control: bool = False
    pairs: object = None
    source: str | None = None
    decoder: np.ndarray | None = None


def _topk_csr(sae, x) -> sp.csr_matrix:
    """A TopK SAE's positive codes of ``x`` as CSR straight from the top-k selection:
    the values of ``sae.encode`` (the same pre-activations and ``topk``), without the
    dense (n, F) codes."""
    n, F, k = x.shape[0], sae.d_sae, sae.cfg.k
    vals, idx = sae.pre_activations(x).topk(k, dim=-1, sorted=False)
    vals = vals.relu().float().cpu().numpy().ravel()
    idx = idx.cpu().numpy().ravel()
    keep = vals > 0
    counts = keep.reshape(n, k).sum(axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    out = sp.csr_matrix((vals[keep], idx[keep].astype(np.int32), indptr), shape=(n, F))
    out.sort_indices()
    return out


def _positive_csr(f) -> sp.csr_matrix:
    """The positive entries of a (n, F) float tensor as a scipy CSR matrix."""
    rows, cols = (f > 0).nonzero(as_tuple=True)
    return sp.csr_matrix((f[rows, cols].numpy(), (rows.numpy(), cols.numpy())),
                         shape=tuple(f.shape))


def sae_dictionary(path: str | Path, model: ModelAdapter, control: bool = False,
                   device: str = "cpu") -> FeatureDictionary:
    """The latents of the SAE folder ``path`` (SAELens) on ``model`` at its ``hook_name``."""
    import torch

    from dnatlas.pipelines.sae_site import load_sae_for
    from dnatlas.sae.rc_pairs import rc_pairs

    sae, folder, key = load_sae_for(path, model, device=device)
    sae.eval()

    topk = getattr(sae, "arch", None) == "topk"
    # rows per block: about 64 M pre-activations (256 MB) whatever the dictionary size
    rows = int(min(16384, max(512, (1 << 26) // sae.d_sae)))

    def encode(x: np.ndarray, block: int = rows):
        # encoded in blocks of rows: the dense (n, F) codes of a whole chunk can be GBs;
        # a TopK SAE's codes go to CSR from its top-k selection (no dense scan)
        with torch.inference_mode():
            x = torch.from_numpy(x).to(device)
            if topk:
                parts = [_topk_csr(sae, x[a:a + block])
                         for a in range(0, max(len(x), 1), block)]
            else:
                parts = [_positive_csr(sae.encode(x[a:a + block]).float().cpu())
                         for a in range(0, max(len(x), 1), block)]
            return parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")

    perm = model.rc_permutation(key)
    pairs = None if perm is None else rc_pairs(sae.W_dec.detach().cpu().numpy(), perm)
    prefix = "random-init sae" if control else "sae"
    decoder = sae.W_dec.detach().float().cpu().numpy()
    return FeatureDictionary(f"{prefix}:{folder.name}", "sae", key, sae.d_sae, encode, control,
                             pairs, str(folder), decoder)


def neuron_dictionary(key: str, model: ModelAdapter, control: bool = False) -> FeatureDictionary:
    """The channels of site ``key`` themselves (the identity dictionary)."""
    try:
        model.check_keys([key])
    except ValueError as exc:
        raise InputError(str(exc)) from None
    prefix = "random-init neurons" if control else "neurons"
    return FeatureDictionary(f"{prefix}:{key}", "neurons", key, model.d(key),
                             lambda x: x, control)
