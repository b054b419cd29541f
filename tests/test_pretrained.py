"""The bundled default model: it loads, is the documented architecture, and has learned DNA."""

import math

import numpy as np
import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas
from dnatlas.architectures.dnatlas.config import DNAtlasConfig
from dnatlas.architectures.dnatlas.windowed_mlm import nucleotide_log_probs
from dnatlas.genome.alphabet import MASK
from dnatlas.models import default_model_path, load_model


@pytest.fixture(scope="module")
def ecoli_window():
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import bundled_genome_paths

    path = next(p for p in bundled_genome_paths() if "mg1655" in p.name)
    return next(iter(read_records(path))).seq[100_000:104_096].astype(np.int64)


def _masked_bits_per_nt(model, seq: np.ndarray, every: int = 7) -> float:
    tokens = torch.from_numpy(seq)[None].clone()
    masked = torch.zeros_like(tokens, dtype=torch.bool)
    masked[:, 3::every] = True
    tokens[masked] = MASK
    with torch.no_grad():
        logp = nucleotide_log_probs(model(tokens).logits, tokens)
    truth = torch.from_numpy(seq)[None]
    nll = -logp.gather(-1, truth.unsqueeze(-1)).squeeze(-1)[masked]
    return float(nll.mean()) / math.log(2)


def test_bundled_model_is_the_documented_tiny_model():
    model = load_model().model
    tiny = DNAtlasConfig.preset("tiny")
    assert (model.config.d_model, model.config.n_neurons, model.config.n_layers) == (
        tiny.d_model, tiny.n_neurons, tiny.n_layers)
    assert (default_model_path() / "model.safetensors").is_file()
    assert sum(p.numel() for p in model.parameters()) == 455_749


def test_bundled_model_predicts_masked_ecoli_nucleotides_far_better_than_untrained(ecoli_window):
    torch.manual_seed(0)
    trained = _masked_bits_per_nt(load_model().model, ecoli_window)
    untrained = _masked_bits_per_nt(DNAtlas(DNAtlasConfig.preset("tiny")).eval(), ecoli_window)
    assert untrained > 1.95 and trained < 1.85, (trained, untrained)
