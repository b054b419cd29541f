"""Build any model from a ``--model`` spec (grammar in :mod:`dnatlas.models.spec`).

:func:`load_model` is the one way every command and pipeline reaches a model::

    from dnatlas.models import load_model
    model = load_model("default")                     # the bundled DNAtlas
    model = load_model("nt:/models/nt-v2-50m")        # Nucleotide Transformer v1 or v2
    model = load_model("hf:InstaDeepAI/nucleotide-transformer-v2-50m-multi-species")
    model = load_model("hyenadna:/models/hyena:random-init")

Each kind has a loader taking a folder (or None for the kind's default architecture) and a
``random`` flag; a random-init load reads only ``config.json``.
"""

from __future__ import annotations

from pathlib import Path

from dnatlas import bundled
from dnatlas.errors import InputError
from dnatlas.model_files import read_config
from dnatlas.models.protocol import ModelAdapter
from dnatlas.models.spec import DEFAULT, KINDS, ModelSpec, parse_model_spec


def default_model_path() -> Path:
    """Folder of the pretrained DNAtlas model shipped with the package."""
    return bundled.model_path()


def detect_kind(directory: Path) -> str:
    """The model kind of a folder, from its ``config.json`` (``model_type`` and shape)."""
    raw = read_config(directory)
    model_type = str(raw.get("model_type", "")).lower()
    if (directory / "counts.npz").is_file() or raw.get("format") == "dnatlas-kmer":
        return "kmer"
    if model_type == "dnatlas":
        return "dnatlas"
    if model_type in ("transformer_mlm", "dnatlas-transformer") or "transformer" in model_type:
        return "transformer"
    if model_type.startswith("hyena") or "layer" in raw and "d_model" in raw:
        return "hyenadna"
    if model_type in ("esm", "nucleotide_transformer") or raw.get("vocab_size") in (4105, 4107):
        return "nt"
    raise InputError(f"cannot tell what model this is (model_type {model_type or 'missing'!r}); "
                     f"name its kind: {', '.join(k + ':PATH' for k in KINDS)}",
                     path=directory / "config.json")


def _load_dnatlas(path: Path | None, target: str | None, random: bool, seed: int,
                  name: str) -> ModelAdapter:
    from dnatlas.architectures.dnatlas import PRESETS, DNAtlasConfig
    from dnatlas.models.dnatlas import DNAtlasAdapter

    if path is None and random and target in PRESETS:
        return DNAtlasAdapter.from_config(DNAtlasConfig.preset(target), seed, name)
    path = path or default_model_path()
    if random:
        return DNAtlasAdapter.from_config(DNAtlasConfig.from_folder(path), seed, name)
    return DNAtlasAdapter.from_pretrained(path, name=name)


def _load_hyenadna(path, target, random, seed, name) -> ModelAdapter:
    from dnatlas.models.hyenadna import HyenaDNAAdapter

    if path is None:
        _need_path("hyenadna", random)
        return HyenaDNAAdapter.from_config(seed=seed, name=name)
    if random:
        from dnatlas.architectures.hyenadna import HyenaConfig

        return HyenaDNAAdapter.from_config(HyenaConfig.from_dict(read_config(path)), seed, name)
    adapter = HyenaDNAAdapter.from_pretrained(path)
    adapter.name = name
    return adapter


def _load_nt(path, target, random, seed, name) -> ModelAdapter:
    from dnatlas.models.nucleotide_transformer import NucleotideTransformerAdapter

    if path is None:
        _need_path("nt", random)
        return NucleotideTransformerAdapter.from_config(seed=seed, name=name)
    if random:
        return NucleotideTransformerAdapter.from_config(path, seed=seed, name=name)
    adapter = NucleotideTransformerAdapter.from_pretrained(path)
    adapter.name = name
    return adapter


def _load_transformer(path, target, random, seed, name) -> ModelAdapter:
    from dnatlas.models.baselines import TransformerAdapter

    if path is None:
        raise InputError("transformer needs a saved baseline folder: transformer:PATH")
    return TransformerAdapter.load(path, random=random, seed=seed, name=name)


def _load_kmer(path, target, random, seed, name) -> ModelAdapter:
    from dnatlas.models.baselines import KmerAdapter

    if path is None or random:
        raise InputError("kmer needs a saved k-mer model folder (kmer:PATH), and has no "
                         "random initialisation")
    return KmerAdapter.load(path, name=name)


