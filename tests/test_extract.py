import json

import numpy as np
import pytest
import torch

from dnatlas.analysis.activation_files import open_activations
from dnatlas.analysis.extract import extract_activations
from dnatlas.analysis.extract_folder import extract_to_dir
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import reverse_complement
from dnatlas.genome.regions import Region, parse_region
from dnatlas.models import as_adapter
from tests.helpers import ToyAdapter, ToyRCModel, tiny_model, write_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def full_pass(model, seq, name):
    model = model.model if isinstance(model, ToyAdapter) else model
    with torch.inference_mode():
        out = model(torch.from_numpy(seq.astype(np.int64))[None], output_activations=[name])
    return out.activations[name][0].float().numpy()


@pytest.fixture(scope="module", params=["toy", "dnatlas"])
def model(request):
    if request.param == "toy":
        return ToyAdapter(ToyRCModel())
    return tiny_model().eval()


@pytest.fixture(scope="module")
def seq():
    return np.random.default_rng(0).integers(0, 4, 1000).astype(np.uint8)


def test_toy_model_is_rc_equivariant():
    m = ToyRCModel()
    s = np.random.default_rng(1).integers(0, 4, 200).astype(np.uint8)
    for name in ("blocks.2.neurons", "blocks.1.residual"):
        fwd = full_pass(m, s, name)
        rev = full_pass(m, reverse_complement(s), name)
        perm = m.rc_channel_permutation(name).numpy()
        np.testing.assert_allclose(rev, fwd[::-1, perm], atol=1e-5)


@pytest.mark.parametrize("chunk,batch", [(97, 3), (1000, 1), (250, 2)])
def test_chunked_equals_full_pass(model, seq, chunk, batch):
    names = as_adapter(model).select_keys("all", "neurons")[-2:]
    acts = extract_activations(model, seq, names, chunk_size=chunk, batch_size=batch,
                               progress=False)
    for name in names:
        np.testing.assert_allclose(acts[name], full_pass(model, seq, name), atol=1e-4, rtol=1e-4)


def test_region_uses_flanking_context(model, seq):
    name = as_adapter(model).select_keys(0, "residual")[0]
    acts = extract_activations(model, seq, [name], site="residual", start=300, end=420,
                               chunk_size=50, progress=False)[name]
    np.testing.assert_allclose(acts, full_pass(model, seq, name)[300:420], atol=1e-4, rtol=1e-4)


def test_reverse_strand_equals_running_on_reverse_complement(model, seq):
    name = as_adapter(model).select_keys("all", "neurons")[-1]
    both = extract_activations(model, seq, [name], strand="both", chunk_size=128,
                               progress=False)
    expected = full_pass(model, reverse_complement(seq), name)
    np.testing.assert_allclose(both[name, "-"], expected, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(both[name, "+"], full_pass(model, seq, name), atol=1e-4, rtol=1e-4)
    # a region: the − strand of [a, b) is the RC pass restricted to [L-b, L-a)
    part = extract_activations(model, seq, [name], start=100, end=300, strand="-",
                               chunk_size=64, progress=False)[name]
    np.testing.assert_allclose(part, expected[len(seq) - 300:len(seq) - 100], atol=1e-4, rtol=1e-4)


def test_to_dir_memmap_layouts_and_meta(model, seq, tmp_path):
    names = as_adapter(model).select_keys([0, 1], "neurons")
    ref = {n: full_pass(model, seq, n) for n in names}
    acts = extract_to_dir(model, seq, tmp_path / "acts", names, seqid="chr 1", start=10,
                          end=900, strand="both", chunk_size=111, dtype=np.float16,
                          progress=False)
    meta = json.loads((tmp_path / "acts" / "meta.json").read_text())
    assert meta["dtype"] == "float16" and len(meta["arrays"]) == 4
    assert meta["model"] == as_adapter(model).name
    assert meta["model_fingerprint"] == as_adapter(model).fingerprint()
    assert acts.seqids == ["chr 1"] and acts.layers == names
    got = acts.load(names[0], "+")
    assert isinstance(got, np.memmap) and got.shape == (890, ref[names[0]].shape[1])
    np.testing.assert_allclose(got, ref[names[0]][10:900], atol=2e-2, rtol=2e-2)
    rev = acts.load(names[1], "-")
    perm = acts.rc_permutation(names[1])
    np.testing.assert_allclose(rev, ref[names[1]][10:900][::-1, perm], atol=2e-2, rtol=2e-2)
    # neuron-major layout, and a second record in the same directory
    cl = extract_to_dir(model, seq[:500], tmp_path / "cl", names[:1], seqid="b", layout="CL",
                        dtype=np.float32, chunk_size=64, progress=False)
    extract_to_dir(model, seq, tmp_path / "cl", names[:1], seqid="a", layout="CL",
                   dtype=np.float32, chunk_size=300, progress=False)
    cl = open_activations(tmp_path / "cl")
    assert cl.seqids == ["b", "a"]
    np.testing.assert_allclose(cl.load(names[0], seqid="a"), ref[names[0]].T, atol=1e-4, rtol=1e-4)
    with pytest.raises(InputError):
        cl.load(names[0])  # two records match


def test_extraction_that_cannot_fit_on_disk_is_refused_before_writing(model, seq, tmp_path,
                                                                       monkeypatch):
    import shutil
    from collections import namedtuple

    names = as_adapter(model).select_keys([0, 1], "neurons")
    channels = sum(full_pass(model, seq[:20], n).shape[1] for n in names)
    needed = channels * len(seq) * 2 * 2  # float16, both strands
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(needed * 4, 0, needed - 1))
    with pytest.raises(InputError, match="GiB"):
        extract_to_dir(model, seq, tmp_path / "acts", names, strand="both", progress=False)
    assert list((tmp_path / "acts").iterdir()) == []
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(needed * 4, 0, needed))
    extract_to_dir(model, seq, tmp_path / "acts", names, strand="both", progress=False)


