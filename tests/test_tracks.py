"""Tests of dnatlas.annotation.tracks: per-nucleotide strand-aware labels, hand-checked."""

import time
from collections import Counter

import numpy as np
import pytest

from dnatlas.annotation.intervals import Interval, bundled_annotation_path, load_bed, load_gff3
from dnatlas.annotation.tracks import STANDARD_TRACKS, LabelTracks, is_pseudo, label_tracks
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import decode, reverse_complement
from dnatlas.genome.readers import read_records

L = 60
GFF3 = """\
##gff-version 3
c\tt\tCDS\t11\t22\t.\t+\t0\tID=cds1;gene=plusA
c\tt\tCDS\t26\t37\t.\t-\t0\tID=cds2;gene=minusB
c\tt\tCDS\t41\t49\t.\t+\t0\tID=cds3;pseudo=true
c\tt\ttRNA\t45\t52\t.\t-\t.\tID=t1
c\tt\trepeat_region\t54\t58\t.\t.\t.\tID=r1;Note=REP1 (repetitive extragenic palindromic) element
c\tt\trepeat_region\t2\t5\t.\t+\t.\tID=r2;rpt_family=CRISPR
other\tt\tCDS\t1\t9\t.\t+\t0\tID=x
"""
BED = "c\t3\t8\ts1\t0\t-\nc\t30\t33\n"


@pytest.fixture
def intervals(tmp_path):
    (tmp_path / "a.gff3").write_text(GFF3)
    (tmp_path / "sites.bed").write_text(BED)
    return load_gff3(tmp_path / "a.gff3") + load_bed(tmp_path / "sites.bed")


def positions(tracks, name):
    """(+ strand positions, - strand positions) of a track."""
    return tuple(np.flatnonzero(row).tolist() for row in tracks[name])


def test_default_tracks_are_the_standard_ones_plus_bed_files(intervals):
    tracks = label_tracks(intervals, "c", L)
    assert tracks.names == (*STANDARD_TRACKS, "sites")
    assert tracks.length == L
    assert all(tracks[name].shape == (2, L) and tracks[name].dtype == bool for name in tracks)
    assert tracks.codon_phase.shape == (2, L) and tracks.codon_phase.dtype == np.int8


def test_cds_and_codon_tracks_on_both_strands(intervals):
    tracks = label_tracks(intervals, "c", L)
    assert positions(tracks, "CDS") == (list(range(10, 22)), list(range(25, 37)))
    assert positions(tracks, "start_codon") == ([10, 11, 12], [34, 35, 36])
    assert positions(tracks, "start_codon_2nd") == ([11], [35])
    assert positions(tracks, "stop_codon") == ([19, 20, 21], [25, 26, 27])
    assert positions(tracks, "stop_codon_1st") == ([19], [27])


def test_codon_phase_follows_each_cds_reading_direction(intervals):
    phase = label_tracks(intervals, "c", L).codon_phase
    expected = np.full((2, L), -1)
    expected[0, 10:22] = [0, 1, 2] * 4
    expected[1, 25:37] = [2, 1, 0] * 4  # phase 0 at 36, 33, 30, 27 (highest coordinate first)
    np.testing.assert_array_equal(phase, expected)


def test_feature_tracks(intervals):
    tracks = label_tracks(intervals, "c", L)
    assert positions(tracks, "tRNA") == ([], list(range(44, 52)))
    assert positions(tracks, "REP") == (list(range(53, 58)), list(range(53, 58)))
    assert positions(tracks, "repeat_region") == ([1, 2, 3, 4, *range(53, 58)],
                                                  list(range(53, 58)))
    assert positions(tracks, "CRISPR") == ([1, 2, 3, 4], [])
    assert positions(tracks, "sites") == ([30, 31, 32], [3, 4, 5, 6, 7, 30, 31, 32])
    for name in ("rRNA", "ncRNA", "tmRNA", "terminator", "mobile_element"):
        assert positions(tracks, name) == ([], [])
    assert np.flatnonzero(tracks.any_strand("tRNA")).tolist() == list(range(44, 52))


