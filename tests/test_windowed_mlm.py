import itertools
import math

import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig, MarkovMasking
from dnatlas.architectures.dnatlas.windowed_mlm import (
    AMINO_ACIDS,
    INCONSISTENT_PENALTY,
    amino_acid_probs,
    codon_probs,
    codon_to_amino_acid,
    consistency_bias,
    loss_positions,
    mask_tokens,
    nucleotide_probs,
    triplet_targets,
    windowed_mlm_loss,
)

TRIPLETS = ["".join(t) for t in itertools.product("ACGT", repeat=3)]


def _consistent(tokens_row, l, t):
    for offset, base in zip((-1, 0, 1), TRIPLETS[t]):
        j = l + offset
        if 0 <= j < len(tokens_row) and tokens_row[j] < 4 and "ACGT"[tokens_row[j]] != base:
            return False
    return True


def test_triplet_index_convention():
    assert TRIPLETS[16 * 0 + 4 * 3 + 2] == "ATG"


def test_consistency_bias_equals_explicit_enumeration():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 6, (3, 12), generator=g)
    bias = consistency_bias(tokens)
    for b in range(3):
        row = tokens[b].tolist()
        for l in range(12):
            for t in range(64):
                expected = 0.0 if _consistent(row, l, t) else None
                if expected is None:
                    assert bias[b, l, t] <= INCONSISTENT_PENALTY
                else:
                    assert bias[b, l, t] == 0.0
    assert bias.dtype == torch.float32


def _brute_force_loss(logits, seq, mask):
    tokens = torch.where(mask, torch.full_like(seq, 5), seq)
    total, count = 0.0, 0
    for b in range(seq.shape[0]):
        row, truth = tokens[b].tolist(), seq[b].tolist()
        for l in range(1, seq.shape[1] - 1):
            trip = truth[l - 1:l + 2]
            if any(x == 4 for x in trip) or not mask[b, l - 1:l + 2].any():
                continue
            allowed = [t for t in range(64) if _consistent(row, l, t)]
            target = 16 * trip[0] + 4 * trip[1] + trip[2]
            assert target in allowed
            z = logits[b, l, allowed].double()
            total += -(logits[b, l, target].double() - torch.logsumexp(z, 0)).item()
            count += 1
    return total / count


def test_loss_equals_brute_force_reference():
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(0, 4, (2, 25), generator=g)
    seq[0, 4] = 4
    seq[1, 10] = 4
    mask = torch.rand(2, 25, generator=g) < 0.3
    mask[0, 0] = True    # masked edge: its own triplet is excluded, its neighbour's is not
    mask[1, 11] = True   # next to an N: triplets touching the N are excluded
    logits = torch.randn(2, 25, 64, generator=g) * 3
    ours = windowed_mlm_loss(logits, seq, mask).item()
    assert ours == pytest.approx(_brute_force_loss(logits, seq, mask), rel=1e-5)


def test_loss_positions_include_unmasked_centres_next_to_a_mask():
    seq = torch.zeros(1, 10, dtype=torch.long)
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, 5] = True
    assert loss_positions(seq, mask)[0].nonzero().squeeze(1).tolist() == [4, 5, 6]
    mask[0] = False
    mask[0, 0] = True
    assert loss_positions(seq, mask)[0].nonzero().squeeze(1).tolist() == [1]
    assert triplet_targets(seq)[0, 0] == -1 and triplet_targets(seq)[0, -1] == -1


def test_marginals_codons_and_amino_acids_sum_to_one():
    g = torch.Generator().manual_seed(2)
    seq = torch.randint(0, 4, (2, 30), generator=g)
    mask = torch.rand(2, 30, generator=g) < 0.5
    tokens = mask_tokens(seq, mask)
    logits = torch.randn(2, 30, 64, generator=g)
    p = nucleotide_probs(logits, tokens)
    assert torch.allclose(p.sum(-1), torch.ones(2, 30), atol=1e-5)
    known = tokens < 4  # unmasked nucleotides are certain
    assert torch.allclose(p[known].gather(-1, tokens[known][:, None]).squeeze(-1),
                          torch.ones(int(known.sum())), atol=1e-5)
    for strand in (1, -1):
        for frame in range(3):
            c = codon_probs(logits, tokens, frame, strand)
            aa = amino_acid_probs(logits, tokens, frame, strand)
            assert torch.allclose(c.sum(-1), torch.ones_like(c[..., 0]), atol=1e-5)
            assert torch.allclose(aa.sum(-1), torch.ones_like(aa[..., 0]), atol=1e-5)
            assert aa.shape[-1] == len(AMINO_ACIDS)


