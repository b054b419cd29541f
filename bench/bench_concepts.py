"""Concept-matching counts: streaming sparse counter at genome scale, and vs brute force.

    python bench/bench_concepts.py [--positions 4600000] [--features 4096] [--density 0.01]
                                   [--concepts 50] [--chunk 65536] [--seed 0]
    python bench/bench_concepts.py --sweep [--sweep-positions 300000]

Synthetic data on one record of ``--positions`` nt, both strands streamed in chunks of
``--chunk``: ``--concepts`` concepts (4 nucleotide-identity concepts over a random
sequence, one gene-like concept covering ~88% with overlapping elements, the rest random
elements of 20-1,500 nt at 0.1-10% coverage), and ``--features`` sparse features (each
position/feature non-zero with probability ``--density``, exponential values). Reported:
time to build the chunk labels and to count (data generation excluded), positions/s, and
the process's peak RSS. Then a small case (1,000 positions x 2 strands, 48 features,
10 concepts) timed against the brute-force reference of ``tests/test_concepts.py``, with
equal counts checked, and the ratio brute / ours.

``--sweep`` instead times labels + counting over ``--sweep-positions`` nt (both strands)
for features x concepts in {1,024, 4,096} x {10, 50, 200} at ``--density``, with the cost
per non-zero activation, to show how the evaluation grows with each.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnatlas.annotation.intervals import Interval  # noqa: E402
from dnatlas.concepts import (  # noqa: E402
    ConceptCounter,
    chunk_labels,
    combine,
    feature_maxima,
    from_intervals,
    nucleotide_concepts,
)


def synthetic_labels(rng, length: int, n_concepts: int):
    intervals = []
    starts = np.sort(rng.integers(0, length - length // 4, size=length // 1070 + 1))
    for i, s in enumerate(starts.tolist()):   # gene-like: ~950 nt, some overlaps
        intervals.append(Interval("g", s, s + min(int(rng.integers(300, 1600)), length // 4),
                                  int(rng.choice([1, -1])), "gene", attributes={"ID": f"g{i}"}))
    for c in range(n_concepts - 5):
        size = min(int(rng.integers(20, 1500)), length // 4)
        count = max(1, int(rng.uniform(0.001, 0.1) * length / size))
        for j, s in enumerate(rng.integers(0, length - size, size=count).tolist()):
            intervals.append(Interval("g", s, s + size, int(rng.choice([1, -1, 0])), f"k{c}",
                                      attributes={"ID": f"k{c}_{j}"}))
    concepts = ["gene", *(f"k{c}" for c in range(n_concepts - 5))]
    codes = {"g": rng.integers(0, 4, size=length).astype(np.uint8)}
    return combine(from_intervals(intervals, {"g": length}, concepts=concepts),
                   nucleotide_concepts(codes))


def sparse_chunk(rng, n: int, n_features: int, density: float) -> sp.csr_matrix:
    nnz = int(n * n_features * density)
    rows = rng.integers(0, n, size=nnz)
    cols = rng.integers(0, n_features, size=nnz)
    data = rng.exponential(1.0, size=nnz).astype(np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(n, n_features))


def large(args) -> None:
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    labels = synthetic_labels(rng, args.positions, args.concepts)
    build = time.perf_counter() - t0
    maxima = feature_maxima([sparse_chunk(rng, args.chunk, args.features, args.density)],
                            edge=64)
    counter = ConceptCounter(labels.names, maxima)
    t_labels, t_count, nnz = stream(rng, counter, labels, args.positions, args.features, args)
    t0 = time.perf_counter()
    counts = counter.counts()
    t_final = time.perf_counter() - t0
    total = 2 * args.positions
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| positions (2 strands) | features | density | concepts | chunk | non-zeros |")
    print(f"| {total:,} | {args.features} | {args.density} | {labels.n_concepts} | "
          f"{args.chunk} | {nnz:,} |")
    print()
    print("| step | seconds |")
    print("|---|---|")
    print(f"| build labels | {build:.2f} |")
    print(f"| chunk labels | {t_labels:.2f} |")
    print(f"| count (update) | {t_count:.2f} |")
    print(f"| resolve open elements | {t_final:.3f} |")
    print(f"| total | {build + t_labels + t_count + t_final:.2f} |")
    print(f"| positions/s (labels + count) | {total / (t_labels + t_count):,.0f} |")
    print(f"| peak RSS (MiB) | {peak:,.0f} |")
    print(f"| elements per concept (median) | {int(np.median(counts.n_elements)):,} |")


def stream(rng, counter, labels, positions: int, n_features: int, args):
    """Both strands of ``positions`` nt in chunks into ``counter``: (seconds building chunk
    labels, seconds counting, non-zero activations); data generation is not timed."""
    t_labels = t_count = 0.0
    nnz = 0
    for strand in (1, -1):
        for a in range(0, positions, args.chunk):
            b = min(positions, a + args.chunk)
            acts = sparse_chunk(rng, b - a, n_features, args.density)
            nnz += acts.nnz
            t0 = time.perf_counter()
            chunk = chunk_labels(labels, "g", a, b, strand)
            t1 = time.perf_counter()
            counter.update(acts, chunk)
            t_labels += t1 - t0
            t_count += time.perf_counter() - t1
    return t_labels, t_count, nnz


def sweep(args) -> None:
    print("| features | concepts | non-zeros | chunk labels (s) | count (s) | positions/s "
          "| ns per non-zero |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n_features in (1024, 4096):
        for n_concepts in (10, 50, 200):
            rng = np.random.default_rng(args.seed)
            labels = synthetic_labels(rng, args.sweep_positions, n_concepts)
            maxima = feature_maxima([sparse_chunk(rng, args.chunk, n_features, args.density)],
                                    edge=64)
            counter = ConceptCounter(labels.names, maxima)
            t_labels, t_count, nnz = stream(rng, counter, labels, args.sweep_positions,
                                            n_features, args)
            t0 = time.perf_counter()
            counter.counts()
            t_count += time.perf_counter() - t0
            total = 2 * args.sweep_positions
            print(f"| {n_features:,} | {labels.n_concepts} | {nnz:,} | {t_labels:.2f} | "
                  f"{t_count:.2f} | {total / (t_labels + t_count):,.0f} | "
                  f"{1e9 * t_count / nnz:.0f} |", flush=True)


def small(args) -> None:
    from tests.test_concepts import brute_force

    rng = np.random.default_rng(args.seed)
    labels = synthetic_labels(rng, 1000, 10)
    chunks = [("g", a, a + 250, strand, sparse_chunk(rng, 250, 48, 0.05).toarray())
              for strand in (1, -1) for a in range(0, 1000, 250)]
    maxima = feature_maxima(acts for *_, acts in chunks)
    t0 = time.perf_counter()
    counter = ConceptCounter(labels.names, maxima)
    for record, a, b, strand, acts in chunks:
        counter.update(sp.csr_matrix(acts), chunk_labels(labels, record, a, b, strand))
    counts = counter.counts()
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    tp, fp, n_positive, n_elements, elements_hit = brute_force(labels, chunks, maxima)
    brute = time.perf_counter() - t0
    equal = all(np.array_equal(x, y) for x, y in (
        (counts.tp, tp), (counts.fp, fp), (counts.n_positive, n_positive),
        (counts.n_elements, n_elements), (counts.elements_hit, elements_hit)))
    print()
    print("| small case (2,000 positions, 48 features, 10 concepts) | seconds |")
    print("|---|---|")
    print(f"| dnatlas.concepts | {ours:.4f} |")
    print(f"| brute-force loops | {brute:.2f} |")
    print(f"| ratio brute / ours | {brute / ours:,.0f}x |")
    print(f"| counts equal | {equal} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=4_600_000, help="nt per strand")
    parser.add_argument("--features", type=int, default=4096)
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--concepts", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=65536)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true",
                        help="features x concepts sweep instead of the genome-scale run")
    parser.add_argument("--sweep-positions", type=int, default=300_000)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python "
          f"{platform.python_version()}, numpy {np.__version__}")
    print()
    if args.sweep:
        sweep(args)
        return
    large(args)
    small(args)


if __name__ == "__main__":
    main()
