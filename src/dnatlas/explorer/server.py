"""``dnatlas explore``: open (or first build) an atlas, then serve it or export it.

    explore()                                   # bundled model, genome, annotation, SAE
    explore(atlas="runs/atlas", port=8000)      # an atlas built before
    explore(export="site/")                     # the static explorer, no server

An atlas given with ``atlas=`` is checked against the inputs the explorer will run (model
fingerprint, SAE files, genome records, annotation): a stale one is refused. Without it
the atlas of the given (default: bundled) inputs in ``runs/atlas`` is used, built first by
:func:`dnatlas.pipelines.atlas.build_atlas` when missing. The server binds 127.0.0.1 unless
told otherwise, and then answers only Host headers naming it (no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from dnatlas.errors import InputError
from dnatlas.explorer.config import ExplorerConfig, ExplorerLimits

DEFAULT_GENOME = "ecoli_k12_mg1655"
DEFAULT_ATLAS = Path("runs/atlas")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _annotations(genome, annotations):
    """The atlas builder's rule: None -> the bundled annotation of the bundled default
    genome, else none; 'none' -> none."""
    if annotations is None:
        return [DEFAULT_GENOME] if str(genome) == DEFAULT_GENOME else None
    items = [a for a in ([annotations] if isinstance(annotations, str | Path) else annotations)
             if str(a) != "none"]
    return items or None


def expected_key(have: dict, adapter, codes: dict, annotations, sae_sources: dict) -> dict:
    """The key an atlas of these inputs would carry, for the fields ``have`` names (the
    build settings are taken as they are: any settings are fine for the explorer)."""
    from dnatlas.genome.alphabet import sequence_sha256
    from dnatlas.pipelines.atlas import annotation_hash, sae_hash

    want = dict(have)
    if "model" in have:
        want["model"] = adapter.fingerprint()
    if "genome" in have:
        want["genome"] = {r: sequence_sha256(c) for r, c in codes.items()}
    if "annotations" in have:
        want["annotations"] = annotation_hash(annotations)
    if isinstance(have.get("saes"), dict):
        want["saes"] = {**have["saes"], **{n: sae_hash(p) for n, p in sae_sources.items()
                                           if n in have["saes"] and Path(p).is_dir()}}
    return want


def open_state(atlas: str | Path | None = None, model: str | None = None, genome=None,
               annotations=None, saes=(), force: bool = False, device: str = "cpu",
               live: bool = True, limits: ExplorerLimits | None = None,
               allowed_hosts: list[str] | None = None):
    """The :class:`ExplorerState` of an atlas (built first when ``atlas`` is None and the
    default one is missing), checked against its inputs."""
    from dnatlas.atlas.reader import Atlas
    from dnatlas.atlas.store import read_manifest
    from dnatlas.explorer.genome_data import load_genome
    from dnatlas.explorer.state import ExplorerState
    from dnatlas.models import load_model
    from dnatlas.pipelines.atlas import build_atlas

    genome = genome or DEFAULT_GENOME
    annotations = _annotations(genome, annotations)
    saes = list(saes or [])
    if atlas is None:
        atlas = DEFAULT_ATLAS
        print(f"dnatlas explore: the atlas of {model or 'the bundled model'} on {genome} "
              f"in {atlas} (built first if missing)", file=sys.stderr)
        build_atlas(model, genome, annotations, saes=saes or ["default"], out=atlas,
                    force=force, device=device)
    manifest = read_manifest(atlas)
    adapter = load_model(model, device)
    reader = Atlas.open(atlas)
    try:
        sources = {d["dictionary"]: d["source"] for d in reader.dictionaries()
                   if d["kind"] == "sae" and not d["control"] and d.get("source")}
    finally:
        reader.close()
    g = load_genome(genome, annotations)
    key = expected_key(manifest.get("key", {}), adapter, g.codes, annotations,
                       {n: s for n, s in sources.items()})
    config = ExplorerConfig(atlas=Path(atlas), fasta=genome, annotations=annotations,
                            model=model, saes=saes or None, live=live, expect_key=key,
                            device=device, limits=limits or ExplorerLimits(),
                            allowed_hosts=allowed_hosts)
    return ExplorerState(config, genome=g, adapter=adapter)


def serve(state, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app of ``state`` with uvicorn until interrupted; prints the URL."""
    import uvicorn

    from dnatlas.explorer.app import create_app

    if not _is_loopback(host):
        print(f"dnatlas explore: warning: serving on {host}: anyone who can reach this "
              "machine can query the atlas and run the model (no authentication)",
              file=sys.stderr)
    app = create_app(state.config, state)
    shown = f"[{host}]" if ":" in host else host
    print(f"dnatlas explorer: http://{shown}:{port}/  (API: /docs; Ctrl+C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False,
                timeout_keep_alive=30)


def explore(atlas=None, model: str | None = None, genome=None, annotations=None, saes=(),
            host: str = "127.0.0.1", port: int = 8000, export: str | Path | None = None,
            force: bool = False, device: str = "cpu", workers: int = 1,
            tracks_per_feature: int = 3) -> Path | None:
    """What ``dnatlas explore`` runs: serve the explorer, or write the static one to
    ``export`` (returns its index.html)."""
    from dnatlas.explorer.export import export_site

    if not 0 < port < 65536:
        raise InputError(f"port must be 1..65535, got {port}")
    hosts = None
    if _is_loopback(host):
        hosts = sorted({host.strip("[]"), "localhost", "127.0.0.1", "::1"})
    state = open_state(atlas, model, genome, annotations, saes, force, device,
                       limits=ExplorerLimits(workers=workers), allowed_hosts=hosts)
    try:
        if export is not None:
            summary = export_site(state, export, force=force,
                                  tracks_per_feature=tracks_per_feature)
            index = Path(summary["out"]).resolve() / "index.html"
            print(f"dnatlas explore: wrote {summary['shards']:,} data shards "
                  f"({summary['bytes'] / 1e6:.1f} MB) for {summary['features']:,} features; "
                  f"open {index}", file=sys.stderr)
            return index
        serve(state, host, port)
        return None
    finally:
        state.close()
