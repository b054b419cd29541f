"""The pipelines behind ``dnatlas annotate``, ``motifs scan``, ``data`` and ``train``: the
calling convention ``fn(inputs..., settings, out=None, force=False) -> result``, computed
without ``out`` and written only with it."""

from pathlib import Path

import pytest

from dnatlas.errors import InputError
from dnatlas.pipelines.data import (
    SelectCriteria,
    StoreSettings,
    build_genome_store,
    genome_store_info,
    select_gtdb_genomes,
)

GTDB = Path(__file__).parent / "fixtures" / "gtdb" / "bac120_metadata_r220_excerpt.tsv"


def test_select_computes_without_out_and_writes_with_it(tmp_path):
    result = select_gtdb_genomes(GTDB)
    assert result.out is None and result.summary.kept == len(result.rows) == 7
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "m.tsv"
    written = select_gtdb_genomes(GTDB, SelectCriteria(), out=out)
    assert written.out == out and len(out.read_text().splitlines()) == 1 + 7
    with pytest.raises(InputError, match="force=True"):
        select_gtdb_genomes(GTDB, out=out)
    assert select_gtdb_genomes(GTDB, out=out, force=True).summary.kept == 7


def test_store_build_and_info(tmp_path):
    genome = tmp_path / "alpha.fa"
    genome.write_text(">r1\nACGTACGTAC\n>r2\nGGGGCCCCAT\n")
    result = build_genome_store([genome], StoreSettings(val_fraction=0.5, progress=False),
                                out=tmp_path / "store")
    assert result.info["n_records"] == 2 and result.info["length"] == 20
    assert genome_store_info(tmp_path / "store") == result.info
    with pytest.raises(InputError, match="force=True"):
        build_genome_store([genome], out=tmp_path / "store")
    with pytest.raises(InputError, match="give inputs, manifest"):
        build_genome_store([], out=tmp_path / "other")


def test_motif_scan_counts_without_out(tmp_path):
    pytest.importorskip("lightmotif")
    from dnatlas.pipelines.motifs import MotifScanSettings, scan_motifs

    genome = tmp_path / "g.fa"
    genome.write_text(">chrA\nTTACGTTTGGGG\n>chrB\nNNACGTNN\n")
    matrices = tmp_path / "m.jaspar"
    matrices.write_text(">M1 acgt\nA [10 0 0 0]\nC [0 10 0 0]\nG [0 0 10 0]\nT [0 0 0 10]\n")
    settings = MotifScanSettings(motif_files=[matrices], pvalue=1e-2)
    counted = scan_motifs([genome], settings)
    assert counted.out is None and counted.hits_written == 4 and counted.scanned_nt == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "m.jaspar"]
    written = scan_motifs([genome], settings, out=tmp_path / "hits.bed")
    assert written.hits_written == 4 and written.summary == tmp_path / "hits.summary.tsv"
    assert len((tmp_path / "hits.bed").read_text().splitlines()) == 4
    with pytest.raises(InputError, match="give force=True"):
        scan_motifs([genome], settings, out=tmp_path / "hits.bed")
    with pytest.raises(InputError, match="jaspar.*motif_files"):
        scan_motifs([genome], MotifScanSettings())


def test_annotate_without_out_writes_nothing(tmp_path, monkeypatch):
    from dnatlas.annotation import annotate as library
    from dnatlas.annotation.features import Interval
    from dnatlas.pipelines.annotate import AnnotateSettings, annotate

    found = [Interval("r1", 0, 9, 1, "CDS")]
    monkeypatch.setattr(library, "annotate_sequences", lambda genome, tools, **kw: found)
    genome = tmp_path / "g.fa"
    genome.write_text(">r1\n" + "ACG" * 10 + "\n")
    result = annotate(genome, AnnotateSettings(tools=("prodigal",)))
    assert result.features == found and result.out is None
    assert [p.name for p in tmp_path.iterdir()] == ["g.fa"]
    written = annotate(genome, out=tmp_path / "a.gff3")
    assert written.out.read_text().startswith("##gff-version 3")
    with pytest.raises(InputError, match="give force=True"):
        annotate(genome, out=tmp_path / "a.gff3")


def test_train_settings_errors_name_the_setting(tmp_path):
    from dnatlas.pipelines.train import TrainSettings, train_model

    with pytest.raises(InputError, match="^overrides expects key=value"):
        train_model(tmp_path, TrainSettings(overrides=["steps"]), out=tmp_path / "run")
