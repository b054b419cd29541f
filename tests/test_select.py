"""Tests of dnatlas.genome.select and ``dnatlas data select`` (GTDB metadata -> manifest)."""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import pytest

import dnatlas.cli as cli
from dnatlas.cli.data_remote import add_commands
from dnatlas.errors import InputError
from dnatlas.genome.select import (
    CRITERIA,
    MANIFEST_COLUMNS,
    SelectCriteria,
    genome_id_from_accession,
    iter_selected,
    select_genomes,
    taxonomy_has_taxon,
)

FIXTURE = Path(__file__).parent / "fixtures" / "gtdb" / "bac120_metadata_r220_excerpt.tsv"

DEFAULT_SELECTED = {
    "GCF_003697165.2", "GCF_000006945.2", "GCF_000006745.1", "GCF_000069965.1",
    "GCF_017299535.1", "GCA_900044215.1", "GCF_000195715.1",
}
DEFAULT_REMOVED = {"taxon": 3, "ambiguous_bases": 1, "completeness": 2, "contamination": 2,
                   "representative": 3, "assembly_level": 2}


def _parser_with_data_group() -> argparse.ArgumentParser:
    """The real ``dnatlas`` parser; adds a ``data`` group if cli/data.py is not there yet."""
    parser = _REAL_BUILD_PARSER()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "data" not in sub.choices:
        data = sub.add_parser("data")
        add_commands(data.add_subparsers(dest="data_command"))
    return parser


_REAL_BUILD_PARSER = cli.build_parser


def run_cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run ``dnatlas ARGV`` through the real entry point; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "build_parser", _parser_with_data_group)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def ids(path: Path) -> set[str]:
    return {row["genome_id"] for row in read_tsv(path)}


# -- library -------------------------------------------------------------------------


def test_defaults_are_the_reports_criteria(tmp_path):
    out = tmp_path / "selection.tsv"
    summary = select_genomes(FIXTURE, out)
    assert ids(out) == DEFAULT_SELECTED
    assert summary.total == 20
    assert summary.kept == 7
    assert summary.removed == DEFAULT_REMOVED
    assert sum(summary.removed.values()) + summary.kept == summary.total
    rows = read_tsv(out)
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    assert summary.total_bases == sum(int(r["genome_size"]) for r in rows)
    ecoli = next(r for r in rows if r["genome_id"] == "GCF_003697165.2")
    assert ecoli["accession"] == "RS_GCF_003697165.2"
    assert ecoli["organism"].startswith("Escherichia coli DSM 30083")
    assert ecoli["taxonomy"].endswith(";g__Escherichia;s__Escherichia coli")
    assert ecoli["assembly_level"] == "Complete Genome"
    assert ecoli["checkm2_completeness"] == "100.00"
    assert ecoli["checkm2_contamination"] == "0.07"
    assert ecoli["genome_size"] == "4903501"


def test_summary_table_lists_every_criterion(tmp_path):
    summary = select_genomes(FIXTURE, tmp_path / "m.tsv")
    table = summary.format_table()
    for text in ("GTDB taxonomy", "contains Enterobacterales", "ambiguous bases", "<= 0",
                 "checkm2_completeness", "> 98", "< 1", "is TRUE",
                 "Complete Genome or Chromosome", "selected 7 genomes"):
        assert text in table
    assert f"{summary.total_bases:,} bases" in table
    assert len(table.splitlines()) == 2 + len(CRITERIA) + 1


def test_taxon_matches_rank_names_exactly():
    tax = "d__Bacteria;p__Pseudomonadota;c__Gammaproteobacteria;o__Enterobacterales;f__X"
    assert taxonomy_has_taxon(tax, ["Enterobacterales"])
    assert taxonomy_has_taxon(tax, ["o__Enterobacterales"])
    assert taxonomy_has_taxon(tax, ["enterobacterales"])
    assert not taxonomy_has_taxon(tax, ["f__Enterobacterales"])
    assert not taxonomy_has_taxon(tax, ["Enterobacter"])
    assert not taxonomy_has_taxon(tax.replace("o__Enterobacterales", "o__Enterobacterales_A"),
                                  ["Enterobacterales"])
    assert taxonomy_has_taxon("d__Bacteria;s__Escherichia coli", ["s__Escherichia coli"])


def test_taxon_other_ranks_and_lists(tmp_path):
    out = tmp_path / "m.tsv"
    crit = SelectCriteria(taxa=("g__Klebsiella", "Vibrionaceae"), representatives_only=False,
                          assembly_levels=())
    select_genomes(FIXTURE, out, crit)
    assert ids(out) == {"GCF_000742135.1", "GCF_000240185.1", "GCF_000006745.1"}


