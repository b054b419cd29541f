"""Feature steering with the reconstruction error (dnatlas.sae.steering, pipelines.steer).

Exactness (no edit reproduces the unsteered model) for every SAE architecture and every
model kind; a planted decoder direction moves a nucleotide's probability as predicted;
variant log-odds and codon probabilities against brute-force whole-record passes; 1-based
positions; one-line CLI errors.
"""

import numpy as np
import pytest
import torch

from dnatlas.cli import main
from dnatlas.errors import InputError
from dnatlas.genome.alphabet import MASK
from dnatlas.models.dnatlas import DNAtlasAdapter
from dnatlas.sae import build_sae, make_config
from dnatlas.sae.saelens_format import save_sae
from dnatlas.sae.steering import (
    FeatureEdit,
    SteeringIntervention,
    feature_max,
    feature_stats,
    matched_features,
)
from tests.helpers import one_line, tiny_model, write_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCHS = ("relu", "topk", "batchtopk", "jumprelu")


# ----------------------------------------------------------------------------- models


def dnatlas_model():
    return DNAtlasAdapter(tiny_model())


def hyena_model():
    from dnatlas.architectures.hyenadna import HyenaConfig
    from dnatlas.models.hyenadna import HyenaDNAAdapter

    cfg = HyenaConfig(d_model=16, n_layer=2, d_inner=32, max_seq_len=256, emb_dim=5,
                      filter_order=8)
    return HyenaDNAAdapter.from_config(cfg, seed=0)


def nt_model(version):
    from dnatlas.models.nucleotide_transformer import NucleotideTransformerAdapter, tiny_nt_config

    return NucleotideTransformerAdapter.from_config(tiny_nt_config(version), seed=0)


def transformer_model():
    from dnatlas.architectures.transformer import TransformerConfig, TransformerMLM
    from dnatlas.models.baselines import TransformerAdapter

    torch.manual_seed(0)
    model = TransformerMLM(TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_len=128))
    with torch.no_grad():  # the default init zeroes output projections
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return TransformerAdapter(model)


MODELS = {"dnatlas": dnatlas_model, "hyenadna": hyena_model, "nt-v1": lambda: nt_model(1),
          "nt-v2": lambda: nt_model(2), "transformer": transformer_model}


class _Lazy(dict):
    """Models built on first use (so that no single test pays for all of them)."""

    def __missing__(self, name):
        self[name] = MODELS[name]()
        return self[name]


@pytest.fixture(scope="module")
def models():
    return _Lazy()


def make_sae(arch, d_in, d_sae=24, seed=0):
    """A random SAE of ``arch`` with a non-unit input scale and live thresholds."""
    sae = build_sae(make_config(arch, d_in=d_in, d_sae=d_sae, k=4, seed=seed,
                              hook_name="blocks.1.residual"))
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        sae.b_enc.copy_(torch.randn(d_sae, generator=g) * 0.1)
        sae.b_dec.copy_(torch.randn(d_in, generator=g) * 0.1)
        sae.set_input_scale(0.7)
        if arch in ("jumprelu", "batchtopk"):
            sae.threshold.fill_(0.05)
    return sae.eval()


