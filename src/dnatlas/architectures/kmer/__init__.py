"""The bidirectional k-mer context model: the count-based baseline for masked-nucleotide
prediction, scored like DNAtlas.

It implements ``predict_nucleotides(tokens) -> log_probs``: tokens are a LongTensor (B, L)
of codes A=0 C=1 G=2 T=3 N=4 MASK=5 and the result a FloatTensor (B, L, 4) of natural-log
probabilities of A, C, G, T at every position. The evaluation scores the positions that were
masked and whose true base is not N (:func:`evaluate_masked`).

- :class:`KmerContextModel` (:mod:`.model`): counts of the centre base given ``k`` bases on
  each side, with interpolated backoff; context keys and count tables in :mod:`.counts`,
  its ``config.json`` + ``counts.npz`` folders in :mod:`.files`.
- :func:`select_k` (:mod:`.selection`) picks ``k`` (and the Dirichlet strength) on
  validation data; :func:`evaluate_masked` scores any ``predict_nucleotides`` model.
"""

from dnatlas.architectures.kmer.counts import context_code
from dnatlas.architectures.kmer.model import KmerContextModel
from dnatlas.architectures.kmer.selection import (
    KSelection,
    MaskedScore,
    evaluate_masked,
    masked_batches,
    masked_nucleotide_sums,
    select_k,
)

__all__ = ["KmerContextModel", "KSelection", "MaskedScore", "context_code", "evaluate_masked",
           "masked_batches", "masked_nucleotide_sums", "select_k"]