LOADERS = {"dnatlas": _load_dnatlas, "hyenadna": _load_hyenadna, "nt": _load_nt,
           "transformer": _load_transformer, "kmer": _load_kmer}


def _need_path(kind: str, random: bool) -> None:
    if not random:
        raise InputError(f"{kind} needs a local checkpoint folder ({kind}:PATH) or "
                         f"hf:REPO_ID, or {kind}:random-init for a default architecture")


def _resolve_folder(spec: ModelSpec) -> Path | None:
    """The local folder a spec points at (None: the kind's default architecture)."""
    if spec.hub:
        from dnatlas.models.hub import snapshot_folder

        return snapshot_folder(spec.target, config_only=spec.random_init)
    if spec.target in (None, DEFAULT):
        return None if spec.target is None else default_model_path()
    path = Path(spec.target).expanduser()
    if spec.kind == "dnatlas" and spec.random_init and not path.exists():
        from dnatlas.architectures.dnatlas import PRESETS

        if spec.target in PRESETS:
            return None
    if not path.exists():
        head = spec.target.partition(":")[0]
        if ":" in spec.target and not Path(head).exists():
            raise InputError(f"model {spec.text!r}: {head!r} is not a model kind "
                             f"({', '.join(KINDS)}, hf) and no such folder exists")
        raise InputError("no such model folder", path=path)
    return path


def load_model(spec: str | ModelSpec | None = None, device: str | None = None,
               seed: int = 0) -> ModelAdapter:
    """The model of a ``--model`` spec, wrapped in its :class:`ModelAdapter`.

    Args:
        spec: see :mod:`dnatlas.models.spec`; None is the bundled model.
        device: torch device to move it to (default: stays on the CPU).
        seed: seed of a random initialisation.
    """
    spec = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    path = _resolve_folder(spec)
    kind = spec.kind or ("dnatlas" if path is None else detect_kind(path))
    name = _model_name(spec, path, kind)
    adapter = LOADERS[kind](path, spec.target, spec.random_init, seed, name)
    if device is not None:
        from dnatlas.devices import resolve_device

        adapter.to(resolve_device(device))
    return adapter


def _model_name(spec: ModelSpec, path: Path | None, kind: str) -> str:
    """How outputs name the model: the spec, with the bundled model by its folder name."""
    if spec.target in (None, DEFAULT) and kind == "dnatlas":
        base = f"dnatlas:{bundled.DEFAULT_MODEL}" if spec.target == DEFAULT else "dnatlas"
        return base + (":random-init" if spec.random_init else "")
    return spec.text


def trainable_adapter(kind: str):
    """The adapter class of a model kind that ``dnatlas train`` trains; it provides
    ``build(preset, overrides)``, ``training_loss(module, seq, mask)`` and
    ``count_loss_terms(seq, mask)``."""
    if kind == "dnatlas":
        from dnatlas.models.dnatlas import DNAtlasAdapter

        return DNAtlasAdapter
    if kind == "transformer":
        from dnatlas.models.baselines import TransformerAdapter

        return TransformerAdapter
    raise InputError(f"model kind {kind!r} cannot be trained here; use dnatlas or transformer")


def as_adapter(model) -> ModelAdapter:
    """Wrap a bare model (DNAtlas, TransformerMLM, HyenaDNA, EsmForMaskedLM) in its
    adapter; an adapter is returned as it is. Lets Python users pass any model."""
    if isinstance(model, ModelAdapter):
        return model
    from dnatlas.architectures.dnatlas import DNAtlas

    if isinstance(model, DNAtlas):
        from dnatlas.models.dnatlas import DNAtlasAdapter

        return DNAtlasAdapter(model, name="dnatlas")
    from dnatlas.architectures.transformer import TransformerMLM

    if isinstance(model, TransformerMLM):
        from dnatlas.models.baselines import TransformerAdapter

        return TransformerAdapter(model, name="transformer")
    from dnatlas.architectures.hyenadna import HyenaDNA

    if isinstance(model, HyenaDNA):
        from dnatlas.models.hyenadna import HyenaDNAAdapter

        return HyenaDNAAdapter(model, name="hyenadna")
    raise TypeError(f"no model adapter for {type(model).__name__}; wrap it in a "
                    "dnatlas.models.ModelAdapter")
