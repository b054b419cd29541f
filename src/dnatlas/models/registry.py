"""Build any model from a ``--model`` spec (grammar in :mod:`dnatlas.models.spec`).

:func:`load_model` is the one way every command and pipeline reaches a model::

    from dnatlas.models import load_model
    model = load_model("default")                     # the bundled DNAtlas
    model = load_model("nt:/models/nt-v2-50m")        # Nucleotide Transformer v1 or v2
    model = load_model("hf:InstaDeepAI/nucleotide-transformer-v2-50m-multi-species")
    model = load_model("hyenadna:/models/hyena:random-init")

Each model kind is one :class:`ModelKind` record in :data:`MODEL_KINDS`: how a folder of
that kind is recognised, how it loads (a folder, or None for the kind's default
architecture, and a ``random`` flag: a random-init load reads only ``config.json``), its
adapter class, the bare module class :func:`as_adapter` wraps, and whether ``dnatlas
train`` trains it. Adding a kind is adding a record (and its name to
:data:`dnatlas.models.spec.KINDS`).

:func:`resolve_model` turns whatever a pipeline was given (a spec, an adapter, a bare
module) into an adapter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from dnatlas import bundled
from dnatlas.errors import InputError
from dnatlas.model_files import read_config
from dnatlas.models.protocol import ModelAdapter, Trainable
from dnatlas.models.spec import DEFAULT, KINDS, ModelSpec, parse_model_spec


def default_model_path() -> Path:
    """Folder of the pretrained DNAtlas model shipped with the package."""
    return bundled.model_path()


@dataclass(frozen=True)
class ModelKind:
    """Everything the model layer knows about one kind of model.

    Attributes:
        name: the kind's name in ``--model`` specs (``KIND:PATH``) and ``adapter.kind``.
        detects: ``(folder, config)`` -> whether a folder with this parsed ``config.json``
            holds a model of this kind (asked in :data:`MODEL_KINDS` order).
        load: ``(folder or None, target, random, seed, name)`` -> the adapter.
        adapter: the adapter class (imported when called).
        architecture: the bare module class that :func:`as_adapter` wraps (imported when
            called), or None.
        trainable: ``dnatlas train`` trains it; the adapter class then implements
            :class:`~dnatlas.models.protocol.Trainable`.
        presets: named default architectures (``KIND:PRESET:random-init``), imported when
            called.
    """

    name: str
    detects: Callable[[Path, dict], bool]
    load: Callable[[Path | None, str | None, bool, int, str], ModelAdapter]
    adapter: Callable[[], type[ModelAdapter]]
    architecture: Callable[[], type] | None = None
    trainable: bool = False
    presets: Callable[[], Collection[str]] | None = None

    def wrap(self, module, name: str | None = None) -> ModelAdapter:
        """The adapter of a bare module of this kind."""
        return self.adapter()(module, name=name or self.name)


# ---------------------------------------------------------------------------- dnatlas
def _dnatlas_adapter():
    from dnatlas.models.dnatlas import DNAtlasAdapter

    return DNAtlasAdapter


def _dnatlas_module():
    from dnatlas.architectures.dnatlas import DNAtlas

    return DNAtlas


def _dnatlas_presets():
    from dnatlas.architectures.dnatlas import PRESETS

    return PRESETS


def _load_dnatlas(path: Path | None, target: str | None, random: bool, seed: int,
                  name: str) -> ModelAdapter:
    from dnatlas.architectures.dnatlas import PRESETS, DNAtlasConfig

    adapter = _dnatlas_adapter()
    if path is None and random and target in PRESETS:
        return adapter.from_config(DNAtlasConfig.preset(target), seed, name)
    path = path or default_model_path()
    if random:
        return adapter.from_config(DNAtlasConfig.from_folder(path), seed, name)
    return adapter.from_pretrained(path, name=name)


# ---------------------------------------------------------------------------- hyenadna
def _hyenadna_adapter():
    from dnatlas.models.hyenadna import HyenaDNAAdapter

    return HyenaDNAAdapter


def _hyenadna_module():
    from dnatlas.architectures.hyenadna import HyenaDNA

    return HyenaDNA


# ---------------------------------------------------------------------------- nt
def _nt_adapter():
    from dnatlas.models.nucleotide_transformer import NucleotideTransformerAdapter

    return NucleotideTransformerAdapter


# ---------------------------------------------------------------------------- transformer
def _transformer_adapter():
    from dnatlas.models.baselines import TransformerAdapter

    return TransformerAdapter


def _transformer_module():
    from dnatlas.architectures.transformer import TransformerMLM

    return TransformerMLM


def _load_transformer(path, target, random, seed, name) -> ModelAdapter:
    if path is None:
        raise InputError("transformer needs a saved baseline folder: transformer:PATH")
    return _transformer_adapter().load(path, random=random, seed=seed, name=name)


# ---------------------------------------------------------------------------- checkpoints
def _load_checkpoint(kind: str):
    """The loader of a kind read from a published checkpoint folder (HyenaDNA, NT): its
    weights, a random init from its ``config.json``, or (no folder) the kind's default
    architecture, random only."""

    def load(path, target, random, seed, name) -> ModelAdapter:
        adapter = MODEL_KINDS[kind].adapter()
        if path is None:
            _need_path(kind, random)
            return adapter.from_config(seed=seed, name=name)
        if random:
            return adapter.from_config(path, seed=seed, name=name)
        loaded = adapter.from_pretrained(path)
        loaded.name = name
        return loaded

    return load


# ---------------------------------------------------------------------------- kmer
def _kmer_adapter():
    from dnatlas.models.baselines import KmerAdapter

    return KmerAdapter


def _load_kmer(path, target, random, seed, name) -> ModelAdapter:
    if path is None or random:
        raise InputError("kmer needs a saved k-mer model folder (kmer:PATH), and has no "
                         "random initialisation")
    return _kmer_adapter().load(path, name=name)


def _model_type(raw: dict) -> str:
    return str(raw.get("model_type", "")).lower()


#: every model kind, in the order folders are matched against them
MODEL_KINDS: dict[str, ModelKind] = {k.name: k for k in (
    ModelKind("kmer",
              detects=lambda d, raw: (d / "counts.npz").is_file()
              or raw.get("format") == "dnatlas-kmer",
              load=_load_kmer, adapter=_kmer_adapter),
    ModelKind("dnatlas", detects=lambda d, raw: _model_type(raw) == "dnatlas",
              load=_load_dnatlas, adapter=_dnatlas_adapter, architecture=_dnatlas_module,
              trainable=True, presets=_dnatlas_presets),
    ModelKind("transformer",
              detects=lambda d, raw: _model_type(raw) in ("transformer_mlm", "dnatlas-transformer")
              or "transformer" in _model_type(raw),
              load=_load_transformer, adapter=_transformer_adapter,
              architecture=_transformer_module, trainable=True),
    ModelKind("hyenadna",
              detects=lambda d, raw: _model_type(raw).startswith("hyena")
              or "layer" in raw and "d_model" in raw,
              load=_load_checkpoint("hyenadna"), adapter=_hyenadna_adapter,
              architecture=_hyenadna_module),
    ModelKind("nt",
              detects=lambda d, raw: _model_type(raw) in ("esm", "nucleotide_transformer")
              or raw.get("vocab_size") in (4105, 4107),
              load=_load_checkpoint("nt"), adapter=_nt_adapter),
)}
assert set(MODEL_KINDS) == set(KINDS), "every kind of the --model grammar has a record"


def detect_kind(directory: Path) -> str:
    """The model kind of a folder, from its ``config.json`` (``model_type`` and shape)."""
    raw = read_config(directory)
    for kind in MODEL_KINDS.values():
        if kind.detects(directory, raw):
            return kind.name
    model_type = _model_type(raw)
    raise InputError(f"cannot tell what model this is (model_type {model_type or 'missing'!r}); "
                     f"name its kind: {', '.join(k + ':PATH' for k in KINDS)}",
                     path=directory / "config.json")


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
    kind = MODEL_KINDS.get(spec.kind or "")
    if kind and kind.presets and spec.random_init and not path.exists():
        if spec.target in kind.presets():
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
    adapter = MODEL_KINDS[kind].load(path, spec.target, spec.random_init, seed, name)
    if device is not None:
        _to_device(adapter, device)
    return adapter


def _to_device(adapter: ModelAdapter, device: str) -> None:
    from dnatlas.devices import resolve_device

    adapter.to(resolve_device(device))


def _model_name(spec: ModelSpec, path: Path | None, kind: str) -> str:
    """How outputs name the model: the spec, with the bundled model by its folder name."""
    if spec.target in (None, DEFAULT) and kind == "dnatlas":
        base = f"dnatlas:{bundled.DEFAULT_MODEL}" if spec.target == DEFAULT else "dnatlas"
        return base + (":random-init" if spec.random_init else "")
    return spec.text


def trainable_adapter(kind: str) -> type[Trainable]:
    """The adapter class of a model kind that ``dnatlas train`` trains; it implements
    :class:`~dnatlas.models.protocol.Trainable` (``build``, ``training_loss``,
    ``count_loss_terms``)."""
    record = MODEL_KINDS.get(kind)
    if record is None or not record.trainable:
        names = " or ".join(k.name for k in MODEL_KINDS.values() if k.trainable)
        raise InputError(f"model kind {kind!r} cannot be trained here; use {names}")
    return record.adapter()


def as_adapter(model) -> ModelAdapter:
    """Wrap a bare model (DNAtlas, TransformerMLM, HyenaDNA) in its adapter; an adapter is
    returned as it is. Lets Python users pass any model."""
    if isinstance(model, ModelAdapter):
        return model
    for kind in MODEL_KINDS.values():
        if kind.architecture is not None and isinstance(model, kind.architecture()):
            return kind.wrap(model)
    raise TypeError(f"no model adapter for {type(model).__name__}; wrap it in a "
                    "dnatlas.models.ModelAdapter")


def resolve_model(model: str | os.PathLike | ModelSpec | ModelAdapter | None = None,
                  device: str | None = None, seed: int = 0) -> ModelAdapter:
    """The adapter of what a pipeline was given, the one way pipelines reach a model.

    Args:
        model: a ``--model`` spec (a string, a path, a :class:`ModelSpec`; None is the
            bundled model), loaded by :func:`load_model`; a :class:`ModelAdapter`,
            returned as it is; or a bare module (DNAtlas, TransformerMLM, HyenaDNA),
            wrapped by :func:`as_adapter`.
        device: where a loaded or wrapped model goes (an adapter stays where it is).
        seed: seed of a random initialisation (specs only).
    """
    if isinstance(model, ModelAdapter):
        return model
    if model is None or isinstance(model, (str, os.PathLike, ModelSpec)):
        return load_model(model if model is None or isinstance(model, ModelSpec)
                          else str(model), device, seed=seed)
    adapter = as_adapter(model)
    if device is not None:
        _to_device(adapter, device)
    return adapter
