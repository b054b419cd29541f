"""Tests of dnatlas.annotation.annotate and ``dnatlas annotate`` on real E. coli sequence."""

import shutil
from collections import Counter

import pytest

from dnatlas.annotation import annotate as annotate_module
from dnatlas.annotation import external
from dnatlas.annotation.annotate import TOOLS, annotate_genome, annotate_sequences, prodigal_mode
from dnatlas.annotation.external import run_pilercr, run_transterm
from dnatlas.annotation.intervals import bundled_annotation_path, group_features, load_gff3
from dnatlas.annotation.tracks import is_pseudo
from dnatlas.cli import main
from dnatlas.genome.alphabet import decode
from dnatlas.genome.readers import read_records

PREFIX = 240_000  # the first 240 kb of MG1655 hold ~210 genes and the rrnH operon
CRISPR_REGION = (2_870_000, 2_910_000)  # MG1655's two CRISPR arrays
needs_transterm = pytest.mark.skipif(shutil.which("transterm") is None,
                                     reason="TransTermHP (transterm) is not installed")
needs_pilercr = pytest.mark.skipif(shutil.which("pilercr") is None,
                                   reason="pilercr is not installed")


@pytest.fixture(scope="module")
def mg1655() -> str:
    genome = bundled_annotation_path().parents[1] / "genomes" / "ecoli_k12_mg1655.fa.gz"
    (record,) = read_records(genome)
    return decode(record.seq)


@pytest.fixture(scope="module")
def prefix_fasta(mg1655, tmp_path_factory):
    path = tmp_path_factory.mktemp("genome") / "mg1655_240kb.fa"
    path.write_text(f">K-12-MG1655 first {PREFIX} nt\n{mg1655[:PREFIX]}\n")
    return path


@pytest.fixture(scope="module")
def annotated(prefix_fasta, tmp_path_factory):
    """Every available tool on the 240 kb prefix: (returned features, GFF3 path, log lines)."""
    out = tmp_path_factory.mktemp("annotate") / "out.gff3"
    log = []
    intervals = annotate_genome(prefix_fasta, out, log=log.append)
    return intervals, out, log


def three_prime_ends(intervals):
    """{(strand, 3' end coordinate)} of stranded CDS; the 3' end is the stop codon's last nt."""
    return {(iv.strand, iv.end if iv.strand == 1 else iv.start) for iv in intervals}


def test_cds_calls_share_refseq_stop_codons(annotated):
    intervals, _, _ = annotated
    called = three_prime_ends(iv for iv in intervals if iv.type == "CDS")
    refseq = [g[0] for g in group_features(load_gff3(bundled_annotation_path()))
              if g[0].type == "CDS" and len(g) == 1 and not is_pseudo(g[0]) and g[0].end <= PREFIX]
    assert len(refseq) > 190
    shared = sum(key in called for key in three_prime_ends(refseq))
    assert shared >= 0.9 * len(refseq)


def test_rna_genes_of_the_rrnH_operon(annotated):
    intervals, _, _ = annotated
    found = {(iv.type, iv.start, iv.end, iv.strand) for iv in intervals if iv.type != "CDS"}
    # RefSeq: tRNA-Ile 225381..225457 and tRNA-Ala 225500..225575 (1-based), + strand
    assert ("tRNA", 225380, 225457, 1) in found and ("tRNA", 225499, 225575, 1) in found
    rrna = sorted(iv.attributes["gene"] for iv in intervals if iv.type == "rRNA")
    assert rrna == ["16S_rRNA", "23S_rRNA", "5S_rRNA"]


def test_gff3_output_round_trips(annotated):
    intervals, out, _ = annotated
    lines = out.read_text().splitlines()
    assert lines[:2] == ["##gff-version 3", f"##sequence-region K-12-MG1655 1 {PREFIX}"]
    assert load_gff3(out) == intervals
    ids = [iv.attributes["ID"] for iv in intervals]
    assert len(set(ids)) == len(ids)
    assert [iv.start for iv in intervals] == sorted(iv.start for iv in intervals)
    sources = {iv.type: iv.attributes["source"].split(":")[0] for iv in intervals}
    assert {sources["CDS"], sources["tRNA"], sources["rRNA"]} == {"pyrodigal", "pyaragorn",
                                                                  "pybarrnap"}
    assert all(":" in iv.attributes["source"] for iv in intervals)  # tool:version


