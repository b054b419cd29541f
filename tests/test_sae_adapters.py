"""Adapters: NT 6-mer tokenisation and nucleotide alignment, HyenaDNA, DNAtlas."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dnatlas.architectures.hyenadna import HyenaConfig, HyenaDNA, fft_causal_conv
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import decode, encode
from dnatlas.models import load_model, parse_model_spec
from dnatlas.models.hyenadna import HyenaDNAAdapter
from dnatlas.models.nucleotide_transformer import (
    CLS,
    PAD,
    NucleotideTransformerAdapter,
    nt_vocabulary,
    tiny_nt_config,
    tokenize,
)

VOCAB = nt_vocabulary()


def nt_reference_tokens(seq: str, k: int = 6) -> list[str]:
    """InstaDeep's algorithm, written out: split at N, k-mers from each piece's start, tail as singles."""
    tokens = []
    pieces = seq.split("N")
    for i, piece in enumerate(pieces):
        full = len(piece) // k * k
        tokens += [piece[j:j + k] for j in range(0, full, k)]
        tokens += list(piece[full:])
        if i < len(pieces) - 1:
            tokens.append("N")
    return tokens


def tokens_of(seqs):
    codes = np.stack([encode(s) for s in seqs])
    ids, pos, n = tokenize(codes)
    return codes, ids, pos, n


def test_nt_vocabulary_order():
    assert len(VOCAB) == 4107
    assert VOCAB[:4] == ["<unk>", "<pad>", "<mask>", "<cls>"]
    assert VOCAB[4:8] == ["AAAAAA", "AAAAAT", "AAAAAC", "AAAAAG"]
    assert VOCAB[4099] == "GGGGGG"
    assert VOCAB[4100:4107] == ["A", "T", "C", "G", "N", "<eos>", "<bos>"]


@pytest.mark.parametrize("seq,expected", [
    ("ACGTACGTAC", ["ACGTAC", "G", "T", "A", "C"]),                      # tail of 4
    ("ACGTACGTACGT", ["ACGTAC", "GTACGT"]),                              # exact multiple
    ("AAAAANAAAAAAA", list("AAAAA") + ["N", "AAAAAA", "A"]),             # N restarts the grid
    ("NNACGTAC", ["N", "N", "ACGTAC"]),
    ("ACGTACN", ["ACGTAC", "N"]),
    ("CCN", ["C", "C", "N"]),
])
def test_nt_tokenize_examples(seq, expected):
    _, ids, pos, n = tokens_of([seq])
    assert [VOCAB[i] for i in ids[0]] == ["<cls>", *expected]
    assert n[0] == len(expected)
    # each nucleotide maps to the token that contains it
    for p, nucleotide in enumerate(seq):
        token = VOCAB[ids[0, pos[0, p]]]
        start = int(np.flatnonzero(pos[0] == pos[0, p])[0])
        assert token == seq[start:start + len(token)] and nucleotide in token


def test_nt_tokenize_matches_reference_on_random_windows():
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(40):
        codes = rng.integers(0, 4, size=50)
        codes[rng.random(50) < rng.uniform(0, 0.2)] = 4
        seqs.append(decode(codes))
    codes, ids, pos, n = tokens_of(seqs)
    assert ids.shape[1] == 1 + n.max()
    for b, seq in enumerate(seqs):
        ref = nt_reference_tokens(seq)
        got = [VOCAB[i] for i in ids[b, 1:1 + n[b]]]
        assert got == ref
        assert np.all(ids[b, 1 + n[b]:] == PAD) and ids[b, 0] == CLS
        # alignment: concatenating each token once, in order, gives back the sequence
        firsts = np.r_[True, pos[b, 1:] != pos[b, :-1]]
        assert "".join(VOCAB[ids[b, pos[b, p]]] for p in np.flatnonzero(firsts)) == seq


@pytest.fixture(scope="module")
def nt():
    pytest.importorskip("transformers")
    return NucleotideTransformerAdapter.from_config(tiny_nt_config(1, hidden_size=32, intermediate_size=64))


def test_nt_activations_are_per_nucleotide(nt):
    seqs = ["ACGTACGTACGTAAC", "ACNGTTTTTTTGCAN"]
    codes = torch.from_numpy(np.stack([encode(s) for s in seqs]))
    acts = nt.activations(codes, ["blocks.0.residual", "blocks.1.residual"])
    assert acts["blocks.1.residual"].shape == (2, 15, 32)
    ids, pos, n = tokenize(codes.numpy())
    with torch.no_grad():
        hidden = nt.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(ids != PAD).long(),
                          output_hidden_states=True).hidden_states[1]
    a = acts["blocks.0.residual"]
    for b in range(2):
        for p in range(15):
            torch.testing.assert_close(a[b, p], hidden[b, pos[b, p]])
    # the six nucleotides of the first 6-mer share one vector; the 7th does not
    assert torch.equal(a[0, 0], a[0, 5]) and not torch.equal(a[0, 5], a[0, 6])
    # padding does not change a row: row 0 alone equals row 0 in the batch
    alone = nt.activations(codes[:1], ["blocks.1.residual"])["blocks.1.residual"]
    torch.testing.assert_close(alone[0], acts["blocks.1.residual"][0], atol=1e-5, rtol=1e-5)


def test_nt_mlm_loss_and_interventions(nt):
    codes = torch.from_numpy(np.stack([encode("ACGTAGGCTTACGATCGATTACGN" * 2)] * 3))
    clean = nt.mlm_loss(codes, seed=1)
    assert torch.isfinite(clean)
    same = nt.mlm_loss(codes, intervene={"blocks.0.residual": lambda h: h}, seed=1)
    torch.testing.assert_close(same, clean)
    zero = nt.mlm_loss(codes, intervene={"blocks.0.residual": torch.zeros_like}, seed=1)
    assert not torch.allclose(zero, clean)
    other = nt.random_init(seed=5)
    assert not torch.allclose(other.mlm_loss(codes, seed=1), clean)


def test_nt_rejects_windows_longer_than_its_positions():
    pytest.importorskip("transformers")
    small = NucleotideTransformerAdapter.from_config(tiny_nt_config(1, hidden_size=16, intermediate_size=32,
                                                                     max_position_embeddings=12))
    small.activations(torch.zeros(1, 54, dtype=torch.long), ["blocks.0.residual"])  # 9 6-mers + CLS
    with pytest.raises(ValueError, match="at most"):
        small.activations(torch.zeros(1, 60, dtype=torch.long), ["blocks.0.residual"])


def tiny_hyena_cfg(**kw):
    base = dict(d_model=16, n_layer=2, d_inner=32, max_seq_len=64, emb_dim=5, filter_order=8,
                activation_freq=10)
    base.update(kw)
    return HyenaConfig(**base)


def test_hyena_state_dict_names_match_published_layout():
    names = set(HyenaDNA(tiny_hyena_cfg()).state_dict())
    for name in [
        "hyena.backbone.embeddings.word_embeddings.weight",
        "hyena.backbone.layers.0.mixer.in_proj.weight",
        "hyena.backbone.layers.0.mixer.out_proj.bias",
        "hyena.backbone.layers.0.mixer.short_filter.weight",
        "hyena.backbone.layers.0.mixer.filter_fn.bias",
        "hyena.backbone.layers.0.mixer.filter_fn.pos_emb.z",
        "hyena.backbone.layers.0.mixer.filter_fn.pos_emb.t",
        "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.0.weight",
        "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.1.freq",
        "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.6.weight",
        "hyena.backbone.layers.0.mixer.filter_fn.modulation.deltas",
        "hyena.backbone.layers.1.norm1.weight",
        "hyena.backbone.layers.1.mlp.fc2.weight",
        "hyena.backbone.ln_f.bias",
        "lm_head.weight",
    ]:
        assert name in names, name
    model = HyenaDNA(tiny_hyena_cfg())
    assert model.hyena.backbone.embeddings.word_embeddings.weight.shape == (16, 16)  # 12 -> 16
    assert model.hyena.backbone.layers[0].mixer.in_proj.weight.shape == (48, 16)


def test_fft_conv_is_causal_convolution():
    g = torch.Generator().manual_seed(0)
    u, k, D = torch.randn(2, 3, 10, generator=g), torch.randn(3, 10, generator=g), torch.randn(3, generator=g)
    ref = torch.zeros_like(u)
    for t in range(10):
        for s in range(t + 1):
            ref[..., t] += u[..., s] * k[:, t - s]
    torch.testing.assert_close(fft_causal_conv(u, k, D), ref + u * D[:, None], atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def hyena():
    return HyenaDNAAdapter.from_config(tiny_hyena_cfg(), seed=0)


def test_hyena_activations_causal_and_per_nucleotide(hyena):
    codes = torch.randint(0, 5, (2, 40), generator=torch.Generator().manual_seed(1))
    keys = ["blocks.0.residual", "blocks.1.mixer", "blocks.1.residual"]
    acts = hyena.activations(codes, keys)
    assert all(acts[k].shape == (2, 40, 16) for k in keys)
    changed = codes.clone()
    changed[:, 25] = (changed[:, 25] + 1) % 4
    acts2 = hyena.activations(changed, keys)
    for k in keys:
        torch.testing.assert_close(acts2[k][:, :25], acts[k][:, :25])
        assert not torch.allclose(acts2[k][:, 25:], acts[k][:, 25:])
    # the residual stream equals the model's own forward pass
    with torch.no_grad():
        logits = hyena.model(codes + 7)
    assert logits.shape == (2, 40, 16)


def test_hyena_mlm_loss_and_random_init(hyena):
    codes = torch.randint(0, 4, (2, 32), generator=torch.Generator().manual_seed(2))
    clean = hyena.mlm_loss(codes)
    torch.testing.assert_close(hyena.mlm_loss(codes, intervene={"blocks.0.residual": lambda h: h}), clean)
    assert not torch.allclose(hyena.mlm_loss(codes, intervene={"blocks.0.residual": torch.zeros_like}), clean)
    assert not torch.allclose(hyena.random_init(seed=3).mlm_loss(codes), clean)
    with pytest.raises(ValueError, match="no activation"):
        hyena.activations(codes, ["blocks.9.residual"])


def _write_hf_checkpoint(model, directory, original=False):
    directory.mkdir()
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    # safetensors keeps one copy of the shared sine frequency, as the published files do
    for k in list(state):
        if k.endswith(".freq") and not k.endswith("implicit_filter.1.freq"):
            del state[k]
    cfg = model.config.to_dict()
    if original:
        state = {"model." + k.removeprefix("hyena."): v for k, v in state.items()}
        cfg = {"d_model": cfg["d_model"], "n_layer": cfg["n_layer"], "d_inner": cfg["d_inner"],
               "vocab_size": 12, "pad_vocab_size_multiple": 8,
               "layer": {"_name_": "hyena", "emb_dim": cfg["emb_dim"], "filter_order": cfg["filter_order"],
                         "local_order": 3, "l_max": cfg["max_seq_len"], "w": cfg["activation_freq"]}}
        torch.save(state, directory / "pytorch_model.bin")
    else:
        save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("original", [False, True])
def test_hyena_from_pretrained_local_folder(tmp_path, hyena, original):
    with torch.no_grad():  # make the shared frequency distinguishable from its default
        hyena.model.layers[0].mixer.filter_fn.implicit_filter[1].freq.fill_(3.0)
    _write_hf_checkpoint(hyena.model, tmp_path / "ckpt", original)
    loaded = HyenaDNAAdapter.from_pretrained(tmp_path / "ckpt")
    codes = torch.randint(0, 4, (1, 30), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(loaded.activations(codes, ["blocks.1.residual"])["blocks.1.residual"],
                               hyena.activations(codes, ["blocks.1.residual"])["blocks.1.residual"])
    assert loaded.model.layers[0].mixer.filter_fn.implicit_filter[3].freq[0, 0].item() == 3.0


def test_dnatlas_adapter():
    adapter = load_model("dnatlas:tiny:random-init")
    codes = torch.randint(0, 5, (2, 64), generator=torch.Generator().manual_seed(5))
    key = adapter.key(1, "neurons")
    acts = adapter.activations(codes, [key, "blocks.0.residual", "embed"])
    assert acts[key].shape == (2, 64, adapter.d(key))
    assert acts["blocks.0.residual"].shape[-1] == adapter.d("blocks.0.residual")
    clean = adapter.mlm_loss(codes, seed=3)
    torch.testing.assert_close(adapter.mlm_loss(codes, intervene={key: lambda a: a}, seed=3), clean)
    assert not torch.allclose(adapter.mlm_loss(codes, intervene={"blocks.0.residual": torch.zeros_like}, seed=3),
                              clean)
    assert not torch.allclose(adapter.random_init(seed=1).mlm_loss(codes, seed=3), clean)


def test_model_specs(tmp_path):
    from dnatlas.models import ModelSpec

    assert parse_model_spec("hyenadna:/a/b") == ModelSpec("hyenadna", "/a/b", text="hyenadna:/a/b")
    spec = parse_model_spec("nt:/x:random-init")
    assert (spec.kind, spec.target, spec.random_init) == ("nt", "/x", True)
    spec = parse_model_spec("default")
    assert (spec.kind, spec.target, spec.random_init) == ("dnatlas", "default", False)
    spec = parse_model_spec("hf:org/name@v1:random-init")
    assert spec.hub and spec.target == "org/name@v1" and spec.random_init
    assert parse_model_spec("/some/folder").kind is None  # detected from config.json
    with pytest.raises(InputError):
        load_model("gpt:/x")  # an unknown kind is a path that does not exist
    with pytest.raises(InputError):
        load_model("hyenadna:" + str(tmp_path / "missing"))
    adapter = load_model("dnatlas:tiny:random-init")
    assert adapter.n_layers >= 1
    pytest.importorskip("transformers")
    assert isinstance(load_model("nt:random-init"), NucleotideTransformerAdapter)