def test_pseudo_cds_only_on_request(intervals):
    tracks = label_tracks(intervals, "c", L, include_pseudo=True)
    assert positions(tracks, "CDS")[0] == [*range(10, 22), *range(40, 49)]
    assert positions(tracks, "start_codon")[0] == [10, 11, 12, 40, 41, 42]
    assert positions(tracks, "stop_codon_1st")[0] == [19, 46]
    assert tracks.codon_phase[0, 40:49].tolist() == [0, 1, 2] * 3


def test_selected_tracks_only(intervals):
    tracks = label_tracks(intervals, "c", L, tracks=["stop_codon_1st", "tRNA", "sites"])
    assert tracks.names == ("stop_codon_1st", "tRNA", "sites")
    assert positions(tracks, "stop_codon_1st") == ([19], [27])


def test_split_cds_codons_at_the_feature_ends_and_phase_per_piece():
    # a - strand CDS with a +1 frameshift (like prfB): 5' piece [30, 36), then [20, 29)
    pieces = [Interval("c", 30, 36, -1, "CDS", "", {"ID": "s", "phase": "0"}),
              Interval("c", 20, 29, -1, "CDS", "", {"ID": "s", "phase": "0"})]
    tracks = label_tracks(pieces, "c", 40)
    assert positions(tracks, "CDS") == ([], [*range(20, 29), *range(30, 36)])
    assert positions(tracks, "start_codon") == ([], [33, 34, 35])
    assert positions(tracks, "start_codon_2nd") == ([], [34])
    assert positions(tracks, "stop_codon") == ([], [20, 21, 22])
    assert positions(tracks, "stop_codon_1st") == ([], [22])
    assert tracks.codon_phase[1, 20:36].tolist() == [2, 1, 0, 2, 1, 0, 2, 1, 0, -1,
                                                     2, 1, 0, 2, 1, 0]


def test_phase_without_attribute_is_cumulative_over_pieces():
    pieces = [Interval("c", 0, 7, 1, "CDS", "", {"ID": "s"}),
              Interval("c", 10, 18, 1, "CDS", "", {"ID": "s"})]
    phase = label_tracks(pieces, "c", 20).codon_phase[0]
    assert phase.tolist() == [0, 1, 2, 0, 1, 2, 0, -1, -1, -1,
                              1, 2, 0, 1, 2, 0, 1, 2, -1, -1]


def test_incomplete_ends_get_no_codon():
    five_open = Interval("c", 10, 22, 1, "CDS", "", {"start_range": ".,11"})
    three_open = Interval("c", 30, 42, -1, "CDS", "", {"start_range": ".,31"})
    offset = Interval("c", 50, 62, 1, "CDS", "", {"phase": "1"})
    tracks = label_tracks([five_open, three_open, offset], "c", 70)
    assert positions(tracks, "start_codon") == ([], [39, 40, 41])
    assert positions(tracks, "stop_codon") == ([19, 20, 21, 59, 60, 61], [])
    assert tracks.codon_phase[0, 50:56].tolist() == [2, 0, 1, 2, 0, 1]


def test_overlapping_cds_downstream_frame_wins_whatever_the_order():
    upstream = Interval("c", 0, 30, 1, "CDS", "", {"ID": "a"})
    downstream = Interval("c", 26, 59, 1, "CDS", "", {"ID": "b"})  # ATGA-style 4 nt overlap
    for order in ([upstream, downstream], [downstream, upstream]):
        phase = label_tracks(order, "c", 60).codon_phase[0]
        assert phase[24:32].tolist() == [0, 1, 0, 1, 2, 0, 1, 2]


def test_reverse_complement_matches_labels_of_reverse_complemented_intervals(intervals):
    extra = [Interval("c", 30, 36, -1, "CDS", "", {"ID": "s", "phase": "0"}),
             Interval("c", 20, 29, -1, "CDS", "", {"ID": "s", "phase": "0"}),
             Interval("c", 2, 14, 1, "CDS", "", {"start_range": ".,3"})]
    for include_pseudo in (False, True):
        forward = label_tracks(intervals + extra, "c", L, include_pseudo=include_pseudo)
        flipped = [iv.reverse_complement(L) for iv in intervals + extra if iv.seqid == "c"]
        expected = label_tracks(flipped, "c", L, include_pseudo=include_pseudo)
        assert forward.reverse_complement() == expected
        assert forward.reverse_complement().reverse_complement() == forward


