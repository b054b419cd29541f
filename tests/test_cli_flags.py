"""Library errors name settings; the CLI prints them as flags (dnatlas.cli.flags)."""

import pytest

from dnatlas.cli import main
from dnatlas.cli.flags import error_line, flag
from dnatlas.errors import InputError
from dnatlas.files import check_writable_file


def test_flag_spellings():
    assert flag("chunk_size") == "--chunk-size"
    assert flag("window") == "--window"
    assert flag("overrides") == "--set"
    assert flag("sample_nt") == "--sample"


def test_the_library_names_the_setting_and_the_cli_the_flag():
    exc = InputError("window 5000 is longer than m accepts (4096 nt)", setting="window")
    assert str(exc) == "window 5000 is longer than m accepts (4096 nt)"
    assert error_line(exc) == "--window 5000 is longer than m accepts (4096 nt)"


def test_switches_several_settings_and_the_location():
    exc = InputError("holds an earlier run; use resume=True to continue it or force=True to "
                     "replace it", path="runs/x", setting=("resume", "force"))
    assert str(exc).startswith("runs/x: holds an earlier run; use resume=True")
    assert error_line(exc) == ("runs/x: holds an earlier run; use --resume to continue it or "
                               "--force to replace it")


def test_only_the_named_settings_as_whole_words_are_respelled():
    exc = InputError("give out or acts (outputs, out/acts, outdoor, window_size)",
                     setting=("out", "acts"))
    assert error_line(exc) == "give --out or --acts (outputs, --out/--acts, outdoor, window_size)"
    plain = InputError("window must be at least 1")  # names no setting: printed as it is
    assert error_line(plain) == str(plain)


def test_a_library_error_names_the_setting(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("x")
    with pytest.raises(InputError) as info:
        check_writable_file(target, "output", force=False)
    assert "give force=True to replace it" in str(info.value)
    assert "give --force to replace it" in error_line(info.value)


def test_the_cli_prints_flags(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run"),
                 "--set", "steps"]) == 2
    err = capsys.readouterr().err
    assert err == "dnatlas: error: --set expects key=value, got 'steps'\n"


def test_one_setting_one_flag_unless_a_command_spells_it_otherwise():
    exc = InputError("give windows (a table) or fasta (one of them)", setting=("windows", "fasta"))
    assert error_line(exc, "audit") == "give --windows (a table) or --fasta (one of them)"
    gram = InputError("give an activation folder (acts), or fasta and region",
                      setting=("acts", "fasta", "region"))
    assert error_line(gram, "gram") == ("give an activation folder (--acts), or --genome and "
                                        "--region")
    assert flag("genomes") == "--genome" and flag("fasta", "audit") == "--fasta"
