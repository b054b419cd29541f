"""Tests of dnatlas.annotation.intervals: GFF3, GenBank and BED readers, GFF3 writer."""

import gzip
from collections import Counter
from pathlib import Path

import pytest

from dnatlas.annotation.intervals import (
    Interval,
    annotation_format,
    bundled_annotation_path,
    codon_phases,
    group_features,
    load_annotations,
    load_bed,
    load_genbank_features,
    load_gff3,
    parse_bed_spec,
    write_gff3,
)
from dnatlas.errors import InputError

GFF3 = """\
##gff-version 3
##sequence-region chr%201 1 60
# a comment
chr%201\tRefSeq\tregion\t1\t60\t.\t+\t.\tID=chr1;Is_circular=true
chr%201\tRefSeq\tCDS\t11\t22\t.\t+\t0\tID=cds1;gene=abcA;product=a%2C b%3B c%3Dd
chr%201\tRefSeq\tCDS\t26\t37\t3.5\t-\t0\tID=cds2;Name=NP_1.1;pseudo=true

chr%201\tRefSeq\tCDS\t41\t46\t.\t-\t0\tID=cds3;gene=split
chr%201\tRefSeq\tCDS\t48\t53\t.\t-\t1\tID=cds3;gene=split
chr%201\tRefSeq\trepeat_region\t55\t60\t.\t.\t.\tID=id1;rpt_family=REP;
##FASTA
>chr 1
ACGT
"""


def write(path, text):
    path.write_text(text)
    return path


def test_gff3_features_in_0_based_half_open(tmp_path):
    intervals = load_gff3(write(tmp_path / "a.gff3", GFF3))
    assert [(iv.seqid, iv.start, iv.end, iv.strand, iv.type, iv.name) for iv in intervals] == [
        ("chr 1", 10, 22, 1, "CDS", "abcA"),
        ("chr 1", 25, 37, -1, "CDS", "NP_1.1"),
        ("chr 1", 40, 46, -1, "CDS", "split"),
        ("chr 1", 47, 53, -1, "CDS", "split"),
        ("chr 1", 54, 60, 0, "repeat_region", "id1"),
    ]


def test_gff3_attributes_are_decoded_and_keep_columns(tmp_path):
    first, second, *_, repeat = load_gff3(write(tmp_path / "a.gff3", GFF3))
    assert first.attributes == {"ID": "cds1", "gene": "abcA", "product": "a, b; c=d",
                                "source": "RefSeq", "phase": "0"}
    assert second.attributes["pseudo"] == "true"
    assert second.attributes["score"] == "3.5"
    assert repeat.attributes == {"ID": "id1", "rpt_family": "REP", "source": "RefSeq"}


def test_gff3_split_feature_pieces_share_their_id(tmp_path):
    intervals = load_gff3(write(tmp_path / "a.gff3", GFF3))
    groups = group_features(intervals)
    assert [len(group) for group in groups] == [1, 1, 2, 1]
    assert [iv.attributes["phase"] for iv in groups[2]] == ["0", "1"]


def test_gff3_gzip_is_read_whatever_the_name(tmp_path):
    plain = load_gff3(write(tmp_path / "a.gff3", GFF3))
    for name in ("a.gff3.gz", "a.gff3"):
        path = tmp_path / "gz" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(GFF3.encode()))
        assert load_gff3(path) == plain


@pytest.mark.parametrize("line, message", [
    ("chr1\tx\tCDS\t1\t9\t.\t+\t0", "expected 9 tab-separated columns, found 8"),
    ("chr1\tx\tCDS\t10\t9\t.\t+\t0\tID=a", "start 10 > end 9"),
    ("chr1\tx\tCDS\t1\tten\t.\t+\t0\tID=a", "end 'ten' is not an integer"),
    ("chr1\tx\tCDS\t1\t9\t.\tplus\t0\tID=a", "invalid strand 'plus'"),
    ("chr1\tx\tCDS\t0\t9\t.\t+\t0\tID=a", "start 0 is below 1"),
    ("chr1\tx\tCDS\t1\t9\t.\t+\t0\tgene_id \"a\"", "is not key=value"),
])
def test_gff3_bad_line_names_file_line_and_record(tmp_path, line, message):
    path = write(tmp_path / "bad.gff3", f"##gff-version 3\n# comment\n{line}\n")
    with pytest.raises(InputError) as info:
        load_gff3(path)
    error = info.value
    assert (error.path, error.line, error.record) == (str(path), 3, "chr1")
    assert message in error.message
    assert str(error).startswith(f"{path}: record 'chr1': line 3: ")
    assert "\n" not in str(error)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_gff3(tmp_path / "missing.gff3")


