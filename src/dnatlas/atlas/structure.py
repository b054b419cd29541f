"""Structure: how features relate to each other (rows of the ``relations`` table).

A finalizer over every dictionary's context (numpy arrays the pipeline put in
``context.extra``; nothing here touches torch or the model layer):

- ``rc_partner`` (RC-equivariant sites): for an SAE, the feature whose decoder row best
  matches this one's under the model's RC channel permutation, with that cosine
  (:func:`dnatlas.concepts.rc_pairs.rc_pairs`; ``extra['rc_pairs']`` when the pipeline
  computed it already, else from ``extra['decoder']`` and ``extra['rc_permutation']``);
  for neurons, the permuted channel itself (``extra['rc_permutation']`` of length F),
  score 1.
- ``decoder_neighbour``: the ``NEIGHBOURS`` (10) SAE features whose decoder rows have
  the highest cosine with this one's (itself excluded).
- ``sae_to_neuron`` / ``neuron_to_sae``: where the atlas also holds the neurons of the
  SAE's site (same model, same control flag), the ``LOADINGS`` (5) neurons on which a
  feature's unit-norm decoder row loads most (score: the signed loading), and for each
  neuron the SAE features whose unit decoder rows load most on it.
- ``meta_parent`` / ``meta_sibling``: with a meta-SAE folder (``dnatlas sae meta``;
  ``extra['meta_sae']`` or ``settings['meta_sae']``, a folder or ``{dictionary:
  folder}``), a feature's parent is the meta-latent with the largest weight on it
  (``children.csv``; ``other_dictionary`` is ``meta:<dictionary>``), its siblings the
  other children of that parent, by weight (score: the sibling's weight, at most
  ``NEIGHBOURS``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dnatlas.atlas import columns as tbl
from dnatlas.concepts.rc_pairs import rc_pairs
from dnatlas.errors import InputError

NEIGHBOURS, LOADINGS = 10, 5


def unit_rows(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    return w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)


def decoder_neighbours(decoder: np.ndarray, top: int = NEIGHBOURS,
                       block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, cosines)``, each (F, min(top, F - 1)): every row's nearest other rows by
    cosine, best first (ties: lower id). Memory O(block x F)."""
    unit = unit_rows(decoder)
    f = len(unit)
    top = max(0, min(top, f - 1))
    ids = np.zeros((f, top), dtype=np.int64)
    cos = np.zeros((f, top))
    for a in range(0, f, block):
        sims = unit[a:a + block] @ unit.T
        rows = np.arange(len(sims))
        sims[rows, a + rows] = -np.inf
        part = np.argpartition(-sims, top - 1, axis=1)[:, :top] if top else sims[:, :0]
        vals = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -vals), axis=1) if top else part
        ids[a:a + block] = np.take_along_axis(part, order, axis=1)
        cos[a:a + block] = np.take_along_axis(vals, order, axis=1)
    return ids, cos


def top_loadings(matrix: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``matrix``, the ``top`` columns of largest absolute value (ids, values)."""
    top = min(top, matrix.shape[1])
    part = np.argsort(-np.abs(matrix), axis=1, kind="stable")[:, :top]
    return part, np.take_along_axis(matrix, part, axis=1)


def read_children(folder: str | Path) -> list[tuple[int, int, float]]:
    """``(meta_latent, child, weight)`` rows of a meta-SAE folder's ``children.csv``."""
    path = Path(folder) / "children.csv"
    if not path.is_file():
        raise InputError("not a meta-SAE folder (no children.csv; made by `dnatlas sae "
                         "meta`)", path=folder)
    out = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                out.append((int(row["meta_latent"]), int(row["child"]), float(row["weight"])))
            except (KeyError, TypeError, ValueError):
                raise InputError("bad children.csv row", path=path, line=line) from None
    return out


def meta_relations(dictionary: str, children: list[tuple[int, int, float]],
                   siblings: int = NEIGHBOURS) -> list[tuple]:
    """``relations`` rows (dictionary, feature, relation, other_dictionary, other_feature,
    score) for the parent and siblings of every child."""
    by_parent: dict[int, list[tuple[int, float]]] = {}
    parent: dict[int, tuple[int, float]] = {}
    for meta, child, weight in children:
        by_parent.setdefault(meta, []).append((child, weight))
        if child not in parent or (weight, -meta) > (parent[child][1], -parent[child][0]):
            parent[child] = (meta, weight)
    rows = []
    for child in sorted(parent):
        meta, weight = parent[child]
        rows.append((dictionary, child, "meta_parent", f"meta:{dictionary}", meta, weight))
        others = sorted(((w, c) for c, w in by_parent[meta] if c != child),
                        key=lambda x: (-x[0], x[1]))[:siblings]
        rows += [(dictionary, child, "meta_sibling", dictionary, c, w) for w, c in others]
    return rows


def _meta_folder(context):
    folder = context.extra.get("meta_sae") or (context.settings or {}).get("meta_sae")
    if isinstance(folder, dict):
        folder = folder.get(context.dictionary)
    return folder


def structure_relations(contexts: dict) -> list[tuple]:
    """Every relation row of the atlas's dictionaries (module docstring)."""
    rows: list[tuple] = []
    neurons = {(c.site, c.control): name for name, c in contexts.items() if c.kind == "neurons"}
    for name, c in contexts.items():
        perm = c.extra.get("rc_permutation")
        if c.kind == "neurons":
            if perm is not None and len(perm) == c.n_features:
                rows += [(name, j, "rc_partner", name, int(p), 1.0) for j, p in enumerate(perm)]
            continue
        decoder = c.extra.get("decoder")
        if decoder is None:
            continue
        decoder = np.asarray(decoder, dtype=np.float64)
        pairs = c.extra.get("rc_pairs")
        if pairs is None and perm is not None and len(perm) == decoder.shape[1]:
            pairs = rc_pairs(decoder, perm)
        if pairs is not None:
            rows += [(name, j, "rc_partner", name, int(p), float(s))
                     for j, (p, s) in enumerate(zip(pairs.partner, pairs.cosine, strict=True))]
        ids, cos = decoder_neighbours(decoder)
        rows += [(name, j, "decoder_neighbour", name, int(i), float(s))
                 for j in range(len(ids)) for i, s in zip(ids[j], cos[j], strict=True)]
        other = neurons.get((c.site, c.control))
        if other is not None and contexts[other].n_features == decoder.shape[1]:
            unit = unit_rows(decoder)
            nid, load = top_loadings(unit, LOADINGS)
            rows += [(name, j, "sae_to_neuron", other, int(i), float(v))
                     for j in range(len(nid)) for i, v in zip(nid[j], load[j], strict=True)]
            fid, load = top_loadings(unit.T, LOADINGS)
            rows += [(other, j, "neuron_to_sae", name, int(i), float(v))
                     for j in range(len(fid)) for i, v in zip(fid[j], load[j], strict=True)]
        folder = _meta_folder(c)
        if folder and not c.control:
            rows += [r for r in meta_relations(name, read_children(folder))
                     if r[1] < c.n_features]
    return rows


def structure_finalizer(tables: dict, contexts: dict) -> dict:
    """Append the rows of :func:`structure_relations` to the ``relations`` table."""
    rows = structure_relations(contexts)
    names = ("dictionary", "feature", "relation", "other_dictionary", "other_feature", "score")
    new = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    return {**tables, "relations": tbl.append_rows("relations", tables.get("relations"), new)}


ACCUMULATORS: list = []
FINALIZERS = [structure_finalizer]
