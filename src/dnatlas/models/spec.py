"""The ``--model`` specification, one grammar for every command::

    default                   the bundled DNAtlas model
    PATH                      a model folder; its kind is read from config.json
    dnatlas:PATH              a DNAtlas save_pretrained folder (PATH may be "default")
    hyenadna:PATH             a local copy of a HyenaDNA checkpoint folder
    nt:PATH                   a local copy of a Nucleotide Transformer (v1 or v2) folder
    transformer:PATH          the Transformer MLM baseline
    kmer:PATH                 a saved k-mer context model (.npz)
    hf:REPO_ID[@REVISION]     a Hugging Face Hub repository, through huggingface_hub's cache

Each may be followed by ``:random-init``: the same architecture, freshly initialised (paper
003's control); this needs only the folder's ``config.json``. ``KIND:random-init`` alone is
a default architecture of that kind, and ``dnatlas:PRESET:random-init`` a DNAtlas preset.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnatlas.errors import InputError

KINDS = ("dnatlas", "hyenadna", "nt", "transformer", "kmer")
HUB = "hf"
RANDOM = "random-init"
DEFAULT = "default"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` value.

    Attributes:
        kind: one of :data:`KINDS`, or None to detect it from the folder.
        target: a folder, ``"default"``, a preset name, a hub repo id, or None.
        hub: ``target`` is a Hugging Face repository id.
        random_init: re-initialise the weights.
        text: the spec as written (used to name the model in outputs).
    """

    kind: str | None
    target: str | None
    hub: bool = False
    random_init: bool = False
    text: str = ""


def parse_model_spec(spec: str | None) -> ModelSpec:
    """Parse a ``--model`` value (see module docstring); None means ``default``."""
    text = DEFAULT if spec is None else str(spec).strip()
    if not text:
        raise InputError("model is empty; give 'default', a folder, KIND:PATH or hf:REPO_ID",
                         setting="model")
    rest, random = text, False
    if rest == RANDOM:
        raise InputError(f"model {text!r}: say which model to re-initialise, e.g. "
                         f"default:{RANDOM} or nt:PATH:{RANDOM}")
    if rest.endswith(":" + RANDOM):
        rest, random = rest[: -len(RANDOM) - 1], True
    if random and rest in KINDS:  # KIND:random-init: the kind's default architecture
        return ModelSpec(rest, None, random_init=True, text=text)
    head, sep, tail = rest.partition(":")
    if sep and head == HUB:
        if not tail:
            raise InputError(f"model {text!r}: hf: needs a repository id, e.g. hf:org/name")
        return ModelSpec(None, tail, hub=True, random_init=random, text=text)
    if sep and head in KINDS:
        return ModelSpec(head, tail or None, random_init=random, text=text)
    if rest == DEFAULT:
        return ModelSpec("dnatlas", DEFAULT, random_init=random, text=text)
    return ModelSpec(None, rest, random_init=random, text=text)
