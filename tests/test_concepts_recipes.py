"""The papers' concept experiments as recipes, end to end through the CLI, on random-init
models (the real checkpoints cannot be downloaded here; docs/concepts.md has the commands).

- 001: HyenaDNA, an SAE on one layer, JASPAR TFBS (a motif scan) plus nucleotide identity,
  on a slice of human chr20.
- 003: Nucleotide Transformer neurons across layers with the random-init control, on
  E. coli with the bundled annotation.
"""

import csv
import json
from pathlib import Path

import pytest

from dnatlas.cli import main
from tests.test_models import _config_only_folder

CHR20 = Path(__file__).parent / "fixtures" / "human" / "chr20_31000001-31030000.fa.gz"


def _best(out: Path) -> list[dict]:
    with open(out / "best.csv") as fh:
        return list(csv.DictReader(fh))


def test_recipe_001_hyenadna_sae_jaspar_and_nucleotides(tmp_path, capsys):
    spec = f"hyenadna:{_config_only_folder(tmp_path / 'hyena', 'hyenadna')}:random-init"
    bed = tmp_path / "jaspar.bed"
    assert main(["motifs", "scan", "--genome", str(CHR20), "--jaspar", "CORE:vertebrates",
                 "--pvalue", "1e-4", "--out", str(bed)]) == 0
    assert main(["sae", "train", "--model", spec, "--data", str(CHR20), "--layer", "1",
                 "--arch", "relu", "--expansion", "4", "--steps", "20", "--batch-size", "256",
                 "--window", "256", "--windows-per-batch", "4", "--buffer-rows", "2048",
                 "--out", str(tmp_path / "sae")]) == 0
    capsys.readouterr()
    out = tmp_path / "eval"
    assert main(["concepts", "eval", "--model", spec, "--genome", str(CHR20),
                 "--annotations", "none", "--bed", str(bed), "--min-count", "20",
                 "--sae", str(tmp_path / "sae"), "--random-init", "--sample", "5000",
                 "--chunk-size", "4096", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best SAE feature" in printed and "shuffled labels" in printed
    rows = _best(out)
    concepts = {r["concept"] for r in rows}
    assert set("ACGT") <= concepts
    assert any(c.startswith("jaspar:") for c in concepts)
    dictionaries = {r["dictionary"] for r in rows}
    assert dictionaries == {"sae:sae", "neurons:blocks.1.residual",
                            "random-init neurons:blocks.1.residual"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == spec and "rc_pairing" not in summary["dictionaries"]["sae:sae"]
    # the causal model's records are evaluated in halves on both strands
    assert summary["splits"]["test"] == ["chr20_slice:15,001-30,000"]  # 1-based, closed


def test_recipe_003_nt_layers_with_random_init_control(tmp_path, capsys):
    spec = f"nt:{_config_only_folder(tmp_path / 'nt', 'nt-v2')}:random-init"
    out = tmp_path / "eval"
    argv = ["concepts", "eval", "--model", spec, "--genome", "ecoli_k12_mg1655",
            "--valid", "K-12-MG1655:1-12000", "--test", "K-12-MG1655:12001-24000",
            "--concepts", "CDS,tRNA", "--no-nucleotides", "--sample", "4000",
            "--chunk-size", "4000", "--random-init", "--out", str(out)]
    for layer in (0, 1):
        argv += ["--neurons", f"blocks.{layer}.residual"]
    assert main(argv) == 0
    rows = _best(out)
    assert {r["dictionary"] for r in rows} == {
        *(f"neurons:blocks.{i}.residual" for i in range(2)),
        *(f"random-init neurons:blocks.{i}.residual" for i in range(2))}
    cds = [r for r in rows if r["concept"] == "CDS" and r["strand"] == "both"
           and r["labels"] == "real"]
    assert len(cds) == 4 and all(int(r["test_n_elements"]) > 0 for r in cds)
    assert {r["concept"] for r in rows} >= {"CDS", "start_codon", "stop_codon"}
    capsys.readouterr()
    assert main(argv) == 2       # an earlier evaluation is not replaced without --force
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--split-by", "tRNA"], ["--bed", "/nonexistent.bed"]])
def test_label_errors_are_one_line(bad, tmp_path, capsys):
    from tests.helpers import one_line

    code = main(["concepts", "labels", "--out", str(tmp_path / "l.bed"), *bad])
    assert code == 2
    one_line(capsys.readouterr().err)
