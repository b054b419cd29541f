import hashlib
import json

import numpy as np
import pytest

from dnatlas.errors import InputError
from dnatlas.genome.alphabet import decode, encode
from dnatlas.genome.sources import bundled_genome_paths, read_manifest
from dnatlas.genome.store import GenomeStore, Segment
from dnatlas.genome.store_build import build_store, region_split

RNG = np.random.default_rng(0)
GENOMES = {  # genome id -> {record id: sequence}
    "g1": {"a": decode(RNG.integers(0, 5, 100)), "b": "GGGCCCAATN" * 4},
    "g2": {"c": decode(RNG.integers(0, 4, 250))},
    "g3": {"d": "ACGT" * 20, "e": "T" * 33},
}


def write_fasta(path, records: dict[str, str]):
    path.write_text("".join(f">{rid} some description\n{seq}\n" for rid, seq in records.items()))
    return path


@pytest.fixture
def inputs(tmp_path):
    return [write_fasta(tmp_path / f"{gid}.fa", recs) for gid, recs in GENOMES.items()]


def record_seq(genome, record):
    return encode(GENOMES[genome][record])


def check_tiling(store: GenomeStore):
    """Segments tile tokens in order and each holds its record's bases."""
    offset = 0
    for i, seg in enumerate(store.segments):
        assert seg.offset == offset
        offset += seg.length
        start = seg.record_start
        expected = record_seq(seg.genome, seg.record)[start:start + seg.length]
        assert np.array_equal(store.segment_tokens(i), expected)
    assert offset == len(store) == store.tokens.shape[0]


def test_build_without_split(tmp_path, inputs):
    store = build_store(inputs, tmp_path / "store", progress=False)
    assert [(s.genome, s.record, s.record_start, s.length, s.split) for s in store.segments] == [
        ("g1", "a", 0, 100, "train"), ("g1", "b", 0, 40, "train"), ("g2", "c", 0, 250, "train"),
        ("g3", "d", 0, 80, "train"), ("g3", "e", 0, 33, "train")]
    expected = np.concatenate([encode(s) for recs in GENOMES.values() for s in recs.values()])
    assert np.array_equal(np.load(tmp_path / "store" / "tokens.npy", mmap_mode="r"), expected)
    assert isinstance(store.tokens, np.memmap) and store.tokens.dtype == np.uint8
    check_tiling(store)


def test_store_json_records_sources(tmp_path, inputs):
    store = build_store(inputs, tmp_path / "store", seed=3, val_fraction=0.1, progress=False)
    meta = json.loads((tmp_path / "store" / "store.json").read_text())
    assert meta["format"] == "dnatlas-genome-store" and meta["version"] == 1
    assert meta["build"]["seed"] == 3 and meta["build"]["val_fraction"] == 0.1
    g1 = meta["genomes"][0]
    assert g1["id"] == "g1" and g1["n_records"] == 2 and g1["length"] == 140
    assert g1["sha256"] == hashlib.sha256(inputs[0].read_bytes()).hexdigest()
    assert g1["path"] == str(inputs[0].resolve())
    assert g1["records"][1] == {"id": "b", "description": "some description", "length": 40}
    assert meta["totals"]["length"] == len(store) == 503
    assert meta["totals"]["n_segments"] == len(store.segments)


def test_held_out_genome_goes_to_val(tmp_path, inputs):
    store = build_store(inputs, tmp_path / "store", val_genomes=["g2"], progress=False)
    assert {(s.genome, s.split) for s in store.segments} == {
        ("g1", "train"), ("g2", "val"), ("g3", "train")}
    assert store.segment_indices("val").tolist() == [2]
    assert store.info()["splits"]["val"]["length"] == 250


def test_region_split_gives_each_record_a_val_block(tmp_path, inputs):
    store = build_store(inputs, tmp_path / "store", val_fraction=0.2, val_genomes=["g3"],
                        seed=7, progress=False)
    check_tiling(store)
    for genome, record in [("g1", "a"), ("g1", "b"), ("g2", "c")]:
        segs = [s for s in store.segments if (s.genome, s.record) == (genome, record)]
        length = len(GENOMES[genome][record])
        assert 2 <= len(segs) <= 3
        assert [s.split for s in segs].count("val") == 1
        val = next(s for s in segs if s.split == "val")
        assert val.length == round(0.2 * length)
        assert sum(s.length for s in segs) == length
        ends = np.cumsum([s.length for s in segs])
        assert [s.record_start for s in segs] == [0, *ends[:-1]]
    again = build_store(inputs, tmp_path / "again", val_fraction=0.2, val_genomes=["g3"],
                        seed=7, progress=False)
    assert again.segments == store.segments


