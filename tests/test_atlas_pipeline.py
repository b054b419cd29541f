"""``build_atlas`` end to end: concept counts read back from the atlas equal those of
``concepts eval``'s pass; a stale atlas is refused, a current one reused; a killed build
resumes to the same tables; 2 torchrun ranks write what 1 writes; the CLI; reading a
page imports no torch."""

import subprocess
import sys

import numpy as np
import pytest

from dnatlas.atlas.concept_scores import counts_from_table
from dnatlas.concepts.label_sources import LabelSpec
from dnatlas.errors import InputError
from dnatlas.pipelines.atlas import AtlasSettings, build_atlas
from tests.test_concepts_pipeline import MotifAdapter, genome  # noqa: F401
from tests.test_distributed_pipelines import _spawn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _settings(root, **kw):
    labels = LabelSpec(concepts=(), codons=False, beds=[str(root / "motif.bed"),
                                                        str(root / "minus_only.bed")])
    return AtlasSettings(sample_nt=10_000, chunk_size=8192, labels=labels, top_k=5,
                         top_pool=10, quantile_k=2, checkpoint_every=1, **kw)


def _read(folder) -> dict:
    """{table: pyarrow table} of a written atlas, rows in a canonical order."""
    import duckdb

    from dnatlas.atlas import schema

    con = duckdb.connect(str(folder / schema.ATLAS_FILE), read_only=True)
    try:
        out = {}
        for name in schema.TABLES:
            cols = ", ".join(f'"{c}"' for c in schema.columns(name)
                             if schema.TABLES[name][schema.columns(name).index(c)][1]
                             not in ("FLOAT[]", "DOUBLE[]", "BIGINT[]"))
            out[name] = con.sql(f'SELECT * FROM "{name}" ORDER BY {cols}').to_arrow_table()
        return out
    finally:
        con.close()


def _assert_same(a: dict, b: dict):
    assert set(a) == set(b)
    for name in a:
        assert a[name].equals(b[name]), name


def _concept_eval_counts(adapter, fasta, annotations, settings, saes=(), neurons=None,
                         control=False):
    """The counts of ``concepts eval``'s own pass (its _run_model) for these inputs."""
    from dnatlas.concepts import shuffled_labels
    from dnatlas.concepts.label_sources import build_labels
    from dnatlas.concepts.splits import make_splits
    from dnatlas.pipelines.concepts import _dictionaries, _genome, _run_model

    cs = settings.concept_settings()
    dicts = _dictionaries(adapter, saes, neurons, False, "cpu")
    codes, intervals = _genome(fasta, annotations)
    splits = make_splits({r: len(c) for r, c in codes.items()}, cs.valid, cs.test)
    labels, _ = build_labels(intervals, codes, cs.labels)
    counts = _run_model(adapter, dicts, codes, splits,
                        {"real": labels, "shuffled": shuffled_labels(labels, cs.seed)}, cs, "x")
    if control:
        model = adapter.random_init(cs.seed)
        cdicts = _dictionaries(model, (), [d.key for d in dicts], True, "cpu")
        counts.update(_run_model(model, cdicts, codes, splits, {"real": labels}, cs, "c"))
    return counts


def _assert_counts_equal(tables, expected):
    for (name, labels, split, strand), want in expected.items():
        got = counts_from_table(tables["concept_counts"], name, want.names)
        if True:
            have = got[labels, split, strand]
            assert have.names == want.names
            np.testing.assert_array_equal(have.thresholds, want.thresholds)
            for field in ("tp", "fp", "n_positive", "n_elements", "elements_hit"):
                np.testing.assert_array_equal(getattr(have, field), getattr(want, field),
                                              err_msg=f"{name} {labels} {split} {strand} {field}")


def test_concept_counts_equal_concepts_eval(genome, tmp_path):  # noqa: F811
    root, *_ = genome
    settings = _settings(root, random_init=True)
    result = build_atlas(MotifAdapter(), root / "g.fa", "none", saes=(),
                         neurons=["blocks.0.residual"], settings=settings, out=tmp_path / "a")
    expected = _concept_eval_counts(MotifAdapter(), root / "g.fa", None, settings,
                                    neurons=["blocks.0.residual"], control=True)
    assert {k[0] for k in expected} == {"neurons:blocks.0.residual",
                                        "random-init neurons:blocks.0.residual"}
    _assert_counts_equal(_read(tmp_path / "a"), expected)
    # the scores: the planted neuron matches the motif, beyond its controls
    scores = result.tables["concept_scores"].to_pylist()
    row = next(r for r in scores if r["dictionary"] == "neurons:blocks.0.residual"
               and r["feature"] == 0 and r["concept"].endswith("GATTACA"))
    assert row["f1"] > 0.97 and row["f1_shuffled"] < 0.1 and row["f1_random_init"] < 0.1
    # its top windows read GATTACA on the strand the model read, on both strands
    top = [r for r in result.tables["examples"].to_pylist() if r["kind"] == "top"
           and r["dictionary"] == "neurons:blocks.0.residual" and r["feature"] == 0]
    assert {r["strand"] for r in top} == {"+", "-"}
    assert all("GATTACA" in r["sequence"] for r in top)


