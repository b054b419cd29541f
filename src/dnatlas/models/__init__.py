"""The model layer: every DNA language model behind one protocol.

* :class:`ModelAdapter` (:mod:`.protocol`): activations at named sites, nucleotide
  predictions, spliced losses, receptive field, RC permutation, fingerprint.
* :func:`load_model` (:mod:`.registry`): any model from a ``--model`` spec
  (:mod:`.spec`): ``default``, a folder, ``dnatlas:``/``hyenadna:``/``nt:``/
  ``transformer:``/``kmer:`` PATH, ``hf:REPO_ID``, each optionally ``:random-init``.
* :func:`as_adapter`: wrap a bare model object.
* Adapters: :mod:`.dnatlas`, :mod:`.hyenadna`, :mod:`.nucleotide_transformer`,
  :mod:`.baselines`; third-party architectures in :mod:`.arch`.
* :mod:`.hf`: ``transformers`` AutoConfig/AutoModel classes for DNAtlas folders.

This package imports nothing from ``analysis``, ``sae``, ``training`` or ``pipelines``.
"""

from dnatlas.models.protocol import Intervention, ModelAdapter
from dnatlas.models.registry import as_adapter, default_model_path, detect_kind, load_model
from dnatlas.models.spec import KINDS, ModelSpec, parse_model_spec

__all__ = ["Intervention", "KINDS", "ModelAdapter", "ModelSpec", "as_adapter",
           "default_model_path", "detect_kind", "load_model", "parse_model_spec"]