def test_region_split_is_deterministic_and_seeded():
    parts = region_split(10_000, 0.05, 0, "g", "r")
    assert parts == region_split(10_000, 0.05, 0, "g", "r")
    assert parts[0][0] == 0 and parts[-1][1] == 10_000
    assert all(a[1] == b[0] and a[2] != b[2] for a, b in zip(parts, parts[1:]))
    assert sum(end - start for start, end, split in parts if split == "val") == 500
    starts = {region_split(10_000, 0.05, seed, "g", "r")[1][0] for seed in range(10)}
    assert len(starts) > 5
    assert region_split(10_000, 0.05, 0, "g", "r2") != parts
    assert region_split(9, 0.05, 0, "g", "r") == [(0, 9, "train")]  # block rounds to 0


def test_info_numbers(tmp_path, inputs):
    info = build_store(inputs, tmp_path / "store", val_genomes=["g3"], progress=False).info()
    assert (info["n_genomes"], info["n_records"], info["n_segments"], info["length"]) == \
        (3, 5, 5, 503)
    all_seq = "".join(s for recs in GENOMES.values() for s in recs.values())
    acgt = [c for c in all_seq if c in "ACGT"]
    assert info["n_count"] == all_seq.count("N")
    assert info["gc"] == pytest.approx(sum(c in "GC" for c in acgt) / len(acgt))
    g3 = info["genomes"][2]
    assert g3["splits"] == {"train": 0, "val": 113} and g3["held_out"]
    assert g3["gc"] == pytest.approx(40 / 113)
    assert info["genomes"][0]["n_count"] == GENOMES["g1"]["a"].count("N") + 4
    assert info["splits"]["val"] == {"length": 113, "n_records": 2, "n_segments": 2,
                                     "gc": pytest.approx(40 / 113), "n_count": 0}
    assert info["splits"]["train"]["n_records"] == 3


def test_fetch_and_segment_tokens(tmp_path, inputs):
    store = build_store(inputs, tmp_path / "store", val_fraction=0.3, progress=False)
    assert np.array_equal(store.fetch("g2", "c"), record_seq("g2", "c"))
    assert np.array_equal(store.fetch("g2", "c", 10, 240), record_seq("g2", "c")[10:240])
    assert store.fetch("g1", "b", 5, 5).shape == (0,)
    with pytest.raises(InputError, match="no record"):
        store.fetch("g2", "a")
    with pytest.raises(InputError, match="outside"):
        store.fetch("g2", "c", 0, 251)


def test_manifest_with_taxonomy_and_extra_columns(tmp_path, inputs):
    sub = tmp_path / "lists"
    sub.mkdir()
    (sub / "genomes.tsv").write_text(
        "genome_id\tpath\ttaxonomy\thost\n"
        "second\t../g2.fa\td__Bacteria;g__Foo\thuman\n"
        "\n"
        f"third\t{inputs[2]}\td__Bacteria;g__Bar\tsoil\n")
    store = build_store([inputs[0]], tmp_path / "store", manifest=sub / "genomes.tsv",
                        progress=False)
    assert [g["id"] for g in store.genomes] == ["g1", "second", "third"]
    assert store.genomes[1]["metadata"] == {"host": "human"}
    assert {(s.genome, s.taxonomy) for s in store.segments} == {
        ("g1", ""), ("second", "d__Bacteria;g__Foo"), ("third", "d__Bacteria;g__Bar")}
    second = next(i for i, s in enumerate(store.segments) if s.genome == "second")
    assert np.array_equal(store.segment_tokens(second), record_seq("g2", "c"))


@pytest.mark.parametrize("text, line, words", [
    ("genome_id\tfile\n", 1, "lacks column(s) path"),
    ("genome_id\tpath\nx\n", 2, "expected 2 tab-separated fields"),
    ("genome_id\tpath\n\t../g.fa\n", 2, "empty genome_id"),
    ("genome_id\tpath\n\n#x\tnowhere.fa\n", 3, "genome file not found"),
    ("", None, "empty"),
])
def test_manifest_errors(tmp_path, text, line, words):
    (tmp_path / "m.tsv").write_text(text)
    with pytest.raises(InputError) as err:
        read_manifest(tmp_path / "m.tsv")
    assert err.value.line == line and words in err.value.message


def test_duplicate_genome_ids(tmp_path, inputs):
    (tmp_path / "m.tsv").write_text(f"genome_id\tpath\ng1\t{inputs[1]}\n")
    with pytest.raises(InputError, match="duplicate genome ID 'g1'"):
        build_store(inputs, tmp_path / "store", manifest=tmp_path / "m.tsv", progress=False)