@pytest.fixture(scope="module")
def mg_slice(tmp_path_factory):
    """30 kb of the bundled genome and the annotation features inside it."""
    import gzip

    from dnatlas import bundled
    from dnatlas.genome.alphabet import decode
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import resolve_bundled_genome

    root = tmp_path_factory.mktemp("mg")
    record = next(iter(read_records(resolve_bundled_genome("ecoli_k12_mg1655"))))
    n = 30_000
    (root / "g.fa").write_text(f">{record.id}\n{decode(record.seq[:n])}\n")
    lines = []
    for path in bundled.annotation_paths("ecoli_k12_mg1655"):
        with gzip.open(path, "rt") as fh:
            lines += [line for line in fh if not line.startswith("#")
                      and len(line.split("\t")) >= 9 and int(line.split("\t")[4]) <= n]
    (root / "a.gff3").write_text("##gff-version 3\n" + "".join(lines))
    return root


def test_bundled_sae_counts_equal_concepts_eval(mg_slice, tmp_path):
    """The bundled model, SAE (sparse) and the neurons of its site: the same counts."""
    from dnatlas.models import load_model

    model = load_model(None)
    settings = AtlasSettings(sample_nt=20_000, chunk_size=8192, top_k=5, top_pool=10)
    result = build_atlas(model, mg_slice / "g.fa", str(mg_slice / "a.gff3"),
                         settings=settings)
    assert result.out is None and result.tables["features"].num_rows == 1024 + 64
    expected = _concept_eval_counts(model, mg_slice / "g.fa", str(mg_slice / "a.gff3"),
                                    settings, saes=["default"])
    assert len({k[0] for k in expected}) == 2
    _assert_counts_equal(result.tables, expected)


def test_stale_atlas_refused_current_reused_force_rebuilds(genome, tmp_path):  # noqa: F811
    root, *_ = genome
    out = tmp_path / "a"
    kw = dict(saes=(), neurons=["blocks.0.residual"], out=out)
    first = build_atlas(MotifAdapter(), root / "g.fa", "none", settings=_settings(root), **kw)
    assert not first.reused and (out / "manifest.json").is_file()
    assert not (out / ".partial").exists()
    again = build_atlas(MotifAdapter(), root / "g.fa", "none", settings=_settings(root), **kw)
    assert again.reused and again.tables is None
    with pytest.raises(InputError, match="stale atlas.*settings"):
        build_atlas(MotifAdapter(), root / "g.fa", "none", settings=_settings(root, seed=3),
                    **kw)
    with pytest.raises(InputError, match="stale atlas.*model"):
        build_atlas(MotifAdapter(planted=False), root / "g.fa", "none",
                    settings=_settings(root), **kw)
    rebuilt = build_atlas(MotifAdapter(), root / "g.fa", "none", settings=_settings(root, seed=3),
                          force=True, **kw)
    assert not rebuilt.reused
    from dnatlas.atlas.reader import Atlas

    with pytest.raises(InputError, match="stale"):
        Atlas.open(out, expect_key=first.manifest["key"])
    Atlas.open(out, expect_key=rebuilt.manifest["key"]).close()


class _Killed(Exception):
    pass


def test_killed_build_resumes_to_the_same_atlas(genome, tmp_path, monkeypatch):  # noqa: F811
    from dnatlas.atlas import build

    root, *_ = genome
    kw = dict(saes=(), neurons=["blocks.0.residual"], settings=_settings(root, random_init=True))
    build_atlas(MotifAdapter(), root / "g.fa", "none", out=tmp_path / "whole", **kw)
    feed = build.Builder.feed
    fed = []

    def dying(self, chunk, acts):
        if len(fed) == 7:
            raise _Killed
        fed.append(chunk.index)
        feed(self, chunk, acts)

    monkeypatch.setattr(build.Builder, "feed", dying)
    with pytest.raises(_Killed):
        build_atlas(MotifAdapter(), root / "g.fa", "none", out=tmp_path / "resumed", **kw)
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    monkeypatch.setattr(build.Builder, "feed", feed)
    seen = []

    def counting(self, chunk, acts):
        seen.append(chunk.index)
        feed(self, chunk, acts)

    monkeypatch.setattr(build.Builder, "feed", counting)
    build_atlas(MotifAdapter(), root / "g.fa", "none", out=tmp_path / "resumed", **kw)
    assert not set(seen) & set(fed) and len(fed) == 7
    _assert_same(_read(tmp_path / "whole"), _read(tmp_path / "resumed"))


def _build_job(root, out):
    build_atlas(MotifAdapter(), root / "g.fa", "none", saes=(), neurons=["blocks.0.residual"],
                settings=_settings(root, random_init=True), out=out)


def test_two_processes_build_the_same_atlas_as_one(genome, tmp_path):  # noqa: F811
    root, *_ = genome
    _spawn(_build_job, root, tmp_path / "two")
    _build_job(root, tmp_path / "one")
    _assert_same(_read(tmp_path / "one"), _read(tmp_path / "two"))


