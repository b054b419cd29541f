import pytest
import torch

from dnatlas.architectures.dnatlas.rcps import (
    RCConv1d,
    RCEmbedding,
    RCLinear,
    RCRMSNorm,
    RCTripletHead,
    rc_channels,
    triplet_rc_permutation,
)
from dnatlas.genome.alphabet import reverse_complement_tokens


def test_triplet_permutation_pairs_atg_with_cat_and_is_a_fixed_point_free_involution():
    P = triplet_rc_permutation()
    idx = lambda s: 16 * "ACGT".index(s[0]) + 4 * "ACGT".index(s[1]) + "ACGT".index(s[2])
    assert P[idx("ATG")] == idx("CAT")
    assert P[idx("TAA")] == idx("TTA")
    assert torch.equal(P[P], torch.arange(64))
    assert not torch.any(P == torch.arange(64))


def _rc(x):
    return rc_channels(x)


@pytest.mark.parametrize("rcps", [True, False])
def test_layers_are_equivariant_exactly_when_shared(rcps):
    torch.manual_seed(0)
    x = torch.randn(2, 31, 8, dtype=torch.float64)
    layers = [RCLinear(8, 6, rcps=rcps), RCConv1d(8, 6, 5, 3, rcps=rcps), RCRMSNorm(8, rcps=rcps)]
    for layer in layers:
        layer.double()
        for p in layer.parameters():  # make gains and biases non-trivial
            p.data.normal_()
        err = (layer(_rc(x)) - _rc(layer(x))).abs().max()
        assert (err < 1e-12) if rcps else (err > 1e-3)


def test_embedding_maps_complement_to_mirror():
    emb = RCEmbedding(6, 8)
    tokens = torch.randint(0, 6, (3, 17))
    assert torch.equal(emb(reverse_complement_tokens(tokens)), _rc(emb(tokens)))


def test_triplet_head_mirrors_reverse_complement_triplets():
    torch.manual_seed(1)
    head = RCTripletHead(8).double()
    head.stored_bias.data.normal_()
    x = torch.randn(2, 11, 8, dtype=torch.float64)
    P = triplet_rc_permutation()
    assert torch.allclose(head(_rc(x)), head(x).flip(1)[..., P], atol=1e-12)


def test_shared_layers_store_half_the_parameters():
    full = sum(p.numel() for p in RCConv1d(8, 6, 9, 1, rcps=False).parameters())
    half = sum(p.numel() for p in RCConv1d(8, 6, 9, 1, rcps=True).parameters())
    assert half * 2 == full
