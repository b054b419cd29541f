"""DNAtlas in Hugging Face ``transformers``: a registered config and model class, so a
folder written by :meth:`dnatlas.architectures.dnatlas.DNAtlas.save_pretrained` loads with
``AutoConfig.from_pretrained`` and ``AutoModel.from_pretrained`` after ``import dnatlas``.

Importing ``transformers`` costs seconds, so ``import dnatlas`` does not import it: it
registers these classes as soon as ``transformers`` is imported (at once if it already is),
through :mod:`dnatlas.hf_hook`. :class:`DNAtlasForMaskedLM` has the same modules
and parameter names as :class:`~dnatlas.architectures.dnatlas.DNAtlas`, so the same ``model.safetensors``
loads into either, and its ``forward`` returns the same :class:`~dnatlas.architectures.dnatlas.DNAtlasOutput`.
"""

from __future__ import annotations

MODEL_TYPE = "dnatlas"
_registered = False


def _classes():
    from transformers import PretrainedConfig, PreTrainedModel

    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
    from dnatlas.architectures.dnatlas.modeling import DNAtlasBlock
    from dnatlas.architectures.dnatlas.rcps import RCEmbedding, RCRMSNorm, RCTripletHead

    class DNAtlasHFConfig(PretrainedConfig):
        """A :class:`DNAtlasConfig` as a ``transformers`` config (same JSON keys)."""

        model_type = MODEL_TYPE

        def __init__(self, **kwargs):
            fields = DNAtlasConfig.__dataclass_fields__
            own = {k: kwargs.pop(k) for k in list(kwargs) if k in fields and k != "model_type"}
            defaults = DNAtlasConfig(**own).to_dict()  # validates
            defaults.pop("model_type")
            super().__init__(**kwargs)
            for key, value in defaults.items():
                setattr(self, key, value)

        def to_dnatlas(self) -> DNAtlasConfig:
            fields = DNAtlasConfig.__dataclass_fields__
            return DNAtlasConfig(**{k: getattr(self, k) for k in fields if k != "model_type"})

    class DNAtlasForMaskedLM(PreTrainedModel):
        """DNAtlas as a ``transformers`` model; ``forward(tokens)`` -> DNAtlasOutput."""

        config_class = DNAtlasHFConfig
        base_model_prefix = "dnatlas"
        main_input_name = "tokens"
        _no_split_modules = ["DNAtlasBlock"]

        def __init__(self, config: DNAtlasHFConfig):
            super().__init__(config)
            cfg = config.to_dnatlas()
            self.embed = RCEmbedding(cfg.vocab_size, cfg.d_model, cfg.rcps)
            self.blocks = __import__("torch").nn.ModuleList(
                DNAtlasBlock(cfg, i) for i in range(cfg.n_layers))
            self.norm = RCRMSNorm(cfg.d_model, cfg.norm_eps, cfg.rcps)
            self.head = RCTripletHead(cfg.d_model, cfg.rcps)
            self.post_init()

        def _init_weights(self, module):
            """Parameters come from the checkpoint (or initialise themselves); only the
            non-persistent index buffers of the RC layers are rebuilt (transformers
            allocates the model on the meta device, leaving them empty)."""
            import torch

            if isinstance(module, (RCEmbedding, RCTripletHead)):
                with torch.device("cpu"):
                    fresh = (RCEmbedding(module.stored_weight.shape[0], self.config.d_model,
                                         module.rcps)
                             if isinstance(module, RCEmbedding)
                             else RCTripletHead(self.config.d_model, module.rcps))
                for name, buffer in fresh.named_buffers(recurse=False):
                    setattr(module, name, buffer.to(module.stored_weight.device))

        def forward(self, tokens, output_activations=(), intervene=None):
            return DNAtlas.forward(self, tokens, output_activations, intervene)

        _check_sites = DNAtlas._check_sites
        site_names = DNAtlas.site_names
        site_width = DNAtlas.site_width
        rc_channel_permutation = DNAtlas.rc_channel_permutation

        @property
        def dnatlas_config(self) -> DNAtlasConfig:
            return self.config.to_dnatlas()

    return DNAtlasHFConfig, DNAtlasForMaskedLM


def register() -> None:
    """Register DNAtlas with ``AutoConfig``, ``AutoModel`` and ``AutoModelForMaskedLM``."""
    global _registered, DNAtlasHFConfig, DNAtlasForMaskedLM
    if _registered:
        return
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    DNAtlasHFConfig, DNAtlasForMaskedLM = _classes()
    AutoConfig.register(MODEL_TYPE, DNAtlasHFConfig, exist_ok=True)
    AutoModel.register(DNAtlasHFConfig, DNAtlasForMaskedLM, exist_ok=True)
    AutoModelForMaskedLM.register(DNAtlasHFConfig, DNAtlasForMaskedLM, exist_ok=True)
    _registered = True
