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

import importlib

#: public name -> the module that defines it; loaded on first use, so that importing
#: :mod:`dnatlas.sae.registry` (the architecture names, for the command line) needs no torch
_WHERE = {
    **dict.fromkeys(("ActivationStore", "CachedActivations", "ShuffleBuffer",
                     "cache_activations", "window_rows"), "activation_store"),
    "BatchTopKSAE": "archs.batchtopk", "JumpReLUSAE": "archs.jumprelu",
    "ReLUSAE": "archs.relu", "TopKSAE": "archs.topk",
    "SparseAutoencoder": "autoencoder", "SAEConfig": "config",
    **dict.fromkeys(("evaluate_reconstruction", "loss_recovered"), "metrics"),
    **dict.fromkeys(("ARCHITECTURES", "architecture", "build_sae", "config_from_record",
                     "make_config", "saved_record"), "registry"),
    **dict.fromkeys(("load_sae", "save_sae"), "saelens_format"),
    **dict.fromkeys(("PRESETS", "SAESpec", "SAETrainer", "SAETrainingConfig", "preset",
                     "train_saes"), "trainer"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'dnatlas.sae' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dnatlas.sae.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
