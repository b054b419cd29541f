"""dnatlas audit: planted sequences are found where they are (genome, position, strand,
identity, split), random ones are not, a stale index is never used, leakage is exact
against a brute-force set, and the CLI answers bad input in one line."""

import csv
import json

import numpy as np
import pytest

from dnatlas.audit.blast import blast_available, blast_search
from dnatlas.audit.index import (
    StaleIndexError,
    build_index,
    load_index,
    open_or_build,
    save_index,
)
from dnatlas.audit.kmers import canonical_kmers, contains_sorted, iter_canonical
from dnatlas.audit.leakage import leakage
from dnatlas.audit.search import search
from dnatlas.audit.summary import pairwise_identity
from dnatlas.audit.target import target_from_fasta, target_from_store
from dnatlas.cli import main
from dnatlas.genome.alphabet import decode, encode, reverse_complement, reverse_complement_str
from dnatlas.genome.store_build import build_store

RNG_SEED = 13
GENOME_NT = 20_000


def random_codes(rng, n):
    return rng.integers(0, 4, n).astype(np.uint8)


def write_fasta(path, records):
    """records: {id: codes or str}."""
    with open(path, "w") as fh:
        for name, seq in records.items():
            fh.write(f">{name}\n{seq if isinstance(seq, str) else decode(seq)}\n")
    return path


def mutate(codes, positions):
    out = codes.copy()
    out[positions] = (out[positions] + 1) % 4
    return out


@pytest.fixture
def genomes(tmp_path):
    """Three random genomes (A: two records, B, C held out) as FASTA files and a store."""
    rng = np.random.default_rng(RNG_SEED)
    seqs = {"gA": {"a1": random_codes(rng, GENOME_NT), "a2": random_codes(rng, 5_000)},
            "gB": {"b1": random_codes(rng, GENOME_NT)},
            "gC": {"c1": random_codes(rng, GENOME_NT)}}
    files = [write_fasta(tmp_path / f"{g}.fa", recs) for g, recs in seqs.items()]
    store = build_store(files, tmp_path / "store", val_genomes=["gC"], progress=False)
    return {"seqs": seqs, "files": files, "store": store.path, "rng": rng, "tmp": tmp_path}


def brute_canonical(seq: str, k: int) -> set[str]:
    kmers = (seq[i:i + k] for i in range(len(seq) - k + 1))
    return {min(s, reverse_complement_str(s)) for s in kmers if "N" not in s}


def pack(s: str) -> int:
    return int("".join(str("ACGT".index(c)) for c in s), 4)


# ----------------------------------------------------------------------------- k-mers


@pytest.mark.parametrize("k", [1, 5, 16, 17, 32])
def test_canonical_kmers_equal_a_brute_force_packing(k):
    rng = np.random.default_rng(k)
    seq = decode(random_codes(rng, 150)) + "N" + decode(random_codes(rng, 60))
    values, is_rc, valid = canonical_kmers(encode(seq), k)
    for i in range(len(seq) - k + 1):
        word = seq[i:i + k]
        assert valid[i] == ("N" not in word)
        if valid[i]:
            fwd, rev = pack(word), pack(reverse_complement_str(word))
            assert int(values[i]) == min(fwd, rev) and is_rc[i] == (rev < fwd)
    for stride in (1, 3):
        got = np.concatenate([s for s, _, _ in iter_canonical(encode(seq), k, 40, stride)])
        assert got.tolist() == [i for i in range(0, len(seq) - k + 1, stride) if valid[i]]


