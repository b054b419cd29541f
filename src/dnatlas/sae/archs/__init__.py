"""One module per SAE architecture (the names are listed in :mod:`dnatlas.sae.registry`).

Each module defines its config (an :class:`~dnatlas.sae.config.SAEConfig` dataclass), its
:class:`~dnatlas.sae.autoencoder.SparseAutoencoder` subclass, and names the latter
``ARCHITECTURE``.
"""
