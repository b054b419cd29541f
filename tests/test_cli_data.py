import json
import subprocess
import sys

import pytest

from dnatlas.cli import main
from tests.helpers import BAD_NAMES, all_bad_cases

FASTA_A = ">a1 first\nACGTACGTAC\nGGCC\n>a2\nTTTTNNNNAC\n"
FASTA_B = ">b1\nGATTACA\n"


@pytest.fixture
def inputs(tmp_path):
    a, b = tmp_path / "alpha.fa", tmp_path / "beta.fasta"
    a.write_text(FASTA_A)
    b.write_text(FASTA_B)
    return [str(a), str(b)]


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, *words):
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnatlas: error: ")
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_exits_2_with_one_located_line(tmp_path, capsys, name):
    content, record, line, _ = all_bad_cases(tmp_path)[name]
    path = tmp_path / f"{name}.fa"
    path.write_bytes(content)
    code, _, err = run(["data", "build", str(path), "--out", str(tmp_path / "store")], capsys)
    assert code == 2
    words = [str(path)]
    words += [f"record {record!r}"] if record else []
    words += [f"line {line}:"] if line else []
    assert_one_line_error(err, *words)
    assert not (tmp_path / "store").exists()


def test_missing_file(tmp_path, capsys, inputs):
    missing = str(tmp_path / "missing.fa")
    code, _, err = run(["data", "build", *inputs, missing, "--out", str(tmp_path / "s")], capsys)
    assert code == 2
    assert_one_line_error(err, missing, "not found")


def test_bad_input_in_a_subprocess(tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">r1\nACGT\n>r2\nACGU\nAC*G\n")
    proc = subprocess.run([sys.executable, "-m", "dnatlas", "data", "build", str(bad),
                           "--out", str(tmp_path / "store")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, str(bad), "record 'r2'", "line 5", "'*'", "column 3")


def test_build_and_info(tmp_path, capsys, inputs):
    store = str(tmp_path / "store")
    code, out, _ = run(["data", "build", *inputs, "--out", store, "--val-genomes", "beta",
                        "--val-fraction", "0.25", "--seed", "1"], capsys)
    assert code == 0
    assert "alpha" in out and "beta" in out and "total" in out
    code, table, _ = run(["data", "info", store], capsys)
    assert code == 0
    assert table.splitlines()[0].split()[:3] == ["genome", "records", "length"]
    # 7 (beta) + round(0.25 * 14) + round(0.25 * 10)
    assert "val: 13 bases in 3 segments of 3 records" in table
    code, text, _ = run(["data", "info", store, "--json"], capsys)
    info = json.loads(text)
    assert info["length"] == 31 and info["n_records"] == 3 and info["n_count"] == 4
    assert [g["id"] for g in info["genomes"]] == ["alpha", "beta"]
    assert info["splits"]["val"]["length"] == 13
    assert info["build"]["val_genomes"] == ["beta"]


def test_build_refuses_to_overwrite_without_force(tmp_path, capsys, inputs):
    store = str(tmp_path / "store")
    assert run(["data", "build", inputs[0], "--out", store], capsys)[0] == 0
    code, _, err = run(["data", "build", *inputs, "--out", store], capsys)
    assert code == 2
    assert_one_line_error(err, store, "--force")
    assert run(["data", "build", *inputs, "--out", store, "--force"], capsys)[0] == 0
    assert json.loads(run(["data", "info", store, "--json"], capsys)[1])["n_genomes"] == 2


def test_build_from_manifest(tmp_path, capsys, inputs):
    manifest = tmp_path / "genomes.tsv"
    manifest.write_text("genome_id\tpath\ttaxonomy\nB\tbeta.fasta\tg__Beta\n")
    store = str(tmp_path / "store")
    assert run(["data", "build", inputs[0], "--manifest", str(manifest), "--out", store],
               capsys)[0] == 0
    info = json.loads(run(["data", "info", store, "--json"], capsys)[1])
    assert [(g["id"], g["taxonomy"]) for g in info["genomes"]] == [("alpha", ""), ("B", "g__Beta")]


def test_manifest_and_option_errors(tmp_path, capsys, inputs):
    manifest = tmp_path / "genomes.tsv"
    manifest.write_text("genome_id\tpath\nB\tbeta.fasta\textra\n")
    out = str(tmp_path / "store")
    code, _, err = run(["data", "build", "--manifest", str(manifest), "--out", out], capsys)
    assert code == 2
    assert_one_line_error(err, str(manifest), "line 2")
    code, _, err = run(["data", "build", *inputs, "--val-genomes", "gamma", "--out", out], capsys)
    assert code == 2
    assert_one_line_error(err, "gamma")
    code, _, err = run(["data", "build", "--out", out], capsys)
    assert code == 2
    assert_one_line_error(err, "--manifest")


def test_info_on_a_missing_or_broken_store(tmp_path, capsys):
    code, _, err = run(["data", "info", str(tmp_path / "nowhere")], capsys)
    assert code == 2
    assert_one_line_error(err, "nowhere")
    (tmp_path / "broken").mkdir()
    code, _, err = run(["data", "info", str(tmp_path / "broken")], capsys)
    assert code == 2
    assert_one_line_error(err, "store.json", "missing")


def test_data_without_subcommand_prints_help(capsys):
    code, out, _ = run(["data"], capsys)
    assert code == 2 and "build" in out and "info" in out