def test_progress_lines_per_tool(annotated):
    _, _, log = annotated
    assert log[0].startswith("prodigal (single mode): ") and log[0].endswith(" s")
    assert any(line.startswith("aragorn: 4 tRNA in ") for line in log)
    assert any(line.startswith("barrnap: 3 rRNA in ") for line in log)
    assert len(log) == len(TOOLS)


def test_edge_genes_are_marked_partial(annotated):
    intervals, _, _ = annotated
    first = next(iv for iv in intervals if iv.type == "CDS")
    assert first.start < 3 and first.attributes["partial"] == "true"
    assert "start_range" in first.attributes


def test_missing_tools_are_reported_and_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no transterm, no pilercr
    log = []
    found = annotate_sequences([("s", "ACGT" * 100)], tools=["transterm", "pilercr"],
                               log=log.append)
    assert found == []
    assert log == ["skipped: transterm not found on PATH", "skipped: pilercr not found on PATH"]


def test_missing_python_tool_is_reported(monkeypatch):
    def unavailable(module):
        raise external.ToolUnavailable(f"needs {module}: pip install 'dnatlas[annotate]'")

    monkeypatch.setattr(annotate_module, "_import", unavailable)
    log = []
    assert annotate_sequences([("s", "ACGT" * 100)], tools=["prodigal"], log=log.append) == []
    assert log == ["skipped: prodigal needs pyrodigal: pip install 'dnatlas[annotate]'"]


def test_short_genomes_use_metagenomic_mode(mg1655):
    genome = [("a", mg1655[:12_000]), ("b", mg1655[20_000:26_000])]
    assert prodigal_mode(genome) == "meta"
    assert prodigal_mode([("a", mg1655[:20_000])]) == "single"
    log = []
    found = annotate_sequences(genome, tools=["prodigal"], log=log.append)
    assert log[0].startswith("prodigal (meta mode): ")
    assert {iv.seqid for iv in found} == {"a", "b"}


def test_unknown_tool_and_duplicate_ids_are_input_errors():
    from dnatlas.errors import InputError

    with pytest.raises(InputError, match="unknown tool 'glimmer'"):
        annotate_sequences([("s", "ACGT")], tools=["glimmer"])
    with pytest.raises(InputError, match="duplicate sequence IDs"):
        annotate_sequences([("s", "ACGT"), ("s", "ACGT")], tools=[])


def test_transterm_output_is_parsed():
    output = """TransTermHP v2.08 (built on Aug 20 2020)
SEQUENCE seq1  (length 240000)

g1                190 - 255      + |
  TERM 1          280 - 301      + F   100   -13 -6.06723 | opp_overlap 269 280
  GAAACACAGAAAAAA           GCCCGCAC CTGACA GTGCGGGC            TTTTTTTTTCGACCA
  TERM 5         9916 - 9899     - T   100 -12.7  -5.8187 |
"""
    first, second = external._parse_transterm(output, {"seq1": "chr"})
    assert (first.seqid, first.start, first.end, first.strand) == ("chr", 279, 301, 1)
    assert first.attributes == {"source": "TransTermHP:2.08", "score": "100", "context": "F",
                                "hairpin_score": "-13", "tail_score": "-6.06723"}
    assert (second.start, second.end, second.strand) == (9898, 9916, -1)


def test_pilercr_report_is_parsed():
    report = """pilercr v1.06
SUMMARY BY POSITION



>seq1

Array          Sequence    Position      Length  # Copies  Repeat  Spacer    Distance  Consensus
=====  ================  ==========  ==========  ========  ======  ======  ==========  =========
    1              seq1     2875906         580        10      29      32              CGGTTTATCC
    2              seq1     2902036         394         7      28      33       25518  GGTTTATCCC
"""
    first, second = external._parse_pilercr(report, {"seq1": "chr"})
    assert (first.seqid, first.start, first.end, first.strand, first.type) == (
        "chr", 2875905, 2876485, 0, "CRISPR")
    assert first.attributes["rpt_family"] == "CRISPR"
    assert first.attributes["source"] == "pilercr:1.06"
    assert (second.start, second.end, second.attributes["copies"]) == (2902035, 2902429, "7")


