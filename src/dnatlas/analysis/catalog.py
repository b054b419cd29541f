"""Neuron catalog results: AUPRC tables per layer, summaries across layers, top windows.

:class:`NeuronCatalog` holds the AP of every neuron of one layer for every label track
(computed by :func:`dnatlas.analysis.neurons.scan_neurons`). :func:`layer_summary` compares
the best neuron of each track across several layers, as a user scanning a whole model
wants to know where each feature is best represented.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatlas.files import atomic_write, check_output_dir, write_json

__all__ = ["NeuronCatalog", "layer_summary", "write_layer_summary", "write_top_windows"]


@dataclass
class NeuronCatalog:
    """AP of every neuron for every track, with chance rates.

    Attributes:
        layer: activation name (e.g. ``blocks.7.neurons``).
        tracks: track names (T); neurons: neuron ids (C'), rows of ``auprc``.
        auprc: (C', T) average precision; chance: (T,) positive fraction; n_pos: (T,).
        n: samples per strand (genome length).
        partner: for an RC-equivariant model, each neuron's RC partner (C',): the neuron
            computing the same function on the other strand (``rc_permutation``). A neuron
            and its partner score the same over both strands, so they are one feature:
            rankings list each pair once and tables name the partner (as ``concepts eval``
            pairs SAE features, :mod:`dnatlas.sae.rc_pairs`). None: no pairing.
    """

    layer: str
    tracks: list[str]
    neurons: np.ndarray
    auprc: np.ndarray
    chance: np.ndarray
    n_pos: np.ndarray
    n: int
    partner: np.ndarray | None = None

    def rc_partner(self, neuron: int) -> int | None:
        """The RC partner of ``neuron`` (None without pairing, or a self-paired neuron)."""
        if self.partner is None:
            return None
        other = int(self.partner[int(neuron)])
        return None if other == int(neuron) else other

    def ranking(self, track: str, k: int | None = None) -> list[tuple[int, float]]:
        """``[(neuron, ap), ...]`` best first (NaN last); an RC pair once, by the neuron of
        the pair that scores better (its AP: the partner reads the other strand's sense, so
        its AP on stranded tracks may differ); :meth:`rc_partner` names the other."""
        t = self.tracks.index(track)
        ap = self.auprc[:, t]
        order = np.argsort(np.where(np.isnan(ap), np.inf, -ap), kind="stable")
        ranked, taken = [], set()
        for i in order:
            neuron = int(self.neurons[i])
            if neuron in taken:
                continue
            taken.add(neuron)
            partner = self.rc_partner(neuron)
            if partner is not None:
                taken.add(partner)
            ranked.append((neuron, float(ap[i])))
            if k is not None and len(ranked) == k:
                break
        return ranked

    def best(self, track: str) -> tuple[int, float]:
        return self.ranking(track, 1)[0]

    def rows(self, top: int | None = 20):
        """CSV rows: track, rank, neuron, rc_partner (empty: none), auprc, chance, lift,
        positives, samples."""
        for t, track in enumerate(self.tracks):
            for rank, (neuron, ap) in enumerate(self.ranking(track, top), start=1):
                chance = float(self.chance[t])
                partner = self.rc_partner(neuron)
                yield {"track": track, "rank": rank, "neuron": neuron,
                       "rc_partner": "" if partner is None else partner, "auprc": ap,
                       "chance": chance, "lift": ap / chance if chance else float("nan"),
                       "positives": int(self.n_pos[t]), "samples": 2 * self.n}

    def to_csv(self, path: str | Path, top: int | None = 20) -> None:
        _write_csv(path, ["track", "rank", "neuron", "rc_partner", "auprc", "chance", "lift",
                          "positives", "samples"], self.rows(top))

    def to_json(self, path: str | Path, top: int | None = 20, extra: dict | None = None) -> None:
        tracks = {}
        for t, track in enumerate(self.tracks):
            tracks[track] = {"chance": float(self.chance[t]), "positives": int(self.n_pos[t]),
                             "ranking": [{"neuron": n, "rc_partner": self.rc_partner(n),
                                          "auprc": _json_float(ap)}
                                         for n, ap in self.ranking(track, top)]}
        doc = {"layer": self.layer, "samples_per_strand": self.n, "tracks": tracks,
               "rc_pairs": None if self.partner is None else (
                   "RC-equivariant model: a neuron and its rc_partner compute the same "
                   "function on opposite strands and score the same; each pair is ranked "
                   "once"), **(extra or {})}
        write_json(path, doc, indent=1)

    def save(self, directory: str | Path, top: int | None = 20, extra: dict | None = None) -> None:
        """Write ``catalog.csv``, ``catalog.json`` and the full matrix ``auprc.npz``."""
        d = check_output_dir(directory, "catalog folder")
        self.to_csv(d / "catalog.csv", top)
        self.to_json(d / "catalog.json", top, extra)
        with atomic_write(d / "auprc.npz", "wb") as fh:
            np.savez(fh, auprc=self.auprc, neurons=self.neurons, tracks=np.array(self.tracks),
                     chance=self.chance, n_pos=self.n_pos,
                     **({} if self.partner is None else {"rc_partner": self.partner}))


def _write_csv(path: str | Path, fields: list[str], rows) -> None:
    """Rows of dicts as CSV, floats with 6 significant digits."""
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def _json_float(x: float):
    return None if not np.isfinite(x) else float(x)


def write_top_windows(windows: Mapping[int, list], path: str | Path) -> None:
    """Top windows as CSV (one row per window; ``values`` omitted) or JSON by suffix.

    The CSV is for people: its coordinates are 1-based and closed (``position_1based``,
    ``start_1based``, ``end_1based``), as the figures label them. The JSON (read by
    programs, such as the explorer) keeps dnatlas's 0-based half-open ``position``,
    ``start`` and ``end``."""
    path = Path(path)
    flat = [w for ws in windows.values() for w in ws]
    if path.suffix == ".json":
        write_json(path, [w.as_dict() for w in flat], indent=None)
        return
    fields = ["neuron", "rank", "seqid", "position_1based", "strand", "activation",
              "start_1based", "end_1based", "sequence"]
    with atomic_write(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for w in flat:
            row = {k: getattr(w, k) for k in ("neuron", "rank", "seqid", "sequence")}
            row.update(position_1based=w.position + 1, start_1based=w.start + 1,
                       end_1based=w.end)
            row["strand"] = "+" if w.strand > 0 else "-"
            row["activation"] = f"{w.activation:.5g}"
            writer.writerow(row)


def layer_summary(catalogs: Sequence[NeuronCatalog]) -> list[dict]:
    """The best neuron of every track in every layer, and which layer is best.

    Args:
        catalogs: one catalog per layer, all over the same tracks and genome.

    Returns:
        rows ``{track, layer, neuron, auprc, chance, lift, best_layer}`` in track order,
        then layer order; ``best_layer`` is True on the row with the highest AP of its
        track (the first such layer on ties; none when the track has no positives).
    """
    if not catalogs:
        return []
    tracks = catalogs[0].tracks
    for c in catalogs[1:]:
        if c.tracks != tracks or c.n != catalogs[0].n:
            raise ValueError(f"catalog of {c.layer} is over other tracks or another genome")
    rows = []
    for t, track in enumerate(tracks):
        chance = float(catalogs[0].chance[t])
        block = []
        for c in catalogs:
            neuron, ap = c.best(track)
            block.append({"track": track, "layer": c.layer, "neuron": neuron, "auprc": ap,
                          "chance": chance, "lift": ap / chance if chance else float("nan"),
                          "best_layer": False})
        aps = np.array([r["auprc"] for r in block])
        if np.isfinite(aps).any():
            block[int(np.nanargmax(aps))]["best_layer"] = True
        rows.extend(block)
    return rows


def write_layer_summary(catalogs: Sequence[NeuronCatalog], directory: str | Path) -> list[dict]:
    """Write :func:`layer_summary` as ``layers.csv`` and ``layers.json`` in ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rows = layer_summary(catalogs)
    _write_csv(d / "layers.csv",
               ["track", "layer", "neuron", "auprc", "chance", "lift", "best_layer"], rows)
    doc = {}
    for row in rows:
        entry = doc.setdefault(row["track"], {"chance": row["chance"], "best": None,
                                              "layers": {}})
        entry["layers"][row["layer"]] = {"neuron": row["neuron"],
                                         "auprc": _json_float(row["auprc"])}
        if row["best_layer"]:
            entry["best"] = {"layer": row["layer"], "neuron": row["neuron"],
                             "auprc": _json_float(row["auprc"])}
    write_json(d / "layers.json", doc, indent=1)
    return rows