def test_write_gff3_round_trip(tmp_path):
    intervals = [
        Interval("chr 1;x", 0, 12, 1, "CDS", "abc",
                 {"ID": "cds_1", "gene": "abc", "product": "a; b=c & 100% d\te",
                  "Dbxref": "x:1,y:2", "source": "tool:1.0", "score": "2.5", "phase": "0"}),
        Interval("chr 1;x", 20, 30, 0, "repeat_region", "r1", {"ID": "r1"}),
        Interval("chr2", 5, 9, -1, "terminator", "", {}),
    ]
    path = tmp_path / "out.gff3"
    write_gff3(path, intervals, {"chr 1;x": 40, "chr2": 10})
    lines = path.read_text().splitlines()
    assert lines[:3] == ["##gff-version 3", "##sequence-region chr%201%3Bx 1 40",
                         "##sequence-region chr2 1 10"]
    assert lines[3].split("\t")[:8] == ["chr%201%3Bx", "tool:1.0", "CDS", "1", "12", "2.5",
                                        "+", "0"]
    assert lines[5] == "chr2\t.\tterminator\t6\t9\t.\t-\t.\t."
    assert load_gff3(path) == intervals


def test_genbank_features(tmp_path):
    from Bio.Seq import Seq
    from Bio.SeqFeature import CompoundLocation, SeqFeature, SimpleLocation
    from Bio.SeqIO import write as write_records
    from Bio.SeqRecord import SeqRecord

    record = SeqRecord(Seq("A" * 60), id="NC_1.1", name="NC_1", description="test",
                       annotations={"molecule_type": "DNA"})
    record.features = [
        SeqFeature(SimpleLocation(0, 60, 1), type="source"),
        SeqFeature(SimpleLocation(9, 21, 1), type="CDS",
                   qualifiers={"gene": ["abcA"], "product": ["a, b"]}),
        SeqFeature(CompoundLocation([SimpleLocation(47, 53, -1), SimpleLocation(39, 46, -1)]),
                   type="CDS", qualifiers={"locus_tag": ["b1"], "pseudo": [""]}),
        SeqFeature(SimpleLocation(54, 58, -1), type="tRNA", qualifiers={"product": ["tRNA-Ile"]}),
    ]
    path = tmp_path / "a.gbk"
    write_records([record], path, "genbank")
    intervals = load_genbank_features(path)
    assert [(iv.seqid, iv.start, iv.end, iv.strand, iv.type, iv.name) for iv in intervals] == [
        ("NC_1.1", 9, 21, 1, "CDS", "abcA"),
        ("NC_1.1", 47, 53, -1, "CDS", "b1"),
        ("NC_1.1", 39, 46, -1, "CDS", "b1"),
        ("NC_1.1", 54, 58, -1, "tRNA", "tRNA4"),  # no gene/locus_tag: the generated ID
    ]
    first, piece1, piece2, trna = intervals
    assert first.attributes["product"] == "a, b"
    assert first.attributes["phase"] == "0"
    assert piece1.attributes["pseudo"] == "true"
    # 6 nt in the first piece: the second piece starts on a codon boundary
    assert (piece1.attributes["phase"], piece2.attributes["phase"]) == ("0", "0")
    assert piece1.attributes["ID"] == piece2.attributes["ID"]
    assert "phase" not in trna.attributes
    assert load_annotations(path) == intervals


def test_genbank_codon_start_sets_the_phase_of_each_piece():
    assert codon_phases([7, 10, 5], first_phase=0) == [0, 2, 1]
    assert codon_phases([8, 4], first_phase=2) == [2, 0]


def test_bad_genbank_is_an_input_error(tmp_path):
    path = write(tmp_path / "bad.gbk", "LOCUS       x\nnonsense\n")
    with pytest.raises(InputError) as info:
        load_genbank_features(path)
    assert info.value.path == str(path)


BED = """\
track name=peaks
# comment
chr1\t10\t20
chr1 30 40 peak2 5 -
chr1\t50\t60\tpeak3\t0\t.
chr1\t100\t200\ttx\t0\t+\t110\t190\t0\t2\t20,30,\t0,70,
"""


