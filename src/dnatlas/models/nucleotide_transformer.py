"""Nucleotide Transformer v1 and v2 (Dalla-Torre et al. 2023) through the model protocol.

Versions. v1 checkpoints (500M/2.5B, learned absolute positions, GELU feed-forward) load into
transformers' ``EsmForMaskedLM``; v2 checkpoints (50M-500M multi-species: rotary positions,
gated SiLU feed-forward without biases) load into :mod:`dnatlas.architectures.nucleotide_transformer`.
:func:`detect_version` tells them apart by ``position_embedding_type`` in ``config.json``
(``absolute`` -> v1, ``rotary`` -> v2); anything else is refused.

Vocabulary. Ids 0-3 are ``<unk> <pad> <mask> <cls>`` in both versions; then (InstaDeep's
``NucleotidesKmersTokenizer`` / ``compute_tokens_to_ids_v2``)::

    v1: 4..4099 6-mers, 4100..4104 A T C G N, 4105 <eos>, 4106 <bos>  (models use 4105 rows)
    v2: 4 <eos>, 5 <bos>, 6..4101 6-mers, 4102..4106 A T C G N        (4107 rows)

6-mers are in ``itertools.product("ATCG", repeat=6)`` order: id = first_kmer +
sum_j digit_j 4^(5-j) with digit A=0 T=1 C=2 G=3 (not our A C G T code order). The layout
is read from ``vocab.txt`` when the folder has one, else implied by the version; a vocab
size that fits neither is refused.

Tokenisation (as the reference). Each window is cut at every N; each maximal N-free run is
read in non-overlapping 6-mers from its first base; the run's tail shorter than 6 is read as
single nucleotides; every N is its own token. ``<cls>`` is prepended, no ``<eos>`` is
appended, and rows are right-padded with ``<pad>``.

Nucleotide alignment. A token's vector is given to each nucleotide it covers (a 6-mer's
vector to its six nucleotides); ``<cls>``/``<pad>`` are dropped, so ``activations`` returns
(B, L, d). ``blocks.{i}.residual`` is the output of layer i (before the final
``emb_layer_norm_after``).

Masked prediction (``nucleotide_log_probs``). MASK=5 codes are hidden nucleotides: the
6-mer grid runs over them as over bases, and every token that covers a hidden nucleotide is
replaced by ``<mask>`` (one hidden base hides its whole 6-mer). At a 6-mer token the 4096
6-mer logits are renormalised among themselves and marginalised onto each of its six
positions: log p(base c at j) = logsumexp over the 6-mers whose j-th base is c. This does not
condition on the token's visible bases. At single-nucleotide tokens (tails, N) the logits of
the single tokens A, C, G, T are renormalised.

``mlm_loss`` masks 15 % of the sequence tokens (seeded, ``<mask>`` everywhere, no 80/10/10)
and returns the cross-entropy over masked tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dnatlas.architectures.nucleotide_transformer import (
    NTv2Config,
    NTv2ForMaskedLM,
    load_nt_v2,
)
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import MASK as MASK_CODE  # our code of a hidden nucleotide
from dnatlas.model_files import read_config, read_config_file
from dnatlas.models.protocol import (
    Intervention,
    ModuleAdapter,
    check_codes,
    mask_positions,
    module_state,
)

K = 6
UNK, PAD, MASK, CLS = 0, 1, 2, 3

NT_ALPHABET = "ATCG"
#: our code (A=0 C=1 G=2 T=3 N=4) -> NT digit (A=0 T=1 C=2 G=3); N gets a dummy 0
CODE_TO_DIGIT = np.array([0, 2, 3, 1, 0], dtype=np.int64)
#: our code (A C G T N) -> offset of its single-nucleotide token from the first single
CODE_TO_SINGLE = np.array([0, 2, 3, 1, 4], dtype=np.int64)


@dataclass(frozen=True)
class VocabLayout:
    """Where the 6-mers, single nucleotides and ``<eos>``/``<bos>`` sit in a vocabulary."""

    name: str
    kmer_offset: int
    min_vocab: int

    @property
    def single_offset(self) -> int:
        return self.kmer_offset + 4**K

    def vocabulary(self) -> list[str]:
        """All 4107 tokens in id order."""
        kmers = ["".join(p) for p in product(NT_ALPHABET, repeat=K)]
        head = ["<unk>", "<pad>", "<mask>", "<cls>"]
        if self.name == "v2":
            return [*head, "<eos>", "<bos>", *kmers, *NT_ALPHABET, "N"]
        return [*head, *kmers, *NT_ALPHABET, "N", "<eos>", "<bos>"]


V1 = VocabLayout("v1", kmer_offset=4, min_vocab=4105)
V2 = VocabLayout("v2", kmer_offset=6, min_vocab=4107)
LAYOUTS = {"v1": V1, "v2": V2}


def nt_vocabulary(layout: VocabLayout = V1) -> list[str]:
    """The tokens of ``layout`` in id order (see module docstring)."""
    return layout.vocabulary()


def _structure(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token structure of codes (B, L) (0..4; N=4 cuts the 6-mer grid).

    Returns (each int64 or bool (B, L)): in_kmer (nucleotide is inside a 6-mer token),
    starts (nucleotide starts a token), tok (0-based token index), offset (position inside
    its token, 0..5).
    """
    L = codes.shape[1]
    idx = np.arange(L)
    is_n = codes == 4
    run_start = np.maximum.accumulate(np.where(is_n, idx + 1, 0), axis=1)
    next_n = np.minimum.accumulate(np.where(is_n, idx, L)[:, ::-1], axis=1)[:, ::-1]
    r = idx - run_start
    in_kmer = ~is_n & (r // K < (next_n - run_start) // K)
    starts = is_n | ~in_kmer | (r % K == 0)
    tok = np.cumsum(starts, axis=1) - 1
    return in_kmer, starts, tok, np.where(in_kmer, r % K, 0)


def tokenize(codes: np.ndarray, layout: VocabLayout = V1
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    in_kmer, starts, tok, _ = _structure(codes)
    n_tokens = tok[:, -1] + 1 if L else np.zeros(B, dtype=np.int64)
    digits = np.pad(CODE_TO_DIGIT[codes], ((0, 0), (0, K - 1)))
    windows = np.lib.stride_tricks.sliding_window_view(digits, K, axis=1)[:, :L]
    kmer = windows @ (4 ** np.arange(K - 1, -1, -1))
    token_id = np.where(in_kmer, layout.kmer_offset + kmer,
                        layout.single_offset + CODE_TO_SINGLE[codes])
    ids = np.full((B, 1 + int(n_tokens.max(initial=0))), PAD, dtype=np.int64)
    ids[:, 0] = CLS
    b, p = np.nonzero(starts)
    ids[b, 1 + tok[b, p]] = token_id[b, p]
    return ids, 1 + tok, n_tokens


def kmer_marginals(kmer_log_probs: Tensor) -> Tensor:
    """(..., 4096) normalised 6-mer log-probs -> (..., 6, 4) per-position log-probs of A C G T."""
    grid = kmer_log_probs.reshape(*kmer_log_probs.shape[:-1], *([4] * K))
    lead = kmer_log_probs.dim() - 1
    out = [torch.logsumexp(grid, dim=[lead + a for a in range(K) if a != j]) for j in range(K)]
    nt_order = torch.stack(out, dim=-2)  # digits A T C G
    return nt_order[..., torch.as_tensor(CODE_TO_DIGIT[:4], device=nt_order.device)]


def tiny_nt_config(version: int = 2, **overrides):
    """A small random-init config (v1: ``EsmConfig``, v2: :class:`NTv2Config`) for tests."""
    kw = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 64, "pad_token_id": PAD, "mask_token_id": MASK,
          "layer_norm_eps": 1e-5}
    if version == 2:
        kw.update(vocab_size=V2.min_vocab, max_position_embeddings=1026)
        kw.update(overrides)
        return NTv2Config(**kw)
    if version != 1:
        raise InputError(f"unknown Nucleotide Transformer version {version!r} (1 or 2)")
    _need_transformers()
    from transformers import EsmConfig

    kw.update(vocab_size=V1.min_vocab, max_position_embeddings=1026,
              position_embedding_type="absolute", token_dropout=False,
              emb_layer_norm_before=False, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0, tie_word_embeddings=False)
    kw.update(overrides)
    return EsmConfig(**kw)


def detect_version(config: dict) -> int:
    """1 or 2 from a ``config.json`` dict (see module docstring); InputError otherwise."""
    kind = config.get("position_embedding_type", "absolute")
    if kind == "absolute":
        return 1
    if kind == "rotary":
        return 2
    raise InputError(f"unsupported position_embedding_type {kind!r} (NT v1 uses 'absolute', "
                     f"v2 'rotary')")


def detect_layout(config: dict, version: int, directory: Path | None = None) -> VocabLayout:
    """The vocabulary layout: from ``vocab.txt`` if present, else the version's default."""
    layout = V2 if version == 2 else V1
    vocab_file = directory / "vocab.txt" if directory is not None else None
    if vocab_file is not None and vocab_file.is_file():
        tokens = vocab_file.read_text().split()
        matches = [lo for lo in LAYOUTS.values() if tokens == lo.vocabulary()[:len(tokens)]]
        if not matches or len(tokens) < matches[0].min_vocab:
            raise InputError("vocab.txt is not a Nucleotide Transformer 6-mer vocabulary",
                             path=vocab_file)
        layout = matches[0]
    size = config.get("vocab_size")
    if size not in (layout.min_vocab, 4107):
        raise InputError(f"vocab_size {size} does not fit the NT {layout.name} vocabulary "
                         f"({layout.min_vocab} or 4107 tokens)")
    return layout


def _as_config(config) -> tuple[object, int, VocabLayout | None]:
    """(architecture config, version, layout or None) of None, a dict, a folder or
    ``config.json`` path, an :class:`NTv2Config` or a transformers ``EsmConfig``."""
    if config is None:
        return tiny_nt_config(2), 2, V2
    folder = None
    if isinstance(config, (str, Path)):
        path = Path(config)
        path = path / "config.json" if path.is_dir() else path
        folder, config = path.parent, read_config_file(path)
    if isinstance(config, NTv2Config):
        return config, 2, V2
    if not isinstance(config, dict):
        return config, 1, None  # a transformers EsmConfig
    version = detect_version(config)
    layout = detect_layout(config, version, folder)
    if version == 2:
        return NTv2Config.from_dict(config), 2, layout
    _need_transformers()
    from transformers import EsmConfig

    return EsmConfig(**{k: v for k, v in config.items() if k != "auto_map"}), 1, layout


def _build(config, version: int):
    if version == 2:
        return NTv2ForMaskedLM(config)
    _need_transformers()
    from transformers import EsmForMaskedLM

    return EsmForMaskedLM(config)


class NucleotideTransformerAdapter(ModuleAdapter):
    """Per-nucleotide activations and predictions of an NT v1 or v2 masked LM."""

    kind = "nt"
    sites = ("residual",)
    causal = False
    receptive_field = None

    def __init__(self, model, version: int, layout: VocabLayout | None = None, name: str = "nt"):
        self.model = model.eval()
        self.version = version
        self.layout = layout or (V2 if version == 2 else V1)
        self.name = name
        cfg = model.config
        self.n_layers = cfg.num_hidden_layers
        if cfg.vocab_size not in (self.layout.min_vocab, 4107):
            raise InputError(f"vocab_size {cfg.vocab_size} does not fit the NT {self.layout.name} "
                             f"vocabulary ({self.layout.min_vocab} or 4107 tokens)")
        self.max_tokens = cfg.max_position_embeddings - (cfg.pad_token_id + 1)
        self.max_length = (self.max_tokens - 1) * K

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> NucleotideTransformerAdapter:
        """Load a local checkpoint folder, v1 or v2 (see module docstring)."""
        directory = Path(directory)
        config = read_config(directory)
        version = detect_version(config)
        layout = detect_layout(config, version, directory)
        if version == 2:
            model = load_nt_v2(directory)
        else:
            model = cls._load_v1(directory)
        return cls(model, version, layout, name=f"nt:{directory.name}")

    @staticmethod
    def _load_v1(directory: Path):
        _need_transformers()
        from transformers import EsmForMaskedLM

        if not any((directory / n).is_file() for n in ("model.safetensors", "pytorch_model.bin")):
            raise InputError("no model.safetensors or pytorch_model.bin (for an untrained model "
                             "of this shape use nt:PATH:random-init)", path=directory)
        try:
            return EsmForMaskedLM.from_pretrained(str(directory), local_files_only=True,
                                                  dtype=torch.float32)
        except (OSError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot load as EsmForMaskedLM: {exc}", path=directory) from None

    @classmethod
    def from_config(cls, config=None, seed: int = 0, name: str = "nt") -> NucleotideTransformerAdapter:
        """A randomly initialised model: config None (tiny v2), a dict, a folder holding a
        ``config.json`` (weights not needed), an :class:`NTv2Config` or an ``EsmConfig``."""
        config, version, layout = _as_config(config)
        torch.manual_seed(seed)
        return cls(_build(config, version), version, layout, name=name)

    def d(self, key: str) -> int:
        self.check_keys([key])
        return self.model.config.hidden_size

    def _layers(self):
        return self.model.layers if self.version == 2 else self.model.esm.encoder.layer

    def _forward(self, ids: Tensor, keys: list[str], intervene: dict[str, Intervention],
                 real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Run the model on ids (B, T); collect/replace layer outputs at sequence tokens."""
        self.check_keys(list(keys) + list(intervene))
        acts: dict[str, Tensor] = {}
        handles = []
        for i, layer in enumerate(self._layers()):
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
            mask = (ids != PAD).long()
            if self.version == 2:
                logits = self.model(ids, attention_mask=mask)
            else:
                logits = self.model(input_ids=ids, attention_mask=mask).logits
        finally:
            for h in handles:
                h.remove()
        return logits, acts

    def _ids(self, codes: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        """Token ids (B, T), nucleotide -> token column (B, L) and real-token mask (B, T)."""
        ids, pos, _ = tokenize(codes, self.layout)
        if ids.shape[1] > self.max_tokens:
            raise ValueError(f"windows need {ids.shape[1]} tokens but the model takes at most "
                             f"{self.max_tokens}; use shorter windows")
        ids_t = torch.from_numpy(ids).to(self.device)
        real = (ids_t != PAD) & (ids_t != CLS)
        return ids_t, torch.from_numpy(pos).to(self.device), real

    @torch.no_grad()
    def activations(self, tokens: Tensor, keys: list[str],
                    intervene: dict[str, Intervention] | None = None) -> dict[str, Tensor]:
        """Per-nucleotide activations: tokens (B, L) -> {key: (B, L, d)}."""
        codes = check_codes(tokens).cpu().numpy()
        ids, pos, real = self._ids(codes)
        _, acts = self._forward(ids, list(keys), intervene or {}, real)
        index = pos.unsqueeze(-1)
        return {k: torch.gather(v, 1, index.expand(-1, -1, v.shape[-1])) for k, v in acts.items()}

    @torch.no_grad()
    def nucleotide_log_probs(self, tokens: Tensor,
                             intervene: dict[str, Intervention] | None = None) -> Tensor:
        """Log-probs (B, L, 4) of A C G T; MASK=5 hides its whole token (module docstring)."""
        codes = check_codes(tokens, allow_mask=True).cpu().numpy()
        hidden = codes == MASK_CODE
        grid_codes = np.where(hidden, 0, codes)
        ids, pos, real = self._ids(grid_codes)
        in_kmer, _, _, offset = _structure(grid_codes)
        b, p = (torch.from_numpy(a).to(self.device) for a in np.nonzero(hidden))
        masked_ids = ids.clone()
        masked_ids[b, pos[b, p]] = MASK
        logits, _ = self._forward(masked_ids, [], intervene or {}, real)
        logits = logits.float()
        lo = self.layout
        kmer = kmer_marginals(torch.log_softmax(logits[..., lo.kmer_offset:lo.single_offset], -1))
        singles = logits[..., lo.single_offset + torch.as_tensor(CODE_TO_SINGLE[:4])]
        single = torch.log_softmax(singles, -1)
        index = pos[..., None, None]
        kmer_at = torch.gather(kmer, 1, index.expand(-1, -1, K, 4))  # (B, L, 6, 4)
        off = torch.from_numpy(offset).to(self.device)[..., None, None].expand(-1, -1, 1, 4)
        kmer_at = torch.gather(kmer_at, 2, off).squeeze(2)
        single_at = torch.gather(single, 1, pos[..., None].expand(-1, -1, 4))
        return torch.where(torch.from_numpy(in_kmer).to(self.device)[..., None], kmer_at, single_at)

    @torch.no_grad()
    def mlm_loss(self, tokens: Tensor, intervene: dict[str, Intervention] | None = None,
                 seed: int = 0, rate: float = 0.15) -> Tensor:
        """Cross-entropy (nats) over ``rate`` of the tokens, seeded, replaced by ``<mask>``."""
        ids, _, real = self._ids(check_codes(tokens).cpu().numpy())
        masked = mask_positions(ids.shape, rate, seed, ids.device, allowed=real)
        logits, _ = self._forward(ids.masked_fill(masked, MASK), [], intervene or {}, real)
        return F.cross_entropy(logits[masked].float(), ids[masked])

    def random_init(self, seed: int = 0) -> NucleotideTransformerAdapter:
        torch.manual_seed(seed)
        model = _build(self.model.config, self.version).to(self.device)
        return NucleotideTransformerAdapter(model, self.version, self.layout,
                                            name=f"{self.name}:random-init")

    def config_dict(self) -> dict:
        """The architecture-defining configuration (version-independent of transformers)."""
        cfg = self.model.config
        if isinstance(cfg, NTv2Config):
            arch = asdict(cfg)
        else:
            names = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "pad_token_id",
                     "mask_token_id", "layer_norm_eps", "position_embedding_type",
                     "emb_layer_norm_before", "token_dropout")
            arch = {n: getattr(cfg, n, None) for n in names}
        return {"version": self.version, "layout": self.layout.name, **arch}

    def state_for_fingerprint(self):
        """Config and weights; v1's contact head (never run, randomly initialised when a
        checkpoint lacks it) is left out."""
        return ((k, v) for k, v in module_state(self.model, self.config_dict())
                if not k.startswith("esm.contact_head."))


def _need_transformers() -> None:
    """v1 checkpoints are transformers' ESM: one line naming the hf extra without it."""
    from dnatlas import extras

    extras.require("hf", what="a Nucleotide Transformer v1 checkpoint",
                   modules=("transformers",))
