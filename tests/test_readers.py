import gzip
import time

import numpy as np
import pytest
from Bio import bgzf

from dnatlas.errors import InputError
from dnatlas.genome import readers
from dnatlas.genome.alphabet import decode, encode, reverse_complement
from dnatlas.genome.readers import Record, genome_id_from_path, read_genome, read_records
from tests.helpers import BAD_NAMES, all_bad_cases, write_genbank

FASTA = b">chr1 the first record\nACGTN\nacgtn\n\n>plasmid\tsecond one\nRYSWKMBDHV\nuU\n"


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def as_pairs(records):
    return [(r.id, decode(r.seq)) for r in records]


def test_encoding_iupac_lowercase_u_and_blank_lines(tmp_path):
    records = read_genome(write(tmp_path, "g.fa", FASTA))
    assert [r.id for r in records] == ["chr1", "plasmid"]
    assert [r.description for r in records] == ["the first record", "second one"]
    assert decode(records[0].seq) == "ACGTNACGTN"
    assert decode(records[1].seq) == "NNNNNNNNNN" + "TT"
    assert records[0].seq.dtype == np.uint8 and records[0].seq.shape == (10,)
    assert isinstance(records[0], Record) and len(records[0]) == 10


def test_crlf_and_trailing_whitespace_equal_plain(tmp_path):
    crlf = FASTA.replace(b"\n", b"\r\n").replace(b"ACGTN\r\n", b"ACGTN \t\r\n")
    assert as_pairs(read_genome(write(tmp_path, "crlf.fa", crlf))) == \
        as_pairs(read_genome(write(tmp_path, "lf.fa", FASTA)))


def test_no_final_newline(tmp_path):
    assert as_pairs(read_genome(write(tmp_path, "g.fa", b">a\nACG\nT"))) == [("a", "ACGT")]


def test_gzip_and_bgzip_equal_plain_whatever_the_name(tmp_path):
    plain = read_genome(write(tmp_path, "g.fa", FASTA))
    gz = read_genome(write(tmp_path, "g.fasta", gzip.compress(FASTA)))  # no .gz suffix
    with bgzf.BgzfWriter(str(tmp_path / "g.fa.bgz"), "wb") as fh:
        fh.write(FASTA)
    bgz = read_genome(tmp_path / "g.fa.bgz")
    assert as_pairs(gz) == as_pairs(plain) == as_pairs(bgz)


def test_multi_member_bgzip_spanning_many_blocks(tmp_path):
    rng = np.random.default_rng(0)
    seqs = [decode(rng.integers(0, 4, n)) for n in (150_000, 7, 90_001)]
    text = "".join(f">r{i}\n" + "\n".join(s[j:j + 70] for j in range(0, len(s), 70)) + "\n"
                   for i, s in enumerate(seqs)).encode()
    with bgzf.BgzfWriter(str(tmp_path / "g.gz"), "wb") as fh:  # 64 KiB blocks
        fh.write(text)
    assert as_pairs(read_genome(tmp_path / "g.gz")) == [(f"r{i}", s) for i, s in enumerate(seqs)]


def test_genbank_equals_fasta(tmp_path):
    pairs = [("rec1", "ACGTNRYacgt" * 13), ("rec2", "GGGCCCAAAT" * 7)]
    fasta = "".join(f">{rid}.1\n{seq}\n" for rid, seq in pairs).encode()
    expected = as_pairs(read_genome(write(tmp_path, "g.fa", fasta)))
    for gz in (False, True):
        records = read_genome(write_genbank(tmp_path / f"g{gz}.gbk", pairs, gz=gz))
        assert as_pairs(records) == expected
        assert records[0].description == "rec1 description"


def test_chunk_boundaries_do_not_matter(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    text = b"".join(b">r%d\n%s\n" % (i, decode(rng.integers(0, 5, 37 * i + 1)).encode())
                    for i in range(40))
    path = write(tmp_path, "g.fa", text)
    expected = as_pairs(read_genome(path))
    monkeypatch.setattr(readers, "CHUNK_BYTES", 16)
    assert as_pairs(read_genome(path)) == expected
    bad = write(tmp_path, "bad.fa", text + b">last\nACGT\nAC*T\n")
    with pytest.raises(InputError) as err:
        read_genome(bad)
    assert (err.value.record, err.value.line) == ("last", 83)


def test_reverse_complement_round_trip_of_read_sequence(tmp_path):
    seq = read_genome(write(tmp_path, "g.fa", FASTA))[0].seq
    assert decode(reverse_complement(seq)) == "NACGTNACGT"
    assert np.array_equal(reverse_complement(reverse_complement(seq)), seq)


def test_read_records_is_lazy_and_reads_many_records(tmp_path):
    text = b"".join(b">r%d\nACGT\n" % i for i in range(1000))
    records = read_records(write(tmp_path, "g.fa", text))
    assert next(records).id == "r0"
    assert sum(1 for _ in records) == 999


@pytest.mark.parametrize("name, expected", [
    ("a/ecoli_k12.fa.gz", "ecoli_k12"), ("x.fasta", "x"), ("x.fna", "x"), ("x.GBK", "x"),
    ("x.gbff.gz", "x"), ("x.gb", "x"), ("x.txt", "x.txt"), ("x.y.fa", "x.y"),
])
def test_genome_id_from_path(name, expected):
    assert genome_id_from_path(name) == expected


def test_real_genome_reads_fast(bundled):
    path = bundled / "genomes" / "ecoli_k12_mg1655.fa.gz"
    start = time.perf_counter()
    (record,) = read_genome(path)
    elapsed = time.perf_counter() - start
    assert (record.id, len(record)) == ("K-12-MG1655", 4_639_675)
    assert decode(record.seq[:12]) == "AGCTTTTCATTC"
    assert elapsed < 1.0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_raises_located_input_error(tmp_path, name):
    content, record, line, words = all_bad_cases(tmp_path)[name]
    path = write(tmp_path, name + ".txt", content)
    with pytest.raises(InputError) as err:
        read_genome(path)
    exc = err.value
    assert exc.path == str(path)
    assert (exc.record, exc.line) == (record, line)
    assert "\n" not in str(exc)
    for word in words:
        assert word in exc.message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_genome(tmp_path / "nope.fa")
    with pytest.raises(InputError, match="directory"):
        read_genome(tmp_path)


def test_corrupt_gzip_names_the_record(tmp_path):
    rng = np.random.default_rng(2)
    text = b"".join(b">r%d\n%s\n" % (i, decode(rng.integers(0, 4, 50_000)).encode())
                    for i in range(10))
    data = bytearray(bgzf_bytes(tmp_path, text))
    data[len(data) * 3 // 4] ^= 0xFF  # corrupt a block in record ~7
    with pytest.raises(InputError, match="corrupt") as err:
        read_genome(write(tmp_path, "g.fa.gz", bytes(data)))
    assert err.value.record in {"r6", "r7", "r8"}


def bgzf_bytes(tmp_path, text: bytes) -> bytes:
    with bgzf.BgzfWriter(str(tmp_path / "tmp.bgz"), "wb") as fh:
        fh.write(text)
    return (tmp_path / "tmp.bgz").read_bytes()


def test_encode_matches_alphabet(tmp_path):
    seq = "ACGTRYKMSWBDHVNacgtu"
    (record,) = read_genome(write(tmp_path, "g.fa", b">r\n" + seq.encode() + b"\n"))
    assert np.array_equal(record.seq, encode(seq))
