"""The argparse types every command shares (``dnatlas.cli._model_input``): the bounds they
state are the bounds they enforce, and a bad value is one ``dnatlas: error:`` line."""

import argparse
import math

import pytest

from dnatlas.cli import main
from dnatlas.cli._model_input import (
    float_in,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from tests.helpers import one_line


@pytest.mark.parametrize("parse, good, bad", [
    (positive_int, ["1", "4,096", "1_000"], ["0", "-3", "1.5", "x"]),
    (non_negative_int, ["0", "7"], ["-1", ""]),
    (positive_float, ["1e-9", "3"], ["0", "-1", "nan", "inf", "x"]),
    (non_negative_float, ["0", "0.5"], ["-1e-12", "nan", "-inf"]),
    (probability, ["1e-5", "0.999"], ["0", "1", "2", "nan"]),
    (float_in(0, 1, low_open=True), ["1", "0.5"], ["0", "1.0001"]),
])
def test_bounds_are_enforced(parse, good, bad):
    for text in good:
        assert math.isfinite(parse(text))
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_the_message_names_the_interval():
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \(0, 1\], got 1.5"):
        float_in(0, 1, low_open=True)("1.5")


def test_a_bad_value_is_one_line(tmp_path, capsys):
    argv = ["audit", "search", "--index", str(tmp_path), "--query", str(tmp_path / "q.fa"),
            "--min-identity", "1.5", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    one_line(capsys.readouterr().err, "--min-identity", "must be in (0, 1]", alone=False)
