"""Nucleotide Transformer v1/v2 against InstaDeep's reference outputs (tests/fixtures/nt)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import encode
from dnatlas.models.nucleotide_transformer import (
    PAD,
    V1,
    V2,
    NucleotideTransformerAdapter,
    detect_layout,
    tiny_nt_config,
    tokenize,
)

FIXTURES = Path(__file__).parent / "fixtures" / "nt"
ATOL = 2e-4


def fixture(version):
    folder = FIXTURES / f"v{version}"
    tokens = json.loads((folder / "reference_tokens.json").read_text())
    return folder, tokens, load_file(str(folder / "reference_outputs.safetensors"))


def codes_of(seqs):
    """Right-pad with A so the rows stack; callers only read each row's own length."""
    width = max(map(len, seqs))
    return np.stack([np.r_[encode(s), np.zeros(width - len(s), dtype=np.uint8)] for s in seqs])


@pytest.fixture(scope="module", params=[1, 2])
def reference(request):
    if request.param == 1:
        pytest.importorskip("transformers")
    folder, tokens, outputs = fixture(request.param)
    adapter = NucleotideTransformerAdapter.from_pretrained(folder)
    return request.param, adapter, tokens, outputs


def test_vocabulary_layouts_match_instadeep():
    v1, v2 = V1.vocabulary(), V2.vocabulary()
    assert len(v1) == len(v2) == 4107
    assert v2[:6] == ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    assert v2.index("AAAAAA") == 6 and v2.index("A") == 4102 and v2.index("N") == 4106
    assert v1.index("AAAAAA") == 4 and v1.index("A") == 4100 and v1.index("<eos>") == 4105
    assert v2[6:4102] == v1[4:4100]


@pytest.mark.parametrize("version", [1, 2])
def test_tokenizer_gives_reference_ids(version):
    _, tokens, outputs = fixture(version)
    layout = V1 if version == 1 else V2
    for b, seq in enumerate(tokens["sequences"]):
        ids, _, _ = tokenize(encode(seq)[None], layout)
        ref = np.array(tokens["input_ids"][b])
        assert ids[0].tolist() == ref[ref != PAD].tolist()
        assert [layout.vocabulary()[i] for i in ids[0]] == [t for t in tokens["tokens"][b] if t != "<pad>"]
    assert np.array_equal(outputs["input_ids"].numpy(), np.array(tokens["input_ids"]))


