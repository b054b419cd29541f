"""Tests of dnatlas.concepts: labels, streaming counts (vs a brute-force reference), scores,
shuffled controls."""

import csv

import numpy as np
import pytest
import scipy.sparse as sp

from dnatlas.annotation.intervals import Interval
from dnatlas.concepts import (
    DEFAULT_THRESHOLDS,
    ChunkLabels,
    ConceptCounter,
    best_per_concept,
    chunk_labels,
    combine,
    feature_maxima,
    from_intervals,
    nucleotide_concepts,
    score_rows,
    scores,
    shuffled_labels,
    split_by_attribute,
    write_table,
)


def brute_force(labels, chunks, maxima, thresholds=DEFAULT_THRESHOLDS):
    """Plain loops over positions, features, thresholds, concepts and elements."""
    C, F, T = labels.n_concepts, len(maxima), len(thresholds)
    tp, fp = np.zeros((C, F, T), int), np.zeros((C, F, T), int)
    n_positive = np.zeros(C, int)
    hits = [[[set() for _ in range(T)] for _ in range(F)] for _ in range(C)]
    seen = [set() for _ in range(C)]
    for record, a, b, strand, acts in chunks:
        r = labels.records.index(record)
        for p in range(a, b):
            members = set()
            for c in range(C):
                base = labels.nucleotide[c]
                if base >= 0:
                    code = int(labels.codes[record][p])
                    read = code if strand == 1 or code == 4 else 3 - code
                    if read == base:
                        members.add((c, ("nt", r, p, strand)))
                for row in labels.pieces[c]:
                    rec, start, end, s, element = (int(x) for x in row[:5])
                    if rec == r and s == strand and start <= p < end:
                        members.add((c, element))
            inside = {c for c, _ in members}
            for c in inside:
                n_positive[c] += 1
            for c, e in members:
                seen[c].add(e)
            for f in range(F):
                value = acts[p - a, f] / maxima[f] if maxima[f] > 0 else 0.0
                for t, threshold in enumerate(thresholds):
                    if value > threshold:
                        for c in range(C):
                            if c in inside:
                                tp[c, f, t] += 1
                            else:
                                fp[c, f, t] += 1
                        for c, e in members:
                            hits[c][f][t].add(e)
    elements_hit = np.array([[[len(hits[c][f][t]) for t in range(T)] for f in range(F)]
                             for c in range(C)]).reshape(C, F, T)
    return tp, fp, n_positive, np.array([len(s) for s in seen]), elements_hit


def random_intervals(rng, lengths, n=40):
    types = ["CDS", "tRNA", "repeat_region", "promoter"]
    out = []
    for i in range(n):
        seqid = str(rng.choice(list(lengths)))
        start = int(rng.integers(0, lengths[seqid] - 5))
        end = min(lengths[seqid], start + int(rng.integers(1, 60)))
        kind = str(rng.choice(types))
        strand = int(rng.choice([1, -1, 0])) if kind != "CDS" else int(rng.choice([1, -1]))
        out.append(Interval(seqid, start, end, strand, kind, attributes={"ID": f"f{i}"}))
        if i % 7 == 0 and end + 20 < lengths[seqid]:   # a second piece, same ID
            out.append(Interval(seqid, end + 10, end + 20, strand, kind,
                                attributes={"ID": f"f{i}"}))
    return out


def random_activations(rng, n, F, density=0.3):
    """Sparse activations with exact ties at thresholds (features' maxima are 1 or 2)."""
    scale = np.where(np.arange(F) % 2, 1.0, 2.0)
    ties = rng.choice([0.15, 0.5, 0.6, 0.8, 1.0, -0.3], size=(n, F))
    values = np.where(rng.random((n, F)) < 0.5, ties, rng.random((n, F)))
    acts = np.where(rng.random((n, F)) < density, values * scale, 0.0)
    acts[:, F - 1] = 0.0   # a feature that never fires
    return acts


def stream(labels, chunks, maxima, sparse=False, thresholds=DEFAULT_THRESHOLDS):
    counter = ConceptCounter(labels.names, maxima, thresholds)
    for record, a, b, strand, acts in chunks:
        data = sp.csr_matrix(acts) if sparse else acts
        counter.update(data, chunk_labels(labels, record, a, b, strand))
    return counter.counts()


