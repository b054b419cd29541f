"""Meta-SAEs (dnatlas.sae.meta, dnatlas.pipelines.meta_sae, ``dnatlas sae meta``)."""

import csv
import hashlib
import json
from collections import Counter

import pytest
import torch

from dnatlas.cli import main
from dnatlas.errors import InputError
from dnatlas.sae import build_sae, make_config
from dnatlas.sae.meta import (
    decoder_batches,
    decoder_rows,
    decoder_variance_explained,
    derived_seed,
    meta_children,
    random_dictionary,
)
from dnatlas.sae.saelens_format import load_sae, save_sae
from tests.helpers import one_line

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D, PARENTS, CHILDREN = 32, 4, 16


def planted_sae(folder, eps=0.3, seed=0):
    """A TopK SAE whose 64 decoder rows are 4 parent directions, each + 16 small child-specific
    perturbations (row norms scrambled: the meta-SAE must normalise them); and the groups."""
    gen = torch.Generator().manual_seed(seed)
    parents = torch.linalg.qr(torch.randn(D, D, generator=gen))[0][:PARENTS]  # orthonormal
    noise = torch.randn(PARENTS * CHILDREN, D, generator=gen)
    noise = noise / noise.norm(dim=1, keepdim=True)
    groups = torch.arange(PARENTS).repeat_interleave(CHILDREN)
    rows = parents[groups] + eps * noise
    rows = rows / rows.norm(dim=1, keepdim=True)
    sae = build_sae(make_config("topk", d_in=D, d_sae=len(rows), k=4, hook_name="blocks.0.residual"))
    with torch.no_grad():
        sae.W_dec.copy_(rows * (0.2 + 3 * torch.rand(len(rows), 1, generator=gen)))
    save_sae(sae, folder)
    return folder, groups.tolist()


def purity(children, groups):
    """Share of all child weight that sits in its meta-latent's majority planted group."""
    total = majority = 0.0
    for kids in children:
        if not kids:
            continue
        weight = Counter()
        for child, w in kids:
            weight[groups[child]] += w
        total += sum(weight.values())
        majority += max(weight.values())
    return majority / total


def test_decoder_rows_are_unit_norm_rows_of_the_chosen_latents(tmp_path):
    folder, _ = planted_sae(tmp_path / "base")
    sae = load_sae(folder)
    rows = decoder_rows(sae, [5, 1])
    W = sae.W_dec.detach()
    assert torch.allclose(rows, torch.stack([W[5] / W[5].norm(), W[1] / W[1].norm()]), atol=1e-7)
    assert torch.allclose(decoder_rows(sae).norm(dim=1), torch.ones(64), atol=1e-6)
    with pytest.raises(InputError, match="out of range"):
        decoder_rows(sae, [64])
    R = random_dictionary(64, D, seed=3)
    assert R.shape == (64, D) and torch.allclose(R.norm(dim=1), torch.ones(64), atol=1e-6)
    assert torch.equal(R, random_dictionary(64, D, seed=3))


def test_no_generator_replays_a_base_sae_initialisation():
    # an SAE initialised with seed 0 draws randn(d_sae, d_in) from seed 0: neither the
    # random dictionary nor the meta-SAE's initial decoder of seed 0 may start on those rows
    seeds = {derived_seed(0, p) for p in ("init", "batches", "random-dictionary")}
    assert len(seeds) == 3 and 0 not in seeds and derived_seed(1, "init") != derived_seed(0, "init")
    base_init = build_sae(make_config("topk", d_in=D, d_sae=64, k=4, seed=0)).W_dec.detach()
    assert (random_dictionary(64, D, seed=0) @ base_init.T).abs().max() < 0.8
    meta_init = build_sae(make_config("batchtopk", d_in=D, d_sae=16, k=4,
                                    seed=derived_seed(0, "init"))).W_dec.detach()
    assert (meta_init @ base_init.T).abs().max() < 0.8


