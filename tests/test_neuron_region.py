"""``neurons --region``: a catalog of one 1-based region, with genomic coordinates."""

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from dnatlas.cli import main
from tests.helpers import write_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_region_catalog_equals_the_region_of_a_whole_record_pass(tmp_path):
    from dnatlas.analysis.extract import extract_activations
    from dnatlas.annotation.intervals import load_annotations
    from dnatlas.annotation.tracks import label_tracks
    from dnatlas.genome.readers import read_records
    from dnatlas.models import load_model

    model_dir, fasta, gff = write_inputs(tmp_path)
    out = tmp_path / "n"
    assert main(["neurons", "--model", str(model_dir), "--genome", str(fasta), "--annotations",
                 str(gff), "--layer", "1", "--region", "chrA:1,001-2,200", "--tracks", "CDS",
                 "--windows", "3", "--half-window", "10", "--out", str(out)]) == 0
    doc = json.loads((out / "catalog.json").read_text())
    assert doc["region"] == "chrA:1,001-2,200"
    # reference: a whole-record pass, cut to the region, scored on both strands by sklearn
    model = load_model(str(model_dir))
    record = next(r for r in read_records(fasta) if r.id == "chrA")
    acts = extract_activations(model, record.seq, ["blocks.1.neurons"], layout="CL",
                               progress=False)["blocks.1.neurons"][:, 1000:2200]
    cds = label_tracks(load_annotations(gff), "chrA", len(record), tracks=["CDS"])["CDS"]
    perm = model.rc_permutation("blocks.1.neurons")
    best = doc["tracks"]["CDS"]["ranking"][0]
    n = best["neuron"]
    scores = np.concatenate([acts[n], acts[perm[n]]])
    labels = np.concatenate([cds[0, 1000:2200], cds[1, 1000:2200]])
    assert best["auprc"] == pytest.approx(average_precision_score(labels, scores), abs=2e-3)
    windows = json.loads((out / "top_windows.json").read_text())
    assert windows and all(1000 <= w["position"] < 2200 for w in windows)
    for w in windows:  # the reported window is the genome's sequence at those coordinates
        from dnatlas.genome.alphabet import decode, reverse_complement_str

        seq = decode(record.seq[w["start"]:w["end"]])
        assert w["sequence"] == (seq if w["strand"] > 0 else reverse_complement_str(seq))