def test_bed3_to_bed12(tmp_path):
    intervals = load_bed(write(tmp_path / "peaks.bed", BED))
    assert [(iv.seqid, iv.start, iv.end, iv.strand, iv.type, iv.name) for iv in intervals] == [
        ("chr1", 10, 20, 0, "peaks", ""),
        ("chr1", 30, 40, -1, "peaks", "peak2"),
        ("chr1", 50, 60, 0, "peaks", "peak3"),
        ("chr1", 100, 120, 1, "peaks", "tx"),
        ("chr1", 170, 200, 1, "peaks", "tx"),
    ]
    assert intervals[1].attributes == {"source": "BED", "ID": "peaks:4", "score": "5"}
    assert intervals[3].attributes["ID"] == intervals[4].attributes["ID"] == "peaks:6"
    assert intervals[3].attributes["thickStart"] == "110"


def test_bed_type_from_argument_or_file_stem(tmp_path):
    path = tmp_path / "my.sites.bed.gz"
    path.write_bytes(gzip.compress(b"chr1\t1\t2\n"))
    assert load_bed(path)[0].type == "my.sites"
    assert load_bed(path, type="sites")[0].type == "sites"


@pytest.mark.parametrize("line, message", [
    ("chr1\t10", "expected 3 to 12 columns (BED3 to BED12), found 2"),
    ("chr1\t20\t10", "start 20 > end 10"),
    ("chr1\t1.5\t10", "start '1.5' is not an integer"),
    ("chr1\t1\t10\tx\t0\t*", "invalid strand '*'"),
    ("chr1\t0\t100\tx\t0\t+\t0\t100\t0\t2\t10,\t0,", "blockCount 2 does not match"),
    ("chr1\t0\t100\tx\t0\t+\t0\t100\t0\t1\t50,\t60,", "a block lies outside [0, 100)"),
])
def test_bed_bad_line_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "x.bed", f"chr1\t0\t1\n{line}\n")
    with pytest.raises(InputError) as info:
        load_bed(path)
    assert (info.value.path, info.value.line, info.value.record) == (str(path), 2, "chr1")
    assert message in info.value.message


def test_parse_bed_spec():
    assert parse_bed_spec("promoters=data/p.bed") == ("promoters", Path("data/p.bed"))
    assert parse_bed_spec("data/sites.bed.gz")[0] == "sites"


def test_format_from_extension_or_content(tmp_path):
    assert annotation_format(tmp_path / "x.gff3.gz") == "gff3"
    assert annotation_format(tmp_path / "x.gbff") == "genbank"
    assert annotation_format(tmp_path / "x.bed") == "bed"
    assert annotation_format(write(tmp_path / "g", "##gff-version 3\n")) == "gff3"
    assert annotation_format(write(tmp_path / "h", "LOCUS  x\n")) == "genbank"
    assert annotation_format(write(tmp_path / "b", "#c\nchr1\t1\t2\n")) == "bed"
    assert load_annotations(write(tmp_path / "f", GFF3)) == load_gff3(tmp_path / "f")
    with pytest.raises(InputError, match="cannot tell the annotation format"):
        annotation_format(write(tmp_path / "empty", "\n"))


def test_reverse_complement_of_an_interval():
    iv = Interval("c", 10, 22, 1, "CDS", "a", {"start_range": ".,11"})
    flipped = iv.reverse_complement(40)
    assert (flipped.start, flipped.end, flipped.strand) == (18, 30, -1)
    assert flipped.attributes == {"end_range": "30,."}
    assert flipped.reverse_complement(40) == Interval("c", 10, 22, 1, "CDS", "a",
                                                      {"start_range": ".,11"})


def test_invalid_interval_is_rejected():
    with pytest.raises(ValueError):
        Interval("c", 5, 4)
    with pytest.raises(ValueError):
        Interval("c", 1, 4, strand=2)


def test_bundled_refseq_annotation():
    intervals = load_gff3(bundled_annotation_path())
    assert {iv.seqid for iv in intervals} == {"K-12-MG1655"}
    counts = Counter(iv.type for iv in intervals)
    assert counts["region"] == 0
    assert (counts["tRNA"], counts["rRNA"], counts["ncRNA"], counts["tmRNA"]) == (89, 22, 65, 2)
    assert (counts["repeat_region"], counts["mobile_genetic_element"]) == (355, 49)
    cds = group_features(iv for iv in intervals if iv.type == "CDS")
    assert len(cds) == 4316
    assert sum(g[0].attributes.get("pseudo") == "true" for g in cds) == 179
    prfb = next(g for g in cds if g[0].attributes.get("gene") == "prfB")
    assert [(iv.start, iv.end, iv.strand) for iv in prfb] == [(3034229, 3034304, -1),
                                                              (3033205, 3034228, -1)]
