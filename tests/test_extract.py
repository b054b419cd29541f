import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dnatlas.analysis.extract import (
    extract_activations,
    extract_to_dir,
    open_activations,
)
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import reverse_complement
from dnatlas.genome.regions import Region, parse_region
from dnatlas.models import ModelAdapter, as_adapter
from dnatlas.models.protocol import module_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ToyRCModel(torch.nn.Module):
    """A tiny RC-equivariant dilated CNN with the DNAtlas activation interface.

    Weights are symmetrised so that the activations on the reverse complement are
    ``act[..., perm].flip(1)`` (perm pairs channel i with i + C/2), with zero padding at
    the ends, like RCPS. Used when the real model is not importable.
    """

    def __init__(self, d=8, c=12, dilations=(1, 4, 2), kernel=5, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.d, self.c, self.kernel, self.dilations = d, c, kernel, dilations
        self.p_in = torch.tensor([3, 2, 1, 0])
        self.p_d = torch.cat([torch.arange(d // 2, d), torch.arange(d // 2)])
        self.p_c = torch.cat([torch.arange(c // 2, c), torch.arange(c // 2)])
        self.embed = torch.nn.Parameter(self._sym(torch.randn(d, 4, 1, generator=g), self.p_d, self.p_in))
        self.convs = torch.nn.ParameterList(
            [self._sym(torch.randn(c, d, kernel, generator=g) / d, self.p_c, self.p_d) for _ in dilations])
        self.outs = torch.nn.ParameterList(
            [self._sym(torch.randn(d, c, 1, generator=g) / c, self.p_d, self.p_c) for _ in dilations])
        self.config = SimpleNamespace(n_layers=len(dilations))

    @staticmethod
    def _sym(w, p_out, p_in):
        return (w + w[p_out][:, p_in].flip(-1)) / 2

    @property
    def receptive_field(self):
        return sum((self.kernel - 1) // 2 * d for d in self.dilations)

    def rc_channel_permutation(self, site):
        return self.p_d if site.split(".")[-1] in ("residual", "embed") else self.p_c

    def forward(self, tokens, output_activations=()):
        x = torch.nn.functional.one_hot(tokens.clamp(max=4), 5)[..., :4].float().transpose(1, 2)
        h = torch.nn.functional.conv1d(x, self.embed)
        acts = {}
        for i, (w, wo, dil) in enumerate(zip(self.convs, self.outs, self.dilations)):
            pre = torch.nn.functional.conv1d(h, w, dilation=dil, padding=dil * (self.kernel - 1) // 2)
            y = torch.relu(pre - 0.1)
            z = y / (y.square().mean(1, keepdim=True).sqrt() + 1e-6)
            h = h + torch.nn.functional.conv1d(z, wo)
            for site, v in (("pre_act", pre), ("neurons", y), ("post_act", z), ("residual", h)):
                acts[f"blocks.{i}.{site}"] = v.transpose(1, 2)
        wanted = {k: acts[k] for k in output_activations}
        return SimpleNamespace(logits=None, activations=wanted)


class ToyAdapter(ModelAdapter):
    """The toy model through the model protocol (any model can implement it)."""

    kind, sites = "toy", ("neurons", "pre_act", "post_act", "residual")

    def __init__(self, model, name="toy"):
        self.model, self.name, self.n_layers = model.eval(), name, model.config.n_layers
        self.receptive_field = model.receptive_field

    device = property(lambda self: torch.device("cpu"))

    def to(self, device):
        return self

    def d(self, key):
        return self.model.d if key.endswith(("residual", "embed")) else self.model.c

    def rc_permutation(self, key):
        return self.model.rc_channel_permutation(key).numpy()

    def activations(self, tokens, keys, intervene=None):
        return self.model(tokens.long(), output_activations=keys).activations

    def nucleotide_log_probs(self, tokens, intervene=None):
        raise NotImplementedError

    def mlm_loss(self, tokens, intervene=None, seed=0):
        raise NotImplementedError

    def random_init(self, seed=0):
        return ToyAdapter(ToyRCModel(seed=seed))

    def state_for_fingerprint(self):
        return module_state(self.model, "toy")


def tiny_model():
    """A random tiny DNAtlas (3 blocks, R = 84 nt) when available, else the toy RC model."""
    try:
        from dnatlas.model import DNAtlas, DNAtlasConfig
    except ImportError:
        return ToyRCModel()
    torch.manual_seed(0)
    return DNAtlas(DNAtlasConfig.preset("tiny", n_layers=3, dilations=(1, 4, 16)))


def full_pass(model, seq, name):
    model = model.model if isinstance(model, ToyAdapter) else model
    with torch.inference_mode():
        out = model(torch.from_numpy(seq.astype(np.int64))[None], output_activations=[name])
    return out.activations[name][0].float().numpy()


@pytest.fixture(scope="module", params=["toy", "dnatlas"])
def model(request):
    if request.param == "toy":
        return ToyAdapter(ToyRCModel())
    pytest.importorskip("dnatlas.model")
    m = tiny_model()
    if isinstance(m, ToyRCModel):
        pytest.skip("dnatlas.model has no DNAtlas yet")
    return m.eval()


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

GFF = """##gff-version 3
chrA\tt\tCDS\t201\t1100\t.\t+\t0\tID=c1;gene=geneA
chrA\tt\tCDS\t1301\t2000\t.\t-\t0\tID=c2;gene=geneB
chrA\tt\ttRNA\t2101\t2176\t.\t+\t.\tID=t1;gene=tRNA-Ile
chrA\tt\trepeat_region\t2201\t2240\t.\t+\t.\tID=r1;Note=REP1 element
chrB\tt\tCDS\t101\t400\t.\t+\t0\tID=c3;gene=geneC
"""


def write_inputs(directory):
    """A saved tiny model, a 2-record FASTA (chrA 2500 nt, chrB 800 nt) and a GFF3."""
    directory.mkdir(parents=True, exist_ok=True)
    tiny_model().save_pretrained(directory / "model")
    rng = np.random.default_rng(7)
    with open(directory / "genome.fa", "w") as fh:
        for name, length in (("chrA", 2500), ("chrB", 800)):
            fh.write(f">{name}\n" + "".join(rng.choice(list("ACGT"), length)) + "\n")
    (directory / "ann.gff3").write_text(GFF)
    return directory / "model", directory / "genome.fa", directory / "ann.gff3"


@pytest.mark.slow
def test_cli_extract(tmp_path):
    pytest.importorskip("dnatlas.model")
    from dnatlas.cli import main

    model, fasta, _ = write_inputs(tmp_path)
    out = tmp_path / "acts"
    assert main(["extract", "--model", str(model), "--fasta", str(fasta), "--layers", "0,2",
                 "--strand", "both", "--chunk-size", "700", "--out", str(out)]) == 0
    acts = open_activations(out)
    assert acts.seqids == ["chrA", "chrB"] and len(acts.meta["arrays"]) == 8
    assert acts.load("blocks.2.neurons", "-", "chrB").shape[0] == 800
    assert main(["extract", "--model", str(model), "--fasta", str(fasta), "--region",
                 "chrA:100-300", "--layers", "1", "--layout", "CL", "--out",
                 str(tmp_path / "cl")]) == 0
    assert open_activations(tmp_path / "cl").load().shape[1] == 201  # 1-based, inclusive
    # user errors are one line, exit code 2
    assert main(["extract", "--model", str(tmp_path), "--fasta", str(fasta), "--out",
                 str(out)]) == 2
    assert main(["extract", "--model", str(model), "--fasta", str(fasta), "--region",
                 "chrZ", "--out", str(out)]) == 2
