"""Bidirectional k-mer context model: the count-based baseline for masked-nucleotide prediction.

The model predicts the nucleotide at a position from its ``k`` left and ``k`` right neighbours,
with backoff to the ``k - 1, ..., 1, 0`` nearest neighbours on each side and finally to a
uniform distribution.

Context codes
-------------
The order-``j`` context of position ``p`` in sequence ``x`` is the ``2j`` bases
``x[p-j:p]`` and ``x[p+1:p+j+1]``, packed innermost-first into one integer::

    ctx_j(p) = sum_{d=1..j} (4 * x[p-d] + x[p+d]) * 16 ** (j - d)

so that dropping the outermost pair is a shift (``ctx_{j-1} = ctx_j >> 4``), and the stored
key of a (context, centre) pair is ``4 * ctx_j + x[p]``. Keys are ``uint64``, which allows
``k <= 15``. Per order the counts are kept as a sorted array of the keys that occur plus their
counts (sparse, so ``k = 8`` costs memory in proportion to the training length, not ``4**17``);
orders ``<= 5`` also get a dense ``(4**(2j), 4)`` lookup table, built on first use.

Counting (:meth:`KmerContextModel.fit`) is vectorised: one pass computes the order-``k`` key of
every position, one sort counts them, and each lower order is aggregated from the one above in
linear time (the keys stay grouped by ``ctx_{j-1}``), plus the few positions whose order-``j``
window is clean but whose order-``j+1`` window is not (next to N or a sequence end). A window
containing N is never counted. With ``strand_symmetric=True`` (default) every window is also
counted on the reverse strand, which makes the model reverse-complement symmetric, as DNAtlas
is.

Smoothing (the choice, documented)
----------------------------------
All three rules interpolate each order with the one below, ``P_{-1} = 1/4``; ``C(h, c)`` is
the count of centre ``c`` after context ``h``, ``C(h) = sum_c C(h, c)``, ``T(h)`` the number of
distinct centres seen after ``h`` and ``P_{j-1}`` the prediction from ``h`` without its
outermost pair. An unseen context (``C(h) = 0``) backs off entirely: ``P_j = P_{j-1}``.

- ``"dirichlet"`` (default): ``P_j = (C(h, c) + alpha P_{j-1}) / (C(h) + alpha)``, a
  hierarchical Dirichlet prior centred on the lower order, with one strength ``alpha`` that
  :func:`select_k` tunes on validation data together with ``k``.
- ``"absolute"``: interpolated absolute discounting (Kneser-Ney without continuation counts),
  ``P_j = (max(C(h, c) - D_j, 0) + D_j T(h) P_{j-1}) / C(h)`` with Ney's estimate
  ``D_j = n1 / (n1 + 2 n2)`` from that order's count-of-counts, clipped to ``[0.01, 1]``.
  Continuation counts are left out: with four letters and both-sided contexts nearly every
  shorter context is seen inside many longer ones, so they carry little information.
- ``"witten_bell"``: ``P_j = (C(h, c) + T(h) P_{j-1}) / (C(h) + T(h))``.

Why Dirichlet with a tuned strength: the discounts above are estimated from the training data
itself, and on DNA the right amount of trust in a long context depends on how close the
evaluation genomes are to the training ones, which in-sample counts cannot see. Measured on
the bundled genomes (train: 4 *K. pneumoniae* + *V. cholerae*, 26 Mb; validation: the first
300 kb of *E. coli* K-12; 15% random masks), absolute discounting is best at ``k = 4``
(1.912 bits/nt) and reaches 2.34 bits/nt at ``k = 8``, worse than ``k = 0``, while Dirichlet
with ``alpha = 64`` improves monotonically to 1.889 bits/nt at ``k = 8``. With *E. coli* DH1
(a near-copy of K-12) added to training, ``alpha = 1`` is best instead (1.06 bits/nt at
``k = 8``). Hence ``alpha`` is a validation-tuned hyperparameter like ``k``.

Masked and unknown neighbours (the choice, documented)
------------------------------------------------------
At prediction time a neighbour is *unknown* if it is MASK, N, or beyond the end of the row.
Unknown neighbours are **marginalised**: an order-``j`` context with ``m`` unknown neighbours
uses the counts summed over all ``4**m`` fillings, i.e. the empirical count of the pattern with
wildcards, which is exactly the count of the known neighbours at their offsets. This is done
while ``m <= max_marginal`` (default 2, i.e. at most 16 lookups per order); past that, the
position stops at the largest order it reached, as for an unseen context. ``max_marginal=0``
gives plain backoff to the largest window whose neighbours are all known. The centre token is
never read: the prediction at every position is from its neighbours only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from dnatlas.architectures.kmer.counts import (
    MAX_K,
    U64,
    aggregate_down,
    as_codes,
    compact_counts,
    concat,
    merge_sorted,
    ney_discount,
    run_starts,
    runs,
    truncate_keys,
    window_keys,
    with_rc,
)
from dnatlas.architectures.kmer.files import read_counts, write_counts
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import MASK, N

__all__ = ["SMOOTHINGS", "KmerContextModel"]

SMOOTHINGS = ("absolute", "witten_bell", "dirichlet")

_DENSE_MAX_ORDER = 5      # orders whose dense (4**(2j), 4) table is at most 4 M entries
_FIT_CHUNK = 1 << 20      # positions per chunk while computing keys in fit()
_AGG_CHUNK = 1 << 20      # keys per chunk while aggregating an order from the one above
_PREDICT_CHUNK = 1 << 18  # positions per chunk in predict_proba()


class KmerContextModel:
    """Counts of the centre nucleotide given ``k`` bases on each side, with backoff.

    Args:
        k: largest context order (bases on each side), ``0 <= k <= 15``; ``k = 0`` is the
            base composition.
        smoothing: ``"dirichlet"``, ``"absolute"`` (interpolated absolute discounting) or
            ``"witten_bell"``; see the module docstring.
        alpha: Dirichlet strength (``smoothing="dirichlet"`` only); :func:`select_k` tunes it.
        strand_symmetric: also count every window on the reverse strand.
        max_marginal: largest number of unknown (MASK/N/out-of-row) neighbours in a window that
            is marginalised over at prediction time; see the module docstring.

    After :meth:`fit`, ``discounts`` holds ``D_j`` for ``j = 0..k`` (used by ``"absolute"``)
    and ``n_positions`` the number of counted centre positions (per strand).
    """

    def __init__(self, k: int, smoothing: str = "dirichlet", alpha: float = 16.0,
                 strand_symmetric: bool = True, max_marginal: int = 2):
        if not 0 <= int(k) <= MAX_K:
            raise ValueError(f"k must be in 0..{MAX_K}, got {k}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        if int(max_marginal) < 0:
            raise ValueError(f"max_marginal must be >= 0, got {max_marginal}")
        self.k = int(k)
        self.smoothing = smoothing
        self.alpha = float(alpha)
        self.strand_symmetric = bool(strand_symmetric)
        self.max_marginal = int(max_marginal)
        self.discounts = np.zeros(0)
        self.n_positions = 0
        self._keys: list[np.ndarray] = []    # per order: sorted uint64 keys 4*ctx + centre
        self._counts: list[np.ndarray] = []  # per order: counts aligned with _keys
        self._dense: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ fitting

    @property
    def is_fitted(self) -> bool:
        return len(self._keys) == self.k + 1

    def fit(self, sequences: Iterable[np.ndarray]) -> KmerContextModel:
        """Count contexts in ``sequences`` (each a 1-D array of codes A=0 C=1 G=2 T=3 N=4).

        Codes 4 (N) and 5 (MASK) break windows; other values raise ``ValueError``.
        Replaces any previous counts. Returns ``self``.
        """
        K = self.k
        top: list[np.ndarray] = []
        extra: list[list[np.ndarray]] = [[] for _ in range(K)]
        n_positions = 0
        for i, seq in enumerate(sequences):
            x = as_codes(seq, f"sequence {i}")
            for start in range(0, x.size, _FIT_CHUNK):
                keys, order = window_keys(x, start, min(start + _FIT_CHUNK, x.size), K)
                n_positions += int(np.count_nonzero(order >= 0))
                clean = order == K
                top.append(with_rc(keys[clean], K, self.strand_symmetric))
                if not clean.all():  # windows cut short by N or a sequence end
                    for j in range(K):
                        sel = keys[order == j]
                        if sel.size:
                            extra[j].append(with_rc(truncate_keys(sel, K, j), j,
                                                     self.strand_symmetric))
        top_keys = concat(top)
        extra_keys = [concat(e) for e in extra]
        del top, extra

        top_keys.sort()
        keys, counts = runs(top_keys)
        del top_keys
        tables = [(keys, counts)]
        for j in range(K - 1, -1, -1):
            keys, counts = aggregate_down(keys, counts, _AGG_CHUNK)
            e_keys, e_counts = runs(np.sort(extra_keys[j]))
            keys, counts = merge_sorted(keys, counts, e_keys, e_counts)
            tables.append((keys, counts))
        tables.reverse()

        self._keys = [k_ for k_, _ in tables]
        self._counts = [compact_counts(c) for _, c in tables]
        self._dense = {}
        self.n_positions = n_positions
        self.discounts = np.array([ney_discount(c) for c in self._counts])
        return self

    def truncated(self, k: int) -> KmerContextModel:
        """The same model with largest order ``k`` (shares the count tables, no copy).

        Identical to fitting a fresh order-``k`` model on the same data: the tables and
        discounts of orders ``<= k`` do not depend on the largest order.
        """
        self._require_fitted()
        if not 0 <= k <= self.k:
            raise ValueError(f"k must be in 0..{self.k}, got {k}")
        out = KmerContextModel(k, self.smoothing, self.alpha, self.strand_symmetric,
                               self.max_marginal)
        out._keys = self._keys[:k + 1]
        out._counts = self._counts[:k + 1]
        out._dense = self._dense  # shared cache, keyed by order
        out.discounts = self.discounts[:k + 1].copy()
        out.n_positions = self.n_positions
        return out

    def context_counts(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        """Counts of order ``order``: ``(contexts, counts)``.

        Returns:
            contexts: sorted uint64 context codes ``ctx_j`` that occur, shape (n,).
            counts: int64 counts of the centre A, C, G, T after each context, shape (n, 4).
        """
        self._require_fitted()
        keys, cnt = self._keys[order], self._counts[order]
        ctx = keys >> U64(2)
        starts = run_starts(ctx)
        out = np.zeros((starts.size, 4), dtype=np.int64)
        group = np.repeat(np.arange(starts.size), np.diff(starts, append=ctx.size))
        out[group, (keys & U64(3)).astype(np.intp)] = cnt
        return ctx[starts], out

    # ------------------------------------------------------------------ prediction

    def predict_nucleotides(self, tokens: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of A, C, G, T at every position from the neighbours.

        Args:
            tokens: LongTensor (B, L) of codes A=0 C=1 G=2 T=3 N=4 MASK=5.

        Returns:
            FloatTensor (B, L, 4), natural-log probabilities, on ``tokens.device``.
        """
        t = torch.as_tensor(tokens)
        probs = self.predict_proba(t.detach().cpu().numpy())
        return torch.from_numpy(np.log(probs)).float().to(t.device)

    def predict_proba(self, tokens: np.ndarray) -> np.ndarray:
        """Probabilities of A, C, G, T, shape (B, L, 4) float64, for integer codes (B, L)."""
        tokens = self._check_tokens(tokens)
        B, L = tokens.shape
        out = np.empty((B, L, 4))
        rows = max(1, _PREDICT_CHUNK // max(L, 1))
        for r in range(0, B, rows):
            counts = self.order_counts(tokens[r:r + rows])
            out[r:r + rows] = self.combine(counts).reshape(-1, L, 4)
        return out

    def order_counts(self, tokens: np.ndarray) -> np.ndarray:
        """Context counts of every position at every order, before smoothing.

        Args:
            tokens: integer codes (B, L), 0..5.

        Returns:
            float64 (k + 1, B * L, 4): ``[j, q]`` holds the (marginalised) counts of the
            centre A, C, G, T after the order-``j`` context of flat position ``q``; all zero
            where that context was never seen or has too many unknown neighbours (then all
            higher orders are zero too). :meth:`combine` turns them into probabilities.
        """
        tokens = self._check_tokens(tokens)
        B, L = tokens.shape
        K, pad = self.k, self.k + 1
        width = L + 2 * pad
        padded = np.full((B, width), N, dtype=np.int64)
        padded[:, pad:pad + L] = tokens
        unknown = (padded >= 4).ravel()
        base = np.where(padded >= 4, 0, padded).astype(U64).ravel()

        out = np.zeros((K + 1, B * L, 4))
        active = np.arange(B * L)  # positions still extending, as flat indices
        centre = (active // L) * width + pad + active % L  # their flat index into `padded`
        ctx = np.zeros(B * L, dtype=U64)
        umask = np.zeros(B * L, dtype=U64)  # 0b11 in each 2-bit slot of ctx that is unknown
        n_unknown = np.zeros(B * L, dtype=np.int64)
        for j in range(K + 1):
            if j > 0:
                left, right = centre - j, centre + j
                ctx = (ctx << U64(4)) | (base[left] << U64(2)) | base[right]
                umask = ((umask << U64(4)) | (unknown[left].astype(U64) * U64(12))
                         | (unknown[right].astype(U64) * U64(3)))
                n_unknown = n_unknown + unknown[left] + unknown[right]
                keep = n_unknown <= self.max_marginal
                active, centre, ctx, umask, n_unknown = (
                    a[keep] for a in (active, centre, ctx, umask, n_unknown))
            if active.size == 0:
                break
            counts = self._marginal_counts(j, ctx, umask, n_unknown)
            seen = counts.sum(axis=1) > 0  # an unseen pattern stays unseen at higher orders
            active, centre, ctx, umask, n_unknown, counts = (
                a[seen] for a in (active, centre, ctx, umask, n_unknown, counts))
            out[j, active] = counts
        return out

    def combine(self, counts: np.ndarray, k: int | None = None,
                alpha: float | None = None) -> np.ndarray:
        """Probabilities (Q, 4) from :meth:`order_counts` output (>= k + 1, Q, 4).

        ``k`` (default ``self.k``) and ``alpha`` (default ``self.alpha``, Dirichlet smoothing
        only) can be overridden, which lets :func:`select_k` score many settings from one
        counting pass.
        """
        k = self.k if k is None else k
        if not 0 <= k <= min(self.k, counts.shape[0] - 1):
            raise ValueError(f"k={k} is beyond the model's order {self.k} or the counts given")
        alpha = self.alpha if alpha is None else alpha
        probs = np.full(counts.shape[1:], 0.25)
        for j in range(k + 1):
            c = counts[j]
            total = c.sum(axis=1)
            seen = np.flatnonzero(total > 0)
            if seen.size == 0:
                break
            c, total, lower = c[seen], total[seen, None], probs[seen]
            if self.smoothing == "dirichlet":
                probs[seen] = (c + alpha * lower) / (total + alpha)
            elif self.smoothing == "witten_bell":
                types = np.count_nonzero(c, axis=1)[:, None]
                probs[seen] = (c + types * lower) / (total + types)
            else:
                d = self.discounts[j]
                types = np.count_nonzero(c, axis=1)[:, None]
                probs[seen] = (np.maximum(c - d, 0.0) + d * types * lower) / total
        return probs

    def _check_tokens(self, tokens) -> np.ndarray:
        self._require_fitted()
        tokens = np.asarray(tokens)
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tokens.shape}")
        if tokens.size and (tokens.min() < 0 or tokens.max() > MASK):
            raise ValueError("tokens must be codes 0..5 (A C G T N MASK)")
        return tokens

    def _marginal_counts(self, j: int, ctx: np.ndarray, umask: np.ndarray,
                         n_unknown: np.ndarray) -> np.ndarray:
        """Counts (n, 4) float64 of order ``j`` summed over every filling of the unknown slots."""
        out = np.zeros((ctx.size, 4))
        for m in range(int(n_unknown.max(initial=0)) + 1):
            sel = np.flatnonzero(n_unknown == m)
            if sel.size == 0:
                continue
            fills, um = ctx[sel][:, None], umask[sel]
            for _ in range(m):
                low = um & (~um + U64(1))  # lowest bit of the lowest unknown slot
                values = low[:, None] * np.arange(4, dtype=U64)[None, :]
                fills = (fills[:, :, None] | values[:, None, :]).reshape(sel.size, -1)
                um = um & ~(low * U64(3))
            out[sel] = self._lookup(j, fills.ravel()).reshape(sel.size, -1, 4).sum(axis=1)
        return out

    def _lookup(self, j: int, ctx: np.ndarray) -> np.ndarray:
        """Counts (n, 4) float64 of order-``j`` contexts ``ctx`` (uint64, shape (n,))."""
        if j <= _DENSE_MAX_ORDER:
            return self._dense_table(j)[ctx.astype(np.intp)].astype(np.float64)
        keys, cnt = self._keys[j], self._counts[j]
        # Sorted, de-duplicated needles make searchsorted several times faster on big tables.
        uniq, inverse = np.unique(ctx, return_inverse=True)
        first = uniq << U64(2)
        lo = np.searchsorted(keys, first)
        out = np.zeros((uniq.size, 4))
        for o in range(4):
            idx = lo + o
            rows = np.flatnonzero(idx < keys.size)
            rows = rows[(keys[idx[rows]] >> U64(2)) == uniq[rows]]
            if rows.size == 0:
                break
            idx = idx[rows]
            out[rows, (keys[idx] & U64(3)).astype(np.intp)] = cnt[idx]
        return out[inverse.ravel()]

    def _dense_table(self, j: int) -> np.ndarray:
        table = self._dense.get(j)
        if table is None:
            flat = np.zeros(4 ** (2 * j + 1), dtype=self._counts[j].dtype)
            flat[self._keys[j].astype(np.intp)] = self._counts[j]
            table = self._dense[j] = flat.reshape(-1, 4)
        return table

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``counts.npz`` into folder ``path`` (atomically per file)."""
        self._require_fitted()
        config = {"k": self.k, "smoothing": self.smoothing, "alpha": self.alpha,
                  "strand_symmetric": self.strand_symmetric,
                  "max_marginal": self.max_marginal, "n_positions": self.n_positions,
                  "discounts": [float(d) for d in self.discounts]}
        return write_counts(path, config, self._keys, self._counts)

    @classmethod
    def load(cls, path: str | Path) -> KmerContextModel:
        """Read a folder written by :meth:`save`. Raises :class:`InputError` if it is not one."""
        cfg, cfg_path, tables = read_counts(path)
        try:
            model = cls(cfg["k"], cfg["smoothing"], cfg["alpha"], cfg["strand_symmetric"],
                        cfg["max_marginal"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"invalid config: {e}", path=cfg_path) from None
        model._keys, model._counts = tables(model.k)
        model.discounts = np.asarray(cfg["discounts"], dtype=np.float64)
        model.n_positions = int(cfg["n_positions"])
        return model

    def __repr__(self) -> str:
        state = f"{self.n_positions} positions" if self.is_fitted else "unfitted"
        return (f"KmerContextModel(k={self.k}, smoothing={self.smoothing!r}, alpha={self.alpha}, "
                f"strand_symmetric={self.strand_symmetric}, max_marginal={self.max_marginal}; "
                f"{state})")

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("KmerContextModel is not fitted: call fit() or load()")