def test_contains_sorted():
    hay = np.array([2, 5, 9], dtype=np.uint64)
    assert contains_sorted(hay, np.array([1, 2, 9, 10], dtype=np.uint64)).tolist() == \
        [False, True, True, False]
    assert not contains_sorted(hay[:0], hay).any()


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize("stride", [1, 4])
def test_planted_sequences_are_found_where_they_are(genomes, stride):
    seqs, rng = genomes["seqs"], genomes["rng"]
    index = build_index(target_from_store(genomes["store"]), k=16, stride=stride,
                        progress=False)
    plus = seqs["gA"]["a2"][1234:1334]
    minus = reverse_complement(seqs["gC"]["c1"][7000:7100])
    mismatched = mutate(seqs["gB"]["b1"][500:600], [10, 30, 55, 80])
    random = random_codes(rng, 100)
    result = search(index, [plus, minus, mismatched, random], progress=False)
    best = {}
    for h in result.hits:
        best.setdefault(h.query, h)
    assert (best[0].genome, best[0].record, best[0].start, best[0].end, best[0].strand) == \
        ("gA", "a2", 1234, 1334, 1)
    assert best[0].identity == 1.0 and best[0].split == "train"
    assert (best[1].genome, best[1].record, best[1].start, best[1].end, best[1].strand) == \
        ("gC", "c1", 7000, 7100, -1)
    assert (best[1].qstart, best[1].qend, best[1].split) == (0, 100, "val")
    assert (best[2].record, best[2].start, best[2].strand) == ("b1", 500, 1)
    assert (best[2].matches, best[2].aligned, best[2].identity) == (96, 100, 0.96)
    assert 3 not in best
    assert len([h for h in result.hits if h.query in (0, 1, 2)]) == 3  # random genomes


def test_a_mismatch_at_the_end_is_trimmed_and_a_partial_match_is_local(genomes):
    seqs = genomes["seqs"]
    index = build_index(target_from_store(genomes["store"]), stride=1, progress=False)
    query = mutate(seqs["gA"]["a1"][100:200], [99])
    half = np.concatenate([seqs["gB"]["b1"][300:360], random_codes(genomes["rng"], 40)])
    hits = search(index, [query, half], min_length=50, progress=False).hits
    assert (hits[0].start, hits[0].end, hits[0].qend, hits[0].identity) == (100, 199, 99, 1.0)
    assert (hits[1].start, hits[1].qstart, hits[1].qend) == (300, 0, hits[1].aligned)
    assert 60 <= hits[1].aligned <= 62  # random bases may match by chance past the copy


def test_the_search_crosses_no_record_boundary(genomes):
    seqs = genomes["seqs"]
    index = build_index(target_from_store(genomes["store"]), stride=1, progress=False)
    joined = np.concatenate([seqs["gA"]["a1"][-50:], seqs["gA"]["a2"][:50]])
    hits = search(index, [joined], min_length=40, progress=False).hits
    assert sorted((h.record, h.start, h.end) for h in hits) == \
        [("a1", GENOME_NT - 50, GENOME_NT), ("a2", 0, 50)]


def test_pairwise_identity_of_copies_and_strangers():
    rng = np.random.default_rng(3)
    a = random_codes(rng, 80)
    copies = [a, reverse_complement(mutate(a, [40])), random_codes(rng, 80)]
    (ident,) = pairwise_identity(copies)
    assert ident[0, 1] == ident[1, 0] == pytest.approx(79 / 80)
    assert ident[0, 2] == ident[1, 2] == 0 and ident[2, 2] == 1


# ----------------------------------------------------------------------------- index


def test_a_saved_index_is_refused_when_the_store_changes_and_rebuilt(genomes):
    folder = genomes["tmp"] / "index"
    target = target_from_store(genomes["store"])
    index, what = open_or_build(folder, target, progress=False)
    assert what == "built"
    loaded = load_index(folder)
    assert np.array_equal(loaded.keys, index.keys) and loaded.k == 16
    assert open_or_build(folder, target, progress=False)[1] == "loaded"
    # the store is rebuilt from a changed genome B: same names and lengths, other bases
    changed = genomes["seqs"]["gB"]["b1"].copy()
    changed[:100] = reverse_complement(changed[:100])
    write_fasta(genomes["files"][1], {"b1": changed})
    build_store(genomes["files"], genomes["store"], val_genomes=["gC"], progress=False,
                overwrite=True)
    with pytest.raises(StaleIndexError, match="changed since the index was built"):
        load_index(folder)
    new_target = target_from_store(genomes["store"])
    with pytest.raises(StaleIndexError, match="other sequences"):
        load_index(folder, new_target)
    rebuilt, what = open_or_build(folder, new_target, progress=False)
    assert what == "rebuilt (stale)"
    hits = search(rebuilt, [changed[:100]], progress=False).hits
    assert (hits[0].record, hits[0].start, hits[0].strand) == ("b1", 0, 1)
    assert load_index(folder).target.sha256 == new_target.sha256


