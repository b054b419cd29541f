"""Nucleotide Transformer (Dalla-Torre et al. 2023) through transformers' ``EsmForMaskedLM``.

Tokenisation (ours, matching InstaDeep's ``NucleotidesKmersTokenizer`` with k = 6). Each
window is cut at every N; each maximal N-free run is read left to right in non-overlapping
6-mers starting at the run's first base; the run's tail shorter than 6 is read as single
nucleotides; every N is its own single-nucleotide token. A ``<cls>`` token is prepended
(as the published HF tokenizer does); rows of a batch are right-padded with ``<pad>``.

Vocabulary (NT's published order; 4107 tokens, NT v1 checkpoints use the first 4105)::

    0 <unk>   1 <pad>   2 <mask>   3 <cls>
    4 .. 4099      the 4096 6-mers over the alphabet A, T, C, G in itertools.product order
                   (AAAAAA, AAAAAT, AAAAAC, AAAAAG, AAAATA, ...): id = 4 + sum_j digit_j 4^(5-j)
                   with digit A=0 T=1 C=2 G=3 (note: not our A C G T code order)
    4100 A  4101 T  4102 C  4103 G  4104 N          single nucleotides
    4105 <eos>  4106 <bos>

Nucleotide alignment. A token's activation vector is given to each nucleotide it covers:
the six nucleotides of a 6-mer all receive that token's vector, a single-nucleotide token
maps 1:1, and ``<cls>``/``<pad>`` are dropped, so ``activations`` returns (B, L, d) for
windows of L nucleotides whatever their N content. ``blocks.{i}.residual`` is the output of
ESM layer i (before the final ``emb_layer_norm_after``).

``mlm_loss`` masks 15 % of the sequence tokens (seeded, ``<mask>`` everywhere; no 80/10/10
replacement) and returns the cross-entropy over masked tokens.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dnatlas.errors import InputError
from dnatlas.sae.adapters.base import ActivationAdapter, Intervention, mask_positions

K = 6
UNK, PAD, MASK, CLS = 0, 1, 2, 3
KMER_OFFSET = 4
SINGLE_OFFSET = KMER_OFFSET + 4**K  # 4100
EOS, BOS = SINGLE_OFFSET + 5, SINGLE_OFFSET + 6
VOCAB_SIZE = SINGLE_OFFSET + 7  # 4107
NT_ALPHABET = "ATCG"
#: our code (A=0 C=1 G=2 T=3) -> NT digit (A=0 T=1 C=2 G=3)
CODE_TO_DIGIT = np.array([0, 2, 3, 1, 0], dtype=np.int64)
#: our code (A C G T N) -> single-nucleotide token id
CODE_TO_SINGLE = SINGLE_OFFSET + np.array([0, 2, 3, 1, 4], dtype=np.int64)


def nt_vocabulary() -> list[str]:
    """The 4107 tokens in id order (see module docstring)."""
    kmers = ["".join(p) for p in product(NT_ALPHABET, repeat=K)]
    return ["<unk>", "<pad>", "<mask>", "<cls>", *kmers, *NT_ALPHABET, "N", "<eos>", "<bos>"]


def tokenize(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokenise windows of codes (B, L) as NT does (see module docstring).

    Returns:
        ids: int64 (B, 1 + T_max): ``<cls>``, the tokens, ``<pad>`` to the longest row.
        position_token: int64 (B, L): column of ``ids`` holding each nucleotide's token.
        n_tokens: int64 (B,): tokens per row, without ``<cls>``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError("codes must have shape (B, L)")
    if codes.size and (codes.min() < 0 or codes.max() > 4):
        raise ValueError("codes must be nucleotide codes 0..4 (A C G T N)")
    B, L = codes.shape
    idx = np.arange(L)
    is_n = codes == 4
    run_start = np.maximum.accumulate(np.where(is_n, idx + 1, 0), axis=1)
    next_n = np.minimum.accumulate(np.where(is_n, idx, L)[:, ::-1], axis=1)[:, ::-1]
    r = idx - run_start
    run_len = next_n - run_start
    in_kmer = ~is_n & (r // K < run_len // K)
    starts = is_n | ~in_kmer | (r % K == 0)
    tok = np.cumsum(starts, axis=1) - 1
    n_tokens = tok[:, -1] + 1 if L else np.zeros(B, dtype=np.int64)
    # 6-mer value at every position (only read at 6-mer starts)
    digits = np.pad(CODE_TO_DIGIT[codes], ((0, 0), (0, K - 1)))
    windows = np.lib.stride_tricks.sliding_window_view(digits, K, axis=1)[:, :L]
    kmer = windows @ (4 ** np.arange(K - 1, -1, -1))
    token_id = np.where(in_kmer, KMER_OFFSET + kmer, CODE_TO_SINGLE[codes])
    ids = np.full((B, 1 + int(n_tokens.max(initial=0))), PAD, dtype=np.int64)
    ids[:, 0] = CLS
    b, p = np.nonzero(starts)
    ids[b, 1 + tok[b, p]] = token_id[b, p]
    return ids, 1 + tok, n_tokens


def tiny_esm_config(**overrides):
    """A small random-init ``EsmConfig`` with NT's vocabulary (for tests and controls)."""
    from transformers import EsmConfig

    kw = dict(vocab_size=VOCAB_SIZE, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128, max_position_embeddings=1026, pad_token_id=PAD,
              mask_token_id=MASK, position_embedding_type="absolute", token_dropout=False,
              emb_layer_norm_before=False, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0, tie_word_embeddings=False)
    kw.update(overrides)
    return EsmConfig(**kw)


