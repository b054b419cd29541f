"""The explorer's HTTP API: every request and response body (pydantic), i.e. the API's spec.

FastAPI renders these into OpenAPI at ``/docs`` (and ``/openapi.json``); the static export
writes the same shapes into its data shards (:mod:`dnatlas.explorer.shards`).

Routes (all JSON; errors are ``{"error": message}`` with a 4xx/5xx status, never a
traceback):

====================================================  =================================
``GET  /api/meta``                                    :class:`Meta`
``GET  /api/features?dictionary=&order=&desc=&limit=&offset=&explained=&concept=&text=``
                                                      :class:`FeatureList`
``GET  /api/feature/{dictionary}/{feature}``          :class:`FeaturePage`
``GET  /api/concepts``                                :class:`ConceptList`
``GET  /api/concept/{concept}``                       :class:`ConceptPage`
``GET  /api/search?q=``                               :class:`SearchResponse`
``GET  /api/annotation?chr=&start=&end=``             :class:`AnnotationTrack`
``GET  /api/labels?chr=&start=&end=``                 :class:`AnnotationTrack`
``GET  /api/track?dictionary=&feature=&chr=&start=&end=``   :class:`ActivationTrack`
``GET  /api/gram?chr=&start=&end=&site=&phase=&scale=``     :class:`GramResponse`
``POST /api/sequence``  (:class:`SequenceRequest`)    :class:`SequenceResponse`
``POST /api/steer``     (:class:`SteerRequest`)       :class:`SteerResponse`
``GET  /``, ``/static/...``                           the front end's files
``GET  /genome/{name}.fa``, ``/genome/{name}.fa.fai`` igv's indexed reference (HTTP Range)
====================================================  =================================

**Coordinates.** Every position in a request or a response is **1-based and closed** on the
forward strand (``start``/``end``/``peak``, as IGV's locus box and samtools write them),
EXCEPT the ``features`` lists of igv tracks (:class:`IgvFeature`, :class:`IgvWigPoint`),
which follow igv.js's JSON convention: **0-based ``start``, exclusive ``end``** (so they
can be handed to igv unchanged). ``chr`` is a record id of the genome.

**Strands.** Activation tracks carry both strands: ``plus`` is what the model computes
reading the forward strand; ``minus`` what it computes reading the reverse complement,
flipped back to forward coordinates (the value at forward position ``p`` is the
activation of the reverse-complement read at the nucleotide that pairs with ``p``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dnatlas.explorer.api_live import (  # noqa: F401 (part of the spec)
    ActivationTrack,
    GramResponse,
    IgvWigPoint,
    SequenceFeature,
    SequenceRequest,
    SequenceResponse,
    SteerEdit,
    SteerRequest,
    SteerResponse,
)

# ---------------------------------------------------------------------------- common


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Atlas rows: the columns of :mod:`dnatlas.atlas.schema`, extra columns allowed."""

    model_config = ConfigDict(extra="allow")


class ErrorResponse(_Model):
    """Every error: 400 (bad input), 404 (unknown feature, concept, record, route),
    413 (body too large), 422 (malformed request), 503 (busy: see Retry-After),
    500 (a bug; the message only, no traceback)."""

    error: str


class Limits(_Model):
    """What the server accepts (requests beyond them are refused with 400/413)."""

    track_max_nt: int = Field(description="longest region of /api/track, nt")
    track_points: int = Field(description="most points per strand of a track; wider "
                                          "regions are downsampled by max over bins")
    annotation_max_nt: int = Field(description="longest region of /api/annotation and "
                                               "/api/labels, nt")
    gram_max_nt: int = Field(description="longest region of /api/gram, nt")
    sequence_max_nt: int = Field(description="longest sequence of /api/sequence, nt")
    steer_max_nt: int = Field(description="longest region of /api/steer, nt")
    steer_max_edits: int = Field(description="most feature edits in one /api/steer")
    body_max_bytes: int = Field(description="largest request body (413 beyond)")
    list_max: int = Field(description="largest 'limit' of /api/features")
    workers: int = Field(description="model worker threads")
    queue: int = Field(description="model requests waiting at most (503 beyond)")