def test_a_fasta_index_stands_alone_and_is_refused_when_a_file_changes(genomes):
    files, folder = genomes["files"][:2], genomes["tmp"] / "fasta-index"
    target = target_from_fasta(files)
    save_index(build_index(target, progress=False), folder)
    loaded = load_index(folder)
    assert loaded.target.records() == target.records()
    assert np.array_equal(np.asarray(loaded.target.tokens), target.tokens)
    assert loaded.target.split == ["", "", ""] and not loaded.target.has_splits
    files[0].write_text(files[0].read_text().replace("A", "C", 1))
    with pytest.raises(StaleIndexError):
        load_index(folder)


# ----------------------------------------------------------------------------- leakage


def test_leakage_is_0_for_disjoint_genomes_and_1_for_a_duplicate(tmp_path):
    rng = np.random.default_rng(1)
    a, b = random_codes(rng, 8_000), random_codes(rng, 8_000)
    files = [write_fasta(tmp_path / "train.fa", {"t": a}),
             write_fasta(tmp_path / "other.fa", {"o": b}),
             write_fasta(tmp_path / "copy.fa", {"c": reverse_complement(a)})]
    store = build_store(files, tmp_path / "store", val_genomes=["other", "copy"],
                        progress=False)
    rows = {(r["genome"], r["record"]): r for r in leakage(target_from_store(store.path),
                                                          progress=False)}
    assert rows[("other", "*")]["shared_fraction"] == 0.0
    assert rows[("other", "o")]["shared_kmers"] == 0
    assert rows[("copy", "*")]["shared_fraction"] == 1.0
    assert rows[("copy", "c")]["shared_positions_fraction"] == 1.0
    assert rows[("copy", "*")]["held_out"] and rows[("copy", "c")]["kmers"] == 8_000 - 31


def test_leakage_equals_a_brute_force_set(tmp_path):
    rng = np.random.default_rng(2)
    train = decode(random_codes(rng, 3_000))
    val = list(decode(random_codes(rng, 3_000)))
    val[500:700] = reverse_complement_str(train[1000:1200])  # 169 shared 32-mers
    val[900:1000] = train[2000:2100]
    val[950] = "N"
    val = "".join(val)
    mixed = decode(random_codes(rng, 2_000))
    files = [write_fasta(tmp_path / "train.fa", {"t": train, "m": mixed}),
             write_fasta(tmp_path / "val.fa", {"v1": val, "v2": train[:400]})]
    store = build_store(files, tmp_path / "store", val_genomes=["val"], val_fraction=0.25,
                        progress=False)
    target = target_from_store(store.path)
    rows = {(r["genome"], r["record"]): r for r in leakage(target, k=32, progress=False)}
    text = {(g, r): decode(target.tokens[lo:hi]) for g, r, lo, hi in target.records()}
    segments = [(s.genome, s.record, decode(store.segment_tokens(i)), s.split)
                for i, s in enumerate(store.segments)]
    trained = set().union(*(brute_canonical(t, 32) for _, _, t, s in segments if s == "train"))
    for (genome, record), row in rows.items():
        parts = [t for g, r, t, s in segments if s == "val" and g == genome
                 and (record == "*" or r == record)]
        distinct = set().union(*(brute_canonical(t, 32) for t in parts))
        positions = [min(w, reverse_complement_str(w)) for t in parts
                     for w in (t[i:i + 32] for i in range(len(t) - 31)) if "N" not in w]
        assert row["distinct_kmers"] == len(distinct)
        assert row["shared_distinct"] == len(distinct & trained)
        assert row["kmers"] == len(positions)
        assert row["shared_kmers"] == sum(w in trained for w in positions)
    assert 0 < rows[("val", "v1")]["shared_fraction"] < 0.2
    assert rows[("val", "v2")]["shared_fraction"] > 0
    assert ("train", "t") in rows and ("train", "m") in rows  # the val blocks of train records
    assert text[("val", "v1")] == val


