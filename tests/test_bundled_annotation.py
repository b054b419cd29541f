"""The bundled MG1655 annotation: RefSeq plus TransTermHP terminators and pilercr CRISPR
arrays, one short name for both files, and annotation file lists read as one union."""

import hashlib
import shutil
from collections import Counter

import numpy as np
import pytest

from dnatlas import bundled
from dnatlas.annotation.annotate import annotate_genome
from dnatlas.annotation.intervals import (
    Interval,
    bundled_annotation_path,
    group_features,
    load_annotations,
    load_gff3,
)
from dnatlas.annotation.tracks import is_crispr, label_tracks
from dnatlas.cli import main
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import decode
from dnatlas.genome.readers import read_records
from dnatlas.genome.sources import resolve_bundled_annotations

SEQID, LENGTH = "K-12-MG1655", 4_639_675
TOOLS_FILE = "ecoli_k12_mg1655.transterm-pilercr.gff3.gz"
#: the ``--transterm-min-conf`` the bundled file was made with (README.md in bundled/)
MIN_CONFIDENCE = 90
#: pilercr's two arrays on the whole genome, 0-based half-open, with copies and consensus
CRISPR_ARRAYS = [(2_875_905, 2_876_485, "10", "CGGTTTATCCCCGCTGGCGCGGGGAACTC"),
                 (2_902_035, 2_902_429, "7", "GGTTTATCCCCGCTGGCGCGGGGAACAC")]
#: a slice holding both arrays on which pilercr finds them exactly as on the whole genome
#: (pilercr's result depends on the sequence around: in 2.87-2.91 Mb it leaves out
#: CRISPR-II's first, 96%-identical repeat)
SLICE = (2_860_000, 2_920_000)
needs_tools = pytest.mark.skipif(
    shutil.which("transterm") is None or shutil.which("pilercr") is None,
    reason="TransTermHP (transterm) or pilercr is not installed")


@pytest.fixture(scope="module")
def tools_features():
    return load_gff3(bundled.root() / "annotations" / TOOLS_FILE)


@pytest.fixture(scope="module")
def union():
    """``load_annotations("ecoli_k12_mg1655")``: what the pipelines read."""
    return load_annotations("ecoli_k12_mg1655")


def _without_id(interval: Interval, shift: int = 0):
    attributes = {k: v for k, v in interval.attributes.items() if k != "ID"}
    return (interval.type, interval.start + shift, interval.end + shift, interval.strand,
            tuple(sorted(attributes.items())))


# ----------------------------------------------------------------- the bundled file


def test_bundled_file_has_terminators_on_both_strands(tools_features):
    counts = Counter((iv.type, iv.strand) for iv in tools_features)
    assert counts == {("terminator", 1): 698, ("terminator", -1): 701, ("CRISPR", 0): 2}
    terminators = [iv for iv in tools_features if iv.type == "terminator"]
    assert all(iv.seqid == SEQID and 10 <= len(iv) <= 80 for iv in terminators)
    assert all(MIN_CONFIDENCE <= int(iv.attributes["score"]) <= 100 for iv in terminators)
    assert all(float(iv.attributes["hairpin_score"]) < 0 for iv in terminators)
    assert {iv.attributes["source"] for iv in terminators} == {"TransTermHP:2.08"}
    # the thrL attenuator, right after the first gene (thrL ends at 255), + strand
    assert any((iv.start, iv.end, iv.strand) == (279, 301, 1) for iv in terminators)


