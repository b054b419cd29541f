import re

import numpy as np
import pytest
import torch

from dnatlas.genome.alphabet import (
    COMPLEMENT,
    MASK,
    N,
    decode,
    encode,
    gc_content,
    reverse_complement,
    reverse_complement_str,
    reverse_complement_tokens,
)


def test_encode_codes_and_iupac():
    assert encode("ACGTN").tolist() == [0, 1, 2, 3, 4]
    assert encode(b"acgtu").tolist() == [0, 1, 2, 3, 3]
    assert set(encode("RYSWKMBDHVryswkmbdhv").tolist()) == {N}
    assert encode("").shape == (0,) and encode("A").dtype == np.uint8


@pytest.mark.parametrize("seq, char, position", [
    ("ACGX", "'X'", 3), ("AC-G", "'-'", 2), ("ACé", "'é'", 2), (b"A\x00", "'\\x00'", 1),
])
def test_encode_names_the_invalid_character(seq, char, position):
    with pytest.raises(ValueError, match=re.escape(f"{char} at position {position}")):
        encode(seq)


def test_decode_and_mask():
    assert decode(np.array([0, 1, 2, 3, 4, MASK])) == "ACGTN*"


def test_reverse_complement_round_trip():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 6, size=(3, 50)).astype(np.uint8)
    rc = reverse_complement(codes)
    assert np.array_equal(reverse_complement(rc), codes)
    assert np.array_equal(rc[1], COMPLEMENT[codes[1]][::-1])
    assert reverse_complement_str("AACGTNR") == "NNACGTT"


def test_reverse_complement_tokens_matches_numpy():
    codes = np.random.default_rng(1).integers(0, 6, size=(2, 17))
    tokens = torch.as_tensor(codes, dtype=torch.long)
    out = reverse_complement_tokens(tokens)
    assert out.dtype == torch.long
    assert np.array_equal(out.numpy(), reverse_complement(codes))


def test_gc_content():
    assert gc_content(encode("GGCCATNN")) == pytest.approx(4 / 6)
    assert np.isnan(gc_content(encode("NNN")))
