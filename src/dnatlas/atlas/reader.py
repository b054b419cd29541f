"""Reading an atlas: feature lists, one feature's page data, concepts, search.

    atlas = Atlas.open("runs/atlas")
    atlas.features("sae:topk16", order="score_unexplained", limit=20)
    page = atlas.feature("sae:topk16", 317)     # everything a feature page shows

Imports DuckDB, never torch: a page is served in milliseconds. Results are plain dicts
and lists (JSON-ready; the explorer's pydantic models describe them). Every position is
1-based and closed (:mod:`dnatlas.atlas.schema`).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from dnatlas.atlas import schema
from dnatlas.atlas.store import read_manifest
from dnatlas.errors import InputError

_KMER = re.compile(r"^[ACGTacgt]{3,16}$")
_REGION = re.compile(r"^(?P<record>[^:\s]+):(?P<start>[\d,]+)-(?P<end>[\d,]+)$")
_FEATURE = re.compile(r"^(?:(?P<dictionary>\S+)[#/])?(?P<feature>\d+)$")
# columns a feature list may be sorted by
ORDERABLE = ("feature", "max", "mean", "frac_active", "best_f1", "score_concept",
             "score_sparsity", "score_unexplained", "periodicity3", "phase_strength",
             "motif_enrichment", "landmark_ratio", "gc_top")
LIST_COLUMNS = ("dictionary", "feature", "max", "mean", "frac_active", "best_concept",
                "best_f1", "best_f1_shuffled", "top_motif", "best_landmark", "explained",
                "description", "score_concept", "score_sparsity", "score_unexplained",
                "periodicity3", "phase_strength")


class Atlas:
    """A finished atlas folder, opened read-only (thread-safe: a cursor per thread)."""

    def __init__(self, folder: Path, manifest: dict, con):
        self.folder = folder
        self.manifest = manifest
        self._con = con
        self._local = threading.local()
        self._dictionaries = {row["dictionary"]: row for row in self._rows(
            'SELECT * FROM dictionaries ORDER BY control, kind DESC, dictionary')}

    @classmethod
    def open(cls, folder: str | Path, expect_key: dict | None = None) -> Atlas:
        """Open ``folder``; refuse an unfinished atlas, another schema version, or (with
        ``expect_key``) one made from other inputs (:func:`stale_reasons`)."""
        import duckdb

        folder = Path(folder)
        manifest = read_manifest(folder)
        if expect_key is not None:
            reasons = stale_reasons(manifest.get("key", {}), expect_key)
            if reasons:
                raise InputError("stale atlas, made from other inputs: " + "; ".join(reasons)
                                 + " (rebuild it)", path=folder)
        try:
            con = duckdb.connect(str(folder / schema.ATLAS_FILE), read_only=True)
        except duckdb.Error as exc:
            raise InputError(f"unreadable atlas database: {exc}",
                             path=folder / schema.ATLAS_FILE) from None
        return cls(folder, manifest, con)

    def close(self) -> None:
        self._con.close()

    # -- queries -------------------------------------------------------------------------
    def _cursor(self):
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._con.cursor()
        return cur

    def _rows(self, sql: str, params=()) -> list[dict]:
        cur = self._cursor()
        cur.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # -- the public API ------------------------------------------------------------------
    def dictionaries(self) -> list[dict]:
        """One row per dictionary (``dictionaries`` table), SAEs first, controls last."""
        return list(self._dictionaries.values())

    def check_feature(self, dictionary: str, feature: int) -> None:
        """InputError unless ``(dictionary, feature)`` exists."""
        d = self._dictionaries.get(dictionary)
        if d is None:
            raise InputError(f"no dictionary {dictionary!r} in this atlas (have: "
                             f"{', '.join(self._dictionaries)})")
        if not 0 <= int(feature) < d["n_features"]:
            raise InputError(f"feature {feature} out of range for {dictionary} "
                             f"(0..{d['n_features'] - 1})")

    def features(self, dictionary: str, order: str = "score_unexplained", desc: bool = True,
                 limit: int = 50, offset: int = 0, explained: bool | None = None,
                 concept: str | None = None, text: str | None = None) -> dict:
        """A page of the feature list: ``{"total", "rows"}``, rows with LIST_COLUMNS.

        ``order`` is one of ORDERABLE; ``explained`` filters on the column; ``concept``
        keeps features whose best concept it is; ``text`` matches the description."""
        if dictionary not in self._dictionaries:
            self.check_feature(dictionary, 0)
        if order not in ORDERABLE:
            raise InputError(f"order must be one of {', '.join(ORDERABLE)}, got {order!r}")
        limit, offset = max(0, min(int(limit), 1000)), max(0, int(offset))
        where, params = ["dictionary = ?"], [dictionary]
        if explained is not None:
            where.append("explained = ?")
            params.append(bool(explained))
        if concept:
            where.append("best_concept = ?")
            params.append(concept)
        if text:
            where.append("description ILIKE ?")
            params.append(f"%{text}%")
        clause = " AND ".join(where)
        total = self._rows(f"SELECT count(*) AS n FROM features WHERE {clause}", params)[0]["n"]
        cols = ", ".join(f'"{c}"' for c in LIST_COLUMNS)
        direction = "DESC" if desc else "ASC"
        rows = self._rows(f'SELECT {cols} FROM features WHERE {clause} ORDER BY "{order}" '
                          f"{direction} NULLS LAST, feature LIMIT {limit} OFFSET {offset}",
                          params)
        return {"total": total, "rows": rows}

    def feature(self, dictionary: str, feature: int, concepts: int = 20) -> dict:
        """Everything a feature page shows: the ``features`` row, its examples (top and
        quantile), concept scores (best ``concepts`` by F1), landmark profiles, motif and
        relations, plus the histogram edges and the records (Manhattan x axis)."""
        self.check_feature(dictionary, feature)
        key = (dictionary, int(feature))
        row = self._rows("SELECT * FROM features WHERE dictionary = ? AND feature = ?", key)
        if not row:
            raise InputError(f"feature {feature} of {dictionary} is not in this atlas")
        return {
            "dictionary": self._dictionaries[dictionary],
            "feature": row[0],
            "examples": self._rows(
                "SELECT kind, bin, rank, record, start, \"end\", peak, strand, activation, "
                "sequence, activations, copies FROM examples WHERE dictionary = ? AND "
                "feature = ? ORDER BY kind DESC, bin, rank", key),
            "concepts": self._rows(
                "SELECT concept, threshold, precision, recall, f1, f1_shuffled, "
                "f1_random_init, f1_neurons FROM concept_scores WHERE dictionary = ? AND "
                f"feature = ? ORDER BY f1 DESC NULLS LAST LIMIT {int(concepts)}", key),
            "landmarks": self._rows(
                "SELECT landmark, orientation, offset_min, profile, n FROM landmarks WHERE "
                "dictionary = ? AND feature = ? ORDER BY landmark, orientation", key),
            "motif": (self._rows("SELECT kmer, enrichment, consensus, pwm, width, n_sites "
                                 "FROM motifs WHERE dictionary = ? AND feature = ?", key)
                      or [None])[0],
            "relations": self._rows(
                "SELECT relation, other_dictionary, other_feature, score FROM relations "
                "WHERE dictionary = ? AND feature = ? ORDER BY relation, score DESC", key),
            "hist_edges": schema.hist_edges(),
            "bin_size": self.manifest.get("bin_size"),
            "records": self.records(),
        }

    def records(self) -> list[dict]:
        """The genome's records in Manhattan order."""
        if not hasattr(self, "_records"):
            self._records = self._rows("SELECT * FROM records ORDER BY \"offset\"")
        return self._records

    def concepts(self) -> list[dict]:
        """Every concept with its best feature per dictionary (test F1 beyond shuffled)."""
        return self._rows(
            "SELECT concept, dictionary, arg_max(feature, f1 - coalesce(f1_shuffled, 0)) AS "
            "feature, max(f1) AS f1, arg_max(f1_shuffled, f1 - coalesce(f1_shuffled, 0)) AS "
            "f1_shuffled FROM concept_scores GROUP BY concept, dictionary "
            "ORDER BY concept, f1 DESC")

    def best_for_concept(self, concept: str, dictionary: str | None = None,
                         limit: int = 20) -> list[dict]:
        """The features best matching ``concept`` (test F1 minus the shuffled control's)."""
        where, params = ["concept = ?"], [concept]
        if dictionary:
            where.append("dictionary = ?")
            params.append(dictionary)
        return self._rows(
            "SELECT dictionary, feature, threshold, precision, recall, f1, f1_shuffled, "
            "f1_random_init, f1_neurons FROM concept_scores WHERE " + " AND ".join(where)
            + f" ORDER BY f1 - coalesce(f1_shuffled, 0) DESC LIMIT {max(1, min(int(limit), 500))}",
            params)

    def search(self, query: str, limit: int = 20) -> list[dict]:
        """Search by feature id (``317``, ``sae:topk16#317``), concept, 1-based region
        (``RECORD:START-END``) or k-mer; each hit is ``{"type", ...}``."""
        q = query.strip()
        hits: list[dict] = []
        if m := _FEATURE.match(q):
            number = int(m["feature"])
            names = [m["dictionary"]] if m["dictionary"] else list(self._dictionaries)
            hits += [{"type": "feature", "dictionary": d, "feature": number}
                     for d in names if d in self._dictionaries
                     and number < self._dictionaries[d]["n_features"]]
        if m := _REGION.match(q):
            hits.append({"type": "region", "record": m["record"],
                         "start": int(m["start"].replace(",", "")),
                         "end": int(m["end"].replace(",", ""))})
        if _KMER.match(q):
            kmer = q.upper()
            rc = kmer[::-1].translate(str.maketrans("ACGT", "TGCA"))
            hits += [{"type": "feature", "dictionary": r["dictionary"],
                      "feature": r["feature"], "motif": r["consensus"]}
                     for r in self._rows(
                         "SELECT dictionary, feature, consensus FROM motifs WHERE "
                         "contains(consensus, ?) OR contains(consensus, ?) OR "
                         "contains(kmer, ?) OR contains(kmer, ?) ORDER BY enrichment DESC "
                         f"LIMIT {int(limit)}", [kmer, rc, kmer, rc])]
        hits += [{"type": "concept", "concept": r["concept"]} for r in self._rows(
            "SELECT DISTINCT concept FROM concept_scores WHERE concept ILIKE ? "
            f"ORDER BY concept LIMIT {int(limit)}", [f"%{q}%"])] if q else []
        return hits[:limit]


