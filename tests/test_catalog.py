"""Catalog tables: one layer's ranking, and the best neuron of each track across layers."""

import csv
import json

import numpy as np
import pytest

from dnatlas.analysis.catalog import NeuronCatalog, layer_summary, write_layer_summary

TRACKS = ["CDS", "start_codon_2nd", "CRISPR"]
CHANCE = np.array([0.4, 0.001, 0.0])


def _catalog(layer: str, auprc) -> NeuronCatalog:
    auprc = np.asarray(auprc, dtype=float)
    return NeuronCatalog(layer, TRACKS, np.arange(len(auprc)), auprc, CHANCE,
                         np.array([40, 1, 0]), 100)


def _three_layers():
    nan = np.nan
    return [_catalog("blocks.0.neurons", [[0.5, 0.002, nan], [0.45, 0.010, nan]]),
            _catalog("blocks.1.neurons", [[0.7, 0.030, nan], [0.60, 0.200, nan]]),
            _catalog("blocks.2.neurons", [[0.9, 0.100, nan], [0.65, 0.005, nan]])]


def test_layer_summary_picks_each_tracks_best_layer_and_neuron():
    rows = layer_summary(_three_layers())
    assert [(r["track"], r["layer"]) for r in rows[:3]] == [
        ("CDS", "blocks.0.neurons"), ("CDS", "blocks.1.neurons"), ("CDS", "blocks.2.neurons")]
    best = {r["track"]: (r["layer"], r["neuron"], r["auprc"]) for r in rows if r["best_layer"]}
    assert best == {"CDS": ("blocks.2.neurons", 0, 0.9),
                    "start_codon_2nd": ("blocks.1.neurons", 1, 0.2)}
    start = [r for r in rows if r["track"] == "start_codon_2nd"]
    assert [r["neuron"] for r in start] == [1, 1, 0]
    assert start[1]["lift"] == pytest.approx(200.0)


def test_track_without_positives_has_no_best_layer():
    crispr = [r for r in layer_summary(_three_layers()) if r["track"] == "CRISPR"]
    assert len(crispr) == 3 and not any(r["best_layer"] for r in crispr)
    assert all(np.isnan(r["auprc"]) for r in crispr)


def test_layer_summary_refuses_catalogs_of_other_tracks():
    other = NeuronCatalog("blocks.9.neurons", ["CDS"], np.arange(1), np.ones((1, 1)),
                          np.array([0.4]), np.array([40]), 100)
    with pytest.raises(ValueError, match="blocks.9"):
        layer_summary([*_three_layers(), other])


def test_write_layer_summary_files(tmp_path):
    write_layer_summary(_three_layers(), tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "layers.csv")))
    assert len(rows) == 9 and rows[0].keys() >= {"track", "layer", "neuron", "auprc", "lift"}
    doc = json.loads((tmp_path / "layers.json").read_text())
    assert doc["start_codon_2nd"]["best"] == {"layer": "blocks.1.neurons", "neuron": 1,
                                              "auprc": 0.2}
    assert doc["CRISPR"]["best"] is None
    assert doc["CRISPR"]["layers"]["blocks.0.neurons"]["auprc"] is None


def test_rc_partners_are_one_feature_in_rankings_tables_and_json(tmp_path):
    """An RC-equivariant model's neuron and its RC partner are one feature read on opposite
    strands: the tRNA neuron and the 'terminator neuron' that is its partner are listed
    once, by the member that scores better, with the partner named (issue 22)."""
    ap = np.array([[0.10, 0.50], [0.80, 0.20], [0.30, 0.40], [0.79, 0.21]])  # 1 <-> 3
    partner = np.array([2, 3, 0, 1])
    cat = NeuronCatalog("blocks.0.neurons", ["tRNA", "terminator"], np.arange(4), ap,
                        np.array([0.01, 0.01]), np.array([5, 5]), 100, partner=partner)
    assert cat.ranking("tRNA") == [(1, 0.8), (2, 0.3)]   # 3 is 1 on the other strand
    assert cat.ranking("terminator") == [(0, 0.5), (3, 0.21)]
    assert cat.rc_partner(1) == 3 and cat.rc_partner(0) == 2
    cat.save(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "catalog.csv")))
    assert [(r["track"], r["neuron"], r["rc_partner"]) for r in rows] == [
        ("tRNA", "1", "3"), ("tRNA", "2", "0"), ("terminator", "0", "2"),
        ("terminator", "3", "1")]
    doc = json.loads((tmp_path / "catalog.json").read_text())
    assert "RC-equivariant" in doc["rc_pairs"]
    assert doc["tracks"]["tRNA"]["ranking"][0] == {"neuron": 1, "rc_partner": 3, "auprc": 0.8}
    plain = NeuronCatalog("blocks.0.neurons", ["tRNA", "terminator"], np.arange(4), ap,
                          np.array([0.01, 0.01]), np.array([5, 5]), 100)
    assert len(plain.ranking("tRNA")) == 4 and plain.rc_partner(1) is None


def test_the_figures_show_an_rc_pair_once():
    from dnatlas.pipelines.neuron_figures import best_neurons

    ap = np.array([[0.9, 0.1], [0.1, 0.2], [0.2, 0.95]])  # 0 <-> 2: tRNA and 'terminator'
    cat = NeuronCatalog("blocks.0.neurons", ["tRNA", "terminator"], np.arange(3), ap,
                        np.array([0.01, 0.01]), np.array([5, 5]), 100,
                        partner=np.array([2, 1, 0]))
    assert best_neurons(cat) == [0]  # neuron 2 is 0 on the other strand: one set of figures