def test_each_threshold(tmp_path):
    out = tmp_path / "m.tsv"
    # ambiguous bases: allowing 12 lets Yersinia pestis CO92 through
    select_genomes(FIXTURE, out, SelectCriteria(max_ambiguous_bases=12))
    assert ids(out) == DEFAULT_SELECTED | {"GCF_000009065.1"}
    # completeness is strict: 98.00 fails "> 98" but passes "> 97.9"
    select_genomes(FIXTURE, out, SelectCriteria(min_completeness=97.9))
    assert ids(out) == DEFAULT_SELECTED | {"GCF_000027085.1"}
    select_genomes(FIXTURE, out, SelectCriteria(min_completeness=97.0))
    assert ids(out) == DEFAULT_SELECTED | {"GCF_000027085.1", "GCF_000252995.1"}
    # contamination is strict: 1.00 fails "< 1" but passes "< 1.01"
    select_genomes(FIXTURE, out, SelectCriteria(max_contamination=1.01))
    assert ids(out) == DEFAULT_SELECTED | {"GCF_000011745.1"}
    # representatives
    s = select_genomes(FIXTURE, out, SelectCriteria(representatives_only=False))
    assert ids(out) == DEFAULT_SELECTED | {"GCF_000005845.2", "GCF_000006925.2",
                                           "GCF_000240185.1"}
    assert s.removed["representative"] == 0
    # assembly levels
    select_genomes(FIXTURE, out, SelectCriteria(assembly_levels=("complete genome",)))
    assert ids(out) == DEFAULT_SELECTED - {"GCF_017299535.1", "GCF_000195715.1"}
    select_genomes(FIXTURE, out, SelectCriteria(assembly_levels=()))
    assert ids(out) == DEFAULT_SELECTED | {"GCF_000742135.1", "GCF_001006005.1"}
    # no taxon filter: two more genomes (the Enterobacterales_A one; PAO1 and 168 pass too)
    select_genomes(FIXTURE, out, SelectCriteria(taxa=()))
    assert ids(out) == DEFAULT_SELECTED | {"GCA_013362455.1", "GCF_000006765.1",
                                           "GCF_000009045.1"}


def test_genome_id_strips_gtdb_prefix():
    assert genome_id_from_accession("RS_GCF_000005845.2") == "GCF_000005845.2"
    assert genome_id_from_accession("GB_GCA_900044215.1") == "GCA_900044215.1"
    assert genome_id_from_accession("GCF_000005845.2") == "GCF_000005845.2"


def test_reads_gzip(tmp_path):
    gz = tmp_path / "bac120_metadata.tsv.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    select_genomes(gz, tmp_path / "m.tsv")
    assert ids(tmp_path / "m.tsv") == DEFAULT_SELECTED


def _rewrite(tmp_path: Path, fn) -> Path:
    """Apply ``fn(header, rows) -> (header, rows)`` to the fixture and write it to tmp_path."""
    lines = FIXTURE.read_text().splitlines()
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    header, rows = fn(header, rows)
    path = tmp_path / "metadata.tsv"
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    return path


def test_old_release_falls_back_to_checkm1_with_warning(tmp_path):
    def drop_checkm2(header, rows):
        keep = [i for i, h in enumerate(header) if not h.startswith("checkm2_")]
        return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]

    path = _rewrite(tmp_path, drop_checkm2)
    messages = []
    summary = select_genomes(path, tmp_path / "m.tsv", warn=messages.append)
    assert summary.completeness_column == "checkm_completeness"
    assert summary.contamination_column == "checkm_contamination"
    assert len(messages) == 2 and "checkm_completeness" in messages[0]
    assert "GCF_003697165.2" in ids(tmp_path / "m.tsv")
    with pytest.warns(UserWarning, match="CheckM1"):
        select_genomes(path, tmp_path / "m.tsv")


@pytest.mark.parametrize("column", ["gtdb_taxonomy", "ambiguous_bases", "gtdb_representative",
                                    "ncbi_assembly_level", "accession"])
def test_missing_column_is_one_line_error(tmp_path, column):
    def drop(header, rows):
        i = header.index(column)
        return header[:i] + header[i + 1:], [r[:i] + r[i + 1:] for r in rows]

    path = _rewrite(tmp_path, drop)
    with pytest.raises(InputError) as info:
        select_genomes(path, tmp_path / "m.tsv")
    assert column in str(info.value) and str(path) in str(info.value)
    assert not (tmp_path / "m.tsv").exists()