# ----------------------------------------------------------------------------- CLI


def write_windows(path, rows, header=("feature", "record", "start", "end", "strand"),
                  delimiter="\t"):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_tsv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_search_cli_traces_windows_to_genomes_loci_and_splits(genomes, capsys):
    seqs, tmp = genomes["seqs"], genomes["tmp"]
    # feature 7: a window of gA, also planted (a copy) in held-out gC -> shared with val
    shared = seqs["gA"]["a1"][4000:4100]
    seqs["gC"]["c1"][9000:9100] = reverse_complement(shared)
    write_fasta(genomes["files"][2], seqs["gC"])
    build_store(genomes["files"], genomes["store"], val_genomes=["gC"], progress=False,
                overwrite=True)
    windows = write_windows(tmp / "top.tsv", [
        ("7", "a1", 4000, 4100, "+"), ("7", "c1", 9000, 9100, "-"),
        ("8", "b1", 12000, 12080, "-"), ("8", "a2", 100, 180, "+")])
    out = tmp / "audit"
    argv = ["audit", "search", "--windows", str(windows), "--store", str(genomes["store"]),
            "--index", str(tmp / "idx"), "--out", str(out)]
    assert main(argv) == 0
    hits = read_tsv(out / "hits.tsv")
    by_query = {}
    for h in hits:
        by_query.setdefault(h["query"], []).append(h)
    assert {(h["genome"], h["start_1based"], h["end_1based"], h["strand"], h["split"], h["self"])
            for h in by_query["7#0"]} == {("gA", "4001", "4100", "+", "train", "1"),
                                          ("gC", "9001", "9100", "-", "val", "0")}
    (b,) = by_query["8#0"]
    assert (b["genome"], b["record"], b["start_1based"], b["strand"], b["identity"], b["self"]) == \
        ("gB", "b1", "12001", "-", "1.0000", "1")  # read on -: the window as given
    features = {f["feature"]: f for f in read_tsv(out / "features.tsv")}
    f7, f8 = features["7"], features["8"]
    assert (f7["distinct_genomes"], f7["distinct_loci"], f7["frac_multi_locus"]) == \
        ("2", "2", "1.0000")
    assert (f7["windows_train_and_val"], f7["frac_pairs_near_identical"], f7["copy_groups"]) \
        == ("2", "1.0000", "1")
    assert "train_val_shared" in f7["flags"] and "multi_copy" in f7["flags"]
    assert (f8["distinct_loci"], f8["windows_val"], f8["copy_groups"], f8["flags"]) == \
        ("2", "0", "2", "")
    summary = json.loads((out / "features.json").read_text())
    assert summary["index"]["action"] == "built" and summary["counts"]["queries"] == 4
    loci = summary["features"][0]["loci"]
    assert [(x["genome"], x["start"], x["end"], x["splits"]) for x in loci] == \
        [("gA", 4001, 4100, "train"), ("gC", 9001, 9100, "val")]
    # the outputs exist: refused without --force, in one line; --force reuses the index
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists; give --force" in err
    assert main(argv + ["--force"]) == 0
    assert json.loads((out / "features.json").read_text())["index"]["action"] == "loaded"


