"""HyenaDNA against HazyResearch's standalone reference outputs (tests/fixtures/hyenadna)."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dnatlas.architectures.hyenadna import load_hyenadna
from dnatlas.errors import InputError
from dnatlas.models.hyenadna import HyenaDNAAdapter

FIXTURE = Path(__file__).parent / "fixtures" / "hyenadna"
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def ref():
    return load_file(str(FIXTURE / "outputs.safetensors"))


@pytest.fixture(scope="module")
def adapter():
    return HyenaDNAAdapter.from_pretrained(FIXTURE)


def codes(ref):
    return ref["input_ids"] - 7  # the fixture's ids are A=7 C=8 G=9 T=10 N=11


def test_fixture_ids_are_the_character_tokenizer_table():
    data = json.loads((FIXTURE / "sequences.json").read_text())
    table = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
    assert data["input_ids"] == [[table[c] for c in s] for s in data["sequences"]]


def test_load_hyenadna_reproduces_reference_logits(ref):
    model = load_hyenadna(FIXTURE)
    with torch.no_grad():
        logits = model(ref["input_ids"])
    torch.testing.assert_close(logits, ref["logits"], **TOL)


def test_adapter_sites_reproduce_reference(adapter, ref):
    acts = adapter.activations(codes(ref), adapter.keys)
    for key in adapter.keys:
        torch.testing.assert_close(acts[key], ref[key], **TOL)
    last = adapter.model.hyena.backbone.ln_f(acts[f"blocks.{adapter.n_layers - 1}.residual"])
    torch.testing.assert_close(last, ref["final_hidden"], **TOL)


def test_next_nucleotide_log_probs(adapter, ref):
    lp = adapter.nucleotide_log_probs(codes(ref))
    want = torch.log_softmax(ref["logits"][:, :-1, 7:11], dim=-1)
    torch.testing.assert_close(lp[:, 1:], want, **TOL)
    torch.testing.assert_close(lp[:, 0], torch.full_like(lp[:, 0], -math.log(4)))
    changed = codes(ref).clone()
    changed[:, 20] = (changed[:, 20] + 1) % 4
    moved = adapter.nucleotide_log_probs(changed)
    torch.testing.assert_close(moved[:, :21], lp[:, :21])  # p <= 20 only sees inputs < 20
    assert not torch.allclose(moved[:, 21:], lp[:, 21:])


def test_mask_code_is_hyenadna_mask_id(adapter, ref):
    hidden = codes(ref).clone()
    hidden[:, 10] = 5
    ids = ref["input_ids"].clone()
    ids[:, 10] = 3
    with torch.no_grad():
        want = torch.log_softmax(adapter.model(ids)[:, 10:-1, 7:11], dim=-1)
    torch.testing.assert_close(adapter.nucleotide_log_probs(hidden)[:, 11:], want, **TOL)
    with pytest.raises(ValueError, match="nucleotide code"):
        adapter.activations(hidden, ["blocks.0.residual"])


def test_protocol_geometry_and_interventions(adapter, ref):
    assert adapter.kind == "hyenadna" and adapter.causal and adapter.receptive_field is None
    assert adapter.max_length == 64
    x = codes(ref)
    clean = adapter.mlm_loss(x)
    torch.testing.assert_close(adapter.mlm_loss(x, intervene={"blocks.0.residual": lambda h: h}), clean)
    assert not torch.allclose(adapter.mlm_loss(x, intervene={"blocks.0.mixer": torch.zeros_like}), clean)
    want = torch.nn.functional.cross_entropy(ref["logits"][:, :-1].reshape(-1, 16), ref["input_ids"][:, 1:].reshape(-1))
    torch.testing.assert_close(clean, want, **TOL)
    other = adapter.random_init(seed=3)
    assert other.fingerprint() != adapter.fingerprint()
    assert HyenaDNAAdapter.from_pretrained(FIXTURE).fingerprint() == adapter.fingerprint()


def hf_folder(tmp_path, checkpointed=False):
    """The fixture rewritten as an HF (``hyena.backbone.*``) or checkpointed original folder."""
    state = load_file(str(FIXTURE / "model.safetensors"))
    if checkpointed:
        state = {"model." + k.replace(".mixer.", ".mixer.layer.").replace(".mlp.", ".mlp.layer."): v
                 for k, v in state.items()}
        shutil.copy(FIXTURE / "config.json", tmp_path / "config.json")
    else:
        state = {"hyena." + k: v for k, v in state.items() if not k.endswith(("3.freq", "5.freq"))}
        cfg = load_hyenadna(FIXTURE).config.to_dict()
        (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file(state, str(tmp_path / "model.safetensors"))
    return tmp_path


@pytest.mark.parametrize("checkpointed", [False, True])
def test_other_checkpoint_layouts_load_the_same_model(tmp_path, ref, checkpointed):
    model = load_hyenadna(hf_folder(tmp_path, checkpointed))
    with torch.no_grad():
        torch.testing.assert_close(model(ref["input_ids"]), ref["logits"], **TOL)


def test_config_only_folder_builds_a_random_model(tmp_path, ref):
    shutil.copy(FIXTURE / "config.json", tmp_path / "config.json")
    adapter = HyenaDNAAdapter.from_config(tmp_path, seed=0)
    assert adapter.n_layers == 2 and adapter.d("blocks.1.mlp") == 16 and adapter.max_length == 64
    assert adapter.activations(codes(ref), ["blocks.1.residual"])["blocks.1.residual"].shape == (3, 40, 16)
    with pytest.raises(InputError, match="no model.safetensors"):
        HyenaDNAAdapter.from_pretrained(tmp_path)
