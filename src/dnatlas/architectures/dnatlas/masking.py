"""Markov-chain masking (report Appendix A.2, FAQ).

Per sequence, a two-state Markov chain marks nucleotides *eligible* or *ineligible*:
- in expectation a fraction ``eligible_fraction`` (0.7) of nucleotides is eligible;
- the expected length of an ineligible run, mu, is drawn log-uniformly in
  ``run_length_range`` ([1, 1024]) per sequence, so the model sees unmasked stretches
  at many length scales;
- each eligible nucleotide is masked with probability ``mask_rate / eligible_fraction``
  (0.15 / 0.7), so 15% of nucleotides are masked in expectation.

Runs are geometric: an ineligible run ends with probability 1/mu per step, an eligible
run with probability (1 - f)/(f mu), which makes f the stationary eligible fraction; the
chain starts from its stationary distribution. Every draw comes from a numpy Generator
seeded by the caller, so masks are reproducible (pass one seed per window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MarkovMasking:
    eligible_fraction: float = 0.7
    mask_rate: float = 0.15
    run_length_range: tuple[float, float] = (1.0, 1024.0)

    def __post_init__(self) -> None:
        lo, hi = self.run_length_range
        if not (0 < self.mask_rate <= self.eligible_fraction < 1):
            raise ValueError("need 0 < mask_rate <= eligible_fraction < 1")
        if not (1 <= lo <= hi):
            raise ValueError("run_length_range must satisfy 1 <= low <= high")

    @property
    def mask_probability(self) -> float:
        """Probability that an eligible nucleotide is masked (0.15 / 0.7 ~ 0.2143)."""
        return self.mask_rate / self.eligible_fraction

    def draw_run_mean(self, rng: np.random.Generator) -> float:
        """Expected ineligible run length of one sequence, log-uniform in run_length_range."""
        lo, hi = self.run_length_range
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    def eligible(self, length: int, rng: np.random.Generator,
                 mean_ineligible_run: float | None = None) -> np.ndarray:
        """Eligibility of one sequence: bool (length,).

        ``mean_ineligible_run`` fixes mu instead of drawing it (for tests and analyses).
        """
        mu_inel = self.draw_run_mean(rng) if mean_ineligible_run is None else mean_ineligible_run
        f = self.eligible_fraction
        mu_el = mu_inel * f / (1 - f)
        first = bool(rng.random() < f)  # stationary start; runs are memoryless
        pair = np.array([mu_el, mu_inel] if first else [mu_inel, mu_el])
        runs, total = [], 0
        while total < length:  # draw alternating runs in pairs until they cover the sequence
            n_pairs = int((length - total) / pair.sum()) + 2
            batch = rng.geometric(1.0 / np.tile(pair, n_pairs))
            runs.append(batch)
            total += int(batch.sum())
        runs = np.concatenate(runs)
        values = (np.arange(runs.size) % 2 == 0) == first
        return np.repeat(values, runs)[:length]

    def mask(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """Mask of one sequence: bool (length,), True = replaced by MASK."""
        return self.eligible(length, rng) & (rng.random(length) < self.mask_probability)

    def mask_batch(self, length: int, seeds) -> np.ndarray:
        """Masks (len(seeds), length) bool; row i uses ``np.random.default_rng(seeds[i])``.

        Seeds can be ints or sequences of ints (e.g. ``(seed, global_window_index)``), so
        the mask of a window does not depend on which process or batch drew it.
        """
        return np.stack([self.mask(length, np.random.default_rng(s)) for s in seeds])