def test_bad_parameters(tmp_path, inputs):
    with pytest.raises(InputError, match="unknown validation genome"):
        build_store(inputs, tmp_path / "store", val_genomes=["nope"], progress=False)
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        build_store(inputs, tmp_path / "store", val_fraction=1.0, progress=False)
    with pytest.raises(InputError, match="no input genomes"):
        build_store([], tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_bad_input_leaves_no_partial_store(tmp_path, inputs):
    bad = tmp_path / "bad.fa"
    bad.write_text(">x\nACGT\n>y\nAC!T\n")
    with pytest.raises(InputError, match="'!'"):
        build_store([*inputs, bad], tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists() and leftovers(tmp_path) == []


def test_failure_while_writing_leaves_no_partial_store(tmp_path, inputs, monkeypatch):
    from dnatlas.genome import store_build as store_module

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "_write_segments", fail)
    with pytest.raises(OSError):
        build_store(inputs, tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists() and leftovers(tmp_path) == []


def test_overwrite(tmp_path, inputs):
    out = tmp_path / "store"
    build_store(inputs[:1], out, progress=False)
    with pytest.raises(InputError, match="already exists"):
        build_store(inputs, out, progress=False)
    assert len(GenomeStore.open(out)) == 140
    assert len(build_store(inputs, out, overwrite=True, progress=False)) == 503
    assert leftovers(tmp_path) == []
    other = tmp_path / "not_a_store"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")  # an empty folder would simply be used
    with pytest.raises(InputError, match="not a genome store"):
        build_store(inputs, other, overwrite=True, progress=False)


def damage(folder, name):
    path = folder / name
    if name == "tokens.npy":
        path.write_bytes(path.read_bytes()[:200])
    elif name == "store.json":
        path.write_text('{"format": ')
    else:
        path.write_text(path.read_text().replace("\t100\ttrain", "\tlots\ttrain"))


@pytest.mark.parametrize("name", ["tokens.npy", "store.json", "segments.tsv"])
def test_open_missing_or_corrupt_store(tmp_path, inputs, name):
    out = tmp_path / "store"
    build_store(inputs, out, progress=False)
    damage(out, name)
    with pytest.raises(InputError) as err:
        GenomeStore.open(out)
    assert err.value.path.endswith(name)
    (out / name).unlink()
    with pytest.raises(InputError, match="missing"):
        GenomeStore.open(out)
    with pytest.raises(InputError, match="no such directory"):
        GenomeStore.open(tmp_path / "nowhere")


def test_segments_tsv_corruption_names_line(tmp_path, inputs):
    out = tmp_path / "store"
    build_store(inputs, out, progress=False)
    damage(out, "segments.tsv")
    with pytest.raises(InputError) as err:
        GenomeStore.open(out)
    assert err.value.line == 2


def test_segments_are_dataclasses(tmp_path, inputs):
    store = build_store(inputs, tmp_path / "store", progress=False)
    assert store.segments[0] == Segment("g1", "a", 0, 0, 100, "train", "")
    assert store.offsets.dtype == np.int64 and store.lengths.tolist()[:2] == [100, 40]


def test_bundled_genome_paths():
    paths = bundled_genome_paths()
    assert len(paths) == 6 and paths == sorted(paths)
    assert all(p.name.endswith(".fa.gz") and p.is_file() for p in paths)


def test_store_from_two_bundled_genomes(tmp_path):
    paths = {p.name: p for p in bundled_genome_paths()}
    inputs = [paths["ecoli_k12_mg1655.fa.gz"], paths["vibrio_cholerae_h1.fa.gz"]]
    store = build_store(inputs, tmp_path / "store", val_fraction=0.05, progress=False)
    info = store.info()
    assert [(g["id"], g["length"], g["n_records"]) for g in info["genomes"]] == [
        ("ecoli_k12_mg1655", 4_639_675, 1), ("vibrio_cholerae_h1", 4_089_020, 2)]
    assert info["length"] == len(store) == 4_639_675 + 4_089_020
    assert info["splits"]["val"]["length"] == round(0.05 * 4_639_675) + sum(
        round(0.05 * r["length"]) for r in store.genomes[1]["records"])
    assert 0.50 < info["genomes"][0]["gc"] < 0.51
    assert decode(store.fetch("ecoli_k12_mg1655", "K-12-MG1655", 0, 12)) == "AGCTTTTCATTC"


def test_store_json_without_genome_fields_is_an_input_error(tmp_path, inputs):
    out = tmp_path / "store"
    build_store(inputs, out, progress=False)
    meta = json.loads((out / "store.json").read_text())
    del meta["genomes"][1]["counts"]
    (out / "store.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="genome 2 lacks counts"):
        GenomeStore.open(out)
