"""Sparse autoencoders on DNA language model activations.

Modules:

* :mod:`~dnatlas.sae.registry`: the architectures by name (ReLU+L1, TopK, BatchTopK and
  JumpReLU, one module each in :mod:`~dnatlas.sae.archs` with its own config), sharing
  :class:`SparseAutoencoder` (:mod:`~dnatlas.sae.autoencoder`: ``encode``, ``decode``,
  ``forward``, ``loss``) and :class:`SAEConfig` (:mod:`~dnatlas.sae.config`).
* :mod:`~dnatlas.sae.hyperparameters`: a named preset merged with a user's settings.
* :mod:`~dnatlas.sae.trainer` (settings in :mod:`~dnatlas.sae.training_config`):
  :class:`SAETrainer` trains many SAEs (layers x hyperparameters) from one pass over
  activation batches; resumable checkpoints that include the activation stream's state.
* :mod:`~dnatlas.sae.saelens_format`: :func:`save_sae` / :func:`load_sae` SAELens folders.
* :mod:`~dnatlas.sae.activation_store` (+ :mod:`~dnatlas.sae.shuffle_buffer`): streaming
  store through a bounded, checkpointable shuffle buffer; disk cache.
* :mod:`~dnatlas.sae.metrics`: L0, FVU, dead/dense features, loss recovered.

Models are reached through :mod:`dnatlas.models` (any model, one protocol).

Quick start::

    from dnatlas.sae import SAESpec, SAETrainingConfig, SAETrainer, ActivationStore, make_config
    from dnatlas.models import load_model

    adapter = load_model("hyenadna:/models/hyenadna-small-32k-seqlen-hf")
    key = adapter.key(2)                                   # "blocks.2.residual"
    store = ActivationStore(adapter, windows, [key], batch_size=4096)
    spec = SAESpec(None, key, make_config("topk", adapter.d(key), expansion=16, k=32))
    SAETrainer([spec], SAETrainingConfig(steps=20_000), "out/sae").fit(store)
"""

from dnatlas.sae.activation_store import (
    ActivationStore,
    CachedActivations,
    ShuffleBuffer,
    cache_activations,
    window_rows,
)
from dnatlas.sae.archs.batchtopk import BatchTopKSAE
from dnatlas.sae.archs.jumprelu import JumpReLUSAE
from dnatlas.sae.archs.relu import ReLUSAE
from dnatlas.sae.archs.topk import TopKSAE
from dnatlas.sae.autoencoder import SparseAutoencoder
from dnatlas.sae.config import SAEConfig
from dnatlas.sae.metrics import evaluate_reconstruction, loss_recovered
from dnatlas.sae.registry import (
    ARCHITECTURES,
    architecture,
    build_sae,
    config_from_record,
    make_config,
    saved_record,
)
from dnatlas.sae.saelens_format import load_sae, save_sae
from dnatlas.sae.trainer import PRESETS, SAESpec, SAETrainer, SAETrainingConfig, preset, train_saes

__all__ = [
    "ARCHITECTURES", "ActivationStore", "BatchTopKSAE", "CachedActivations", "JumpReLUSAE",
    "PRESETS", "ReLUSAE", "SAEConfig", "SAESpec", "SAETrainer", "ShuffleBuffer",
    "SparseAutoencoder", "TopKSAE", "SAETrainingConfig", "architecture", "build_sae",
    "cache_activations", "config_from_record", "make_config", "saved_record",
    "evaluate_reconstruction", "load_sae", "loss_recovered", "preset",
    "save_sae", "train_saes", "window_rows",
]