def test_terminators_sit_after_refseq_genes(tools_features, union):
    """Most terminators lie <= 150 nt downstream of a same-strand RefSeq CDS 3' end; random
    30-nt intervals rarely do (measured 0.61 vs 0.07)."""
    cds = [iv for iv in union if iv.type == "CDS"]
    ends = {1: np.sort([iv.end for iv in cds if iv.strand == 1]),
            -1: np.sort([-iv.start for iv in cds if iv.strand == -1])}

    def after_gene(starts, strands):
        hits = []
        for start, strand in zip(starts, strands):
            e = ends[strand]
            i = np.searchsorted(e, start, side="right") - 1
            hits.append(i >= 0 and start - e[i] <= 150)
        return np.mean(hits)

    terminators = [iv for iv in tools_features if iv.type == "terminator"]
    found = after_gene([iv.start if iv.strand == 1 else -iv.end for iv in terminators],
                       [iv.strand for iv in terminators])
    rng = np.random.default_rng(0)
    starts, strands = rng.integers(0, LENGTH - 30, 2000), rng.choice([-1, 1], 2000)
    shuffled = after_gene(np.where(strands == 1, starts, -(starts + 30)), strands)
    assert found > 0.5 and shuffled < 0.15


def test_bundled_file_has_the_two_crispr_arrays(tools_features):
    arrays = [iv for iv in tools_features if iv.type == "CRISPR"]
    assert [(iv.start, iv.end, iv.attributes["copies"], iv.attributes["rpt_unit_seq"])
            for iv in arrays] == CRISPR_ARRAYS
    assert all(is_crispr(iv) and iv.attributes["rpt_family"] == "CRISPR" for iv in arrays)
    assert [iv.attributes["repeat_length"] for iv in arrays] == ["29", "28"]
    # each array holds its consensus repeat exactly, copies times but for CRISPR-II's first,
    # 96%-identical copy; it ends with a repeat
    (record,) = read_records(bundled.genome_path("ecoli_k12_mg1655"))
    texts = [decode(record.seq[iv.start:iv.end]) for iv in arrays]
    repeats = [iv.attributes["rpt_unit_seq"] for iv in arrays]
    assert [t.count(r) for t, r in zip(texts, repeats)] == [10, 6]
    assert all(t.endswith(r) for t, r in zip(texts, repeats))


def test_track_rules_label_terminators_and_crispr(tools_features, union):
    tracks = label_tracks(union, SEQID, LENGTH,
                          tracks=["terminator", "CRISPR", "CDS"])
    crispr = tracks["CRISPR"]
    assert crispr[0].sum() == crispr[1].sum() == sum(e - s for s, e, *_ in CRISPR_ARRAYS)
    assert crispr[:, 2_875_905].all() and not crispr[:, 2_875_904].any()
    terminator = tracks["terminator"]
    assert terminator[0, 279:301].all()  # thrL's (also found on -: 268-312, a palindrome)
    plus_only = [iv for iv in tools_features if iv.type == "terminator" and iv.strand == 1
                 and not terminator[1, iv.start:iv.end].any()]
    assert len(plus_only) > 300  # the rows differ: strands are kept apart
    reference = np.zeros((2, LENGTH), bool)  # brute force: one slice per terminator
    for iv in tools_features:
        if iv.type == "terminator":
            reference[0 if iv.strand == 1 else 1, iv.start:iv.end] = True
    assert np.array_equal(terminator, reference) and 10_000 < terminator[1].sum() < 60_000
    assert tracks["CDS"].any()  # the RefSeq file is in the union


# ----------------------------------------------------------------- one short name


def test_short_name_means_both_files():
    names = [p.name for p in bundled.annotation_paths("ecoli_k12_mg1655")]
    assert names == ["ecoli_k12_mg1655.refseq.gff3.gz", TOOLS_FILE]
    assert bundled.annotation_names() == ["ecoli_k12_mg1655"]
    assert bundled.annotation_paths() == bundled.annotation_paths(bundled.DEFAULT_ANNOTATION)
    assert resolve_bundled_annotations("ecoli_k12_mg1655") == bundled.annotation_paths()
    # one file by its own name, with or without .gff3.gz; annotation_path: the RefSeq file
    assert [p.name for p in bundled.annotation_paths("ecoli_k12_mg1655.transterm-pilercr")] \
        == [TOOLS_FILE]
    assert bundled.annotation_path(TOOLS_FILE).name == TOOLS_FILE
    assert bundled.annotation_path().name == "ecoli_k12_mg1655.refseq.gff3.gz"
    assert bundled_annotation_path() == bundled.annotation_path()
    with pytest.raises(InputError, match="no bundled annotation named 'ecoli'.*"
                                         "ecoli_k12_mg1655.transterm-pilercr"):
        bundled.annotation_paths("ecoli")
    with pytest.raises(InputError, match="ecoli_k12_mg1655.gff3: no such file, nor a bundled "
                                         "annotation named"):
        resolve_bundled_annotations("ecoli_k12_mg1655.gff3")


