"""The explorer API's live-inference shapes: activation tracks, Gram maps, pasted sequences
and steering (re-exported by :mod:`dnatlas.explorer.api_models`, the API's spec; igv point
lists 0-based, end-exclusive, every other position 1-based closed)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

class IgvWigPoint(_Model):
    """One bar of an igv ``wig`` track: **0-based start, exclusive end** (igv's JSON)."""

    chr: str
    start: int
    end: int
    value: float


class ActivationTrack(_Model):
    """``GET /api/track``: one feature's activations over a region, both strands.

    ``start``/``end``: the 1-based closed region asked for. ``plus``/``minus``: igv wig
    points (0-based, end-exclusive) of ``step`` nt each, the max over each bin (``step``
    1 when the region has at most ``Limits.track_points`` nt)."""

    dictionary: str
    feature: int
    chr: str
    start: int
    end: int
    step: int = Field(description="nt per point (max over the bin)")
    max: float = Field(description="largest value over both strands")
    plus: list[IgvWigPoint]
    minus: list[IgvWigPoint]


# ---------------------------------------------------------------------------- gram


class GramResponse(_Model):
    """``GET /api/gram``: the Gram (cosine-similarity) map of a region's activations.

    ``image``: a PNG data URL (``data:image/png;base64,...``) of the matrix with a colour
    bar and the annotation along both axes. ``matrix``: the numbers, row-major, block-
    averaged over ``matrix_step`` x ``matrix_step`` cells to at most 200 x 200, rounded to
    4 decimals; ``positions``: the 1-based position of each of the ``n`` rows of the full
    matrix (every position, or the chosen codon phase's). ``offset_profile``: mean similarity at offsets
    0..K; ``periodicity3`` and ``toeplitz``: :mod:`dnatlas.analysis.offsets`."""

    chr: str
    start: int
    end: int
    site: str
    phase: str | None = Field(description="None, '0', '1' or '2' (codon position kept)")
    scale: str
    n: int
    positions: list[int]
    image: str
    matrix_step: int = Field(description="positions averaged per matrix cell (each axis)")
    matrix: list[list[float]]
    offsets: list[int]
    offset_profile: list[float | None]
    periodicity3: float | None
    toeplitz: float | None


# ---------------------------------------------------------------------------- sequence


class SequenceRequest(_Model):
    """``POST /api/sequence``: run a pasted sequence (A/C/G/T/N, IUPAC read as N; FASTA
    header lines and whitespace ignored) through the model."""

    sequence: str = Field(description="at most Limits.sequence_max_nt nucleotides")
    dictionary: str | None = Field(None, description="default: the first live SAE")
    top: int = Field(20, ge=1, le=100, description="features listed")
    features: list[int] = Field([], max_length=20,
                                description="features whose tracks to return (default: "
                                            "the 5 most active)")
    gram: bool = Field(False, description="also a Gram map (first gram_max_nt nt)")


class SequenceFeature(_Model):
    feature: int
    max: float
    mean: float
    frac_active: float
    max_plus: float
    max_minus: float
    description: str | None = None


class SequenceResponse(_Model):
    """Tracks and the Gram map use ``chr = "query"``, positions 1..length."""

    length: int
    dictionary: str
    features: list[SequenceFeature] = Field(description="most active, by max")
    tracks: list[ActivationTrack]
    gram: GramResponse | None = None


# ---------------------------------------------------------------------------- steering


class SteerEdit(_Model):
    """One feature edit: ``set`` to value, ``add`` value, or ``set_max``: set to value x
    the feature's maximum activation (the atlas's ``max``)."""

    feature: int = Field(ge=0)
    op: Literal["set", "add", "set_max"] = "set"
    value: float = Field(ge=-1e6, le=1e6)


class SteerRequest(_Model):
    """``POST /api/steer``: edit SAE features over a region (the reconstruction error is
    added back) and report how the masked-nucleotide predictions change there."""

    dictionary: str | None = Field(None, description="an SAE dictionary (default: the "
                                                     "first live SAE)")
    chr: str
    start: int = Field(ge=1, description="1-based, closed")
    end: int = Field(ge=1)
    edits: list[SteerEdit] = Field(min_length=1)
    codons: bool = Field(False, description="also codon and amino-acid changes (reading "
                                            "frame from 'frame_start', DNAtlas only)")
    frame_start: int | None = Field(None, description="1-based first base of a codon")
    frame_strand: Literal["+", "-"] = "+"


class SteerResponse(_Model):
    """Per-position changes as igv wig points (0-based, end-exclusive):
    ``delta_nt``: total variation between the steered and unsteered nucleotide
    distributions (0..1); ``delta_ref``: change of log p(reference base) (nats);
    ``delta_codon``/``delta_aa``: the same for codons and amino acids (when asked)."""

    dictionary: str
    chr: str
    start: int
    end: int
    edits: list[SteerEdit]
    delta_nt: list[IgvWigPoint]
    delta_ref: list[IgvWigPoint]
    delta_codon: list[IgvWigPoint] = []
    delta_aa: list[IgvWigPoint] = []
    top: list[dict[str, Any]] = Field(description="most changed positions: {pos (1-based), "
                                                  "ref, before: [pA,pC,pG,pT], after}")
