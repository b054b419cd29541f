"""The model layer: one protocol for every model, one --model spec, Hugging Face integration.

Extraction, Gram maps and neuron catalogs run on HyenaDNA and Nucleotide Transformer
(v1, v2) through the same interface as DNAtlas, and the chunked extraction of each equals
one full forward pass.
"""

import json

import numpy as np
import pytest
import torch

from dnatlas.analysis.extract import extract_activations
from dnatlas.architectures.hyenadna import HyenaConfig
from dnatlas.cli import main
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import reverse_complement
from dnatlas.models import load_model, parse_model_spec
from dnatlas.models.hyenadna import HyenaDNAAdapter
from dnatlas.models.nucleotide_transformer import NucleotideTransformerAdapter, tiny_nt_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hyena():
    cfg = HyenaConfig(d_model=16, n_layer=2, d_inner=32, max_seq_len=1024, emb_dim=5,
                      filter_order=8)
    return HyenaDNAAdapter.from_config(cfg, seed=0)


def nt(version):
    return NucleotideTransformerAdapter.from_config(tiny_nt_config(version), seed=0)


MODELS = {"hyenadna": hyena, "nt-v1": lambda: nt(1), "nt-v2": lambda: nt(2)}


@pytest.fixture(scope="module")
def seq():
    return np.random.default_rng(3).integers(0, 4, 600).astype(np.uint8)


def full(model, seq, key):
    tokens = torch.from_numpy(seq.astype(np.int64))[None]
    return model.activations(tokens, [key])[key][0].float().numpy()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("chunk,batch", [(97, 2), (600, 1)])
def test_chunked_extraction_equals_one_full_pass(name, chunk, batch, seq):
    model = MODELS[name]()
    key = model.select_keys(model.n_layers - 1)[0]
    both = extract_activations(model, seq, [key], strand="both", chunk_size=chunk,
                               batch_size=batch, progress=False)
    np.testing.assert_allclose(both[key, "+"], full(model, seq, key), atol=1e-4, rtol=1e-4)
    # no RC equivariance: the − strand is a pass over the reverse complement
    assert model.rc_permutation(key) is None
    np.testing.assert_allclose(both[key, "-"], full(model, reverse_complement(seq), key),
                               atol=1e-4, rtol=1e-4)
    paired = extract_activations(model, seq, [key], strand="paired", chunk_size=chunk,
                                 progress=False)[key]
    d = model.d(key)
    np.testing.assert_allclose(paired[:, d:], both[key, "-"][::-1], atol=1e-6)


def test_windows_longer_than_the_model_are_planned_within_its_length():
    from dnatlas.analysis.extract import plan_windows

    model = hyena()  # causal, max_length 1024
    windows = list(plan_windows(model, 0, 5000, 5000, 700))
    assert all(b - a == 1024 and a <= s < e <= b for s, e, a, b in windows)
    # each chunk sees the longest left context the model takes
    assert all(a == max(0, e - 1024) or b == 1024 for s, e, a, b in windows)
    assert windows[-1][1] == 5000
    bidirectional = nt(2)
    for s, e, a, b in plan_windows(bidirectional, 0, 20_000, 20_000, 4000):
        assert a <= s < e <= b and b - a == bidirectional.max_length


def _config_only_folder(path, kind):
    """A folder holding only config.json (enough for a random-init spec)."""
    path.mkdir()
    if kind == "hyenadna":
        cfg = HyenaConfig(d_model=16, n_layer=2, d_inner=32, max_seq_len=4096, filter_order=8)
        data = cfg.to_dict()
    else:
        data = tiny_nt_config(1 if kind == "nt-v1" else 2).to_dict()
        data["model_type"] = data.get("model_type") or "esm"
    (path / "config.json").write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("kind", ["hyenadna", "nt-v1", "nt-v2"])
def test_gram_and_neurons_cli_on_other_models(tmp_path, kind):
    from tests.test_extract import write_inputs

    _, fasta, gff = write_inputs(tmp_path / "in")
    prefix = "hyenadna" if kind == "hyenadna" else "nt"
    spec = f"{prefix}:{_config_only_folder(tmp_path / 'm', kind)}:random-init"
    width = 16 if kind == "hyenadna" else 32
    out = tmp_path / "gram.png"
    assert main(["gram", "--model", spec, "--genome", str(fasta), "--region", "chrA:101-400",
                 "--layer", "1", "--annotations", str(gff), "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    assert main(["neurons", "--model", spec, "--genome", str(fasta), "--annotations", str(gff),
                 "--layer", "1", "--tracks", "CDS", "--windows", "2", "--chunk-size", "700",
                 "--out", str(tmp_path / "neurons")]) == 0
    doc = json.loads((tmp_path / "neurons" / "catalog.json").read_text())
    assert doc["model"] == spec and len(doc["tracks"]["CDS"]["ranking"]) == min(20, width)
    meta = json.loads((tmp_path / "neurons" / "acts" / "meta.json").read_text())
    assert {a["strand"] for a in meta["arrays"]} == {"paired"}
    assert all(a["shape"][0] == 2 * width for a in meta["arrays"])


