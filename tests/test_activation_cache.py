"""Activation caches are keyed by what produced them: model weights, sequence, site,
layout and chunking. A stale or foreign cache is refused or rebuilt, never reused."""

import json

import numpy as np
import pytest

from dnatlas.analysis.activation_files import array_file_name, open_activations
from dnatlas.analysis.extract_folder import extract_to_dir
from dnatlas.cli import main
from dnatlas.errors import InputError
from dnatlas.models import load_model
from tests.helpers import write_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return load_model("dnatlas:tiny:random-init", seed=0)


def test_ids_a_file_name_cannot_hold_do_not_collide(model, tmp_path):
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 4, 300).astype(np.uint8) for _ in range(2))
    assert array_file_name("ctg|1", "x", "+") != array_file_name("ctg_1", "x", "+")
    extract_to_dir(model, a, tmp_path, [0], seqid="ctg|1", progress=False)
    extract_to_dir(model, b, tmp_path, [0], seqid="ctg_1", progress=False)
    acts = open_activations(tmp_path)
    assert not np.array_equal(acts.load(seqid="ctg|1"), acts.load(seqid="ctg_1"))
    assert len(acts.meta["arrays"]) == 2


def test_extract_into_another_models_folder_is_refused(model, tmp_path):
    seq = np.random.default_rng(1).integers(0, 4, 300).astype(np.uint8)
    extract_to_dir(model, seq, tmp_path, [0], progress=False)
    other = load_model("dnatlas:tiny:random-init", seed=1)
    with pytest.raises(InputError, match="model_fingerprint"):
        extract_to_dir(other, seq, tmp_path, [0], seqid="other", progress=False)
    with pytest.raises(InputError, match="site"):
        extract_to_dir(model, seq, tmp_path, [0], site="residual", seqid="other", progress=False)
    with pytest.raises(InputError, match="layout"):
        extract_to_dir(model, seq, tmp_path, [0], layout="CL", seqid="other", progress=False)


def test_neurons_rebuild_activations_when_the_sequence_changed(tmp_path, capsys):
    """Same record ids and lengths, another sequence: the cached arrays must not be used."""
    model_dir, fasta, gff = write_inputs(tmp_path)
    args = ["neurons", "--model", str(model_dir), "--genome", str(fasta), "--annotations",
            str(gff), "--layer", "0", "--tracks", "CDS", "--windows", "1",
            "--out", str(tmp_path / "n")]
    assert main(args) == 0
    first = json.loads((tmp_path / "n" / "catalog.json").read_text())
    text = fasta.read_text().splitlines()
    rng = np.random.default_rng(99)
    changed = [line if line.startswith(">") else "".join(rng.choice(list("ACGT"), len(line)))
               for line in text]
    fasta.write_text("\n".join(changed) + "\n")
    assert main(args) == 0
    second = json.loads((tmp_path / "n" / "catalog.json").read_text())
    fresh = ["neurons", *args[1:-1], str(tmp_path / "fresh")]
    assert main(fresh) == 0
    reference = json.loads((tmp_path / "fresh" / "catalog.json").read_text())
    assert second["tracks"] == reference["tracks"] != first["tracks"]