def test_batches_sample_with_replacement_with_the_same_indices_for_every_key():
    a = torch.arange(10.0)[:, None].repeat(1, 3)
    batches = list(decoder_batches({"a": a, "b": 2 * a}, batch_size=64, seed=1, steps=50))
    assert len(batches) == 50 and all(b["a"].shape == (64, 3) for b in batches)
    assert all(torch.equal(b["b"], 2 * b["a"]) for b in batches)
    idx = torch.cat([b["a"][:, 0] for b in batches]).long()
    counts = torch.bincount(idx, minlength=10)
    assert counts.sum() == 3200 and counts.min() > 250 and counts.max() < 390  # uniform, 320 each
    assert all(len(set(b["a"][:, 0].tolist())) < 64 for b in batches)  # repeats: with replacement
    epochs = list(decoder_batches({"a": a}, batch_size=4, seed=1, replacement=False, steps=6))
    assert [len(b["a"]) for b in epochs] == [4, 4, 2, 4, 4, 2]
    for e in (epochs[:3], epochs[3:]):  # each epoch is a permutation of the rows
        assert sorted(torch.cat([b["a"][:, 0] for b in e]).tolist()) == list(range(10))


def test_rows_fed_to_the_trainer_are_unit_norm_and_counted(tmp_path, monkeypatch):
    import dnatlas.sae.meta as meta
    from dnatlas.pipelines.meta_sae import MetaSAESettings, train_meta_sae

    folder, _ = planted_sae(tmp_path / "base")
    seen = []

    def recording(*args, **kwargs):
        for batch in meta_batches(*args, **kwargs):
            seen.append(batch["sae_decoder"])
            yield batch

    meta_batches = meta.decoder_batches
    monkeypatch.setattr(meta, "decoder_batches", recording)
    settings = MetaSAESettings(preset="saebench", steps=7, batch_size=100)
    train_meta_sae(folder, tmp_path / "out", settings, latents="0,3,5,9,12")
    assert len(seen) == 2 * 7  # decoder, then the random dictionary
    rows = torch.cat(seen[:7])
    assert rows.shape == (700, D)
    assert torch.allclose(rows.norm(dim=1), torch.ones(700), atol=1e-6)
    allowed = decoder_rows(load_sae(folder), [0, 3, 5, 9, 12])
    match = (rows[:, None, :] - allowed[None]).abs().amax(-1) < 1e-6
    assert match.any(1).all()  # only the chosen latents, each sampled many times
    assert (match.sum(0) > 100).all()


def test_planted_hierarchy_is_recovered_and_a_random_dictionary_is_not(tmp_path):
    from dnatlas.pipelines.meta_sae import MetaSAESettings, train_meta_sae

    folder, groups = planted_sae(tmp_path / "base")
    # SAEBench's preset (width 0.25 x 64 rows = 16, BatchTopK) with k = 2 (one parent per
    # row here; k = 4 spends three codes per row on the child-specific noise), shortened
    settings = MetaSAESettings(preset="saebench", k=2, steps=60, batch_size=128, lr=1e-2)
    result = train_meta_sae(folder, tmp_path / "out", settings)
    dec, rnd = result.metrics["decoder"], result.metrics["random"]
    assert result.metrics["settings"]["width"] == 16 and not result.metrics["warnings"]
    assert dec["fve"] > 0.85 and rnd["fve"] < dec["fve"] - 0.25, (dec, rnd)
    assert purity(result.children, groups) > 0.95
    for g in range(PARENTS):  # each planted group sits under one meta-latent, nearly whole
        members = {i for i in range(64) if groups[i] == g}
        best = max(result.children, key=lambda kids: sum(w for c, w in kids if c in members))
        assert len(members & {c for c, _ in best}) >= 14
        assert sum(w for c, w in best if c in members) > 0.95 * sum(w for _, w in best)
    # shuffled group labels are not pure: the measure can fail
    shuffled = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    assert purity(result.children, [groups[i] for i in shuffled]) < 0.7