class NucleotideTransformerAdapter(ActivationAdapter):
    """Per-nucleotide activations of an ``EsmForMaskedLM`` with NT's 6-mer vocabulary."""

    sites = ("residual",)

    def __init__(self, model, name: str = "nt"):
        self.model = model.eval()
        self.name = name
        self.n_layers = model.config.num_hidden_layers
        if model.config.vocab_size < SINGLE_OFFSET + 5:
            raise InputError(f"vocabulary of {model.config.vocab_size} tokens is too small for "
                             f"NT 6-mers (needs >= {SINGLE_OFFSET + 5})")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> NucleotideTransformerAdapter:
        from transformers import EsmForMaskedLM

        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise InputError("no config.json in the Nucleotide Transformer folder", path=directory)
        try:
            model = EsmForMaskedLM.from_pretrained(str(directory), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load as EsmForMaskedLM: {exc}", path=directory) from None
        return cls(model, name=f"nt:{directory.name}")

    @classmethod
    def from_config(cls, config=None, seed: int = 0, name: str = "nt") -> NucleotideTransformerAdapter:
        from transformers import EsmForMaskedLM

        torch.manual_seed(seed)
        return cls(EsmForMaskedLM(config or tiny_esm_config()), name=name)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> NucleotideTransformerAdapter:
        self.model.to(device)
        return self

    def d(self, key: str) -> int:
        self.check_keys([key])
        return self.model.config.hidden_size

    def _forward(self, ids: Tensor, keys: list[str], intervene: dict[str, Intervention],
                 real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Run the model on ids (B, T); collect/replace layer outputs at sequence tokens."""
        self.check_keys(list(keys) + list(intervene))
        acts: dict[str, Tensor] = {}
        handles = []
        for i, layer in enumerate(self.model.esm.encoder.layer):
            key = f"blocks.{i}.residual"
            if key not in keys and key not in intervene:
                continue

            def hook(module, inputs, output, key=key):
                h = output[0] if isinstance(output, tuple) else output
                if key in intervene:
                    h = h.clone()
                    h[real] = intervene[key](h[real]).to(h.dtype)
                if key in keys:
                    acts[key] = h
                return (h, *output[1:]) if isinstance(output, tuple) else h

            handles.append(layer.register_forward_hook(hook))
        try:
            out = self.model(input_ids=ids, attention_mask=(ids != PAD).long())
        finally:
            for h in handles:
                h.remove()
        return out.logits, acts

    def _ids(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ids, pos, _ = tokenize(tokens.detach().cpu().numpy())
        cfg = self.model.config
        limit = cfg.max_position_embeddings - (cfg.pad_token_id + 1)
        if cfg.position_embedding_type == "absolute" and ids.shape[1] > limit:
            raise ValueError(f"windows need {ids.shape[1]} tokens but the model takes at most "
                             f"{limit}; use shorter windows")
        ids_t = torch.from_numpy(ids).to(self.device)
        real = (ids_t != PAD) & (ids_t != CLS)
        return ids_t, torch.from_numpy(pos).to(self.device), real

    @torch.no_grad()
    def activations(self, tokens: Tensor, keys: list[str]) -> dict[str, Tensor]:
        ids, pos, real = self._ids(tokens)
        _, acts = self._forward(ids, list(keys), {}, real)
        index = pos.unsqueeze(-1)
        return {k: torch.gather(v, 1, index.expand(-1, -1, v.shape[-1])) for k, v in acts.items()}

    @torch.no_grad()
    def mlm_loss(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None,
                 seed: int = 0, rate: float = 0.15) -> Tensor:
        ids, _, real = self._ids(tokens)
        masked = mask_positions(ids.shape, rate, seed, ids.device, allowed=real)
        inputs = ids.masked_fill(masked, MASK)
        logits, _ = self._forward(inputs, [], intervene or {}, real)
        return F.cross_entropy(logits[masked].float(), ids[masked])

    def random_init(self, seed: int = 0) -> NucleotideTransformerAdapter:
        from transformers import EsmForMaskedLM

        torch.manual_seed(seed)
        model = EsmForMaskedLM(self.model.config).to(self.device)
        return NucleotideTransformerAdapter(model, name=f"{self.name}:random-init")