def test_model_reproduces_reference_hidden_states_and_logits(reference):
    version, adapter, _, ref = reference
    assert adapter.version == version and adapter.layout is (V1 if version == 1 else V2)
    ids = ref["input_ids"]
    real = ids != PAD
    logits, acts = adapter._forward(ids, adapter.keys, {}, real)
    for i in range(adapter.n_layers - 1):
        torch.testing.assert_close(acts[f"blocks.{i}.residual"][real], ref[f"hidden_{i}"][real],
                                   atol=ATOL, rtol=1e-4)
    final_ln = adapter.model.esm.encoder.emb_layer_norm_after
    last = final_ln(acts[f"blocks.{adapter.n_layers - 1}.residual"])
    torch.testing.assert_close(last[real], ref["final_embeddings"][real], atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(logits[..., ref["logit_columns"]][real], ref["logits_at_columns"][real],
                               atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(torch.logsumexp(logits, -1)[real], ref["logsumexp"][real],
                               atol=ATOL, rtol=1e-4)


def test_activations_are_the_reference_per_nucleotide(reference):
    _, adapter, tokens, ref = reference
    seqs = tokens["sequences"]
    acts = adapter.activations(torch.from_numpy(codes_of(seqs)), ["blocks.0.residual"])["blocks.0.residual"]
    for b, seq in enumerate(seqs):  # one row at a time: the padded-with-A rows tokenise differently
        row = adapter.activations(torch.from_numpy(encode(seq)[None]), ["blocks.0.residual"])
        _, pos, _ = tokenize(encode(seq)[None], adapter.layout)
        torch.testing.assert_close(row["blocks.0.residual"][0], ref["hidden_0"][b, pos[0]],
                                   atol=ATOL, rtol=1e-4)
    assert acts.shape == (len(seqs), max(map(len, seqs)), adapter.d("blocks.0.residual"))


def expected_marginals(kmer_logits, layout):
    """Reference marginal of each 6-mer position, by brute force over the 6-mer strings."""
    kmers = layout.vocabulary()[layout.kmer_offset:layout.single_offset]
    lp = torch.log_softmax(kmer_logits.double(), -1)
    out = torch.empty(6, 4, dtype=torch.float64)
    for j in range(6):
        for c, base in enumerate("ACGT"):
            out[j, c] = torch.logsumexp(lp[[i for i, s in enumerate(kmers) if s[j] == base]], 0)
    return out


def test_masked_nucleotide_log_probs_marginalise_the_reference(reference):
    _, adapter, tokens, ref = reference
    seqs, layout = tokens["sequences"], adapter.layout
    hidden_at = {0: 2, 2: 15, 3: 8}  # one hidden base inside each of the reference's masked tokens
    for (b, t), masked_logits in zip(tokens["masked_tokens"], ref["masked_logits"]):
        codes = encode(seqs[b])[None].astype(np.int64)
        codes[0, hidden_at[b]] = 5
        lp = adapter.nucleotide_log_probs(torch.from_numpy(codes))
        assert lp.shape == (1, len(seqs[b]), 4)
        torch.testing.assert_close(lp.exp().sum(-1), torch.ones(1, len(seqs[b])), atol=1e-5, rtol=0)
        _, pos, _ = tokenize(np.where(codes == 5, 0, codes), layout)
        cover = np.flatnonzero(pos[0] == t)
        if len(cover) == 6:  # a 6-mer: each of its positions gets its own marginal
            want = expected_marginals(masked_logits[layout.kmer_offset:layout.single_offset], layout)
        else:                # a single-nucleotide token: the A C G T single-token logits
            singles = masked_logits[layout.single_offset + torch.tensor([0, 2, 3, 1])]
            want = torch.log_softmax(singles.double(), -1)[None]
        torch.testing.assert_close(lp[0, cover].double(), want, atol=ATOL, rtol=1e-4)


def test_max_length_is_the_token_limit_in_nucleotides(reference):
    version, adapter, _, _ = reference
    cfg = adapter.model.config
    assert adapter.max_length == (cfg.max_position_embeddings - cfg.pad_token_id - 2) * 6
    if version == 1:  # learned positions: 32 tokens -> <cls> + 31 6-mers
        assert adapter.max_length == 186
        adapter.activations(torch.zeros(1, 186, dtype=torch.long), ["blocks.0.residual"])
        with pytest.raises(ValueError, match="at most"):
            adapter.activations(torch.zeros(1, 192, dtype=torch.long), ["blocks.0.residual"])
    assert adapter.kind == "nt" and not adapter.causal and adapter.receptive_field is None
    assert adapter.rc_permutation("blocks.0.residual") is None


def test_interventions_losses_and_fingerprints(reference):
    _, adapter, _, _ = reference
    codes = torch.from_numpy(np.stack([encode("ACGTAGGCTTACGATCGATTACGN" * 2)] * 3))
    clean = adapter.mlm_loss(codes, seed=1)
    assert torch.isfinite(clean)
    key = "blocks.0.residual"
    torch.testing.assert_close(adapter.mlm_loss(codes, intervene={key: lambda h: h}, seed=1), clean)
    assert not torch.allclose(adapter.mlm_loss(codes, intervene={key: torch.zeros_like}, seed=1), clean)
    lp = adapter.nucleotide_log_probs(codes)
    assert not torch.allclose(adapter.nucleotide_log_probs(codes, intervene={key: torch.zeros_like}), lp)
    zeroed = adapter.activations(codes, ["blocks.1.residual"], intervene={key: torch.zeros_like})
    assert not torch.allclose(zeroed["blocks.1.residual"], adapter.activations(codes, ["blocks.1.residual"])["blocks.1.residual"])
    other = adapter.random_init(seed=5)
    assert other.version == adapter.version and not torch.allclose(other.mlm_loss(codes, seed=1), clean)
    assert other.fingerprint() != adapter.fingerprint()
    again = NucleotideTransformerAdapter.from_pretrained(FIXTURES / f"v{adapter.version}")
    assert again.fingerprint() == adapter.fingerprint()


def test_padding_does_not_change_a_row():
    adapter = NucleotideTransformerAdapter.from_config(tiny_nt_config(2), seed=0)
    codes = torch.from_numpy(np.stack([encode("ACGTACGTACGTAAC"), encode("ACNGTTTTTTTGCAN")]))
    both = adapter.activations(codes, ["blocks.1.residual"])["blocks.1.residual"]
    alone = adapter.activations(codes[:1], ["blocks.1.residual"])["blocks.1.residual"]
    torch.testing.assert_close(alone[0], both[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(both[0, 0], both[0, 5]) and not torch.equal(both[0, 5], both[0, 6])


@pytest.mark.parametrize("version", [1, 2])
def test_config_only_folder_builds_a_random_model(tmp_path, version):
    if version == 1:
        pytest.importorskip("transformers")
    shutil.copy(FIXTURES / f"v{version}" / "config.json", tmp_path / "config.json")
    adapter = NucleotideTransformerAdapter.from_config(tmp_path, seed=3)
    assert adapter.version == version and adapter.n_layers == 3
    acts = adapter.activations(torch.zeros(1, 20, dtype=torch.long), ["blocks.2.residual"])
    assert acts["blocks.2.residual"].shape == (1, 20, 16)
    with pytest.raises(InputError, match="random-init"):
        NucleotideTransformerAdapter.from_pretrained(tmp_path)


def write_config(folder, **changes):
    folder.mkdir(exist_ok=True)
    cfg = json.loads((FIXTURES / "v2" / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("changes,message", [
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"vocab_size": 4105}, "vocab_size"),
    ({"vocab_size": 4200}, "vocab_size"),
    ({"token_dropout": True}, "token_dropout"),
])
def test_unsupported_configs_are_refused_in_one_line(tmp_path, changes, message):
    folder = write_config(tmp_path / "ckpt", **changes)
    shutil.copy(FIXTURES / "v2" / "model.safetensors", folder)
    for build in (NucleotideTransformerAdapter.from_pretrained, NucleotideTransformerAdapter.from_config):
        with pytest.raises(InputError, match=message) as err:
            build(folder)
        assert "\n" not in str(err.value)


def test_vocab_file_decides_the_layout(tmp_path):
    folder = write_config(tmp_path / "ckpt")
    (folder / "vocab.txt").write_text("\n".join(V2.vocabulary()) + "\n")
    assert detect_layout({"vocab_size": 4107}, 2, folder) is V2
    (folder / "vocab.txt").write_text("\n".join(V1.vocabulary()) + "\n")
    assert detect_layout({"vocab_size": 4107}, 2, folder) is V1
    (folder / "vocab.txt").write_text("\n".join(["<pad>", "<unk>", *V2.vocabulary()[2:]]) + "\n")
    with pytest.raises(InputError, match="vocab.txt"):
        detect_layout({"vocab_size": 4107}, 2, folder)


def test_checkpoint_with_foreign_weights_is_refused(tmp_path):
    from safetensors.torch import save_file

    folder = write_config(tmp_path / "ckpt")
    state = load_file(str(FIXTURES / "v2" / "model.safetensors"))
    state["esm.encoder.layer.0.attention.self.distance_embedding.weight"] = torch.zeros(3, 8)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="distance_embedding"):
        NucleotideTransformerAdapter.from_pretrained(folder)
    del state["esm.encoder.layer.0.attention.self.distance_embedding.weight"]
    state["esm.embeddings.position_embeddings.weight"] = torch.zeros(2050, 16)  # stored, unused
    del state["esm.encoder.layer.0.attention.self.rotary_embeddings.inv_freq"]  # derived
    save_file(state, str(folder / "model.safetensors"))
    NucleotideTransformerAdapter.from_pretrained(folder)