def test_slice(intervals):
    tracks = label_tracks(intervals, "c", L)
    region = tracks.slice(20, 40)
    assert region.length == 20 and region.names == tracks.names
    np.testing.assert_array_equal(region["CDS"], tracks["CDS"][:, 20:40])
    np.testing.assert_array_equal(region.codon_phase, tracks.codon_phase[:, 20:40])
    assert positions(region, "stop_codon") == ([0, 1], [5, 6, 7])
    with pytest.raises(ValueError):
        tracks.slice(50, 70)


def test_unknown_track_and_features_past_the_end_are_errors(intervals):
    with pytest.raises(InputError, match="unknown track 'nope'"):
        label_tracks(intervals, "c", L, tracks=["nope"])
    with pytest.raises(InputError, match="ends past the sequence length 50") as info:
        label_tracks(intervals, "c", 50)
    assert info.value.record == "c"


def test_label_tracks_checks_shapes():
    with pytest.raises(ValueError):
        LabelTracks({"x": np.zeros((2, 5), bool)}, np.zeros((2, 4), np.int8))


@pytest.fixture(scope="module")
def mg1655():
    genome = bundled_annotation_path().parents[1] / "genomes" / "ecoli_k12_mg1655.fa.gz"
    (record,) = read_records(genome)
    return record, load_gff3(bundled_annotation_path())


def codons_at(seq, tracks, name, offsets):
    """Counter of the codons read at each marked nucleotide, in reading direction.

    ``offsets`` = (first, last) forward offsets of the codon around a marked + strand
    nucleotide; the - strand mirrors them.
    """
    found = Counter()
    first, last = offsets
    for row, strand in ((0, 1), (1, -1)):
        for p in np.flatnonzero(tracks[name][row]):
            if strand == 1:
                found[decode(seq[p + first:p + last + 1])] += 1
            else:
                found[decode(reverse_complement(seq[p - last:p - first + 1]))] += 1
    return found


def test_bundled_genome_codons_read_start_and_stop(mg1655):
    record, intervals = mg1655
    began = time.process_time()
    tracks = label_tracks(intervals, "K-12-MG1655", len(record))
    assert time.process_time() - began < 3  # typically ~0.2 s of CPU
    starts = codons_at(record.seq, tracks, "start_codon_2nd", (-1, 1))
    stops = codons_at(record.seq, tracks, "stop_codon_1st", (0, 2))
    assert sum(starts.values()) == 4137 and sum(stops.values()) == 4135
    assert starts["ATG"] + starts["GTG"] + starts["TTG"] >= 4125
    assert stops["TAA"] + stops["TAG"] + stops["TGA"] >= sum(stops.values()) - 2
    for name, nucleotide in (("start_codon", "start_codon_2nd"), ("stop_codon", "stop_codon_1st")):
        codon = tracks[name]
        assert codon.sum() == 3 * tracks[nucleotide].sum()
        assert not (tracks[nucleotide] & ~codon).any()
    assert (tracks.codon_phase[tracks["start_codon_2nd"]] == 1).all()
    # where a downstream CDS overlaps a stop codon (ATGA...), the downstream frame wins;
    # elsewhere every stop codon begins at phase 0
    depth = np.zeros((2, len(record) + 1), dtype=np.int64)
    for iv in intervals:
        if iv.type == "CDS" and not is_pseudo(iv):
            depth[0 if iv.strand == 1 else 1, [iv.start, iv.end]] += [1, -1]
    single = np.cumsum(depth, axis=1)[:, :-1] == 1
    stop_1st = tracks["stop_codon_1st"]
    assert (tracks.codon_phase[stop_1st & single] == 0).all()
    assert (stop_1st & single).sum() > 0.85 * stop_1st.sum()