def feature_statistics(folder: str | Path, n_features: int, source: str | Path | None = None
                       ) -> dict:
    """``{"max", "mean", "frequency"}`` float64 (F,) arrays of the atlas's SAE dictionary
    of ``n_features`` features (the one read from ``source``, an SAE folder, when several
    fit): the whole-genome statistics of the atlas, both strands, for steering's maxima
    (``dnatlas steer --max-activations ATLAS``)."""
    import numpy as np

    atlas = Atlas.open(folder)
    try:
        fits = [d for d in atlas.dictionaries() if d["kind"] == "sae" and not d["control"]
                and d["n_features"] == n_features]
        if source is not None and len(fits) > 1:
            want = Path(source).resolve()
            fits = [d for d in fits if d["source"] and Path(d["source"]).resolve() == want]
        if len(fits) != 1:
            raise InputError(f"the atlas has {len(fits)} SAE dictionaries of {n_features} "
                             "features fitting this SAE (need exactly one)", path=folder)
        rows = atlas._rows('SELECT feature, "max", mean, frac_active FROM features WHERE '
                           "dictionary = ? ORDER BY feature", [fits[0]["dictionary"]])
    finally:
        atlas.close()
    out = {name: np.zeros(n_features) for name in ("max", "mean", "frequency")}
    for row in rows:
        for name, col in (("max", "max"), ("mean", "mean"), ("frequency", "frac_active")):
            out[name][row["feature"]] = row[col] or 0.0
    return out


def stale_reasons(have: dict, want: dict) -> list[str]:
    """What differs between an atlas's key and the key of the inputs it is asked for:
    e.g. ``['model fingerprint 1a2b... != 3c4d...', 'genome record chr1 differs']``."""
    reasons = []
    for field in sorted(set(have) | set(want)):
        a, b = have.get(field), want.get(field)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            reasons.append(f"{field} differs ({', '.join(map(str, diff[:3]))}"
                           f"{', ...' if len(diff) > 3 else ''})")
        else:
            reasons.append(f"{field}: atlas has {a!r}, asked for {b!r}")
    return reasons