def test_missing_completeness_columns(tmp_path):
    def drop(header, rows):
        keep = [i for i, h in enumerate(header) if "completeness" not in h]
        return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]

    with pytest.raises(InputError, match="checkm2_completeness"):
        select_genomes(_rewrite(tmp_path, drop), tmp_path / "m.tsv")


def test_bad_rows(tmp_path):
    def short_row(header, rows):
        rows[3] = rows[3][:10]
        return header, rows

    with pytest.raises(InputError) as info:
        select_genomes(_rewrite(tmp_path, short_row), tmp_path / "m.tsv")
    assert info.value.line == 5

    def bad_number(header, rows):
        rows[0][header.index("checkm2_completeness")] = "high"
        return header, rows

    with pytest.raises(InputError, match="not a number") as info:
        select_genomes(_rewrite(tmp_path, bad_number), tmp_path / "m.tsv")
    assert info.value.record == "RS_GCF_003697165.2"


def test_missing_values_fail_their_criterion(tmp_path):
    def none_values(header, rows):
        rows[0][header.index("checkm2_contamination")] = "none"
        return header, rows

    summary = select_genomes(_rewrite(tmp_path, none_values), tmp_path / "m.tsv")
    assert summary.removed["contamination"] == DEFAULT_REMOVED["contamination"] + 1
    assert "GCF_003697165.2" not in ids(tmp_path / "m.tsv")


def test_streams_rows(tmp_path):
    it = iter_selected(FIXTURE)
    first = next(it)
    assert first["genome_id"] == "GCF_003697165.2"
    it.close()


# -- command line ----------------------------------------------------------------------


def test_cli_defaults(tmp_path, monkeypatch, capsys):
    out = tmp_path / "sel" / "selection.tsv"
    code, stdout, err = run_cli(["data", "select", "--gtdb-metadata", str(FIXTURE),
                                 "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    assert ids(out) == DEFAULT_SELECTED
    assert "selected 7 genomes" in stdout
    table = {line.split("  ")[0]: line.split()[-2:] for line in stdout.splitlines()}
    assert table["GTDB species representative"] == ["3", "9"]
    assert table["NCBI assembly level"] == ["2", "7"]


def test_cli_flags(tmp_path, monkeypatch, capsys):
    out = tmp_path / "selection.tsv"
    code, _, err = run_cli(
        ["data", "select", "--gtdb-metadata", str(FIXTURE), "--out", str(out),
         "--taxon", "s__Klebsiella pneumoniae,Escherichia", "--all-genomes",
         "--assembly-levels", "Complete Genome,Scaffold", "--max-ambiguous-bases", "5",
         "--min-completeness", "99.9", "--max-contamination", "0.5"],
        monkeypatch, capsys)
    assert code == 0, err
    assert ids(out) == {"GCF_003697165.2", "GCF_000005845.2", "GCF_000006925.2",
                        "GCF_000742135.1", "GCF_000240185.1"}
    again = ["data", "select", "--gtdb-metadata", str(FIXTURE), "--out", str(out),
             "--taxon", "any", "--representatives-only", "--assembly-levels", "any",
             "--min-completeness", "0", "--max-contamination", "100",
             "--max-ambiguous-bases", "100"]
    code, _, err = run_cli(again, monkeypatch, capsys)
    assert code == 2 and "--force" in err  # the manifest exists: not replaced silently
    code, _, _ = run_cli(again + ["--force"], monkeypatch, capsys)
    assert code == 0
    assert len(ids(out)) == 17  # every species representative


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["data", "select", "--gtdb-metadata", str(tmp_path / "nope.tsv"),
                            "--out", str(tmp_path / "m.tsv")], monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("dnatlas: error: ") and "nope.tsv" in err

    bad = tmp_path / "bad.tsv"
    bad.write_text("accession\tgtdb_taxonomy\nRS_GCF_000005845.2\td__Bacteria\n")
    code, _, err = run_cli(["data", "select", "--gtdb-metadata", str(bad),
                            "--out", str(tmp_path / "m.tsv")], monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "bad.tsv" in err and "missing required column" in err


def test_cli_old_release_warns(tmp_path, monkeypatch, capsys):
    def drop_checkm2(header, rows):
        keep = [i for i, h in enumerate(header) if not h.startswith("checkm2_")]
        return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]

    path = _rewrite(tmp_path, drop_checkm2)
    code, _, err = run_cli(["data", "select", "--gtdb-metadata", str(path),
                            "--out", str(tmp_path / "m.tsv")], monkeypatch, capsys)
    assert code == 0
    assert "dnatlas: warning:" in err and "checkm_completeness" in err