@pytest.fixture
def random_case():
    rng = np.random.default_rng(1)
    lengths = {"r1": 230, "r2": 170}
    codes = {r: rng.integers(0, 5, size=n).astype(np.uint8) for r, n in lengths.items()}
    labels = combine(from_intervals(random_intervals(rng, lengths), lengths,
                                    concepts=("CDS", "tRNA", "repeat_region", "promoter")),
                     nucleotide_concepts(codes))
    F, chunks = 7, []
    for record, length in lengths.items():
        for strand in (1, -1):
            bounds = [0, *sorted(rng.choice(np.arange(5, length - 5), 5, replace=False)), length]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                chunks.append((record, int(a), int(b), strand,
                               random_activations(rng, int(b - a), F)))
    maxima = feature_maxima((acts for *_, acts in chunks), edge=2)
    return labels, chunks, maxima


@pytest.mark.parametrize("sparse", [False, True])
def test_counts_equal_the_brute_force_reference(random_case, sparse):
    labels, chunks, maxima = random_case
    assert (labels.n_layers[:4] > 1).any()   # overlapping elements of one concept
    assert any(len(m) for m in labels.multi_piece)
    spanning = [chunk_labels(labels, r, a, b, s).open_elements for r, a, b, s, _ in chunks]
    assert sum(len(o) for o in spanning) > 10   # elements across chunk boundaries
    counts = stream(labels, chunks, maxima, sparse=sparse)
    tp, fp, n_positive, n_elements, elements_hit = brute_force(labels, chunks, maxima)
    np.testing.assert_array_equal(counts.tp, tp)
    np.testing.assert_array_equal(counts.fp, fp)
    np.testing.assert_array_equal(counts.n_positive, n_positive)
    np.testing.assert_array_equal(counts.n_elements, n_elements)
    np.testing.assert_array_equal(counts.elements_hit, elements_hit)
    np.testing.assert_array_equal(counts.n_elements, labels.n_elements())
    assert counts.elements_hit.max() > 0 and (counts.tp[:, -1] == 0).all()