class DictionaryInfo(_Open):
    """One row of the atlas's ``dictionaries`` table."""

    dictionary: str = Field(description="e.g. 'sae:topk16', 'neurons:blocks.2.residual'")
    kind: str = Field(description="'sae' or 'neurons'")
    site: str
    n_features: int
    control: bool = False
    model: str | None = None
    source: str | None = None
    rc_equivariant: bool | None = None
    live: bool = Field(False, description="its activations can be computed live here "
                                          "(tracks, sequence, steering: SAEs only)")


class RecordInfo(_Open):
    """One record (contig) of the genome."""

    record: str
    length: int
    offset: int = Field(0, description="0-based start in the concatenated genome "
                                       "(Manhattan x axis)")
    gc: float | None = None
    sha256: str | None = None


class Reference(_Model):
    """igv's reference: ``reference: {id, fastaURL, indexURL}`` (relative URLs)."""

    id: str
    fastaURL: str
    indexURL: str


class StaticInfo(_Model):
    """Present only in a static export: what was precomputed (no live inference)."""

    annotation_bin: int = Field(description="annotation/labels shards cover 1-based bins "
                                            "[k*bin+1, (k+1)*bin] of each record")
    tracks: str = Field(description="where activation tracks are: 'feature-pages' "
                                    "(FeaturePage.tracks)")


class Meta(_Model):
    """``GET /api/meta``: what this explorer shows."""

    title: str
    version: str = Field(description="dnatlas version")
    schema_version: int
    atlas: dict[str, Any] = Field(description="the atlas manifest's summary (name, key, "
                                              "settings, bin_size, ...)")
    model: str | None = Field(description="model spec of the atlas")
    genome: str | None = None
    dictionaries: list[DictionaryInfo]
    records: list[RecordInfo]
    reference: Reference | None = Field(description="igv reference (None: no genome)")
    live: bool = Field(description="live inference available (tracks, gram, sequence, "
                                   "steer); False in a static export")
    limits: Limits
    orderable: list[str] = Field(description="columns /api/features may order by")
    static: StaticInfo | None = None


# ---------------------------------------------------------------------------- features


class FeatureRow(_Open):
    """A row of the feature list (``reader.LIST_COLUMNS``)."""

    dictionary: str
    feature: int
    max: float | None = None
    mean: float | None = None
    frac_active: float | None = None
    best_concept: str | None = None
    best_f1: float | None = None
    best_f1_shuffled: float | None = None
    top_motif: str | None = None
    best_landmark: str | None = None
    explained: bool | None = None
    description: str | None = None
    score_concept: float | None = None
    score_sparsity: float | None = None
    score_unexplained: float | None = None
    periodicity3: float | None = None
    phase_strength: float | None = None


class FeatureList(_Model):
    """``GET /api/features``: one page of a dictionary's features."""

    dictionary: str
    order: str
    desc: bool
    limit: int
    offset: int
    total: int = Field(description="matching features (all pages)")
    rows: list[FeatureRow]


class Example(_Open):
    """A top or quantile example window (1-based closed ``start``..``end``, ``peak``)."""

    kind: str = Field(description="'top' or 'quantile'")
    bin: int
    rank: int
    record: str
    start: int
    end: int
    peak: int
    strand: str = Field(description="'+' or '-': the strand the model read")
    activation: float
    sequence: str = Field(description="the window as read on 'strand', 5'->3'")
    activations: list[float] = Field(description="per nucleotide, aligned with 'sequence'")
    copies: int = 1


class ConceptScore(_Open):
    concept: str
    threshold: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    f1_shuffled: float | None = None
    f1_random_init: float | None = None
    f1_neurons: float | None = None


class LandmarkProfile(_Open):
    landmark: str
    orientation: str
    offset_min: int = Field(description="offset of profile[0], nt (negative: upstream)")
    profile: list[float]
    n: int