def test_translation_table_11():
    aa = codon_to_amino_acid(11)
    assert AMINO_ACIDS[aa[TRIPLETS.index("ATG")]] == "M"
    assert {TRIPLETS[i] for i in range(64) if AMINO_ACIDS[aa[i]] == "*"} == {"TAA", "TAG", "TGA"}
    assert AMINO_ACIDS[aa[TRIPLETS.index("TGA")]] == "*"
    assert AMINO_ACIDS[codon_to_amino_acid(4)[TRIPLETS.index("TGA")]] == "W"


def test_minus_strand_codons_are_reverse_complements():
    logits = torch.full((1, 9, 64), -20.0)
    logits[0, 4, TRIPLETS.index("CAT")] = 20.0  # forward CAT at 3..5 reads ATG on the - strand
    tokens = torch.full((1, 9), 5)
    c = codon_probs(logits, tokens, frame=0, strand=-1)
    assert c[0, 1].argmax().item() == TRIPLETS.index("ATG")
    aa = amino_acid_probs(logits, tokens, frame=0, strand=-1)
    assert AMINO_ACIDS[aa[0, 1].argmax()] == "M"


# --- agreement with the 48-forward-pass pseudo-likelihood (report section 2.2.1) -----------

CODON_POSITION_PROBS = torch.tensor([[0.7, 0.1, 0.1, 0.1],   # 1st codon position
                                     [0.1, 0.1, 0.1, 0.7],   # 2nd
                                     [0.25, 0.25, 0.4, 0.1]])  # 3rd


def _synthetic_batch(rng, B, n_codons):
    idx = torch.stack([torch.multinomial(CODON_POSITION_PROBS[i], B * n_codons, True, generator=rng)
                       for i in range(3)], dim=1)
    return idx.view(B, n_codons * 3)


def _train_tiny(steps=250):
    torch.manual_seed(0)
    cfg = DNAtlasConfig(d_model=16, n_neurons=48, n_layers=3, dilations=(1, 3, 9))
    model = DNAtlas(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = torch.Generator().manual_seed(0)
    masker = MarkovMasking(eligible_fraction=0.7, mask_rate=0.3)
    for step in range(steps):
        seq = _synthetic_batch(rng, 32, 12)
        mask = torch.from_numpy(masker.mask_batch(seq.shape[1], [(0, step, i) for i in range(32)]))
        loss = windowed_mlm_loss(model(mask_tokens(seq, mask)).logits, seq, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _pseudo_likelihood_codon_probs(model, tokens, centre):
    """48 forward passes: for each codon position and each identity of the other two,
    mask that position and read p(nucleotide | the other two)."""
    log_pll = torch.zeros(4, 4, 4)
    with torch.no_grad():
        for pos in range(3):
            others = [p for p in range(3) if p != pos]
            for x, y in itertools.product(range(4), repeat=2):
                t = tokens.clone()
                t[0, centre - 1 + others[0]] = x
                t[0, centre - 1 + others[1]] = y
                t[0, centre - 1 + pos] = 5
                p = nucleotide_probs(model(t).logits, t)[0, centre - 1 + pos]
                for n in range(4):
                    codon = [0, 0, 0]
                    codon[pos], codon[others[0]], codon[others[1]] = n, x, y
                    log_pll[tuple(codon)] += math.log(p[n].item())
    pll = log_pll.flatten().exp()
    return pll / pll.sum()


def test_one_pass_codon_and_amino_acid_probs_agree_with_48_pass_pseudo_likelihood():
    model = _train_tiny()
    rng = torch.Generator().manual_seed(5)
    seq = _synthetic_batch(rng, 1, 12)
    centre = 3 * 6 + 1  # middle of codon 6
    tokens = seq.clone()
    tokens[0, centre - 1:centre + 2] = 5
    with torch.no_grad():
        one_pass = codon_probs(model(tokens).logits, tokens, frame=0)[0, 6]
    pll = _pseudo_likelihood_codon_probs(model, tokens, centre)
    expected = torch.einsum("a,b,c->abc", *CODON_POSITION_PROBS).flatten()
    assert one_pass.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert 0.5 * (one_pass - pll).abs().sum() < 0.1          # total variation
    uniform = torch.full((64,), 1 / 64)
    assert 0.5 * (one_pass - expected).abs().sum() < 0.5 * 0.5 * (uniform - expected).abs().sum()
    aa_index = codon_to_amino_acid(11)
    aa_one = torch.zeros(21).index_add_(0, aa_index, one_pass)
    aa_pll = torch.zeros(21).index_add_(0, aa_index, pll)
    assert 0.5 * (aa_one - aa_pll).abs().sum() < 0.1
