"""Reverse-complement partners of SAE features on an RC-equivariant model (pure numpy;
also reached as ``dnatlas.sae.rc_pairs``).

For a model whose site activations obey ``h(rc(x))[i] = h(x)[L-1-i][P]`` (a channel
permutation ``P``, :meth:`~dnatlas.models.ModelAdapter.rc_permutation`), a feature with
decoder row ``w`` reading one strand has a partner reading the other strand: the feature
whose decoder row best matches ``w[P]``. Perfectly paired dictionaries have mutual
partners with cosine 1; palindromic features are their own partners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RCPairs:
    """Partners of F features.

    Attributes:
        partner: int64 (F,): the feature whose decoder row best matches this one's under P.
        cosine: float64 (F,): that cosine similarity.
        mutual: bool (F,): the partner's partner is this feature.
    """

    partner: np.ndarray
    cosine: np.ndarray
    mutual: np.ndarray

    def canonical(self) -> np.ndarray:
        """Int64 (F,): one id per mutual pair (its lower feature id); else the feature."""
        ids = np.arange(len(self.partner))
        return np.where(self.mutual, np.minimum(ids, self.partner), ids)

    def summary(self) -> dict:
        """Mean/median partner cosine, fractions mutual, self-paired and with cosine > 0.9."""
        ids = np.arange(len(self.partner))
        return {"features": int(len(ids)),
                "mean_cosine": float(self.cosine.mean()) if len(ids) else 0.0,
                "median_cosine": float(np.median(self.cosine)) if len(ids) else 0.0,
                "fraction_mutual": float(self.mutual.mean()) if len(ids) else 0.0,
                "fraction_self": float((self.partner == ids).mean()) if len(ids) else 0.0,
                "fraction_cosine_above_0.9": float((self.cosine > 0.9).mean())
                if len(ids) else 0.0}


def rc_pairs(decoder: np.ndarray, permutation: np.ndarray, block: int = 4096) -> RCPairs:
    """Partners of the rows of ``decoder`` (F, d) under the channel ``permutation`` (d,).

    Memory O(block * F): the (F, F) cosine matrix is taken ``block`` rows at a time.
    """
    w = np.asarray(decoder, dtype=np.float64)
    perm = np.asarray(permutation, dtype=np.int64)
    if w.ndim != 2 or perm.shape != (w.shape[1],):
        raise ValueError(f"decoder {w.shape} and permutation {perm.shape} do not match")
    unit = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    flipped = unit[:, perm]
    partner = np.empty(len(w), dtype=np.int64)
    cosine = np.empty(len(w))
    for a in range(0, len(w), block):
        sims = flipped[a:a + block] @ unit.T
        partner[a:a + block] = sims.argmax(axis=1)
        cosine[a:a + block] = sims[np.arange(len(sims)), partner[a:a + block]]
    mutual = partner[partner] == np.arange(len(w))
    return RCPairs(partner, cosine, mutual)
