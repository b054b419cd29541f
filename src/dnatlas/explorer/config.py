"""What an explorer serves, fixed at start-up: the atlas, the genome, the annotation, the
model and its dictionaries, and the limits every request is checked against.

No request parameter ever becomes a file path: every file the server reads is named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ExplorerLimits:
    """Bounds on requests (shown to the front end in ``/api/meta``)."""

    track_max_nt: int = 200_000
    track_points: int = 2_000
    annotation_max_nt: int = 2_000_000
    gram_max_nt: int = 4_000
    sequence_max_nt: int = 100_000
    steer_max_nt: int = 300
    steer_max_edits: int = 16
    body_max_bytes: int = 1 << 20          # 1 MiB: a 100 kb sequence with FASTA line breaks
    list_max: int = 1_000
    workers: int = 1                       # model requests run at once
    model_threads: int | None = None       # torch threads (None: all cores but one, so that
                                           # pages are served while the model works)
    queue: int = 8                         # model requests waiting (503 beyond)
    cache_mb: int = 1024                   # activation tiles + tracks kept in memory
    retry_after_s: int = 2


@dataclass
class ExplorerConfig:
    """Everything :func:`dnatlas.explorer.app.create_app` needs.

    Attributes:
        atlas: the atlas folder (``dnatlas atlas build``).
        fasta: the genome the atlas was built on (a path or a bundled name; default: the
            manifest's ``genome``).
        annotations: GFF3/GenBank/BED files or a bundled name (default: the manifest's).
        model: model spec for live inference (default: the atlas's model).
        saes: SAE folders for live SAE tracks (default: the atlas dictionaries' sources).
        live: load the model: live tracks, Gram maps, pasted sequences, steering.
        expect_key: refuse an atlas whose key differs (stale).
        device: torch device of the model.
        title: shown in the header.
        static_dir: the front end's files (``index.html`` and the rest).
        allowed_hosts: Host headers answered (None: any); the runner sets the bound host
            and ``localhost`` against DNS rebinding.
    """

    atlas: Path
    fasta: str | Path | None = None
    annotations: list[str | Path] | None = None
    model: str | None = None
    saes: list[str | Path] | None = None
    live: bool = True
    expect_key: dict | None = None
    device: str = "cpu"
    title: str = "dnatlas explorer"
    static_dir: Path = STATIC_DIR
    allowed_hosts: list[str] | None = None
    limits: ExplorerLimits = field(default_factory=ExplorerLimits)


def manifest_inputs(manifest: dict) -> dict:
    """The inputs an atlas manifest names (``genome``/``fasta``, ``annotations``,
    ``model``, ``saes``), whichever spelling the builder used; absent ones are None."""
    inputs = manifest.get("inputs") or {}
    pick = lambda *names: next((src[n] for src in (inputs, manifest)  # noqa: E731
                                for n in names if src.get(n)), None)
    annotations = pick("annotations", "annotation")
    saes = pick("saes", "sae")
    return {"fasta": pick("genome", "fasta"),
            "annotations": [annotations] if isinstance(annotations, str) else annotations,
            "model": pick("model"),
            "saes": [saes] if isinstance(saes, str) else saes}
