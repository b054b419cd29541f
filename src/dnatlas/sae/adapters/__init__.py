"""Model adapters: per-nucleotide activations and spliced losses for DNAtlas, HyenaDNA and
the Nucleotide Transformer (see :mod:`dnatlas.sae.adapters.base` for the interface).

:func:`load_adapter` parses the CLI's model specifications::

    dnatlas:default            the bundled DNAtlas model
    dnatlas:PATH               a DNAtlas save_pretrained folder
    hyenadna:PATH              a local copy of a LongSafari/hyenadna-*-hf checkpoint folder
    nt:PATH                    a local EsmForMaskedLM folder with NT's 6-mer vocabulary
    KIND:PATH:random-init      same architecture as PATH, freshly initialised (paper 003's control)
    KIND:random-init           a default architecture, freshly initialised: DNAtlas "tiny"
                               preset (or the default model's config when bundled),
                               HyenaDNA-small-32k's shape, a tiny NT-vocabulary ESM
    dnatlas:PRESET:random-init a DNAtlas preset (tiny, small, thin, wide), freshly initialised
"""

from __future__ import annotations

from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.sae.adapters.base import ActivationAdapter, Intervention

__all__ = ["ActivationAdapter", "Intervention", "load_adapter", "KINDS"]

KINDS = ("dnatlas", "hyenadna", "nt")
RANDOM = "random-init"


def parse_model_spec(spec: str) -> tuple[str, str | None, bool]:
    """``"hyenadna:/x:random-init"`` -> ("hyenadna", "/x", True)."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        raise InputError(f"model {spec!r} must be KIND:PATH with KIND one of {', '.join(KINDS)}")
    random = False
    if rest == RANDOM:
        return kind, None, True
    if rest.endswith(":" + RANDOM):
        rest, random = rest[: -len(RANDOM) - 1], True
    return kind, rest or None, random


def _checkpoint_adapter_class(kind: str):
    """The adapter class of a Hugging Face checkpoint kind (imported lazily)."""
    if kind == "hyenadna":
        from dnatlas.sae.adapters.hyenadna import HyenaDNAAdapter

        return HyenaDNAAdapter
    from dnatlas.sae.adapters.nucleotide_transformer import NucleotideTransformerAdapter

    return NucleotideTransformerAdapter


def load_adapter(spec: str, device: str = "cpu", seed: int = 0) -> ActivationAdapter:
    """The adapter of a model specification (see module docstring), on ``device``."""
    kind, target, random = parse_model_spec(spec)
    if kind == "dnatlas":
        from dnatlas.sae.adapters.dnatlas import DNAtlasAdapter, default_model_dir

        if random and target is None:
            default = default_model_dir()
            adapter = (DNAtlasAdapter.from_pretrained(default).random_init(seed)
                       if (default / "config.json").is_file() else DNAtlasAdapter.from_preset("tiny", seed))
        elif random and not Path(target).exists() and target != "default":
            try:
                adapter = DNAtlasAdapter.from_preset(target, seed)
            except ValueError:
                raise InputError(f"{target!r} is neither a model folder nor a DNAtlas preset") from None
        else:
            adapter = DNAtlasAdapter.from_pretrained(target or "default")
            if random:
                adapter = adapter.random_init(seed)
    else:
        adapter_class = _checkpoint_adapter_class(kind)
        if target is None:
            if not random:
                raise InputError(f"{kind} needs a local checkpoint folder: {kind}:PATH")
            adapter = adapter_class.from_config(seed=seed, name=f"{kind}:random-init")
        else:
            adapter = adapter_class.from_pretrained(target)
            if random:
                adapter = adapter.random_init(seed)
    return adapter.to(device)