def test_cli_builds_and_page_reads_without_torch(genome, tmp_path, capsys):  # noqa: F811
    from dnatlas.cli import main

    root, *_ = genome
    out = tmp_path / "cli"
    # the MotifAdapter is not a --model spec: build the bundled model on the planted genome
    code = main(["atlas", "build", "--genome", str(root / "g.fa"), "--annotations", "none",
                 "--bed", str(root / "motif.bed"), "--no-codons", "--sample", "10000",
                 "--chunk-size", "8192", "--top-k", "3", "--out", str(out)])
    assert code == 0
    assert "sae:" in capsys.readouterr().out
    code = main(["atlas", "build", "--genome", str(root / "g.fa"), "--annotations", "none",
                 "--bed", str(root / "motif.bed"), "--no-codons", "--sample", "20000",
                 "--chunk-size", "8192", "--top-k", "3", "--out", str(out)])
    assert code == 2 and "stale atlas" in capsys.readouterr().err
    # steering's maxima read from the atlas (dnatlas steer --max-activations ATLAS)
    from dnatlas.atlas.reader import Atlas
    from dnatlas.pipelines.steer_inputs import read_feature_stats

    stats = read_feature_stats(out, 1024)
    atlas = Atlas.open(out)
    sae = next(d["dictionary"] for d in atlas.dictionaries() if d["kind"] == "sae")
    page = atlas.feature(sae, 7)
    atlas.close()
    assert float(stats["max"][7]) == page["feature"]["max"]
    assert float(stats["frequency"][7]) == page["feature"]["frac_active"]
    with pytest.raises(InputError, match="SAE dictionaries of 512"):
        read_feature_stats(out, 512)
    script = ("import sys, time\n"
              "from dnatlas.atlas.reader import Atlas\n"
              f"a = Atlas.open({str(out)!r})\n"
              "name = a.dictionaries()[0]['dictionary']\n"
              "page = a.feature(name, 3)\n"
              "assert page['feature']['max'] is not None and page['examples']\n"
              "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", script], check=True)


@pytest.mark.parametrize("spec, site", [("hyenadna:{fx}/hyenadna", "blocks.1.residual"),
                                        ("nt:{fx}/nt/v2", "blocks.0.residual")])
def test_cli_builds_hyenadna_and_nt_atlases_on_a_users_genome(mg_slice, tmp_path, spec, site):
    """The same command serves the third-party models: their neurons, both strands,
    described and read back."""
    from pathlib import Path

    from dnatlas.atlas.reader import Atlas
    from dnatlas.cli import main

    fixtures = Path(__file__).parent / "fixtures"
    out = tmp_path / "atlas"
    assert main(["atlas", "build", "--model", spec.format(fx=fixtures), "--neurons", site,
                 "--genome", str(mg_slice / "g.fa"), "--annotations", str(mg_slice / "a.gff3"),
                 "--out", str(out)]) == 0
    atlas = Atlas.open(out)
    (d,) = atlas.dictionaries()
    assert d["kind"] == "neurons" and d["site"] == site
    rows = atlas.features(d["dictionary"], limit=1000)["rows"]
    assert len(rows) == d["n_features"] and all(r["description"] for r in rows)
    page = atlas.feature(d["dictionary"], rows[0]["feature"])
    assert {e["strand"] for e in page["examples"]} <= {"+", "-"} and page["examples"]


def test_tss_landmark_from_the_cli_and_in_the_key(mg_slice, tmp_path, capsys):
    """--tss adds the 'tss' landmark; the TSS file's content is part of the atlas key, so
    an edited file makes the atlas stale; a missing file is one line, exit 2."""
    from dnatlas.atlas.reader import Atlas
    from dnatlas.cli import main

    tss = tmp_path / "tss.bed"
    tss.write_text("".join(f"{mg_slice_record(mg_slice)}\t{i * 700}\t{i * 700 + 1}\tt{i}\t0\t+\n"
                           for i in range(1, 40)))
    out = tmp_path / "atlas"
    args = ["atlas", "build", "--neurons", "blocks.2.residual", "--genome",
            str(mg_slice / "g.fa"), "--annotations", str(mg_slice / "a.gff3"), "--out", str(out)]
    assert main([*args, "--tss", str(tmp_path / "missing.bed")]) == 2
    assert "no such file of transcription start sites" in capsys.readouterr().err
    assert main([*args, "--tss", str(tss)]) == 0
    capsys.readouterr()
    atlas = Atlas.open(out)
    (d,) = atlas.dictionaries()
    page = atlas.feature(d["dictionary"], 0)
    assert {(r["landmark"], r["n"]) for r in page["landmarks"]} >= {("tss", 39)}
    tss.write_text(tss.read_text().replace("\t700\t701\t", "\t710\t711\t"))
    assert main([*args, "--tss", str(tss)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stale atlas" in err and "tss:" in err, err
    assert main([*args, "--tss", str(tss), "--force"]) == 0


def mg_slice_record(root) -> str:
    return (root / "g.fa").read_text().split("\n", 1)[0][1:].split()[0]