def test_catalog_top_windows_and_fasta_queries(genomes):
    seqs, tmp = genomes["seqs"], genomes["tmp"]
    window = reverse_complement(seqs["gB"]["b1"][300:381])
    catalog = write_windows(tmp / "top_windows.csv", [
        (5, 0, "b1", 341, "-", 3.5, 301, 381, decode(window))],  # as the catalog writes it
        header=("neuron", "rank", "seqid", "position_1based", "strand", "activation",
                "start_1based", "end_1based", "sequence"), delimiter=",")
    assert main(["audit", "index", "--genome", *map(str, genomes["files"]),
                 "--out", str(tmp / "idx"), "--stride", "1"]) == 0
    assert main(["audit", "search", "--windows", str(catalog), "--index", str(tmp / "idx"),
                 "--out", str(tmp / "o1")]) == 0
    (hit,) = read_tsv(tmp / "o1" / "hits.tsv")
    assert (hit["query"], hit["feature"], hit["genome"], hit["start_1based"], hit["strand"],
            hit["split"], hit["self"]) == ("5#0", "5", "gB", "301", "-", ".", "1")
    # SAE top examples, 1-based closed, with a genome column; one locus read on both strands
    sae = write_windows(tmp / "sae.tsv", [("f", "gA", "a1", 1001, 1080, "+"),
                                          ("f", "gA", "a1", 1001, 1080, "-")],
                        header=("feature", "genome", "record", "start", "end", "strand"))
    assert main(["audit", "search", "--windows", str(sae), "--index", str(tmp / "idx"),
                 "--one-based", "--out", str(tmp / "o3")]) == 0
    hits = read_tsv(tmp / "o3" / "hits.tsv")
    assert [(h["query"], h["start_1based"], h["end_1based"], h["strand"], h["self"]) for h in hits] == \
        [("f#0", "1001", "1080", "+", "1"), ("f#1", "1001", "1080", "-", "1")]
    (feature,) = read_tsv(tmp / "o3" / "features.tsv")
    assert (feature["distinct_loci"], feature["frac_multi_locus"]) == ("1", "0.0000")
    assert feature["max_pairwise_identity"] == "NA"  # the same locus twice: not copies
    queries = write_fasta(tmp / "q.fa", {"x": seqs["gA"]["a1"][50:150],
                                         "y": random_codes(genomes["rng"], 120)})
    assert main(["audit", "search", "--fasta", str(queries), "--index", str(tmp / "idx"),
                 "--out", str(tmp / "o2")]) == 0
    (hit,) = read_tsv(tmp / "o2" / "hits.tsv")
    assert (hit["query"], hit["feature"], hit["record"], hit["start_1based"], hit["end_1based"]) == \
        ("x", "q", "a1", "51", "150")
    (feature,) = read_tsv(tmp / "o2" / "features.tsv")
    assert (feature["n_windows"], feature["windows_found"]) == ("2", "1")


def test_leakage_cli(tmp_path, capsys):
    rng = np.random.default_rng(5)
    a = random_codes(rng, 3_000)
    files = [write_fasta(tmp_path / "t.fa", {"t": a}), write_fasta(tmp_path / "v.fa", {"v": a})]
    build_store(files, tmp_path / "store", val_genomes=["v"], progress=False)
    out = tmp_path / "leak.tsv"
    assert main(["audit", "leakage", str(tmp_path / "store"), "--out", str(out)]) == 0
    rows = read_tsv(out)
    assert [(r["genome"], r["record"], r["shared_fraction"]) for r in rows] == \
        [("v", "v", "1.0000"), ("v", "*", "1.0000")]
    assert "v\tshared_fraction=1.0000" in capsys.readouterr().out
    assert main(["audit", "leakage", str(tmp_path / "store"), "--out", str(out)]) == 2


def _one_line_error(capsys, argv, needle):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dnatlas: error: ") and err.count("\n") == 1, err
    assert needle in err, err


