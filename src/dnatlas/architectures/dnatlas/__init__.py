"""The DNAtlas model: RCPS gated-convolution blocks, the thresholding + SoLU activation,
the windowed-MLM triplet head, and Markov-chain masking."""

from dnatlas.architectures.dnatlas.config import MASK_TOKEN, PRESETS, DNAtlasConfig
from dnatlas.architectures.dnatlas.masking import MarkovMasking
from dnatlas.architectures.dnatlas.modeling import SITES, DNAtlas, DNAtlasOutput
from dnatlas.architectures.dnatlas.rcps import rc_channels, triplet_rc_permutation
from dnatlas.architectures.dnatlas.windowed_mlm import (
    amino_acid_probs,
    codon_probs,
    consistency_bias,
    mask_tokens,
    nucleotide_log_probs,
    nucleotide_probs,
    windowed_mlm_loss,
)

__all__ = [
    "DNAtlas", "DNAtlasConfig", "DNAtlasOutput", "MarkovMasking", "MASK_TOKEN", "PRESETS",
    "SITES", "amino_acid_probs", "codon_probs", "consistency_bias", "mask_tokens",
    "nucleotide_log_probs", "nucleotide_probs", "rc_channels", "triplet_rc_permutation", "windowed_mlm_loss",
]
