"""DNAtlas configuration and presets (report Appendix B, Table 1)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from dnatlas.genome.alphabet import MASK

#: Input vocabulary: the nucleotide codes of :mod:`dnatlas.genome.alphabet` plus MASK.
VOCAB = ("A", "C", "G", "T", "N", "MASK")
MASK_TOKEN = MASK  # one home: dnatlas.genome.alphabet
N_TRIPLETS = 64


@dataclass
class DNAtlasConfig:
    """Hyperparameters of a DNAtlas model.

    Attributes:
        d_model: width of the residual stream (even when ``rcps``).
        n_neurons: neurons per block (the expansion; ``expansion = n_neurons / d_model``).
        n_layers: number of blocks.
        kernel_size: taps of the dense dilated convolution (odd).
        dilations: dilation schedule, repeated cyclically over the blocks.
        rcps: reverse-complement parameter sharing (report section 2.1.1); False gives
            the unshared model for ablations.
        gate_activation: the "performance-optional" nonlinearity f on the pointwise
            branch: ``"identity"`` (a bilinear gate) or ``"silu"``.
        leaky_slope: alpha of the LeakyReLU in equation (1).
        threshold_init: initial per-neuron threshold b (> 0).
        sharpness_init: initial per-neuron sigmoid strength a (> 1).
        norm_eps: epsilon of the RMSNorms and of the SoLU normalisation.
    """

    d_model: int = 512
    n_neurons: int = 3072
    n_layers: int = 12
    kernel_size: int = 9
    dilations: tuple[int, ...] = (1, 4, 16, 64, 128)
    rcps: bool = True
    gate_activation: str = "silu"
    leaky_slope: float = 0.01
    threshold_init: float = 0.5
    sharpness_init: float = 4.0
    norm_eps: float = 1e-6
    vocab_size: int = len(VOCAB)
    n_outputs: int = N_TRIPLETS
    model_type: str = field(default="dnatlas", repr=False)

    def __post_init__(self) -> None:
        for name in ("d_model", "n_neurons", "n_layers", "kernel_size", "vocab_size",
                     "n_outputs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.dilations, (str, bytes)) or not self.dilations:
            raise ValueError(f"dilations must be a non-empty list of positive integers, "
                             f"got {self.dilations!r}")
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be positive integers, got {list(self.dilations)}")
        self.dilations = tuple(int(d) for d in self.dilations)
        for name in ("leaky_slope", "threshold_init", "sharpness_init", "norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{name} must be a number, got {value!r}")
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be positive, got {self.norm_eps}")
        if not isinstance(self.rcps, bool):
            raise ValueError(f"rcps must be true or false, got {self.rcps!r}")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.rcps and (self.d_model % 2 or self.n_neurons % 2):
            raise ValueError("with rcps, d_model and n_neurons must be even (channels come in pairs)")
        if self.gate_activation not in ("identity", "silu"):
            raise ValueError(f"gate_activation must be 'identity' or 'silu', got {self.gate_activation!r}")
        if not (self.threshold_init > 0 and self.sharpness_init > 1):
            raise ValueError("need threshold_init > 0 and sharpness_init > 1")

    # ------------------------------------------------------------------ derived
    def dilation(self, layer: int) -> int:
        """Dilation of block ``layer`` (0-based)."""
        return self.dilations[layer % len(self.dilations)]

    @property
    def receptive_field(self) -> int:
        """One-sided context radius R in nucleotides: output i depends on inputs i-R..i+R.

        Each block adds ``dilation * (kernel_size - 1) / 2``; the triplet head adds nothing
        (it reads one position).
        """
        half = (self.kernel_size - 1) // 2
        return sum(self.dilation(i) * half for i in range(self.n_layers))

    def flops_per_nucleotide(self) -> int:
        """Forward multiply-add FLOPs per nucleotide (2 per MAC), matmuls and convs only."""
        d, n, k = self.d_model, self.n_neurons, self.kernel_size
        per_block = 2 * d * n * k + 2 * d * n + 2 * n * d
        return self.n_layers * per_block + 2 * d * self.n_outputs

    # ------------------------------------------------------------------ presets / io
    @classmethod
    def preset(cls, name: str, **overrides) -> DNAtlasConfig:
        """A named preset: ``wide`` and ``thin`` (the report), ``small`` and ``tiny`` (CPU)."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
        known = {f.name for f in dataclasses.fields(cls)} - {"model_type"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown model setting(s) {', '.join(unknown)}; valid keys: "
                             f"{', '.join(sorted(known))}")
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["dilations"] = list(self.dilations)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> DNAtlasConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known - {"architectures", "transformers_version", "dnatlas_version"}
        if unknown:
            raise ValueError(f"unknown DNAtlasConfig keys: {sorted(unknown)}; valid keys: "
                             f"{', '.join(sorted(known - {'model_type'}))}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically."""
        from dnatlas.files import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DNAtlasConfig:
        """The config in the JSON file ``path`` (one-line errors)."""
        from dnatlas.model_files import read_config_file

        return cls._checked(read_config_file(path), Path(path))

    @classmethod
    def from_folder(cls, directory: str | Path) -> DNAtlasConfig:
        """The config of a model folder's ``config.json`` (one-line errors)."""
        from dnatlas.model_files import read_config

        return cls._checked(read_config(directory), Path(directory) / "config.json")

    @classmethod
    def _checked(cls, raw: dict, path: Path) -> DNAtlasConfig:
        from dnatlas.errors import InputError

        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError) as exc:
            raise InputError(f"not a valid DNAtlas config: {exc}", path=path) from None


PRESETS: dict[str, dict] = {
    # The report's DNAtlas-Wide (Table 1): d=512, 12 layers, expansion 6.
    "wide": dict(d_model=512, n_neurons=3072, n_layers=12),
    # DNAtlas-Thin: same but 1024 neurons.
    "thin": dict(d_model=512, n_neurons=1024, n_layers=12),
    # Trains usefully on 2 CPU cores in about an hour.
    "small": dict(d_model=128, n_neurons=768, n_layers=8),
    # Trains on 2 CPU cores in minutes; for tests and demos.
    "tiny": dict(d_model=64, n_neurons=256, n_layers=5),
}