def write_concepts(path, rows, dictionary=True):
    columns = (["dictionary"] if dictionary else []) + ["concept", "feature", "threshold", "split",
                                                        "f1_per_element"]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row if dictionary else row[1:])
    return path


def test_latents_selected_from_a_concept_table(tmp_path):
    from dnatlas.pipelines.meta_sae import ConceptFilter, read_concepts

    rows = [("sae:base", "tRNA", 3, 0.1, "test", 0.9), ("sae:base", "tRNA", 3, 0.2, "test", 0.95),
            ("sae:base", "rRNA", 3, 0.1, "test", 0.6), ("sae:base", "CDS", 7, 0.1, "test", 0.4),
            ("sae:base", "CDS", 8, 0.1, "valid", 0.99), ("sae:base", "rRNA", 9, 0.1, "test", 0.51),
            ("neurons:blocks.0.residual", "tRNA", 1, 0.1, "test", 0.99),
            ("random-init sae:base", "tRNA", 2, 0.1, "test", 0.99)]
    table = write_concepts(tmp_path / "c.csv", rows)
    best = read_concepts(ConceptFilter(table), d_sae=64, base_name="base")
    assert best == {3: ("tRNA", 0.95), 7: ("CDS", 0.4), 9: ("rRNA", 0.51)}
    assert read_concepts(ConceptFilter(table, split="valid"), 64, "other") == {8: ("CDS", 0.99)}
    neurons = read_concepts(ConceptFilter(table, dictionary="neurons:blocks.0.residual"), 64)
    assert neurons == {1: ("tRNA", 0.99)}
    plain = write_concepts(tmp_path / "plain.csv", rows[:6], dictionary=False)  # no column
    assert read_concepts(ConceptFilter(plain), 64) == best
    two = write_concepts(tmp_path / "two.csv", rows + [("sae:other", "CDS", 1, 0.1, "test", 0.9)])
    with pytest.raises(InputError, match="with dictionary"):
        read_concepts(ConceptFilter(two), 64, "unknown")
    with pytest.raises(InputError, match="out of range"):
        read_concepts(ConceptFilter(table), d_sae=8, base_name="base")
    # as `dnatlas concepts eval` writes it: labels (real/shuffled) and strand (+/-/both) too
    full = tmp_path / "full.csv"
    with open(full, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["dictionary", "labels", "strand", "concept", "feature", "split", "f1_per_element"])
        writer.writerow(["sae:base", "real", "both", "tRNA", 3, "test", 0.8])
        writer.writerow(["sae:base", "shuffled", "both", "tRNA", 4, "test", 0.9])
        writer.writerow(["sae:base", "real", "+", "tRNA", 5, "test", 0.9])
    assert read_concepts(ConceptFilter(full), 64, "base") == {3: ("tRNA", 0.8)}
    assert read_concepts(ConceptFilter(full, strand="+"), 64, "base") == {5: ("tRNA", 0.9)}

    from dnatlas.pipelines.meta_sae import MetaSAESettings, train_meta_sae

    folder, _ = planted_sae(tmp_path / "base")
    result = train_meta_sae(folder, tmp_path / "out", MetaSAESettings(preset="decode-glm", steps=5),
                            concepts=ConceptFilter(table))
    assert result.latents == [3, 9]  # test-split per-element F1 > 0.5, this SAE's rows only
    assert "--width below 2" in result.metrics["warnings"][0]  # 128 meta-latents for 2 rows
    lower = train_meta_sae(folder, tmp_path / "o2", MetaSAESettings(preset="decode-glm", steps=5),
                           concepts=ConceptFilter(table, threshold=0.3))
    assert lower.latents == [3, 7, 9]
    with pytest.raises(InputError, match="give concepts"):
        train_meta_sae(folder, tmp_path / "o3", MetaSAESettings(preset="decode-glm", steps=5))


