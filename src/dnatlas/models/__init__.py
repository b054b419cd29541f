"""The model layer: every DNA language model behind one protocol.

* :class:`ModelAdapter` (:mod:`.protocol`): activations at named sites, nucleotide
  predictions, spliced losses, receptive field, RC permutation, fingerprint;
  :class:`Trainable`: what ``dnatlas train`` needs of a kind.
* :func:`resolve_model` (:mod:`.registry`): the one way pipelines reach a model, from a
  ``--model`` spec, an adapter or a bare module.
* :func:`load_model`: any model from a ``--model`` spec (:mod:`.spec`): ``default``, a
  folder, ``dnatlas:``/``hyenadna:``/``nt:``/``transformer:``/``kmer:`` PATH,
  ``hf:REPO_ID``, each optionally ``:random-init``. :func:`as_adapter`: wrap a bare module.
* :data:`MODEL_KINDS`: one :class:`ModelKind` record per kind (detection, loading,
  adapter, bare module, trainable).
* Adapters: :mod:`.dnatlas`, :mod:`.hyenadna`, :mod:`.nucleotide_transformer`,
  :mod:`.baselines`; the architectures themselves are in :mod:`dnatlas.architectures`.
* :mod:`.hub`: ``hf:REPO_ID`` through huggingface_hub's cache; :mod:`.hf`:
  ``transformers`` AutoConfig/AutoModel classes for DNAtlas folders.

This package imports nothing from ``training``, ``analysis``, ``sae``, ``atlas``,
``pipelines``, ``cli`` or ``explorer``.
"""

from dnatlas.models.protocol import Intervention, ModelAdapter, Trainable
from dnatlas.models.registry import (
    MODEL_KINDS,
    ModelKind,
    as_adapter,
    default_model_path,
    detect_kind,
    load_model,
    resolve_model,
)
from dnatlas.models.spec import KINDS, ModelSpec, parse_model_spec

__all__ = ["Intervention", "KINDS", "MODEL_KINDS", "ModelAdapter", "ModelKind", "ModelSpec",
           "Trainable", "as_adapter", "default_model_path", "detect_kind", "load_model",
           "parse_model_spec", "resolve_model"]
