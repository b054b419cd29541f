"""The commands in the README and docs/ work as written: every one parses with the real
parser, and the ones that run on bundled data run (scaled down where they would take long)."""

import re
import shlex
from pathlib import Path

import pytest

from dnatlas import bundled
from dnatlas.cli import build_parser, main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def doc_commands() -> list[tuple[str, str]]:
    """``(file, command)`` for every ``dnatlas`` command in a ```bash block."""
    found = []
    for path in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("#", 1)[0].strip()
                if "dnatlas" in line.split()[:1] or " -m dnatlas " in line:
                    found.append((path.name, line))
    return found


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    return words[words.index("dnatlas") + 1:]


def test_the_docs_have_commands():
    files = {name for name, _ in doc_commands()}
    assert {"analysis.md", "sae.md", "training.md", "hub.md"} <= files


@pytest.mark.parametrize("where,command", doc_commands())
def test_every_documented_command_parses(where, command):
    if "..." in command:
        pytest.skip("an elided example (`...` stands for the flags shown above it)")
    parser = build_parser()
    try:
        args = parser.parse_args(_argv(command))
    except SystemExit as exc:
        pytest.fail(f"{where}: `{command}` does not parse (exit {exc.code})")
    assert getattr(args, "func", None) is not None, command


def _documented(where: str, starts: str) -> list[str]:
    return [c for w, c in doc_commands() if w == where and c.startswith(starts)]


def _run(command: str, replace: dict[str, str], extra: list[str] = ()) -> None:
    for old, new in replace.items():
        command = command.replace(old, new)
    argv = _argv(command) + list(extra)
    assert main(argv) == 0, argv


def test_documented_analysis_commands_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = {"genome.fa": str(bundled.genome_path("ecoli_k12_mg1655")),
              "annotation.gff3": str(bundled.annotation_path())}
    (extract,) = _documented("analysis.md", "dnatlas extract")
    _run(extract, inputs)
    assert (tmp_path / "acts" / "meta.json").is_file()
    gram = next(c for c in _documented("analysis.md", "dnatlas gram") if "..." not in c)
    _run(gram, inputs)
    assert (tmp_path / "map.png").stat().st_size > 0 and (tmp_path / "stats.json").is_file()


def test_documented_sae_commands_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build, = _documented("sae.md", "dnatlas data build")
    _run(build, {})
    train = next(c for c in _documented("sae.md", "dnatlas sae train") if "--arch topk" in c)
    small = {"--steps 1500": "--steps 3", "--batch-size 2048": "--batch-size 256"}
    _run(train, small, ["--window", "256", "--windows-per-batch", "2", "--buffer-rows", "1024"])
    evaluate, = _documented("sae.md", "dnatlas sae eval")
    _run(evaluate, {}, ["--window", "256", "--windows-per-batch", "2", "--batches", "2",
                        "--loss-batches", "1"])
    assert (tmp_path / "sae-eval.json").is_file()


def test_documented_regions_name_records_of_the_bundled_genome():
    """The README's region examples run on the bundled genome as written (issue 22: it
    named NC_000913.3, a record the bundled genome does not have)."""
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.regions import parse_region_list

    records = {r.id: len(r) for r in read_records(bundled.genome_path("ecoli_k12_mg1655"))}
    text = (REPO / "README.md").read_text()
    examples = re.findall(r"--(?:region|valid|test) ([^`\s]+)", text)
    assert examples
    for example in examples:
        for region in parse_region_list(example):
            assert region.seqid in records, example
            region.bounds(records[region.seqid])
