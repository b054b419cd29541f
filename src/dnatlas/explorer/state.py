"""What a running explorer holds: the atlas, the genome, the model's live dictionaries and
the worker pool, opened once from an :class:`~dnatlas.explorer.config.ExplorerConfig`."""

from __future__ import annotations

import threading

from dnatlas.atlas.reader import ORDERABLE, Atlas
from dnatlas.errors import InputError
from dnatlas.explorer.config import ExplorerConfig, manifest_inputs
from dnatlas.explorer.pool import ModelPool
from dnatlas.files import json_safe


class ExplorerState:
    """Opened at start-up; every file it reads is named by the config or the manifest."""

    def __init__(self, config: ExplorerConfig, engine=None, genome=None, adapter=None):
        from dnatlas.explorer.genome_data import load_genome

        self.config = config
        self.limits = config.limits
        self.atlas = Atlas.open(config.atlas, expect_key=config.expect_key)
        self.inputs = manifest_inputs(self.atlas.manifest)
        self.concept_names = sorted({r["concept"] for r in self.atlas.concepts()})
        fasta = config.fasta or self.inputs["fasta"]
        annotations = (config.annotations if config.annotations is not None
                       else self.inputs["annotations"])
        self.genome = genome if genome is not None else (
            load_genome(fasta, annotations, self.concept_names) if fasta else None)
        self.engine = engine
        if engine is None and config.live and self.genome is not None:
            self.engine = self._load_engine(adapter)
        self.pool = ModelPool(self.limits.workers, self.limits.queue)
        # tracks over cached tiles: no model run, but CPU; one at a time beside the model,
        # so that pages keep a core
        self.light = ModelPool(1, 4 * self.limits.queue)
        self._descriptions: dict[str, dict[int, str]] = {}
        self._lock = threading.Lock()

    def _load_engine(self, adapter=None):
        import os

        import torch

        from dnatlas.explorer.tracks import TrackEngine, load_dictionaries
        from dnatlas.models import load_model

        threads = self.limits.model_threads or max(1, (os.cpu_count() or 2) - 1)
        torch.set_num_threads(threads)
        if adapter is None:
            adapter = load_model(self.config.model or self.inputs["model"] or "default",
                                 self.config.device)
        made_by = (self.atlas.manifest.get("key") or {}).get("model")
        if isinstance(made_by, str) and len(made_by) >= 16 and made_by != adapter.fingerprint():
            raise InputError(f"the atlas was made with the model of fingerprint {made_by}, not "
                             f"{adapter.name} ({adapter.fingerprint()}): pass its model",
                             path=self.config.atlas)
        live = load_dictionaries(adapter, self.atlas.dictionaries(),
                                 self.config.saes or self.inputs["saes"], self.config.device)
        return TrackEngine(adapter, live, self.genome.codes, self.limits.cache_mb << 20,
                           self.limits.track_points)

    # -- lookups -------------------------------------------------------------------------
    def model_spec(self) -> str | None:
        for row in self.atlas.dictionaries():
            if not row.get("control") and row.get("model"):
                return row["model"]
        return self.inputs["model"]

    def dictionary(self, name: str) -> dict | None:
        return next((d for d in self.atlas.dictionaries() if d["dictionary"] == name), None)

    def live(self, name: str) -> bool:
        return self.engine is not None and name in self.engine.dictionaries

    def default_live(self, kind: str = "sae") -> str | None:
        if self.engine is None:
            return None
        return next((n for n, d in self.engine.dictionaries.items() if d.kind == kind), None)

    def descriptions(self, dictionary: str) -> dict[int, str]:
        """feature -> description of one dictionary (read once)."""
        with self._lock:
            if dictionary not in self._descriptions:
                out, offset = {}, 0
                while True:
                    page = self.atlas.features(dictionary, order="feature", desc=False,
                                               limit=1000, offset=offset)
                    out.update({r["feature"]: r["description"] for r in page["rows"]})
                    offset += 1000
                    if offset >= page["total"]:
                        break
                self._descriptions[dictionary] = out
            return self._descriptions[dictionary]

    # -- /api/meta -----------------------------------------------------------------------
    def meta(self, static: dict | None = None) -> dict:
        from dnatlas._version import __version__

        lim = self.limits
        manifest = self.atlas.manifest
        records = self.atlas.records() or [
            {"record": r, "length": n, "offset": 0} for r, n in
            (self.genome.lengths.items() if self.genome else [])]
        ref = None
        if self.genome is not None and static is None:
            name = self.genome.name
            ref = {"id": name, "fastaURL": f"genome/{name}.fa",
                   "indexURL": f"genome/{name}.fa.fai"}
        return json_safe({
            "title": self.config.title, "version": __version__,
            "schema_version": int(manifest.get("schema_version", 0)),
            "atlas": {k: v for k, v in manifest.items() if k != "complete"},
            "model": self.model_spec(),
            "genome": None if self.genome is None else self.genome.name,
            "dictionaries": [{**d, "live": self.live(d["dictionary"]) and static is None}
                             for d in self.atlas.dictionaries()],
            "records": records, "reference": ref,
            "live": self.engine is not None and static is None,
            "limits": {"track_max_nt": lim.track_max_nt, "track_points": lim.track_points,
                       "annotation_max_nt": lim.annotation_max_nt,
                       "gram_max_nt": lim.gram_max_nt, "sequence_max_nt": lim.sequence_max_nt,
                       "steer_max_nt": lim.steer_max_nt, "steer_max_edits": lim.steer_max_edits,
                       "body_max_bytes": lim.body_max_bytes, "list_max": lim.list_max,
                       "workers": lim.workers, "queue": lim.queue},
            "orderable": list(ORDERABLE), "static": static})

    def feature_page(self, dictionary: str, feature: int) -> dict:
        page = self.atlas.feature(dictionary, feature)
        page["dictionary"] = {**page["dictionary"], "live": self.live(dictionary)}
        page["tracks"] = []
        return json_safe(page)

    def concept_page(self, concept: str) -> dict:
        rows = self.atlas.best_for_concept(concept)
        for r in rows:
            r["description"] = self.descriptions(r["dictionary"]).get(r["feature"])
        return json_safe({"concept": concept, "features": rows})

    def close(self) -> None:
        self.pool.shutdown()
        self.light.shutdown()
        self.atlas.close()