def test_random_init_needs_only_config_json(tmp_path):
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

    folder = tmp_path / "dnatlas"
    DNAtlas(DNAtlasConfig.preset("tiny", n_layers=2)).save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(InputError, match="weights"):
        load_model(str(folder))
    a = load_model(f"{folder}:random-init", seed=1)
    b = load_model(f"dnatlas:{folder}:random-init", seed=2)
    assert a.n_layers == 2 and a.fingerprint() != b.fingerprint()
    assert load_model(f"{folder}:random-init", seed=1).fingerprint() == a.fingerprint()


def test_damaged_weights_are_one_line_errors(tmp_path):
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

    folder = tmp_path / "m"
    DNAtlas(DNAtlasConfig.preset("tiny", n_layers=2)).save_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match="damaged"):
        load_model(str(folder))
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_model(str(folder))


def test_every_model_command_defaults_to_the_bundled_model():
    from dnatlas.cli import build_parser

    parser = build_parser()
    commands = [["extract", "-f", "x.fa", "-o", "o"], ["gram", "-o", "o.png"],
                ["neurons", "-f", "x", "-a", "y", "--layer", "0", "-o", "o"],
                ["sae", "train", "--data", "d", "--layer", "0", "--out", "o"],
                ["sae", "eval", "--sae", "s", "--data", "d"], ["figures"]]
    for argv in commands:
        assert parser.parse_args(argv).model is None, argv
    assert parse_model_spec(None) == parse_model_spec("default")
    assert load_model(None).name == "dnatlas:dnatlas-tiny-enterobacterales"
    assert load_model("default").fingerprint() == load_model(None).fingerprint()


def test_fingerprint_follows_the_weights():
    model = load_model("dnatlas:tiny:random-init", seed=0)
    before = model.fingerprint()
    assert load_model("dnatlas:tiny:random-init", seed=0).fingerprint() == before
    assert load_model("dnatlas:tiny:random-init", seed=1).fingerprint() != before


def test_saved_dnatlas_loads_through_transformers_automodel(tmp_path):
    transformers = pytest.importorskip("transformers")
    import dnatlas  # noqa: F401  (registers DNAtlas with transformers)
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

    torch.manual_seed(0)
    model = DNAtlas(DNAtlasConfig.preset("tiny", n_layers=3)).eval()
    model.save_pretrained(tmp_path / "m")
    config = transformers.AutoConfig.from_pretrained(tmp_path / "m")
    assert config.model_type == "dnatlas" and config.n_layers == 3
    loaded = transformers.AutoModel.from_pretrained(tmp_path / "m").eval()
    tokens = torch.randint(0, 6, (2, 300), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(tokens).logits, model(tokens).logits)


def _fake_hub_cache(cache, repo, files: dict, revision="0123456789abcdef0123456789abcdef01234567"):
    """A huggingface_hub cache entry as ``snapshot_download`` leaves it."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(revision)
    snap = root / "snapshots" / revision
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    return snap


def test_hf_spec_loads_from_the_local_cache_offline(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

    model = DNAtlas(DNAtlasConfig.preset("tiny", n_layers=2))
    model.save_pretrained(tmp_path / "m")
    files = {n: (tmp_path / "m" / n).read_bytes() for n in ("config.json", "model.safetensors")}
    _fake_hub_cache(tmp_path / "cache", "someone/tiny-dnatlas", files)
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    loaded = load_model("hf:someone/tiny-dnatlas")
    assert loaded.kind == "dnatlas" and loaded.name == "hf:someone/tiny-dnatlas"
    tokens = torch.randint(0, 4, (1, 200))
    with torch.no_grad():
        assert torch.equal(loaded.model(tokens).logits, model.eval()(tokens).logits)
    with pytest.raises(InputError, match="not in the local Hugging Face cache"):
        load_model("hf:someone/absent")


def test_checkpoints_with_legacy_parameter_names_load():
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

    for rcps in (True, False):
        cfg = DNAtlasConfig.preset("tiny", n_layers=2, rcps=rcps)
        model = DNAtlas(cfg).eval()
        legacy = {k.replace("stored_weight", "weight_half").replace("stored_bias", "bias_half"): v
                  for k, v in model.state_dict().items()}
        assert any(k.endswith("weight_half") for k in legacy)
        fresh = DNAtlas(cfg).eval()
        fresh.load_state_dict(legacy)
        tokens = torch.randint(0, 6, (1, 120))
        with torch.no_grad():
            assert torch.equal(fresh(tokens).logits, model(tokens).logits)


def test_codon_log_probs_only_where_the_model_predicts_triplets(seq):
    from dnatlas.architectures.dnatlas.windowed_mlm import masked_log_probs

    tokens = torch.from_numpy(seq[:200].astype(np.int64))[None]
    tokens[0, 50:53] = 5  # MASK
    dnatlas = load_model("dnatlas:tiny:random-init")
    assert dnatlas.predicts_codons
    lp = dnatlas.codon_log_probs(tokens)
    assert lp.shape == (1, 200, 64)
    torch.testing.assert_close(lp, masked_log_probs(dnatlas.logits(tokens), tokens), rtol=0,
                               atol=0)
    for name, make in MODELS.items():
        model = make()
        assert not model.predicts_codons, name
        with pytest.raises(InputError, match="windowed-MLM model with triplet outputs"):
            model.codon_log_probs(tokens)