def test_unbounded_receptive_field_runs_one_pass(seq):
    class Unbounded(ToyAdapter):
        receptive_field = None

        def __init__(self, model):
            super().__init__(model)
            self.receptive_field = None

    m = Unbounded(ToyRCModel())
    acts = extract_activations(m, seq, ["blocks.2.neurons"], start=10, end=990, chunk_size=64,
                               progress=False)["blocks.2.neurons"]
    np.testing.assert_allclose(acts, full_pass(m, seq, "blocks.2.neurons")[10:990], atol=1e-5)


def test_layer_names_and_regions(model):
    n = as_adapter(model).select_keys("all", "post_act")
    assert n[0] == "blocks.0.post_act" and len(n) >= 2
    assert as_adapter(model).select_keys("1,blocks.0.residual", "neurons") == ["blocks.1.neurons",
                                                                    "blocks.0.residual"]
    with pytest.raises(InputError):
        as_adapter(model).select_keys(99)
    with pytest.raises(InputError):
        as_adapter(model).select_keys(0, "bogus")
    assert parse_region("K-12:1,000-2,000") == Region("K-12", 999, 2000)  # 1-based, closed
    assert parse_region("chr") == Region("chr")
    with pytest.raises(InputError):
        parse_region("chr:5-1")
    with pytest.raises(InputError):
        open_activations("/nonexistent")


# ----------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_extract(tmp_path):
    from dnatlas.cli import main

    model, fasta, _ = write_inputs(tmp_path)
    out = tmp_path / "acts"
    assert main(["extract", "--model", str(model), "--genome", str(fasta), "--layers", "0,2",
                 "--strand", "both", "--chunk-size", "700", "--out", str(out)]) == 0
    acts = open_activations(out)
    assert acts.seqids == ["chrA", "chrB"] and len(acts.meta["arrays"]) == 8
    assert acts.load("blocks.2.neurons", "-", "chrB").shape[0] == 800
    assert main(["extract", "--model", str(model), "--genome", str(fasta), "--region",
                 "chrA:100-300", "--layers", "1", "--layout", "CL", "--out",
                 str(tmp_path / "cl")]) == 0
    assert open_activations(tmp_path / "cl").load().shape[1] == 201  # 1-based, inclusive
    # user errors are one line, exit code 2
    assert main(["extract", "--model", str(tmp_path), "--genome", str(fasta), "--out",
                 str(out)]) == 2
    assert main(["extract", "--model", str(model), "--genome", str(fasta), "--region",
                 "chrZ", "--out", str(out)]) == 2
