"""One record per model kind, resolve_model, and the declared Trainable protocol."""

import pytest
import torch

from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig
from dnatlas.errors import InputError
from dnatlas.models import (
    KINDS,
    MODEL_KINDS,
    ModelAdapter,
    Trainable,
    as_adapter,
    load_model,
    resolve_model,
)
from dnatlas.models.registry import trainable_adapter

TINY = dict(d_model=16, n_neurons=32, n_layers=2, dilations=[1, 4])


def test_every_kind_has_one_record():
    assert set(MODEL_KINDS) == set(KINDS)
    for name, kind in MODEL_KINDS.items():
        assert kind.name == name
        assert issubclass(kind.adapter(), ModelAdapter)
        assert kind.adapter().kind == name
    assert {k for k, v in MODEL_KINDS.items() if v.trainable} == {"dnatlas", "transformer"}


@pytest.mark.parametrize("kind", ["dnatlas", "transformer"])
def test_trainable_kinds_implement_the_protocol(kind):
    cls = trainable_adapter(kind)
    assert isinstance(cls, Trainable)
    module = cls.build("tiny", {})
    seq = torch.randint(0, 4, (2, 32))
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, 5] = True
    loss, count = cls.training_loss(module, seq, mask)
    assert count == cls.count_loss_terms(seq, mask)
    assert torch.isfinite(loss)


def test_other_kinds_are_not_trainable():
    with pytest.raises(InputError, match="cannot be trained here; use dnatlas or transformer"):
        trainable_adapter("nt")


def test_resolve_model_takes_a_spec_an_adapter_or_a_module():
    adapter = load_model("default")
    assert resolve_model(adapter) is adapter
    assert resolve_model("default").fingerprint() == adapter.fingerprint()
    assert resolve_model(None).fingerprint() == adapter.fingerprint()
    module = DNAtlas(DNAtlasConfig(**TINY))
    wrapped = resolve_model(module, device="cpu")
    assert wrapped.kind == "dnatlas" and wrapped.model is module
    assert as_adapter(module).fingerprint() == wrapped.fingerprint()
    with pytest.raises(TypeError, match="no model adapter for object"):
        resolve_model(object())
