"""dnatlas.motifs: matrix readers, the chunked lightmotif scan (vs brute force), BED6 + CLI."""

import gzip

import numpy as np
import pytest

pytest.importorskip("lightmotif")

from dnatlas.cli import main  # noqa: E402
from dnatlas.errors import InputError  # noqa: E402
from dnatlas.motifs import (  # noqa: E402
    log_odds,
    make_motif,
    prepare_motifs,
    read_motif_file,
    scan_genomes,
    scan_sequence,
)

JASPAR = """>MA0001.1 AGL3
A  [ 0  3 79 40 ]
C  [94 75  4  3 ]
G  [ 1  0  3  4 ]
T  [ 2 19 11 50 ]
>MA0002.1 RUNX1
A  [ 10 0 ]
C  [ 0 10 ]
G  [ 0  0 ]
T  [ 0  0 ]
"""
MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF M1 crp
letter-probability matrix: alength= 4 w= 3 nsites= 10 E= 0
0.1 0.2 0.3 0.4
1.0 0.0 0.0 0.0
0.25 0.25 0.25 0.25
"""
TRANSFAC = """AC  T1
XX
ID  LexA
XX
P0      A      C      G      T
01      1      2      3      4
02      5      0      0      5
XX
//
"""


def _brute_force(codes, prepared):
    """Every (start, motif, strand) whose float32 column-order sum reaches the threshold."""
    hits = set()
    for k, prep in enumerate(prepared):
        w = prep.width
        for strand, matrix in ((1, prep.scores), (-1, prep.scores[::-1, ::-1])):
            windows = np.lib.stride_tricks.sliding_window_view(codes, w)
            ok = ~(windows == 4).any(axis=1)
            total = np.zeros(windows.shape[0], dtype=np.float32)
            for i in range(w):
                total = (total + matrix[np.minimum(windows[:, i], 3), i]).astype(np.float32)
            for s in np.flatnonzero(ok & (total >= np.float32(prep.threshold))):
                hits.add((int(s), k, strand))
    return hits


def _hit_set(codes, prepared, chunk):
    return {(int(s), int(m), int(d)) for block in scan_sequence(codes, prepared, chunk)
            for s, m, d in zip(block.start, block.motif, block.strand)}


@pytest.mark.parametrize("chunk", [1, 7, 64, 999, 1 << 20])
def test_scan_equals_brute_force_both_strands_across_chunk_edges(chunk):
    rng = np.random.default_rng(1)
    motifs = [make_motif(f"m{i}", "x", rng.integers(0, 20, (4, w)).astype(float))
              for i, w in enumerate([1, 3, 6, 9, 12])]
    codes = rng.integers(0, 4, 3000).astype(np.uint8)
    codes[rng.integers(0, 3000, 25)] = 4
    prepared = prepare_motifs(motifs, pvalue=1e-2, pseudocount=0.5, background=(0.3, 0.2, 0.2, 0.3))
    reference = _brute_force(codes, prepared)
    assert len(reference) > 100 and {d for _, _, d in reference} == {1, -1}
    assert _hit_set(codes, prepared, chunk) == reference


def test_hits_that_straddle_a_chunk_edge_are_found_once():
    motif = make_motif("acgt", "acgt", np.eye(4) * 10)  # ACGT, its own reverse complement
    codes = np.array([3, 3, 0, 1, 2, 3, 3, 3], dtype=np.uint8)  # TTACGTTT: ACGT at 2
    prepared = prepare_motifs([motif], pvalue=1e-2)
    for chunk in (1, 2, 3, 4, 100):
        blocks = list(scan_sequence(codes, prepared, chunk))
        starts = np.concatenate([b.start for b in blocks]).tolist()
        strands = np.concatenate([b.strand for b in blocks]).tolist()
        assert sorted(zip(starts, strands)) == [(2, -1), (2, 1)], chunk


def test_log_odds_uses_pseudocounts_and_background():
    motif = make_motif("m", "m", [[2, 0], [0, 2], [0, 0], [0, 0]])
    bg = (0.4, 0.1, 0.1, 0.4)
    scores = log_odds(motif, pseudocount=1.0, background=bg)
    expected = np.log2((np.array([[2, 0], [0, 2], [0, 0], [0, 0]]) + np.array(bg)[:, None]) / 3
                       / np.array(bg)[:, None])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    with pytest.raises(InputError, match="pseudocount"):
        log_odds(motif, pseudocount=0.0)


def test_readers_jaspar_meme_transfac(tmp_path):
    (tmp_path / "a.jaspar").write_text(JASPAR)
    (tmp_path / "a.meme").write_text(MEME)
    with gzip.open(tmp_path / "a.tf.gz", "wt") as fh:
        fh.write(TRANSFAC)
    jaspar = read_motif_file(tmp_path / "a.jaspar")
    assert [(m.id, m.name, m.width) for m in jaspar] == [("MA0001.1", "AGL3", 4), ("MA0002.1", "RUNX1", 2)]
    np.testing.assert_array_equal(jaspar[0].counts[:, 0], [0, 94, 1, 2])
    (meme,) = read_motif_file(tmp_path / "a.meme")
    assert (meme.id, meme.name, meme.label) == ("M1", "crp", "M1_crp")
    np.testing.assert_allclose(meme.counts[:, 2], [2.5, 2.5, 2.5, 2.5])
    (tf,) = read_motif_file(tmp_path / "a.tf.gz")
    assert tf.name == "LexA" and tf.counts.shape == (4, 2)
    np.testing.assert_array_equal(tf.counts[:, 0], [1, 2, 3, 4])
    (tmp_path / "bad.txt").write_text("hello\n")
    with pytest.raises(InputError, match="not a JASPAR, MEME or TRANSFAC"):
        read_motif_file(tmp_path / "bad.txt")


def test_reads_regulondb_transfac(shared_data):
    motifs = read_motif_file(shared_data / "motifs" / "regulonDB_2025-05.tf")
    assert len(motifs) > 50 and all(m.counts.shape[0] == 4 for m in motifs)
    assert len({m.label for m in motifs}) == len(motifs)


def _genome(tmp_path, seq="TTACGTTTGGGG", name="g.fa"):
    path = tmp_path / name
    path.write_text(f">chrA\n{seq}\n>chrB\nNNACGTNN\n")
    return path


def test_bed_is_sorted_0_based_with_strand_and_summary(tmp_path):
    motifs = [make_motif("acgt", "acgt", np.eye(4) * 10),
              make_motif("gggg", "G4", np.array([[0, 0, 10, 0]] * 4).T)]
    out = tmp_path / "hits.bed"
    result = scan_genomes([_genome(tmp_path)], motifs, out, pvalue=1e-2)
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert [(r[0], int(r[1]), int(r[2]), r[3], r[5]) for r in lines] == [
        ("chrA", 2, 6, "acgt", "+"), ("chrA", 2, 6, "acgt", "-"), ("chrA", 8, 12, "gggg_G4", "+"),
        ("chrB", 2, 6, "acgt", "+"), ("chrB", 2, 6, "acgt", "-")]
    assert float(lines[0][4]) > 0
    assert result.scanned_nt == 20 and result.hits_written == 5
    summary = (tmp_path / "hits.summary.tsv").read_text().splitlines()
    header = summary[0].split("\t")
    row = dict(zip(header, summary[1].split("\t")))
    assert row["hits_plus"] == "2" and row["hits_minus"] == "2" and row["kept"] == "yes"
    assert float(row["hits_per_mb_plus"]) == pytest.approx(2 / 20 * 1e6)


def test_max_hits_per_kb_drops_frequent_motifs(tmp_path):
    motifs = [make_motif("acgt", "acgt", np.eye(4) * 10),
              make_motif("gggg", "G4", np.array([[0, 0, 10, 0]] * 4).T)]
    out = tmp_path / "hits.bed"
    result = scan_genomes([_genome(tmp_path)], motifs, out, pvalue=1e-2, max_hits_per_kb=100)
    assert [s.kept for s in result.summaries] == [False, True]  # 4 hits / 20 nt = 200 per kb
    assert {line.split("\t")[3] for line in out.read_text().splitlines()} == {"gggg_G4"}


def test_cli_scan_and_one_line_errors(tmp_path, capsys):
    genome = _genome(tmp_path)
    (tmp_path / "m.jaspar").write_text(JASPAR)
    out = tmp_path / "o.bed"
    args = ["motifs", "scan", "--genome", str(genome), "--motifs", str(tmp_path / "m.jaspar"), "--out", str(out),
            "--pvalue", "0.05"]
    assert main(args) == 0 and out.exists()
    capsys.readouterr()
    for extra, message in [([], "exists; give --force"),
                           (["--force", "--pvalue", "2"], "must be in (0, 1)"),
                           (["--force", "--background", "1,2"], "4 numbers"),
                           (["--force", "--max-hits-per-kb", "-1"], "must be in (0, inf)")]:
        assert main(args + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("dnatlas: error:") and message in err and err.count("\n") == 1
    assert main(["motifs", "scan", "--genome", str(genome), "--motifs", str(tmp_path / "none.tf"),
                 "--out", str(tmp_path / "x.bed")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and err.count("\n") == 1
    assert main(args + ["--force", "--background", "genome", "--chunk-size", "3"]) == 0


def test_cli_jaspar_collection(tmp_path, capsys):
    pytest.importorskip("pyjaspar")
    genome = _genome(tmp_path, seq="ACGT" * 50)
    out = tmp_path / "o.bed"
    assert main(["motifs", "scan", "--genome", str(genome), "--jaspar", "CORE:vertebrates", "--out", str(out)]) == 0
    assert len((tmp_path / "o.summary.tsv").read_text().splitlines()) > 800
    assert main(["motifs", "scan", "--genome", str(genome), "--jaspar", "CORE:martians", "--out",
                 str(tmp_path / "p.bed")]) == 2
    assert "no matrix" in capsys.readouterr().err
