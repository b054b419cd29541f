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
from dnatlas.genome import store_build
from dnatlas.genome.store import GenomeStore
from dnatlas.genome.store_build import (
    build_store,
    remove_stale_builds,
    resolve_bundled_annotation,
    resolve_bundled_genome,
    resolve_genome_ids,
)

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


def one_line(err, *words):
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnatlas: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


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
    assert store_build.bundled_genome_paths() == bundled.genome_paths()
    with pytest.raises(InputError, match="no bundled genome named 'nope'.*ecoli_k12_mg1655"):
        bundled.genome_path("nope")


def test_resolve_bundled_names_and_paths(tmp_path, fasta):
    assert resolve_bundled_genome(fasta) == fasta
    assert resolve_bundled_genome("vibrio_cholerae_h1") == bundled.genome_path("vibrio_cholerae_h1")
    assert resolve_bundled_annotation("ecoli_k12_mg1655").is_file()
    with pytest.raises(InputError, match="no such file, nor a bundled genome"):
        resolve_bundled_genome(tmp_path / "missing.fa")


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