def test_counts_with_a_mask_leave_positions_out(random_case):
    labels, chunks, maxima = random_case
    counter = ConceptCounter(labels.names, maxima)
    kept = []
    for record, a, b, strand, acts in chunks:
        mask = np.ones(b - a, bool)
        mask[: (b - a) // 2] = False
        counter.update(acts, chunk_labels(labels, record, a, b, strand), mask=mask)
        half = a + (b - a) // 2
        kept.append((record, half, b, strand, acts[(b - a) // 2:]))
    tp, fp, n_positive, _, elements_hit = brute_force(labels, kept, maxima)
    counts = counter.counts()
    np.testing.assert_array_equal(counts.tp, tp)
    np.testing.assert_array_equal(counts.fp, fp)
    np.testing.assert_array_equal(counts.n_positive, n_positive)
    np.testing.assert_array_equal(counts.elements_hit, elements_hit)


def test_feature_maxima_leave_window_edges_out():
    acts = np.array([[9.0, -1.0], [1.0, -2.0], [2.0, -1.0], [3.0, -3.0], [8.0, -1.0]])
    np.testing.assert_array_equal(feature_maxima([acts], edge=1), [3.0, 0.0])
    np.testing.assert_array_equal(feature_maxima([sp.csr_matrix(acts)], edge=0), [9.0, 0.0])


def test_strands_with_hand_checked_elements():
    lengths = {"c": 20}
    intervals = [Interval("c", 2, 6, 1, "CDS", attributes={"ID": "g1"}),
                 Interval("c", 4, 9, -1, "CDS", attributes={"ID": "g2"}),
                 Interval("c", 12, 15, 0, "repeat_region", attributes={"ID": "r"})]
    codes = {"c": np.array([0, 1, 2, 3, 4] * 4, dtype=np.uint8)}
    labels = combine(from_intervals(intervals, lengths, concepts=("CDS", "repeat_region")),
                     nucleotide_concepts(codes))
    assert labels.names == ("CDS", "repeat_region", "A", "C", "G", "T")
    plus, minus = chunk_labels(labels, "c", 0, 10, 1), chunk_labels(labels, "c", 0, 10, -1)
    np.testing.assert_array_equal(plus.positives[0], np.isin(np.arange(10), [2, 3, 4, 5]))
    np.testing.assert_array_equal(minus.positives[0], np.isin(np.arange(10), range(4, 9)))
    assert set(plus.element_ids[0]) == {-1, 0} and set(minus.element_ids[0]) == {-1, 1}
    # nucleotide identity: the - strand reads the complement; N is nothing
    np.testing.assert_array_equal(plus.positives[2], codes["c"][:10] == 0)
    np.testing.assert_array_equal(minus.positives[2], codes["c"][:10] == 3)
    assert not minus.positives[2:, 4].any()
    # the unstranded repeat is one element per strand
    rep_plus, rep_minus = (chunk_labels(labels, "c", 10, 20, s) for s in (1, -1))
    np.testing.assert_array_equal(rep_plus.positives[1], np.isin(np.arange(10, 20), [12, 13, 14]))
    assert set(rep_plus.element_ids[1]) == {-1, 0} and set(rep_minus.element_ids[1]) == {-1, 1}
    assert labels.n_elements()[:2].tolist() == [2, 2]
    # one feature firing at position 4 of each strand hits g1 on +, g2 on -
    counter = ConceptCounter(labels.names, np.ones(1))
    for strand, chunk in ((1, plus), (-1, minus)):
        acts = np.zeros((10, 1))
        acts[4, 0] = 1.0 if strand == 1 else 0.55
        counter.update(acts, chunk)
    counts = counter.counts()
    assert counts.n_positive[0] == 4 + 5 and counts.n_elements[0] == 2
    assert counts.tp[0, 0].tolist() == [2, 2, 2, 1, 1]   # 0.55 fires at 0, 0.15, 0.5 only
    assert counts.elements_hit[0, 0].tolist() == [2, 2, 2, 1, 1]
    assert counts.fp[0, 0].tolist() == [0] * 5


def test_elements_hit_counts_distinct_ids_once_across_chunks():
    def chunk(ids):
        ids = np.array([ids], dtype=np.int64)
        edges = np.unique(ids[0, [0, -1]][ids[0, [0, -1]] >= 0])
        return ChunkLabels(ids >= 0, ids, np.array([0]),
                           np.column_stack([np.zeros(len(edges), int), edges]))

    counter = ConceptCounter(["x"], np.ones(2), thresholds=(0.0,))
    on = np.ones((5, 2))
    on[:, 1] = 0
    on[2, 1] = 1   # feature 1 fires at position 2: element 5, then outside
    counter.update(on, chunk([5, 5, 5, -1, 9]))     # element 9 continues in the next chunk
    counter.update(on, chunk([9, 9, -1, 40, 40]))   # element 40 ends the stream
    counts = counter.counts()
    assert counts.n_elements.tolist() == [3]                       # 5, 9, 40; not 41
    assert counts.elements_hit[0, :, 0].tolist() == [3, 1]
    assert counts.tp[0, :, 0].tolist() == [8, 1] and counts.fp[0, :, 0].tolist() == [2, 1]
    assert counter.counts().elements_hit.tolist() == counts.elements_hit.tolist()


def planted_case(seed=0):
    rng = np.random.default_rng(seed)
    length, n_features, planted = 20_000, 12, 7
    intervals = [Interval("g", s, s + 40, int(rng.choice([1, -1])), "tRNA",
                          attributes={"ID": f"t{i}", "product": "tRNA-Leu" if i % 2 else "x"})
                 for i, s in enumerate(range(200, length - 100, 500))]
    labels = from_intervals(intervals, {"g": length}, concepts=("tRNA",))
    chunks = {"valid": [], "test": []}
    for strand in (1, -1):
        for a in range(0, length, 1000):
            b = a + 1000
            acts = np.where(rng.random((b - a, n_features)) < 0.05,
                            rng.random((b - a, n_features)), 0.0)
            truth = chunk_labels(labels, "g", a, b, strand).positives[0]
            acts[:, planted] = truth + 0.05 * rng.random(b - a)
            chunks["valid" if a < length // 2 else "test"].append(("g", a, b, strand, acts))
    return labels, chunks, intervals


def test_a_planted_feature_is_identified_and_shuffled_labels_find_nothing(tmp_path):
    labels, chunks, _ = planted_case()
    maxima = feature_maxima(acts for split in chunks.values() for *_, acts in split)
    valid, test = (stream(labels, chunks[s], maxima) for s in ("valid", "test"))
    (best,) = best_per_concept(valid, test)
    assert best.feature == 7 and best.threshold > 0 and best.identified
    assert best.test["f1_per_element"] > 0.99 and best.valid["precision"] > 0.99
    control = shuffled_labels(labels, seed=3)
    shuffled = [stream(control, chunks[s], maxima) for s in ("valid", "test")]
    assert shuffled[0].n_positive.tolist() == valid.n_positive.tolist()
    (chance,) = best_per_concept(*shuffled)
    assert not chance.identified and chance.test["f1_per_element"] < 0.15
    assert scores(shuffled[1])["f1_per_element"].max() < 0.15
    path = tmp_path / "scores.csv"
    write_table(path, [best.valid, best.test, *score_rows(test, "test", [(0, 7, 1)])])
    rows = list(csv.DictReader(path.open()))
    assert [r["split"] for r in rows] == ["valid", "test", "test"]
    assert rows[1] == {k: str(v) for k, v in rows[2].items()}
    assert float(rows[0]["f1_per_element"]) > 0.99 and rows[0]["concept"] == "tRNA"


def test_scores_are_zero_where_undefined():
    labels, chunks, _ = planted_case()
    counter = ConceptCounter(labels.names, np.zeros(12))   # nothing fires
    counter.update(chunks["valid"][0][-1], chunk_labels(labels, "g", 0, 1000, 1))
    table = scores(counter.counts())
    assert all(np.isfinite(v).all() and (v == 0).all() for v in table.values())


def test_shuffled_labels_are_a_circular_shift():
    labels, _, intervals = planted_case()
    codes = {"g": np.random.default_rng(0).integers(0, 4, 20_000).astype(np.uint8)}
    both = combine(labels, nucleotide_concepts(codes))
    offset = 19_990   # no element crosses the end
    control = shuffled_labels(both, offsets=np.array([offset]))
    assert len(control.multi_piece[0]) == 0
    control = shuffled_labels(both, offsets=np.array([19_780]))   # [200, 240) -> [19980, 20020): wraps
    assert len(control.multi_piece[0]) == 1
    for strand in (1, -1):
        original = chunk_labels(both, "g", 0, 20_000, strand).positives
        moved = chunk_labels(control, "g", 0, 20_000, strand).positives
        np.testing.assert_array_equal(moved, np.roll(original, 19_780, axis=1))
    np.testing.assert_array_equal(control.n_elements(), both.n_elements())


def test_sub_concepts_by_attribute_keep_frequent_values():
    _, _, intervals = planted_case()
    split = split_by_attribute(intervals, {"g": 20_000}, "tRNA", "product", min_count=20)
    assert split.names == ("tRNA[product=tRNA-Leu]", "tRNA[product=x]")
    assert split.n_elements().tolist() == [20, 20]
    assert split_by_attribute(intervals, {"g": 20_000}, "tRNA", "product",
                              min_count=21).names == ()


def test_merged_counters_of_disjoint_shares_equal_one_counter(random_case):
    """Two processes' counters over contiguous shares (elements spanning the cut included)
    merge into exactly the counts of one counter over every chunk."""
    labels, chunks, maxima = random_case
    whole = stream(labels, chunks, maxima)
    for cut in (1, len(chunks) // 2, len(chunks) - 1):
        parts = []
        for share in (chunks[:cut], chunks[cut:]):
            counter = ConceptCounter(labels.names, maxima)
            for record, a, b, strand, acts in share:
                counter.update(acts, chunk_labels(labels, record, a, b, strand))
            parts.append(counter)
        parts[0].merge(parts[1])
        merged = parts[0].counts()
        for name in ("tp", "fp", "n_positive", "n_elements", "elements_hit"):
            assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    with pytest.raises(ValueError):
        parts[0].merge(ConceptCounter(labels.names, maxima * 2))


@pytest.mark.parametrize("sparse", [False, True])
def test_many_contigs_with_silent_chunks_equal_the_brute_force(sparse):
    """A 60-contig assembly of 60 nt, chunked small: many chunks hold elements but no
    firing feature at all (once an IndexError in _count_elements), others fire."""
    rng = np.random.default_rng(7)
    lengths = {f"c{i}": 60 for i in range(60)}
    codes = {r: rng.integers(0, 5, size=n).astype(np.uint8) for r, n in lengths.items()}
    labels = combine(from_intervals(random_intervals(rng, lengths, n=90), lengths,
                                    concepts=("CDS", "tRNA", "repeat_region", "promoter")),
                     nucleotide_concepts(codes))
    F, chunks = 3, []
    for i, record in enumerate(lengths):
        for strand in (1, -1):
            for a in range(0, 60, 20):
                b = a + 20
                acts = random_activations(rng, b - a, F, density=0.05)
                if (i + a) % 3:
                    acts[:] = 0.0   # nothing fires in this chunk
                chunks.append((record, a, b, strand, acts))
    maxima = feature_maxima(acts for *_, acts in chunks)
    counts = stream(labels, chunks, maxima, sparse=sparse)
    tp, fp, n_positive, n_elements, elements_hit = brute_force(labels, chunks, maxima)
    np.testing.assert_array_equal(counts.tp, tp)
    np.testing.assert_array_equal(counts.fp, fp)
    np.testing.assert_array_equal(counts.n_positive, n_positive)
    np.testing.assert_array_equal(counts.n_elements, n_elements)
    np.testing.assert_array_equal(counts.elements_hit, elements_hit)
