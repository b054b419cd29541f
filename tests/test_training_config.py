"""Training configuration: presets, YAML files, ``--set`` overrides and their types."""

import pytest

from dnatlas.errors import InputError
from dnatlas.training.config import TrainConfig, load_train_config


@pytest.mark.parametrize("text", ["3e-3", "3.0e-3", "0.003", "3E-3"])
def test_float_settings_accept_every_spelling_of_a_number(text):
    # PyYAML (YAML 1.1) reads "3e-3" as a string; the setting must still be a float.
    cfg = load_train_config("tiny", [f"lr={text}"])
    assert isinstance(cfg.lr, float) and cfg.lr == pytest.approx(0.003)


def test_integer_given_for_a_float_setting_becomes_a_float():
    cfg = load_train_config("tiny", ["lr=1", "min_lr_ratio=0"])
    assert isinstance(cfg.lr, float) and cfg.lr == 1.0 and cfg.min_lr_ratio == 0.0


def test_yaml_file_with_exponent_notation(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("preset: tiny\nlr: 5e-4\nweight_decay: 1e-2\nbetas: [0.9, 9.5e-1]\n")
    cfg = load_train_config(str(path))
    assert cfg.lr == pytest.approx(5e-4) and cfg.weight_decay == pytest.approx(0.01)
    assert cfg.betas == (0.9, 0.95)


@pytest.mark.parametrize("item, name", [("steps=2.5", "steps"), ("steps=many", "steps"),
                                        ("lr=fast", "lr"), ("bf16=maybe", "bf16"),
                                        ("window=true", "window"), ("betas=0.9", "betas")])
def test_wrongly_typed_setting_is_an_input_error_naming_it(item, name):
    with pytest.raises(InputError, match=name):
        load_train_config("tiny", [item])


def test_round_trip_through_dict():
    cfg = load_train_config("small", ["steps=11", "lr=2e-4", "model_overrides.n_layers=3"])
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.model_overrides == {"n_layers": 3}
