"""Baselines for masked-nucleotide prediction, scored like DNAtlas.

Every baseline implements ``predict_nucleotides(tokens) -> log_probs``: tokens are a
LongTensor (B, L) of codes A=0 C=1 G=2 T=3 N=4 MASK=5 and the result a FloatTensor (B, L, 4)
of natural-log probabilities of A, C, G, T at every position. The evaluation scores the
positions that were masked and whose true base is not N (:func:`evaluate_masked`).

- :class:`KmerContextModel` (:mod:`.kmer`): counts of the centre base given ``k`` bases on
  each side, with interpolated backoff; :func:`select_k` (:mod:`.kmer_selection`) picks
  ``k`` on validation data.
- :class:`TransformerMLM` (:mod:`.transformer`): a bidirectional Transformer encoder on single
  nucleotides (RoPE, QK-norm, RMSNorm, ReLU^2/SwiGLU), sized to match DNAtlas presets.

Both plug into :func:`dnatlas.training.evaluate.evaluate` through ``predict_nucleotides``.
"""

from dnatlas.baselines.kmer import KmerContextModel, context_code
from dnatlas.baselines.kmer_selection import (
    KSelection,
    MaskedScore,
    evaluate_masked,
    masked_batches,
    masked_nucleotide_sums,
    select_k,
)
from dnatlas.baselines.transformer import (
    TransformerConfig,
    TransformerMLM,
    dnatlas_param_estimate,
    dnatlas_preset_params,
)

__all__ = [
    "KmerContextModel", "KSelection", "MaskedScore", "context_code", "evaluate_masked",
    "masked_batches", "masked_nucleotide_sums", "select_k",
    "TransformerConfig", "TransformerMLM", "dnatlas_param_estimate", "dnatlas_preset_params",
]
