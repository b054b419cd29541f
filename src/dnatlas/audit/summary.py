"""Per-feature audit summaries: how a feature's windows spread over genomes, loci and
splits, and whether they are near-identical copies of each other.

For each feature (the windows sharing a ``feature``):

* ``distinct_genomes``, ``distinct_loci``: over all its hits, loci being the hit intervals
  of a record merged where they overlap (both strands together);
* ``frac_multi_locus`` / ``frac_multi_genome``: the share of its windows found at two or
  more loci / in two or more genomes (repeats, rRNA operons, IS elements, plasmids shared
  between strains, contamination);
* ``windows_train``, ``windows_val``, ``windows_train_and_val``: windows found in each split,
  and in both (held-out sequence that training also holds);
* ``max_pairwise_identity``, ``frac_pairs_near_identical``, ``copy_groups``: the windows
  searched against each other (ungapped, both strands, :mod:`.search`): the best identity
  between two windows, the share of pairs at ``min_identity`` or more, and the number of
  groups of near-identical windows (connected components). Windows overlapping on the
  genome (one locus read twice, e.g. on both strands) are not counted as pairs.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dnatlas.audit.index import build_index
from dnatlas.audit.queries import Query
from dnatlas.audit.search import Hit, search
from dnatlas.audit.target import target_from_sequences

FEATURE_COLUMNS = ("feature", "n_windows", "windows_found", "n_hits", "distinct_genomes",
                   "distinct_loci", "frac_multi_locus", "frac_multi_genome", "windows_train",
                   "windows_val", "windows_train_and_val", "max_pairwise_identity",
                   "frac_pairs_near_identical", "copy_groups", "top_genomes", "flags")


def is_self_hit(query: Query, hit: Hit) -> bool:
    """Whether ``hit`` is the query's own origin (same record, and genome if known,
    overlapping its window)."""
    if query.start is None or hit.record != query.record:
        return False
    if query.genome and hit.genome != query.genome:
        return False
    return hit.start < query.end and query.start < hit.end


def merge_loci(hits: list[Hit]) -> list[dict]:
    """Hit intervals merged per (genome, record) where they overlap, in genome/record/start
    order: ``{genome, record, start, end (0-based half-open), hits, queries, splits}``."""
    loci: list[dict] = []
    for h in sorted(hits, key=lambda h: (h.genome, h.record, h.start)):
        last = loci[-1] if loci else None
        if last and (last["genome"], last["record"]) == (h.genome, h.record) \
                and h.start < last["end"]:
            last["end"] = max(last["end"], h.end)
            last["hits"] += 1
            last["queries"].add(h.query)
            last["splits"].update(h.split.split("+") if h.split else [])
        else:
            loci.append({"genome": h.genome, "record": h.record, "start": h.start,
                         "end": h.end, "hits": 1, "queries": {h.query},
                         "splits": set(h.split.split("+")) if h.split else set()})
    return loci


def pairwise_identity(seqs: list[np.ndarray], groups: list[list[int]] | None = None,
                      k: int = 16, min_identity: float = 0.9, min_length: int = 50
                      ) -> list[np.ndarray]:
    """Best ungapped identity between every two sequences of each group, both strands.

    All sequences are indexed once (k-mers, stride 1) and searched against each other.

    Args:
        seqs: uint8 codes, each (L_i,).
        groups: lists of indices into ``seqs`` (default: one group of all).

    Returns:
        One float array (n_g, n_g) per group: 0 where no hit passes the filters, 1 on the
        diagonal.
    """
    groups = [list(range(len(seqs)))] if groups is None else groups
    out = [np.eye(len(g)) for g in groups]
    where = {i: (gi, j) for gi, g in enumerate(groups) for j, i in enumerate(g)}
    usable = [i for i in where if len(seqs[i]) >= k]
    if len(usable) < 2:
        return out
    target = target_from_sequences([str(i) for i in usable], [seqs[i] for i in usable])
    index = build_index(target, k=k, stride=1, progress=False)
    hits = search(index, [seqs[i] for i in usable], min_identity, min_length,
                  progress=False).hits
    for h in hits:
        (ga, a), (gb, b) = where[usable[h.query]], where[int(h.record)]
        if ga == gb and a != b:
            out[ga][a, b] = out[ga][b, a] = max(out[ga][a, b], h.identity)
    return out


def summarise_feature(feature: str, queries: list[Query], hits_of: dict[int, list[Hit]],
                      members: list[int], ident: np.ndarray, min_identity: float = 0.9
                      ) -> dict:
    """The summary of one feature (see the module docstring) with its ``genomes`` (genome ->
    windows found there) and merged ``loci`` (1-based closed starts and ends).

    Args:
        members: indices of the feature's windows in ``queries``.
        ident: their pairwise identities, (n, n) (:func:`pairwise_identity`).
    """
    hits = [h for i in members for h in hits_of.get(i, [])]
    per_window = [hits_of.get(i, []) for i in members]
    n = len(members)
    genomes = Counter(g for hs in per_window for g in {h.genome for h in hs})
    splits = [{s for h in hs for s in h.split.split("+") if s} for hs in per_window]
    multi_locus = sum(len(merge_loci(hs)) > 1 for hs in per_window)
    multi_genome = sum(len({h.genome for h in hs}) > 1 for hs in per_window)
    off = ~_overlapping([queries[i] for i in members])
    near = (ident >= min_identity) & off
    groups = connected_components(coo_matrix(near), directed=False)[0] if n else 0
    loci = merge_loci(hits)
    row = {
        "feature": feature, "n_windows": n, "windows_found": sum(bool(hs) for hs in per_window),
        "n_hits": len(hits), "distinct_genomes": len(genomes), "distinct_loci": len(loci),
        "frac_multi_locus": multi_locus / n, "frac_multi_genome": multi_genome / n,
        "windows_train": sum("train" in s for s in splits),
        "windows_val": sum("val" in s for s in splits),
        "windows_train_and_val": sum({"train", "val"} <= s for s in splits),
        "max_pairwise_identity": float(ident[off].max()) if off.any() else None,
        "frac_pairs_near_identical": float(near.sum() / off.sum()) if off.any() else None,
        "copy_groups": int(groups),
        "top_genomes": ";".join(f"{g}:{c}" for g, c in genomes.most_common(3)),
    }
    row["flags"] = ",".join(_flags(row))
    row["genomes"] = dict(genomes.most_common())
    row["loci"] = [{"genome": x["genome"], "record": x["record"], "start": x["start"] + 1,
                    "end": x["end"], "hits": x["hits"], "windows": len(x["queries"]),
                    "splits": "+".join(sorted(x["splits"]))} for x in loci]
    return row


def _overlapping(queries: list[Query]) -> np.ndarray:
    """Bool (n, n): the same window, or windows overlapping on the same record (not copies
    of each other: one locus read twice, e.g. on both strands)."""
    n = len(queries)
    same = np.eye(n, dtype=bool)
    for i, a in enumerate(queries):
        for j in range(i + 1, n):
            b = queries[j]
            if a.start is not None and b.start is not None and a.record == b.record \
                    and a.genome == b.genome and a.start < b.end and b.start < a.end:
                same[i, j] = same[j, i] = True
    return same


def _flags(row: dict) -> list[str]:
    """Short words for what stands out (shares of windows at 0.5 or more)."""
    flags = []
    if row["windows_found"] == 0:
        flags.append("not_found")
    if row["frac_multi_locus"] >= 0.5:
        flags.append("multi_copy")
    if row["frac_multi_genome"] >= 0.5:
        flags.append("multi_genome")
    if row["frac_pairs_near_identical"] and row["copy_groups"] < row["n_windows"]:
        flags.append("near_identical_windows")
    if row["windows_train_and_val"]:
        flags.append("train_val_shared")
    return flags


def summarise(queries: list[Query], hits: list[Hit], k: int = 16, min_identity: float = 0.9,
              min_length: int = 50) -> list[dict]:
    """One summary per feature, in order of first appearance among ``queries``."""
    hits_of: dict[int, list[Hit]] = {}
    for h in hits:
        hits_of.setdefault(h.query, []).append(h)
    members: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        members.setdefault(q.feature, []).append(i)
    idents = pairwise_identity([q.codes for q in queries], list(members.values()), k,
                               min_identity, min_length)
    return [summarise_feature(f, queries, hits_of, m, ident, min_identity)
            for (f, m), ident in zip(members.items(), idents)]
