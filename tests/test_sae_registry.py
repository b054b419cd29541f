"""The SAE architecture registry: names in one place, one config per architecture, one rule
for k, the flat cfg.json record, and the preset + flag merge."""

import json

import pytest

from dnatlas.errors import InputError
from dnatlas.sae import build_sae, config_from_record, make_config, saved_record
from dnatlas.sae.config import SAVED_FIELDS
from dnatlas.sae.hyperparameters import SAEHyperparameters, resolve_hyperparameters
from dnatlas.sae.registry import ARCHITECTURES, architecture, saved_defaults


def test_every_name_resolves_to_its_class_and_config():
    assert ARCHITECTURES == ("relu", "topk", "batchtopk", "jumprelu")
    for name in ARCHITECTURES:
        cls = architecture(name)
        assert cls.arch == name and cls.config_class.arch == name
        cfg = make_config(name, 4, 8, k=2)
        assert type(cfg) is cls.config_class and type(build_sae(cfg)) is cls
    with pytest.raises(ValueError, match="choose from relu, topk, batchtopk, jumprelu"):
        architecture("gated")


def test_the_cli_takes_the_registry_names(capsys):
    from dnatlas.cli import build_parser

    argv = ["sae", "train", "--data", "d", "--layer", "0", "--out", "o", "--arch"]
    for name in ARCHITECTURES:
        assert build_parser().parse_args([*argv, name]).arch == name
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "gated"])
    assert "choose from 'relu', 'topk', 'batchtopk', 'jumprelu'" in capsys.readouterr().err


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
@pytest.mark.parametrize("k", [None, 0, -1, 9])
def test_k_is_checked_once_with_one_rule(arch, k):
    with pytest.raises(ValueError, match=r"needs 1 <= k <= d_sae"):
        make_config(arch, 4, 8, k=k)
    assert make_config(arch, 4, 8, k=8).k == 8 and make_config(arch, 4, 8, k=1).k == 1


def test_fields_of_other_architectures_are_ignored_and_unknown_ones_refused():
    relu = make_config("relu", 4, 8, k=3, l0_coefficient=2.0)
    assert not hasattr(relu, "k") and not hasattr(relu, "l0_coefficient")
    with pytest.raises(TypeError, match="no_such_field"):
        make_config("relu", 4, 8, no_such_field=1)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_saved_record_keeps_the_flat_layout(arch):
    cfg = make_config(arch, 4, 8, k=2, seed=3, hook_name="h")
    record = saved_record(cfg)
    assert tuple(record) == SAVED_FIELDS
    assert record["arch"] == arch and record["seed"] == 3
    for name, value in record.items():  # another architecture's field: its default
        if name != "arch" and not hasattr(cfg, name):
            assert value == saved_defaults()[name]
    assert config_from_record(json.loads(json.dumps(record))) == cfg


def test_the_bundled_sae_record_round_trips_unchanged():
    from dnatlas.sae.saelens_format import load_sae, read_cfg, resolve_sae_path, saelens_cfg

    written = read_cfg(resolve_sae_path("default"))
    again = saelens_cfg(load_sae("default"))
    assert again["metadata"]["dnatlas"] == written["metadata"]["dnatlas"]
    assert {k: v for k, v in again.items() if k != "metadata"} == \
        {k: v for k, v in written.items() if k != "metadata"}


def test_preset_and_flags_merge_in_the_library():
    resolved = resolve_hyperparameters(SAEHyperparameters(preset="hyenadna-001", l1=0.2), "cpu")
    assert resolved.arch == "relu" and resolved.expansion == 32
    cfg = resolved.config(8, hook_name="blocks.0.residual")
    assert cfg.l1_coefficient == 0.2 and cfg.normalize is False and cfg.d_sae == 256
    assert resolved.train.lr == 1e-6 and resolved.data_parallel
    topk = resolve_hyperparameters(SAEHyperparameters(arch="batchtopk"), "cpu")
    assert not topk.data_parallel
    with pytest.raises(InputError, match="needs 1 <= k <= d_sae"):
        topk.config(8)
    with pytest.raises(InputError, match="give an architecture"):
        resolve_hyperparameters(SAEHyperparameters(), "cpu")
    with pytest.raises(InputError, match="unknown SAE architecture"):
        resolve_hyperparameters(SAEHyperparameters(arch="gated"), "cpu")


def test_the_old_module_path_still_imports_with_a_warning(monkeypatch):
    import importlib
    import sys

    from dnatlas.sae.archs.topk import TopKSAE
    from dnatlas.sae.sparse_ops import GatherPreActivations

    monkeypatch.delitem(sys.modules, "dnatlas.sae.architectures", raising=False)
    with pytest.warns(DeprecationWarning, match="dnatlas.sae.architectures moved"):
        old = importlib.import_module("dnatlas.sae.architectures")
    with pytest.warns(DeprecationWarning, match=r"dnatlas\.sae\.archs\.topk\.TopKSAE"):
        assert old.TopKSAE is TopKSAE
    with pytest.warns(DeprecationWarning, match=r"dnatlas\.sae\.registry\.build_sae"):
        assert old.build_sae is build_sae
    with pytest.warns(DeprecationWarning, match=r"dnatlas\.sae\.sparse_ops"):
        assert old.GatherPreActivations is GatherPreActivations
