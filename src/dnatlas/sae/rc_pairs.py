"""Reverse-complement partners of SAE features: :mod:`dnatlas.concepts.rc_pairs` (pure
numpy, importable without torch, so that the atlas reads it too), re-exported here."""

from dnatlas.concepts.rc_pairs import RCPairs, rc_pairs

__all__ = ["RCPairs", "rc_pairs"]