def test_short_name_loads_the_union(tools_features, union):
    refseq = load_gff3(bundled_annotation_path())
    assert union == refseq + tools_features  # no ID clash: nothing renamed
    types = Counter(iv.type for iv in union)
    assert types["terminator"] == 1399 and types["CRISPR"] == 2 and types["CDS"] > 4000
    # naming the genome and then one of its files reads each file once
    assert resolve_bundled_annotations(["ecoli_k12_mg1655", bundled.annotation_path()]) \
        == bundled.annotation_paths()


def test_sha256sums_match():
    listed = {}
    for line in (bundled.root() / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert len(digest) == 64
        listed[name] = digest
    annotations = {f"annotations/{p.name}" for p in bundled.annotation_paths()}
    genomes = {f"genomes/{p.name}" for p in bundled.genome_paths()}
    assert annotations | genomes <= set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((bundled.root() / name).read_bytes()).hexdigest() == digest, name


# ----------------------------------------------------------------- user file lists


GFF_A = """##gff-version 3
chr\tt\tCDS\t11\t100\t.\t+\t0\tID=g1;gene=a
chr\tt\tCDS\t201\t300\t.\t-\t0\tID=g2;gene=b
"""
GFF_B = """##gff-version 3
chr\tt\tCDS\t401\t490\t.\t+\t0\tID=g1;gene=c
chr\tt\tterminator\t501\t530\t95\t+\t.\tID=t1
"""


def test_a_list_of_files_is_unioned(tmp_path):
    a, b, bed = tmp_path / "a.gff3", tmp_path / "b.gff3", tmp_path / "crispr.bed"
    a.write_text(GFF_A)
    b.write_text(GFF_B)
    bed.write_text("chr\t600\t700\tarray\t0\t.\n")
    union = load_annotations([a, str(b), bed])
    assert [(iv.type, iv.start, iv.end) for iv in union] == [
        ("CDS", 10, 100), ("CDS", 200, 300), ("CDS", 400, 490), ("terminator", 500, 530),
        ("crispr", 600, 700)]
    # b's g1 clashes with a's g1: renamed, so the two genes are not grouped into one
    assert [iv.attributes["ID"] for iv in union[:4]] == ["g1", "g2", "b.gff3:g1", "t1"]
    assert len(group_features(iv for iv in union if iv.type == "CDS")) == 3
    tracks = label_tracks(union, "chr", 800, tracks=["CDS", "terminator", "crispr"])
    assert tracks["CDS"][0].sum() == 180 and tracks["CDS"][1].sum() == 100
    assert tracks["terminator"][0].sum() == 30 and tracks["crispr"].sum() == 200
    # a file listed twice is read once; an empty list and a missing file are input errors
    assert load_annotations([a, a]) == load_annotations(a)
    with pytest.raises(InputError, match="no annotation file given"):
        load_annotations([])
    with pytest.raises(InputError, match="missing.gff3: file not found"):
        load_annotations([a, tmp_path / "missing.gff3"])


def test_a_user_file_and_the_bundled_name(tmp_path, tools_features):
    extra = tmp_path / "extra.gff3"
    extra.write_text(f"##gff-version 3\n{SEQID}\tme\tpromoter\t100\t140\t.\t+\t.\tID=p1\n")
    union = load_annotations(["ecoli_k12_mg1655", extra])
    assert union[-1].type == "promoter" and union[-len(tools_features) - 1:-1] == tools_features


def test_neurons_annotations_flag_takes_several_files(monkeypatch, capsys):
    import dnatlas.pipelines.neurons as pipeline

    seen = {}

    def fake_catalog(model, fasta, annotations, *args, **kwargs):
        seen["annotations"] = annotations
        raise InputError("stop here")

    monkeypatch.setattr(pipeline, "neuron_catalog", fake_catalog)
    argv = ["neurons", "--model", "kmer:x", "--genome", "g.fa", "--layer", "0", "--out", "o"]
    assert main([*argv, "--annotations", "a.gff3,b.bed", "-a", "ecoli_k12_mg1655"]) == 2
    assert seen["annotations"] == ["a.gff3", "b.bed", "ecoli_k12_mg1655"]
    assert main([*argv, "--annotations", "ecoli_k12_mg1655"]) == 2
    assert seen["annotations"] == ["ecoli_k12_mg1655"]
    assert "dnatlas: error: stop here" in capsys.readouterr().err


@pytest.mark.slow
def test_neuron_catalog_scores_the_union(tmp_path):
    import torch

    from dnatlas.pipelines.neurons import CatalogSettings, neuron_catalog
    from tests.helpers import ToyAdapter, ToyRCModel, write_inputs

    torch.set_num_threads(1)
    _, fasta, gff = write_inputs(tmp_path)
    extra = tmp_path / "extra.gff3"
    extra.write_text("##gff-version 3\nchrA\tx\tterminator\t2301\t2330\t95\t+\t.\tID=t1\n"
                     "chrA\tx\tCRISPR\t2401\t2480\t.\t.\t.\tID=c1;rpt_family=CRISPR\n")
    result = neuron_catalog(ToyAdapter(ToyRCModel()), fasta, [gff, extra], "1", tmp_path / "n",
                            settings=CatalogSettings(tracks=["CDS", "terminator", "CRISPR"],
                                                     windows=0))
    catalog = result.catalogs[0]
    positives = dict(zip(catalog.tracks, catalog.chance * 2 * (2500 + 800)))
    assert positives == pytest.approx({"CDS": 1900, "terminator": 30, "CRISPR": 160})
    assert all(np.isfinite(catalog.best(track)[1]) for track in catalog.tracks)


# ----------------------------------------------------------------- reproducing the file


@needs_tools
def test_annotating_a_slice_reproduces_the_bundled_features(tmp_path, tools_features):
    start, end = SLICE
    (record,) = read_records(bundled.genome_path("ecoli_k12_mg1655"))
    fasta = tmp_path / "slice.fa"
    fasta.write_text(f">{SEQID}\n{decode(record.seq[start:end])}\n")
    log = []
    found = annotate_genome(fasta, tmp_path / "slice.gff3", tools=["transterm", "pilercr"],
                            min_terminator_confidence=MIN_CONFIDENCE, log=log.append)
    margin = 200  # features this close to a cut may see different flanks

    def inner(intervals, shift):
        return sorted(_without_id(iv, shift) for iv in intervals
                      if start + margin <= iv.start + shift and iv.end + shift <= end - margin)

    expected = inner(tools_features, 0)
    assert inner(found, start) == expected
    kinds = Counter((kind, strand) for kind, _, _, strand, _ in expected)
    assert kinds[("CRISPR", 0)] == 2 and kinds[("terminator", 1)] > 5 \
        and kinds[("terminator", -1)] > 5
    assert log[0].startswith("transterm: ") and log[1].startswith("pilercr: 2 CRISPR in ")


@needs_tools
@pytest.mark.slow
def test_annotating_the_genome_reproduces_the_bundled_file(tmp_path, tools_features):
    """The README's command, run again: the same features (IDs included)."""
    out = tmp_path / "tools.gff3"
    assert main(["annotate", "--genome", "ecoli_k12_mg1655", "--tools", "transterm,pilercr",
                 "--transterm-min-conf", str(MIN_CONFIDENCE), "--out", str(out)]) == 0
    assert load_gff3(out) == tools_features