@needs_transterm
def test_transterm_finds_terminators(annotated):
    intervals, _, _ = annotated
    terminators = [iv for iv in intervals if iv.type == "terminator"]
    assert len(terminators) > 40
    assert all(iv.strand in (1, -1) and 10 <= len(iv) <= 80 for iv in terminators)
    # thrL attenuator, right after the first gene: TERM 1 280-301 +
    assert any((iv.start, iv.end, iv.strand) == (279, 301, 1) for iv in terminators)


def test_stand_in_genes_make_a_tail_to_tail_region(tmp_path):
    """Without genes: a 2-nt + strand gene at the left end and a - strand one (5' end last)
    at the right, so TransTermHP searches both strands of the whole sequence."""
    path = tmp_path / "genes.coords"
    external._write_coords(path, {"seq1": "x"}, [("x", "A" * 1000)], [])
    assert path.read_text() == "seq1_left\t1\t2\tseq1\nseq1_right\t1000\t999\tseq1\n"


@needs_transterm
def test_transterm_without_gene_calls_searches_both_strands(mg1655):
    found = run_transterm([("x", mg1655[:20_000])], cds=[])
    assert found and all(iv.type == "terminator" and iv.seqid == "x" for iv in found)
    strands = Counter(iv.strand for iv in found)
    assert strands[1] >= 3 and strands[-1] >= 3  # two + stand-ins found only + ones
    assert {iv.attributes["context"] for iv in found} == {"T"}
    # thrL's attenuator is a palindrome, found on both strands (whole-genome TERM 1 and 3)
    assert {(iv.start, iv.end, iv.strand) for iv in found} >= {(279, 301, 1), (268, 312, -1)}


@needs_transterm
def test_transterm_min_confidence_keeps_the_confident_ones(mg1655):
    genome = [("x", mg1655[:20_000])]
    every = run_transterm(genome, cds=[])
    confident = run_transterm(genome, cds=[], min_confidence=90)
    assert all(int(iv.attributes["score"]) >= 76 for iv in every)
    assert confident == [iv for iv in every if int(iv.attributes["score"]) >= 90]
    assert 0 < len(confident) < len(every)


def test_min_confidence_out_of_range_is_an_input_error(prefix_fasta, tmp_path, capsys):
    from dnatlas.errors import InputError

    for bad in (-1, 101, 90.5, True):
        with pytest.raises(InputError, match="confidence must be an integer from 0 to 100"):
            annotate_sequences([("s", "ACGT" * 100)], tools=["transterm"],
                               min_terminator_confidence=bad)
    out = tmp_path / "t.gff3"
    assert main(["annotate", "--genome", str(prefix_fasta), "--out", str(out), "--tools", "transterm",
                 "--transterm-min-conf", "101"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dnatlas: error: ") and "got 101" in err and not out.exists()


@needs_pilercr
def test_pilercr_finds_the_two_mg1655_crispr_arrays(mg1655):
    start, end = CRISPR_REGION
    first, second = run_pilercr([("region", mg1655[start:end])])
    assert (first.start + start, first.end + start, first.strand) == (2875905, 2876485, 0)
    # on the whole genome the second array starts at 2902035; in a window pilercr may
    # leave out its first, 96%-identical repeat (one repeat + spacer = 61 nt)
    assert second.start + start in (2902035, 2902096) and second.end + start == 2902429


def test_cli_annotate(prefix_fasta, tmp_path, capsys):
    out = tmp_path / "calls.gff3"
    assert main(["annotate", "--genome", str(prefix_fasta), "--out", str(out), "--tools", "aragorn"]) == 0
    stderr = capsys.readouterr().err
    assert "aragorn: 4 tRNA in" in stderr and f"wrote 4 features to {out}" in stderr
    assert Counter(iv.type for iv in load_gff3(out)) == {"tRNA": 4}


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["annotate", "--genome", str(tmp_path / "missing.fa"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("dnatlas: error: ")
    assert main(["annotate", "--genome", "g.fa", "--out", "o.gff3", "--tools", "prodigal,glimmer"]) == 2
    err = capsys.readouterr().err
    assert "unknown tool 'glimmer'" in err and err.startswith("dnatlas: error: annotate: ")