class Motif(_Open):
    kmer: str
    enrichment: float | None = None
    consensus: str | None = None
    pwm: list[float] = Field(description="row-major width x 4 (A, C, G, T)")
    width: int
    n_sites: int | None = None


class Relation(_Open):
    relation: str
    other_dictionary: str
    other_feature: int
    score: float | None = None


class FeaturePage(_Model):
    """``GET /api/feature/{dictionary}/{feature}``: everything a feature page shows
    (``Atlas.feature``). ``hist_edges``' last edge is +inf, written as ``null``.
    ``tracks``: precomputed activation tracks around its top examples (static export
    only; the live server returns ``[]`` and the page asks ``/api/track``)."""

    dictionary: DictionaryInfo
    feature: dict[str, Any] = Field(description="the full 'features' row (schema.TABLES)")
    examples: list[Example]
    concepts: list[ConceptScore]
    landmarks: list[LandmarkProfile]
    motif: Motif | None
    relations: list[Relation]
    hist_edges: list[float | None]
    bin_size: int | None
    records: list[RecordInfo]
    tracks: list[ActivationTrack] = []


# ---------------------------------------------------------------------------- concepts


class ConceptBest(_Open):
    """A concept's best feature in one dictionary (test F1 beyond the shuffled control)."""

    concept: str
    dictionary: str
    feature: int
    f1: float | None = None
    f1_shuffled: float | None = None


class ConceptList(_Model):
    """``GET /api/concepts``."""

    concepts: list[ConceptBest]


class ConceptFeature(_Open):
    dictionary: str
    feature: int
    threshold: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    f1_shuffled: float | None = None
    f1_random_init: float | None = None
    f1_neurons: float | None = None
    description: str | None = None


class ConceptPage(_Model):
    """``GET /api/concept/{concept}``: the features best matching it."""

    concept: str
    features: list[ConceptFeature]


# ---------------------------------------------------------------------------- search


class SearchHit(_Model):
    """``type``: 'feature' (dictionary, feature[, motif]), 'concept' (concept),
    'region' or 'gene' (record, start, end: 1-based closed; name, strand for genes)."""

    type: Literal["feature", "concept", "region", "gene"]
    dictionary: str | None = None
    feature: int | None = None
    motif: str | None = None
    concept: str | None = None
    record: str | None = None
    start: int | None = None
    end: int | None = None
    name: str | None = None
    strand: str | None = None


class SearchResponse(_Model):
    query: str
    hits: list[SearchHit]


# ---------------------------------------------------------------------------- tracks


class IgvFeature(_Model):
    """One igv annotation feature: **0-based start, exclusive end** (igv's JSON)."""

    chr: str
    start: int
    end: int
    name: str
    strand: str = Field(description="'+', '-' or '.'")
    type: str = Field(description="feature type (CDS, gene, tRNA, ...) or concept name")
    color: str | None = None


class AnnotationTrack(_Model):
    """``GET /api/annotation`` and ``GET /api/labels``: intervals overlapping the 1-based
    closed region ``start``..``end`` of ``chr`` (features: igv's 0-based convention)."""

    chr: str
    start: int
    end: int
    features: list[IgvFeature]


ROUTES = [
    ("GET", "/api/meta", Meta),
    ("GET", "/api/features", FeatureList),
    ("GET", "/api/feature/{dictionary}/{feature}", FeaturePage),
    ("GET", "/api/concepts", ConceptList),
    ("GET", "/api/concept/{concept}", ConceptPage),
    ("GET", "/api/search", SearchResponse),
    ("GET", "/api/annotation", AnnotationTrack),
    ("GET", "/api/labels", AnnotationTrack),
    ("GET", "/api/track", ActivationTrack),
    ("GET", "/api/gram", GramResponse),
    ("POST", "/api/sequence", SequenceResponse),
    ("POST", "/api/steer", SteerResponse),
]