def test_cli_errors_are_one_line(genomes, capsys):
    tmp, store = genomes["tmp"], str(genomes["store"])
    base = ["audit", "search", "--store", store, "--out", str(tmp / "o")]
    _one_line_error(capsys, base + ["--windows", str(tmp / "missing.tsv")], "no such file")
    bad = write_windows(tmp / "bad.tsv", [("1", "a1", 5)], header=("feature", "record",
                                                                   "start"))
    _one_line_error(capsys, base + ["--windows", str(bad)], "lacks column(s) end")
    nofeature = write_windows(tmp / "nf.tsv", [("a1", 1, 5)], header=("record", "start", "end"))
    _one_line_error(capsys, base + ["--windows", str(nofeature)], "lacks column(s) feature")
    unknown = write_windows(tmp / "u.tsv", [("1", "zz", 1, 50, "+")])
    _one_line_error(capsys, base + ["--windows", str(unknown)], "record 'zz' is not in")
    past = write_windows(tmp / "p.tsv", [("1", "a2", 4990, 5010, "+")])
    _one_line_error(capsys, base + ["--windows", str(past)], "runs past the record's end")
    strand = write_windows(tmp / "s.tsv", [("1", "a2", 1, 50, "x")])
    _one_line_error(capsys, base + ["--windows", str(strand)], "line 2: strand must be")
    ok = write_windows(tmp / "ok.tsv", [("1", "a2", 1, 50, "+")])
    _one_line_error(capsys, ["audit", "search", "--windows", str(ok), "--index",
                             str(tmp / "nothing"), "--out", str(tmp / "o")], "index folder")
    _one_line_error(capsys, ["audit", "leakage", str(tmp / "nostore"), "--out",
                             str(tmp / "l.tsv")], "not a genome store")
    _one_line_error(capsys, ["audit", "leakage", store, "--out", str(tmp / "l.tsv"),
                             "--k", "33"], "k must be 1..32")
    # a stale index given alone is refused, not used
    folder = tmp / "idx"
    assert main(["audit", "index", "--store", store, "--out", str(folder)]) == 0
    assert main(["audit", "index", "--store", store, "--out", str(folder)]) == 0  # up to date
    _one_line_error(capsys, ["audit", "index", "--store", store, "--out", str(folder), "--k",
                             "12"], "give --force to rebuild")
    tokens = bytearray((genomes["store"] / "tokens.npy").read_bytes())
    tokens[-1] = (tokens[-1] + 1) % 4  # one base changed in place, names and sizes kept
    (genomes["store"] / "tokens.npy").write_bytes(bytes(tokens))
    _one_line_error(capsys, ["audit", "search", "--windows", str(ok), "--index", str(folder),
                             "--out", str(tmp / "o")], "changed since the index was built")
    if not blast_available():
        _one_line_error(capsys, base + ["--windows", str(ok), "--backend", "blast"],
                        "needs BLAST+")


# ----------------------------------------------------------------------------- BLAST


@pytest.mark.skipif(not blast_available(), reason="BLAST+ (blastn) is not installed")
def test_blast_backend_agrees_with_the_kmer_search(genomes):
    seqs, rng = genomes["seqs"], genomes["rng"]
    target = target_from_store(genomes["store"])
    queries = [seqs["gA"]["a2"][1234:1334], reverse_complement(seqs["gC"]["c1"][7000:7100]),
               mutate(seqs["gB"]["b1"][500:600], [10, 40, 70]), random_codes(rng, 100)]
    kmer = search(build_index(target, progress=False), queries, progress=False).hits
    blast = blast_search(target, queries, genomes["tmp"] / "idx", progress=False).hits

    def key(h):
        return h.query, h.genome, h.record, h.start, h.end, h.strand, h.qstart, h.qend, \
            h.matches, h.aligned, h.split

    assert [key(h) for h in blast] == [key(h) for h in kmer]
    assert len(kmer) == 3
    db = genomes["tmp"] / "idx" / "blast"
    made = (db / "blast.json").stat().st_mtime_ns
    blast_search(target, queries[:1], genomes["tmp"] / "idx", progress=False)
    assert (db / "blast.json").stat().st_mtime_ns == made  # made once


@pytest.mark.skipif(not blast_available(), reason="BLAST+ (blastn) is not installed")
def test_blast_backend_from_the_cli(genomes):
    tmp = genomes["tmp"]
    windows = write_windows(tmp / "w.tsv", [("1", "a1", 100, 200, "-")])
    assert main(["audit", "search", "--windows", str(windows), "--store",
                 str(genomes["store"]), "--backend", "blast", "--out", str(tmp / "o")]) == 0
    (hit,) = read_tsv(tmp / "o" / "hits.tsv")
    assert (hit["record"], hit["start_1based"], hit["end_1based"], hit["strand"], hit["self"]) == \
        ("a1", "101", "200", "-", "1")
