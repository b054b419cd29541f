"""Activation analysis: extraction, Gram maps, offset-dependent similarity, cross-model
similarity and the neuron AUPRC catalog (report sections 4-5).

Modules (importing this package loads neither torch nor matplotlib):

- :mod:`~dnatlas.analysis.extract`: stream any model's activations over any-length
  sequences to memory or ``.npy`` files (windows planned from the model's context).
- :mod:`~dnatlas.analysis.activation_files`: activation folders on disk, keyed by what
  produced them.
- :mod:`~dnatlas.analysis.gram`: unit-normalised similarity (Gram) matrices, codon phases.
- :mod:`~dnatlas.analysis.offsets`: offset profile, 3-periodicity, Toeplitz score.
- :mod:`~dnatlas.analysis.similarity`: linear CKA and the report's Spearman measure.
- :mod:`~dnatlas.analysis.auprc`: vectorised average precision (all neurons x all tracks).
- :mod:`~dnatlas.analysis.neurons`: strand-aware scan of all neurons, top windows, PR curves.
- :mod:`~dnatlas.analysis.catalog`: the catalog tables, per layer and across layers.
- :mod:`~dnatlas.analysis.plots`, :mod:`~dnatlas.analysis.neuron_plots`: the figures
  (matplotlib, Agg; imported on demand).
- :mod:`~dnatlas.analysis.figures`: one-call recipes for the report's figures from a model.
"""

from dnatlas.analysis.activation_files import open_activations
from dnatlas.analysis.auprc import LabelIndex, average_precision, precision_recall_curve
from dnatlas.analysis.catalog import NeuronCatalog, layer_summary
from dnatlas.analysis.extract import extract_activations
from dnatlas.analysis.extract_folder import extract_to_dir
from dnatlas.analysis.gram import (
    gram_matrix,
    phase_positions,
    signed_parts,
    unit_normalize,
)
from dnatlas.analysis.neurons import GenomeLabels, scan_neurons
from dnatlas.analysis.offsets import (
    offset_profile,
    offset_profile_acts,
    period3_power,
    periodicity3,
    toeplitz_score,
)
from dnatlas.analysis.similarity import codon_pool, gram_spearman, linear_cka

__all__ = [
    "GenomeLabels", "LabelIndex", "NeuronCatalog", "average_precision", "codon_pool",
    "extract_activations", "extract_to_dir", "gram_matrix", "gram_spearman", "layer_summary",
    "linear_cka", "offset_profile", "offset_profile_acts", "open_activations",
    "period3_power", "periodicity3", "phase_positions", "precision_recall_curve",
    "scan_neurons", "signed_parts", "toeplitz_score", "unit_normalize",
]