def test_saved_meta_sae_loads_and_reproduces_its_metrics(tmp_path):
    from dnatlas.pipelines.meta_sae import ConceptFilter, MetaSAESettings, train_meta_sae

    folder, _ = planted_sae(tmp_path / "base")
    table = write_concepts(tmp_path / "c.csv", [("sae:base", f"group{i // 16}", i, 0.1, "test",
                                                 0.9 if i % 2 else 0.2) for i in range(64)])
    result = train_meta_sae(folder, tmp_path / "out", MetaSAESettings(preset="saebench", steps=40, batch_size=128),
                            concepts=ConceptFilter(table))
    meta = load_sae(result.paths["meta_sae"])
    rows = decoder_rows(load_sae(folder), result.latents)
    again = decoder_variance_explained(meta, rows)
    assert again == {k: result.metrics["decoder"][k] for k in ("fve", "mse", "l0")}
    cfg = json.loads((result.paths["meta_sae"] / "cfg.json").read_text())
    info = cfg["metadata"]["dnatlas_meta_sae"]
    sha = hashlib.sha256((folder / "sae_weights.safetensors").read_bytes()).hexdigest()
    assert info["base_sae"] == str(folder) and info["base_sae_sha256"] == sha
    assert info["trained_on"] == "decoder" and cfg["d_in"] == D and cfg["d_sae"] == 16
    random_info = json.loads((result.paths["random_sae"] / "cfg.json").read_text())["metadata"]
    assert random_info["dnatlas_meta_sae"]["trained_on"] == "random"
    # children: exactly the rows with a non-zero code, in the CSV and the hierarchy
    codes = meta.encode(rows)
    assert result.children == meta_children(codes, result.latents)
    with open(result.paths["children"]) as fh:
        table_rows = list(csv.DictReader(fh))
    assert len(table_rows) == int((codes > 0).sum())
    first = next(r for r in table_rows if int(r["child"]) % 2)
    assert first["child_concept"] == f"group{int(first['child']) // 16}" and float(first["child_f1"]) == 0.9
    graph = json.loads(result.paths["hierarchy"].read_text())
    assert len(graph["edges"]) == len(table_rows)
    metas = [n for n in graph["nodes"] if n["kind"] == "meta"]
    assert len(metas) == sum(1 for kids in result.children if kids)
    assert sum(n["kind"] == "latent" for n in graph["nodes"]) == 64
    assert all("group" in n["label"] for n in metas if n["n_children"] >= 4)


def test_cli_runs_and_errors_are_one_line(tmp_path, capsys):
    folder, _ = planted_sae(tmp_path / "base")
    out = tmp_path / "out"
    base = ["sae", "meta", "--preset", "saebench", "--steps", "5", "--batch-size", "64", "--device", "cpu"]
    assert main(base + ["--sae", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fve" in printed and "random" in printed
    cases = [
        (["--sae", str(tmp_path / "nope"), "--out", str(tmp_path / "o1")], "no such SAE folder"),
        (["--sae", str(folder), "--latents", "1,x", "--out", str(tmp_path / "o2")], "'x'"),
        (["--sae", str(folder), "--latents", "3,64", "--out", str(tmp_path / "o3")], "out of range"),
        (["--sae", str(folder), "--out", str(out)], "--force"),
    ]
    for args, words in cases:
        assert main(base + args) == 2
        one_line(capsys.readouterr().err, words)
    ids = tmp_path / "ids.txt"
    ids.write_text("# chosen\n1\n2, 4\nseven\n")
    assert main(base + ["--sae", str(folder), "--latents", str(ids), "--out", str(tmp_path / "o4")]) == 2
    one_line(capsys.readouterr().err, "ids.txt", "line 4", "'seven'")
    assert main(base + ["--sae", str(folder), "--out", str(out), "--force"]) == 0
