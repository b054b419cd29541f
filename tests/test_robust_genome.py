"""Bad input of every kind around genomes, stores and annotations: one-line errors, no
leftovers, nothing of the user's deleted."""

import argparse
import errno
import gzip
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import dnatlas.cli as cli
from dnatlas import bundled
from dnatlas.errors import InputError
from dnatlas.genome import sources, store_build
from dnatlas.genome.sources import (
    resolve_bundled_annotations,
    resolve_bundled_genome,
    resolve_genome_ids,
)
from dnatlas.genome.store import GenomeStore
from dnatlas.genome.store_build import build_store, remove_stale_builds
from tests.helpers import one_line

FASTA = ">r1 first\nACGTACGTACGGCC\n>r2\nTTTTNNNNAC\n"


def run_cli(argv, capsys, monkeypatch, modules=("data", "annotate")):
    """``dnatlas ARGV`` with only ``modules`` registered (others may be mid-edit)."""
    import importlib

    def build_parser():
        parser = argparse.ArgumentParser(prog="dnatlas")
        sub = parser.add_subparsers(dest="command")
        for name in modules:
            importlib.import_module(f"dnatlas.cli.{name}").register(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fasta(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text(FASTA)
    return path


# ----------------------------------------------------------------- data build: --force


def test_force_refuses_a_store_folder_holding_user_files(tmp_path, fasta):
    out = tmp_path / "store"
    build_store([fasta], out, progress=False)
    (out / "my_notes.txt").write_text("precious\n")
    with pytest.raises(InputError, match="did not write.*my_notes.txt"):
        build_store([fasta], out, overwrite=True, progress=False)
    assert (out / "my_notes.txt").read_text() == "precious\n"
    GenomeStore.open(out)  # the old store is intact


def test_force_replaces_a_plain_store(tmp_path, fasta):
    out = tmp_path / "store"
    build_store([fasta], out, progress=False)
    build_store([fasta], out, overwrite=True, progress=False, seed=4)
    assert GenomeStore.open(out).meta["build"]["seed"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "store"]


def test_building_into_an_empty_folder(tmp_path, fasta):
    (tmp_path / "store").mkdir()
    assert len(build_store([fasta], tmp_path / "store", progress=False)) == 24


# ----------------------------------------------------------------- data build: the disk


def test_not_enough_space_is_refused_before_writing(tmp_path, fasta, monkeypatch):
    monkeypatch.setattr(store_build.shutil, "disk_usage",
                        lambda path: os.statvfs_result((0,) * 10) and
                        type("U", (), {"free": 1000})())
    with pytest.raises(InputError, match="not enough free space"):
        build_store([fasta], tmp_path / "store", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa"]


def test_disk_full_while_writing_is_one_error_and_cleans_up(tmp_path, fasta, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_build, "_write_segments", full)
    with pytest.raises(InputError, match="no space left"):
        build_store([fasta], tmp_path / "store", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa"]


def test_tokens_are_written_without_a_memory_map(tmp_path, fasta, monkeypatch):
    real = np.lib.format.open_memmap

    def no_memmap(*args, mode="r+", **kwargs):
        if mode != "r":
            raise AssertionError("written through a memory map: a full disk would be a SIGBUS")
        return real(*args, mode=mode, **kwargs)

    monkeypatch.setattr(np.lib.format, "open_memmap", no_memmap)
    store = build_store([fasta], tmp_path / "store", progress=False)
    assert store.tokens.tolist()[:4] == [0, 1, 2, 3]


def test_stale_temporary_folders_of_crashed_builds_are_removed(tmp_path, fasta):
    out = tmp_path / "store"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"store.tmp-{dead}-abcdef12"
    old_style = tmp_path / "store.tmp-1234abcd"
    for folder in (stale, old_style):
        folder.mkdir()
        (folder / "tokens.npy").write_bytes(b"\0" * 100)
    running = tmp_path / f"store.tmp-{os.getppid()}-00000000"  # a live process: kept
    running.mkdir()
    foreign = tmp_path / "store.tmp-mine"  # not dnatlas's content: kept
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    build_store([fasta], out, progress=False)
    assert not stale.exists() and not old_style.exists()
    assert running.exists() and (foreign / "thesis.tex").exists()
    assert remove_stale_builds(out) == []


# ----------------------------------------------------------------- --val-genomes


def test_val_genome_by_accession_prefix(tmp_path):
    names = ["GCF_000006945.2_ASM694v2_genomic", "GCF_000005845.2_ASM584v2_genomic"]
    paths = []
    for name in names:
        paths.append(tmp_path / f"{name}.fna")
        paths[-1].write_text(f">{name[:8]}\nACGTACGTAC\n")
    store = build_store(paths, tmp_path / "store", val_genomes=["GCF_000006945.2"],
                        progress=False)
    assert store.meta["build"]["val_genomes"] == [names[0]]
    assert resolve_genome_ids(["GCF_000005845"], names) == [names[1]]


def test_unknown_or_ambiguous_val_genome_lists_the_ids():
    ids = ["GCF_1.1_a_genomic", "GCF_1.2_b_genomic", "other"]
    with pytest.raises(InputError, match="unknown validation genome 'nope'.*GCF_1.1_a_genomic, "
                                         "GCF_1.2_b_genomic, other"):
        resolve_genome_ids(["nope"], ids)
    with pytest.raises(InputError, match="ambiguous"):
        resolve_genome_ids(["GCF_1"], ids)


# ----------------------------------------------------------------- bundled data by name


def test_bundled_api():
    assert "ecoli_k12_mg1655" in bundled.genome_names()
    assert bundled.genome_path("ecoli_k12_mg1655").name == "ecoli_k12_mg1655.fa.gz"
    assert bundled.annotation_path("ecoli_k12_mg1655").name.endswith(".gff3.gz")
    assert (bundled.model_path() / "config.json").is_file()
    assert sources.bundled_genome_paths() == bundled.genome_paths()
    with pytest.raises(InputError, match="no bundled genome named 'nope'.*ecoli_k12_mg1655"):
        bundled.genome_path("nope")


def test_resolve_bundled_names_and_paths(tmp_path, fasta):
    assert resolve_bundled_genome(fasta) == fasta
    assert resolve_bundled_genome("vibrio_cholerae_h1") == bundled.genome_path("vibrio_cholerae_h1")
    assert resolve_bundled_annotations("ecoli_k12_mg1655") == bundled.annotation_paths()
    with pytest.raises(InputError, match="missing.fa: file not found"):
        resolve_bundled_genome(tmp_path / "missing.fa")
    with pytest.raises(InputError, match="ecolli: no such file, nor a bundled genome "
                                         r"\(bundled: ecoli_k12_mg1655, "):
        resolve_bundled_genome("ecolli")


def test_data_build_accepts_a_bundled_genome_name(tmp_path, capsys, monkeypatch):
    code, out, err = run_cli(["data", "build", "vibrio_cholerae_h1", "--out",
                              str(tmp_path / "store")], capsys, monkeypatch)
    assert code == 0, err
    assert GenomeStore.open(tmp_path / "store").genomes[0]["id"] == "vibrio_cholerae_h1"


def test_data_build_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, fasta):
    out = tmp_path / "store"
    assert run_cli(["data", "build", str(fasta), "--out", str(out)], capsys, monkeypatch)[0] == 0
    (out / "keep.txt").write_text("x")
    code, _, err = run_cli(["data", "build", str(fasta), "--out", str(out), "--force"],
                           capsys, monkeypatch)
    assert code == 2 and (out / "keep.txt").exists()
    one_line(err, str(out), "keep.txt")
    code, _, err = run_cli(["data", "build", str(fasta), "--out", str(tmp_path / "s2"),
                            "--val-genomes", "gg"], capsys, monkeypatch)
    assert code == 2
    one_line(err, "'gg'", "genome IDs: g")


# ----------------------------------------------------------------- manifests


@pytest.mark.parametrize("reader", ["build", "fetch"])
def test_latin1_manifest_is_one_error_naming_the_line(tmp_path, fasta, reader):
    from dnatlas.genome import fetch, sources

    path = tmp_path / "manifest.tsv"
    path.write_bytes("genome_id\tpath\tnote\ng\tg.fa\tcaf\u00e9\n".encode("latin-1"))
    read = sources.read_manifest if reader == "build" else fetch.read_manifest
    with pytest.raises(InputError, match=r"line 2: manifest is not UTF-8 text \(byte 0xe9\)"):
        read(path)


def test_latin1_gtdb_metadata_is_an_input_error(tmp_path):
    from dnatlas.genome.select import iter_selected

    path = tmp_path / "meta.tsv"
    path.write_bytes("accession\tcaf\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError):
        list(iter_selected(path))


# ----------------------------------------------------------------- annotations

GENBANK = """\
LOCUS       rec1                      60 bp    DNA     linear   BCT 01-JAN-2000
DEFINITION  test.
ACCESSION   rec1
VERSION     rec1.1
FEATURES             Location/Qualifiers
     source          1..60
     CDS             4..30
                     /gene="abc"
                     /codon_start={codon_start}
ORIGIN
        1 acgtacgtac gtacgtacgt acgtacgtac gtacgtacgt acgtacgtac gtacgtacgt
//
"""


def test_bed_keeps_sequences_named_track_or_browser(tmp_path):
    from dnatlas.annotation.bed import load_bed

    path = tmp_path / "x.bed"
    path.write_text("track name=x\nbrowser position chr1:1-10\n# note\n"
                    "track1\t0\t10\nbrowser_2\t5\t8\tname\n")
    intervals = load_bed(path)
    assert [(iv.seqid, iv.start, iv.end) for iv in intervals] == [
        ("track1", 0, 10), ("browser_2", 5, 8)]


def test_bed_format_sniffing_skips_only_real_headers(tmp_path):
    from dnatlas.annotation.intervals import annotation_format

    path = tmp_path / "noext"
    path.write_text("track1\t0\t10\n")
    assert annotation_format(path) == "bed"


@pytest.mark.parametrize("value", ["abc", "4"])
def test_genbank_bad_codon_start_names_file_and_record(tmp_path, value):
    from dnatlas.annotation.intervals import load_genbank_features

    path = tmp_path / "a.gbk"
    path.write_text(GENBANK.format(codon_start=value))
    with pytest.raises(InputError, match=rf"a.gbk: record 'rec1.1': CDS .*abc.*"
                                         rf"/codon_start={value} is not 1, 2 or 3"):
        load_genbank_features(path)
    path.write_text(GENBANK.format(codon_start=2))
    assert load_genbank_features(path)[0].attributes["phase"] == "1"


def test_biopython_warnings_do_not_leak(tmp_path, capfd):
    from dnatlas.annotation.intervals import load_genbank_features
    from dnatlas.genome.readers import read_genome

    path = tmp_path / "a.gbk"  # a malformed LOCUS line makes Biopython warn
    path.write_text(GENBANK.format(codon_start=1).replace(
        "60 bp    DNA     linear   BCT", "60 bp DNA linear BCT"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_genbank_features(path)) == 1
        assert len(read_genome(path)[0]) == 60
    assert capfd.readouterr().err == ""


def _pipe(tmp_path, data: bytes, name="pipe"):
    """A FIFO fed with ``data`` by a background thread (like ``<(cat file)``)."""
    import threading

    fifo = tmp_path / name
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as fh:
            fh.write(data)

    threading.Thread(target=feed, daemon=True).start()
    return fifo


def test_genome_from_a_pipe(tmp_path):
    from dnatlas.genome.readers import read_genome

    records = read_genome(_pipe(tmp_path, gzip.compress(FASTA.encode())))
    assert [(r.id, len(r)) for r in records] == [("r1", 14), ("r2", 10)]
    bad = _pipe(tmp_path, b">x\nAC!T\n", "bad")
    with pytest.raises(InputError, match=r"bad: record 'x': line 2: invalid character '!'"):
        read_genome(bad)


def test_annotation_from_a_pipe(tmp_path):
    from dnatlas.annotation.intervals import load_annotations

    gff = "##gff-version 3\nr1\tx\tCDS\t1\t9\t.\t+\t0\tID=c1\n"
    intervals = load_annotations(_pipe(tmp_path, gff.encode()))
    assert [(iv.seqid, iv.start, iv.end, iv.type) for iv in intervals] == [("r1", 0, 9, "CDS")]
    with pytest.raises(InputError, match="pipe2: record 'r1': line 2"):
        load_annotations(_pipe(tmp_path, gff.replace("\t9\t", "\tnine\t").encode(), "pipe2"))


def test_store_from_a_pipe_is_refused_in_one_line(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # nobody writes: it must not be opened at all
    with pytest.raises(InputError, match="pipe: is a pipe or device"):
        build_store([fifo], tmp_path / "store", progress=False)


def _iv(seqid, start, end, type="CDS"):
    from dnatlas.annotation.intervals import Interval

    return Interval(seqid, start, end, 1, type, "g")


def test_restricting_an_annotation_to_part_of_the_genome():
    from dnatlas.annotation.intervals import restrict_to_genome

    intervals = [_iv("chr", 0, 90), _iv("plasmid", 0, 30)]
    messages = []
    assert restrict_to_genome(intervals, {"chr": 100}, warn=messages.append) == intervals[:1]
    assert messages == []
    kept = restrict_to_genome(intervals, {"chr": 100, "contig9": 50}, path="a.gff",
                              warn=messages.append)
    assert kept == intervals[:1]
    assert messages == ["a.gff: 1 of the genome's 2 records have no annotated feature "
                        "('contig9'); they are labelled as having none"]


def test_annotation_of_other_seqids_is_an_input_error(capsys):
    from dnatlas.annotation.intervals import restrict_to_genome

    with pytest.raises(InputError, match=r"a.gff: no feature lies on the genome's records: "
                                         r"the annotation's seqids \('NC_000913.3'\) match "
                                         r"none of the records \('K-12-MG1655'\)"):
        restrict_to_genome([_iv("NC_000913.3", 0, 10)], {"K-12-MG1655": 100}, path="a.gff")
    with pytest.raises(InputError, match="ends past the record's length 50"):
        restrict_to_genome([_iv("chr", 0, 90)], {"chr": 50})


def test_restriction_warns_on_stderr_in_one_line(capsys):
    from dnatlas.annotation.intervals import restrict_to_genome

    restrict_to_genome([_iv("chr", 0, 9)], {"chr": 10, "p1": 5, "p2": 5})
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dnatlas: warning: 2 of the genome's 3")


def test_annotate_writes_atomically_next_to_the_output(tmp_path, monkeypatch, fasta):
    from dnatlas.annotation import annotate, gff3

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(annotate, "annotate_sequences", lambda genome, *a, **k: [])

    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "out" / "genes.gff3"
    annotate.annotate_genome(fasta, out)
    assert out.read_text().startswith("##gff-version 3\n")
    monkeypatch.setattr(gff3, "_gff3_line", broken)
    monkeypatch.setattr(annotate, "annotate_sequences", lambda genome, *a, **k: [_iv("r1", 0, 3)])
    with pytest.raises(OSError):
        annotate.annotate_genome(fasta, "genes.gff3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "out"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["genes.gff3"]


def test_annotate_checks_the_output_before_running_tools(tmp_path, monkeypatch, fasta):
    from dnatlas.annotation import annotate

    def never(*args, **kwargs):
        raise AssertionError("tools ran before the output was checked")

    monkeypatch.setattr(annotate, "annotate_sequences", never)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="would sit under a file"):
        annotate.annotate_genome(fasta, tmp_path / "afile" / "out.gff3")
    with pytest.raises(InputError, match="is a folder"):
        annotate.annotate_genome(fasta, tmp_path)


def test_annotate_cli_accepts_a_bundled_genome_name(tmp_path, capsys, monkeypatch):
    from dnatlas.annotation import annotate

    seen = []
    monkeypatch.setattr(annotate, "annotate_sequences",
                        lambda genome, *a, **k: seen.append([s for s, _ in genome]) or [])
    code, _, err = run_cli(["annotate", "--genome", "ecoli_k12_mg1655", "--out", str(tmp_path / "a.gff3")],
                           capsys, monkeypatch)
    assert code == 0, err
    assert seen == [["K-12-MG1655"]]
    code, _, err = run_cli(["annotate", "--genome", "no_such_genome", "--out", str(tmp_path / "b.gff3")],
                           capsys, monkeypatch)
    assert code == 2
    one_line(err, "no_such_genome", "nor a bundled genome")


@pytest.mark.parametrize("seed", [-1, 1.5])
def test_negative_seed_is_refused(tmp_path, fasta, seed):
    with pytest.raises(InputError, match="seed must be an integer >= 0"):
        build_store([fasta], tmp_path / "store", seed=seed, val_fraction=0.1, progress=False)
