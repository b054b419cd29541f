"""Benchmark the genome data layer: reading, store build and window sampling.

Builds a store from the 7 bundled genomes (about 35.6 Mb) in a temporary directory, then
measures the random-window sampler at L=4096 and L=1024 (batch 96) and sequential tiling.
Prints a markdown table.

    python bench/bench_store.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from dnatlas.genome.readers import read_records
from dnatlas.genome.sampler import WindowSampler, tile_windows
from dnatlas.genome.sources import bundled_genome_paths
from dnatlas.genome.store import GenomeStore
from dnatlas.genome.store_build import build_store


def time_read(paths: list[Path]) -> tuple[float, int]:
    """Seconds to read and encode every genome once, and the number of bases."""
    start = time.perf_counter()
    bases = sum(len(rec) for path in paths for rec in read_records(path))
    return time.perf_counter() - start, bases


def time_build(paths: list[Path], out: Path) -> float:
    """Seconds to build a store (two reading passes, 5% region split)."""
    start = time.perf_counter()
    build_store(paths, out, val_fraction=0.05, progress=False)
    return time.perf_counter() - start


def windows_per_second(store: GenomeStore, window: int, batch_size: int, seconds: float) -> float:
    """Random windows per second drawn by a WindowSampler, over about ``seconds``."""
    sampler = WindowSampler(store, window=window, batch_size=batch_size, seed=0)
    sampler.next_batch()  # warm the chunk cache and the page cache
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sampler.next_batch()
        n += batch_size
    return n / (time.perf_counter() - start)


def tiled_windows_per_second(store: GenomeStore, window: int, batch_size: int) -> float:
    """Windows per second of a full pass of tile_windows over the train split."""
    start = time.perf_counter()
    n = sum(batch.tokens.shape[0] for batch in tile_windows(store, "train", window,
                                                            batch_size=batch_size))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="seconds per sampler measurement")
    args = parser.parse_args()
    paths = bundled_genome_paths()
    with tempfile.TemporaryDirectory() as tmp:
        read_s, bases = time_read(paths)
        build_s = time_build(paths, Path(tmp) / "store")
        store = GenomeStore.open(Path(tmp) / "store")
        rows = [
            (f"read + encode {len(paths)} genomes ({bases / 1e6:.1f} Mb, gzip)",
             f"{read_s:.2f} s", f"{bases / read_s / 1e6:.0f} Mb/s"),
            ("build store (2 passes, val 5%)", f"{build_s:.2f} s",
             f"{bases / build_s / 1e6:.0f} Mb/s"),
        ]
        for window in (4096, 1024):
            rate = windows_per_second(store, window, 96, args.seconds)
            rows.append((f"WindowSampler L={window}, batch 96", f"{rate:,.0f} windows/s",
                         f"{rate * window / 1e6:,.0f} Mb/s"))
        rate = tiled_windows_per_second(store, 4096, 96)
        rows.append(("tile_windows L=4096, batch 96 (train)", f"{rate:,.0f} windows/s",
                     f"{rate * 4096 / 1e6:,.0f} Mb/s"))
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}\n")
    print("| measurement | time / rate | throughput |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