def tokens_for(seed=0, length=96, batch=2):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 4, (batch, length), generator=g)
    t[:, length // 2] = MASK
    t[0, 7] = 4  # an N
    return t


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", MODELS)
def test_no_edit_reproduces_the_unsteered_model_exactly(models, name, arch):
    adapter = models[name]
    key = "blocks.1.residual"
    sae = make_sae(arch, adapter.d(key))
    tokens = tokens_for()
    clean = adapter.nucleotide_log_probs(tokens)
    for edits in ([], [FeatureEdit(3, "add", 0.0)]):
        same = adapter.nucleotide_log_probs(tokens, intervene={key: SteeringIntervention(sae, edits)})
        torch.testing.assert_close(same, clean, atol=1e-6, rtol=0)
    # the hook does reach the model: a real edit moves predictions, and so does splicing
    # the bare reconstruction (the error term is what makes steering exact)
    moved = adapter.nucleotide_log_probs(
        tokens, intervene={key: SteeringIntervention(sae, [FeatureEdit(3, "set", 5.0)])})
    bare = adapter.nucleotide_log_probs(
        tokens, intervene={key: SteeringIntervention(sae, [], error_term=False)})
    assert (moved - clean).abs().max() > 1e-3
    assert (bare - clean).abs().max() > 1e-4
    if name == "dnatlas":  # also the raw triplet logits and the activations downstream
        steer = {key: SteeringIntervention(sae, [FeatureEdit(0, "add", 0.0)])}
        torch.testing.assert_close(adapter.logits(tokens, intervene=steer), adapter.logits(tokens),
                                   atol=1e-6, rtol=0)
        out = "blocks.2.residual"
        torch.testing.assert_close(adapter.activations(tokens, [out], intervene=steer)[out],
                                   adapter.activations(tokens, [out])[out], atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_steered_site_is_the_edited_decode_plus_the_reconstruction_error(arch):
    sae = make_sae(arch, 16)
    x = torch.randn(3, 10, 16, generator=torch.Generator().manual_seed(2)) * 2
    edits = [FeatureEdit(1, "set", 2.5), FeatureEdit(5, "add", -1.0), FeatureEdit(9, "set", 0.0),
             FeatureEdit(1, "add", 0.5)]
    steer = SteeringIntervention(sae, edits)
    f = sae.encode(x)
    g = f.clone()
    g[..., 1] = 3.0          # set 2.5, then add 0.5
    g[..., 5] -= 1.0
    g[..., 9] = 0.0
    expected = sae.decode(g) + (x - sae.decode(f))
    torch.testing.assert_close(steer(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(SteeringIntervention(sae, edits, error_term=False)(x),
                               sae.decode(g), atol=1e-6, rtol=1e-6)
    assert steer(x.double()).dtype == torch.float64


# ----------------------------------------------------------------------------- planted direction


def _ascent_direction(adapter, tokens, key, p, base, k=8, eps=1e-2):
    """The gradient of log p(base at p) with respect to a shift of the site's activations
    at every position, projected on ``k`` random orthonormal directions (central finite
    differences): a direction whose first-order effect is ``+|g|`` per unit step."""
    d = adapter.d(key)
    basis = torch.linalg.qr(torch.randn(d, min(k, d), generator=torch.Generator().manual_seed(9)))[0].T
    grad = torch.zeros(d)
    for u in basis:
        up = adapter.nucleotide_log_probs(tokens, intervene={key: lambda a, u=u: a + eps * u.to(a)})
        down = adapter.nucleotide_log_probs(tokens, intervene={key: lambda a, u=u: a - eps * u.to(a)})
        grad += float(up[0, p, base] - down[0, p, base]) / (2 * eps) * u
    return grad


@pytest.mark.parametrize("name", MODELS)
def test_a_planted_decoder_direction_raises_its_nucleotide_and_its_opposite_lowers_it(models, name):
    adapter = models[name]
    key, p = "blocks.1.residual", 40
    tokens = tokens_for(seed=5, length=80, batch=1)
    tokens[0, p] = MASK
    clean = adapter.nucleotide_log_probs(tokens)[0, p]
    base = int(clean.argmin())  # the least likely nucleotide: room to go up
    grad = _ascent_direction(adapter, tokens, key, p, base)
    assert grad.norm() > 1e-3
    sae = make_sae("relu", adapter.d(key), d_sae=8)
    with torch.no_grad():  # feature 0: never fires, decodes to the gradient's direction
        sae.W_dec[0] = grad / grad.norm()
        sae.W_enc[:, 0] = 0.0
        sae.b_enc[0] = -1.0
    # a step whose first-order effect is 0.001 nats (the tiny random NTs are far from
    # linear at 0.01), then a 100 times larger one, where only the signs are checked
    target = 0.001
    step = target / float(grad.norm()) * float(sae.input_scale)

    def change(edit):
        lp = adapter.nucleotide_log_probs(tokens, intervene={key: SteeringIntervention(sae, [edit])})
        return float(lp[0, p, base] - clean[base])

    up, down = change(FeatureEdit(0, "add", step)), change(FeatureEdit(0, "add", -step))
    assert up == pytest.approx(target, rel=0.3) and down == pytest.approx(-target, rel=0.3), \
        (up, down)
    assert change(FeatureEdit(0, "add", 100 * step)) > 0 > change(FeatureEdit(0, "add", -100 * step))
    assert abs(change(FeatureEdit(0, "set", step)) - up) < 1e-5  # f0 = 0, so set == add
    # the other nucleotides share the probability the planted one takes
    assert change(FeatureEdit(0, "set", 0.0)) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- SAE helpers


def test_feature_max_and_matched_controls():
    sae = make_sae("relu", 16)
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(0))
    stats = feature_stats(sae, [x[:20], x[20:]])
    f = sae.encode(x).double()
    torch.testing.assert_close(stats["max"], f.amax(0).clamp_min(0))
    torch.testing.assert_close(stats["mean"], f.mean(0))
    torch.testing.assert_close(stats["frequency"], (f > 0).double().mean(0))
    assert stats["n"] == 50
    top = feature_max(sae, [x])
    scale = torch.tensor([0.0, 1.0, 1.1, 5.0, 5.2, 4.9, 0.9, 10.0])
    draws = matched_features(scale, [1, 3], n_draws=30, pool=2, seed=1)
    assert len(draws) == 30 and all(len(d) == 2 for d in draws)
    assert {d[0] for d in draws} <= {2, 6} and {d[1] for d in draws} <= {4, 5}
    assert len({tuple(d) for d in draws}) > 1  # random, seeded
    assert draws == matched_features(scale, [1, 3], n_draws=30, pool=2, seed=1)
    with pytest.raises(InputError, match="unknown feature 24"):
        SteeringIntervention(sae, [FeatureEdit(24, "set", 1.0)])
    with pytest.raises(ValueError, match="not resolved"):
        SteeringIntervention(sae, [FeatureEdit(2, "set_max", 2.0)])
    assert FeatureEdit(2, "set_max", 2.0).resolve(top) == FeatureEdit(2, "set", 2 * float(top[2]))


# ----------------------------------------------------------------------------- inputs


def test_edit_and_variant_syntax():
    from dnatlas.pipelines.steer_inputs import EditSpec, parse_edit, parse_variant

    assert parse_edit("12=3.5") == EditSpec((12,), 0, "set", 3.5)
    assert parse_edit("3,17=5xmax") == EditSpec((3, 17), 0, "set_max", 5.0)
    assert parse_edit("3=0.5max") == EditSpec((3,), 0, "set_max", 0.5)
    assert parse_edit("4+=2") == EditSpec((4,), 0, "add", 2.0)
    assert parse_edit("4-=2") == EditSpec((4,), 0, "add", -2.0)
    assert parse_edit("top:3=ablate") == EditSpec((), 3, "set", 0.0)
    for bad in ("x=1", "3==1", "3=abc", "top:0=1", "3+=ablate", "3+=2xmax"):
        with pytest.raises(InputError):
            parse_edit(bad)
    v = parse_variant("K-12:MG:1,408:a>G")  # record ids may hold colons
    assert (v.record, v.pos, v.ref, v.alt) == ("K-12:MG", 1407, 0, 2)
    assert str(v) == "K-12:MG:1,408:A>G"
    for bad in ("chr:0:A>G", "chr:5:A>A", "chr:5:A>N", "chr:5:AG", "chr5A>G"):
        with pytest.raises(InputError):
            parse_variant(bad)


def test_regions_and_bed_select_1_based_positions(tmp_path):
    from dnatlas.pipelines.steer_inputs import parse_variant, select_positions

    records = {"chrA": _Rec(np.zeros(100, np.uint8)), "chrB": _Rec(np.zeros(50, np.uint8))}
    # chrA:11-20 (1-based, closed) = 0-based 10..19
    got = select_positions(records, regions=["chrA:11-20"])
    assert list(got) == ["chrA"] and got["chrA"].tolist() == list(range(10, 20))
    # BED is 0-based half-open: "chrA 19 22" = 1-based 20..22 = 0-based 19, 20, 21
    bed = tmp_path / "p.bed"
    bed.write_text("track name=x\nchrB\t0\t3\nchrA\t19\t22\tname\t0\t+\n")
    got = select_positions(records, regions=["chrA:11-20"], bed=bed,
                           variants=[parse_variant("chrB:50:A>C")])
    assert list(got) == ["chrA", "chrB"]  # file order
    assert got["chrA"].tolist() == list(range(10, 22))
    assert got["chrB"].tolist() == [0, 1, 2, 49]
    assert select_positions(records, all_positions=True)["chrB"].tolist() == list(range(50))
    with pytest.raises(InputError, match="ends past"):
        select_positions(records, regions=["chrB:40-51"])
    with pytest.raises(InputError, match="no record 'chrC'"):
        select_positions(records, regions=["chrC:1-5"])
    bed.write_text("chrA\t90\t101\n")
    with pytest.raises(InputError, match="outside the record"):
        select_positions(records, bed=bed)
    with pytest.raises(InputError, match="no positions"):
        select_positions(records)


class _Rec:
    def __init__(self, seq):
        self.seq = seq

    def __len__(self):
        return len(self.seq)


# ----------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A saved tiny DNAtlas, its genome (chrA 2500 nt, chrB 800 nt) and a TopK SAE on
    blocks.1.residual."""
    root = tmp_path_factory.mktemp("steer")
    model, fasta, gff = write_inputs(root)
    sae = make_sae("topk", 64, d_sae=32, seed=3)
    save_sae(sae, root / "sae")
    return model, fasta, gff, root / "sae"


def _seq(fasta, rid):
    from dnatlas.genome.readers import read_records

    return next(r for r in read_records(fasta) if r.id == rid).seq


def test_variant_log_odds_equal_a_brute_force_whole_record_pass(inputs, tmp_path):
    from dnatlas.pipelines.steer import SteerRequest, steer
    from dnatlas.sae.saelens_format import load_sae

    model_dir, fasta, gff, sae_dir = inputs
    seq = _seq(fasta, "chrA")
    picks = [9, 1200, 2495]  # near the start (clipped window), inside, near the end
    variants = [f"chrA:{p + 1}:{'ACGT'[seq[p]]}>{'ACGT'[(seq[p] + 1) % 4]}" for p in picks]
    req = SteerRequest(fasta=fasta, sae=sae_dir, edits=["3=2.5", "7+=1", "11=ablate"],
                       variants=variants, regions=["chrB:101-110"], annotations=gff,
                       progress=False)
    result = steer(f"dnatlas:{model_dir}", req, tmp_path / "out")
    adapter = DNAtlasAdapter.from_pretrained(model_dir)
    sae = load_sae(sae_dir)
    fn = SteeringIntervention(sae, [FeatureEdit(3, "set", 2.5), FeatureEdit(7, "add", 1.0),
                                    FeatureEdit(11, "set", 0.0)])
    for p, row in zip(picks, result.variants):
        tokens = torch.from_numpy(seq.astype(np.int64))[None].clone()
        tokens[0, p] = MASK
        lp0 = adapter.nucleotide_log_probs(tokens)[0, p].double()
        lp1 = adapter.nucleotide_log_probs(tokens, intervene={"blocks.1.residual": fn})[0, p].double()
        ref, alt = seq[p], (seq[p] + 1) % 4
        expected = float((lp1[alt] - lp1[ref]) - (lp0[alt] - lp0[ref]))
        assert row["pos"] == p + 1
        assert row["delta_log_odds"] == pytest.approx(expected, abs=1e-4)
        assert abs(expected) > 1e-3  # the edit does something
    table = (tmp_path / "out" / "positions.tsv").read_text().splitlines()
    assert table[0].split("\t")[:3] == ["record", "pos_1based", "ref"]
    rows = [line.split("\t") for line in table[1:]]
    assert [(r[0], int(r[1])) for r in rows] == [("chrA", 10), ("chrA", 1201), ("chrA", 2496)] + \
        [("chrB", q) for q in range(101, 111)]
    assert all(r[2] == "ACGT"[_seq(fasta, r[0])[int(r[1]) - 1]] for r in rows)
    assert (tmp_path / "out" / "steer.png").stat().st_size > 1000
    assert (tmp_path / "out" / "variants.tsv").read_text().count("\n") == 4


def test_top_features_are_ranked_by_activation_at_the_positions_above_the_genome_mean(
        inputs, tmp_path):
    from dnatlas.pipelines.steer import SteerRequest, steer

    model_dir, fasta, _, _ = inputs
    sae = make_sae("relu", 64, d_sae=16, seed=4)
    with torch.no_grad():  # feature 0 fires everywhere at 5: dense, not specific
        sae.W_enc[:, 0] = 0.0
        sae.b_enc[0] = 5.0
    save_sae(sae, tmp_path / "sae")
    adapter = DNAtlasAdapter.from_pretrained(model_dir)
    seq = _seq(fasta, "chrA")
    acts = adapter.activations(torch.from_numpy(seq.astype(np.int64))[None],
                               ["blocks.1.residual"])["blocks.1.residual"][0]
    with torch.no_grad():
        f = sae.encode(acts)
    site = f[[p + d for p in (500, 1500) for d in range(-2, 3)]].mean(0).double()
    runs = {}
    for by in ("mean", "excess"):
        req = SteerRequest(fasta=fasta, sae=tmp_path / "sae", edits=["top:2=ablate"],
                           regions=["chrA:501", "chrA:1501"], top_around=2, top_by=by,
                           max_sample=4, max_window=1000, progress=False, png=False)
        runs[by] = steer(f"dnatlas:{model_dir}", req, tmp_path / by)
    ranked = runs["mean"].summary["site_ranking"]
    assert ranked[0]["feature"] == 0 and ranked[0]["site_mean"] == pytest.approx(5.0, rel=1e-5)
    np.testing.assert_allclose([r["site_mean"] for r in ranked], site[[r["feature"] for r in ranked]],
                               rtol=1e-4, atol=1e-5)  # brute force: a whole-record pass
    excess = runs["excess"].summary["site_ranking"]
    scores = [r["site_mean"] - r["sample_mean"] for r in excess]
    assert scores == sorted(scores, reverse=True) and excess[0]["feature"] != 0
    assert [e.feature for e in runs["excess"].edits] == [r["feature"] for r in excess[:2]]
    req.top_by, req.top_max_frequency = "mean", 0.5  # dense features left out
    sparse = steer(f"dnatlas:{model_dir}", req, None).summary["site_ranking"]
    freq = {r["feature"]: r["sample_frequency"] for r in sparse + excess}
    assert all(freq[r["feature"]] <= 0.5 for r in sparse)
    kept = [r["feature"] for r in ranked if r["feature"] in freq and freq[r["feature"]] <= 0.5]
    assert [r["feature"] for r in sparse][:len(kept)] == kept[:len(sparse)]
    assert all(r["feature"] != 0 for r in sparse)
    table = (tmp_path / "excess" / "feature_max.tsv").read_text().splitlines()
    assert table[0] == "feature\tmax\tmean\tfrequency" and len(table) == 17


@pytest.mark.parametrize("strand", ["+", "-"])
def test_codon_and_amino_acid_probabilities_equal_a_whole_record_pass(inputs, tmp_path, strand):
    from dnatlas.architectures.dnatlas.windowed_mlm import AMINO_ACIDS, codon_probs, codon_to_amino_acid
    from dnatlas.pipelines.steer import SteerRequest, steer
    from dnatlas.sae.saelens_format import load_sae

    model_dir, fasta, _, sae_dir = inputs
    # GFF: geneA CDS 201..1100 (+), geneB CDS 1301..2000 (-): frames from their first codons
    frame_start = 201 if strand == "+" else 2000
    region = "chrA:299-304" if strand == "+" else "chrA:1995-2000"
    req = SteerRequest(fasta=fasta, sae=sae_dir, edits=["5=3"], regions=[region],
                       frame_start=frame_start, frame_strand=strand, progress=False, png=False)
    result = steer(f"dnatlas:{model_dir}", req, tmp_path / "out")
    starts = [r["codon_start_1based"] for r in result.codons]
    assert starts == ([297, 300, 303] if strand == "+" else [1995, 1998])  # CDS 201.., ..2000
    adapter = DNAtlasAdapter.from_pretrained(model_dir)
    fn = SteeringIntervention(load_sae(sae_dir), [FeatureEdit(5, "set", 3.0)])
    seq = _seq(fasta, "chrA")
    aa_of = codon_to_amino_acid(11)
    for row in result.codons:
        c = row["codon_start_1based"] - 1
        tokens = torch.from_numpy(seq.astype(np.int64))[None].clone()
        tokens[0, c:c + 3] = MASK
        logits = adapter.logits(tokens, intervene={"blocks.1.residual": fn})
        p = codon_probs(logits, tokens, frame=c % 3, strand=1 if strand == "+" else -1)
        p = p[0, (c - c % 3) // 3].double()
        aa = torch.zeros(len(AMINO_ACIDS), dtype=torch.float64).index_add_(0, aa_of, p)
        got = np.array([row[f"p_{a}_steered"] for a in AMINO_ACIDS])
        np.testing.assert_allclose(got, aa.numpy(), atol=1e-5)
        assert got.sum() == pytest.approx(1.0, abs=1e-5)
        ref = "".join("ACGT"[x] for x in seq[c:c + 3])
        if strand == "-":
            ref = ref[::-1].translate(str.maketrans("ACGT", "TGCA"))
        assert row["ref_codon"] == ref
    assert (tmp_path / "out" / "codons.tsv").is_file()


def test_cli_errors_are_one_line(inputs, tmp_path, capsys):
    model_dir, fasta, _, sae_dir = inputs
    seq = _seq(fasta, "chrA")
    wrong = "ACGT"[(seq[99] + 1) % 4]
    base = ["steer", "--model", f"dnatlas:{model_dir}", "--genome", str(fasta), "--sae",
            str(sae_dir), "--out", str(tmp_path / "o")]
    cases = [
        (["--edit", "3=1", "--variant", "chrA:100:A-G"], ["invalid variant", "REF>ALT"]),
        (["--edit", "3=1", "--variant", f"chrA:100:{wrong}>{'ACGT'[seq[99]]}"],
         ["REF does not match", f"has {'ACGT'[seq[99]]} at chrA:100"]),
        (["--edit", "32=1", "--region", "chrA:1-5"], ["unknown feature 32", "32 features"]),
        (["--edit", "3=lots", "--region", "chrA:1-5"], ["invalid edit"]),
    ]
    for extra, words in cases:
        assert main(base + extra) == 2
        one_line(capsys.readouterr().err, *words)
    (tmp_path / "o").mkdir(exist_ok=True)
    (tmp_path / "o" / "steer.json").write_text("{}")  # an earlier result
    assert main(base + ["--edit", "3=1", "--region", "chrA:1-3"]) == 2
    one_line(capsys.readouterr().err, "already holds a steering result", "--force")
    assert main(base + ["--edit", "3=1", "--region", "chrA:1-3", "--force"]) == 0
