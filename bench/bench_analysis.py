"""Benchmark activation extraction and the neuron AUPRC catalog; prints markdown tables.

    python bench/bench_analysis.py            # full: 4.64 Mb AUPRC, extraction up to 400 kb
    python bench/bench_analysis.py --quick    # smaller sizes, for a smoke run
    python bench/bench_analysis.py --genome   # bundled model, whole E. coli genome

Extraction runs a random ``tiny`` DNAtlas (CPU) over random sequences of growing length,
streaming float16 activations of every layer to disk; each length runs in a fresh process so
that its peak RSS (``resource.getrusage``) is its own. ``tracemalloc`` peaks count numpy
buffers (not torch's). Flat peaks across lengths = memory independent of genome length.

AUPRC scores C random sparse float16 neurons (RCPS pairs) against the label tracks of the
bundled *E. coli* MG1655 RefSeq annotation over both strands of the whole genome
(2 x 4,639,675 samples), with and without top-window search, on 1 and 2 processes; and
scikit-learn's ``average_precision_score`` on one neuron x one track for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

GENOME_LENGTH = 4_639_675


def _extract_child(length: int, out: str, chunk: int, threads: int, genome: bool = False,
                   layers: str = "all") -> dict:
    """Run in a subprocess: extract ``layers`` over ``length`` nt.

    ``genome=False``: a random tiny model on a random sequence, positions x channels.
    ``genome=True``: the bundled model on the first ``length`` nt of *E. coli* MG1655,
    neuron-major, as ``dnatlas neurons`` extracts it.
    """
    import torch

    torch.set_num_threads(threads)
    from dnatlas.analysis.extract_folder import extract_to_dir
    from dnatlas.architectures.dnatlas import DNAtlas, DNAtlasConfig

    torch.manual_seed(0)
    if genome:
        from dnatlas.genome.readers import read_records
        from dnatlas.genome.sources import bundled_genome_paths
        from dnatlas.models import load_model

        model = load_model()
        path = next(p for p in bundled_genome_paths() if "mg1655" in p.name)
        seq = next(iter(read_records(path))).seq[:length]
    else:
        model = DNAtlas(DNAtlasConfig.preset("tiny")).eval()
        seq = np.random.default_rng(0).integers(0, 4, length).astype(np.uint8)
    tracemalloc.start()
    t0 = time.perf_counter()
    extract_to_dir(model, seq, out, layers, "neurons", dtype=np.float16, chunk_size=chunk,
                   layout="CL" if genome else "LC", progress=False)
    seconds = time.perf_counter() - t0
    _, traced = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    return {"length": length, "seconds": seconds, "nt_per_s": length / seconds,
            "traced_mib": traced / 2**20, "rss_mib": rss, "R": model.receptive_field,
            "threads": torch.get_num_threads(), "layers": layers}


def bench_extraction(runs, chunk: int, genome: bool = False) -> list[dict]:
    """``runs``: (length, torch threads, layers) triples; each in a fresh process."""
    rows = []
    for length, threads, layers in runs:
        with tempfile.TemporaryDirectory() as tmp:
            call = f"b._extract_child({length}, {tmp!r}, {chunk}, {threads}, {genome}, {layers!r})"
            code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                    f"import bench_analysis as b; print(json.dumps({call}))")
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                 text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def _labels(length: int):
    from dnatlas.analysis.neurons import GenomeLabels
    from dnatlas.annotation.intervals import bundled_annotation_path, load_annotations
    from dnatlas.annotation.tracks import label_tracks

    intervals = [iv for iv in load_annotations(bundled_annotation_path())
                 if iv.end <= length]
    tracks = label_tracks(intervals, "K-12-MG1655", length)
    return GenomeLabels.from_tracks({"K-12-MG1655": tracks})


def bench_auprc(length: int, n_neurons: int) -> tuple[list[dict], dict]:
    from sklearn.metrics import average_precision_score

    from dnatlas.analysis.neurons import scan_neurons

    t0 = time.perf_counter()
    labels = _labels(length)
    setup = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    acts = (rng.random((n_neurons, length), dtype=np.float32) ** 8).astype(np.float16)
    acts[: n_neurons // 4, rng.random(length) < 0.9] = 0  # sparse neurons: many ties
    half = n_neurons // 2
    perm = np.r_[np.arange(half, n_neurons), np.arange(half)]
    seq = rng.integers(0, 4, length).astype(np.uint8)
    rows = []
    for jobs in (1, 2):
        for windows in (False, True):
            t0 = time.perf_counter()
            scan_neurons([acts], labels, perm, seqs=[seq] if windows else None,
                         top_k=10 if windows else 0, n_jobs=jobs, progress=False)
            per = (time.perf_counter() - t0) / n_neurons
            rows.append({"jobs": jobs, "windows": windows, "per_neuron_s": per})
    # scikit-learn on one neuron x one track (CDS), both strands
    t = labels.names.index("CDS")
    from dnatlas.analysis.neurons import _track_column

    y = np.r_[_track_column(labels.plus, t), _track_column(labels.minus, t)]
    s = np.r_[acts[0], acts[perm[0]]].astype(np.float32)
    t0 = time.perf_counter()
    average_precision_score(y, s)
    sk = time.perf_counter() - t0
    info = {"length": length, "tracks": len(labels.names), "neurons": n_neurons,
            "label_setup_s": setup, "sklearn_one_track_s": sk,
            "combinations": labels.plus.n_combinations + labels.minus.n_combinations}
    return rows, info


def _genome_extraction() -> None:
    chunk = 1 << 15  # the CLI default
    runs = [(500_000, 1, "2"), (GENOME_LENGTH, 1, "2")]
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}\n")
    print(f"### Extraction, bundled model on *E. coli* MG1655 (`neurons` site, float16, "
          f"neuron-major, chunks of {chunk:,} nt, as `dnatlas neurons` runs it)\n")
    print("| length (nt) | layers | torch threads | seconds | nt/s | peak RSS (MiB) "
          "| tracemalloc peak (MiB) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in bench_extraction(runs, chunk, genome=True):
        print(f"| {r['length']:,} | {r['layers']} | {r['threads']} | {r['seconds']:.1f} | "
              f"{r['nt_per_s']:,.0f} | {r['rss_mib']:.0f} | {r['traced_mib']:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--genome", action="store_true",
                        help="only the bundled model over 0.5 Mb and the whole E. coli genome")
    args = parser.parse_args()
    if args.genome:
        _genome_extraction()
        return
    lengths = [20_000, 60_000] if args.quick else [50_000, 200_000]
    runs = [(lengths[0], 1, "all"), (lengths[1], 1, "all"), (lengths[1], 2, "all")]
    chunk = 4096 if args.quick else 8192
    length = 500_000 if args.quick else GENOME_LENGTH
    n_neurons = 16 if args.quick else 64

    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}\n")
    print(f"### Extraction (random tiny DNAtlas, all 5 layers, `neurons`, float16 to disk, "
          f"chunks of {chunk:,} nt)\n")
    print("| length (nt) | torch threads | seconds | nt/s | peak RSS (MiB) "
          "| tracemalloc peak (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in bench_extraction(runs, chunk):
        print(f"| {r['length']:,} | {r['threads']} | {r['seconds']:.1f} | {r['nt_per_s']:,.0f} | "
              f"{r['rss_mib']:.0f} | {r['traced_mib']:.1f} |")

    rows, info = bench_auprc(length, n_neurons)
    print(f"\n### AUPRC catalog ({info['neurons']} random float16 neurons x {info['tracks']} "
          f"tracks x 2 strands x {info['length']:,} nt; {info['combinations']} label "
          f"combinations; label setup {info['label_setup_s']:.1f} s)\n")
    print("| processes | top windows | s / neuron (all tracks) | projected 256 neurons (tiny) "
          "| projected 3072 neurons (Wide) |")
    print("|---:|:---:|---:|---:|---:|")
    for r in rows:
        per = r["per_neuron_s"]
        print(f"| {r['jobs']} | {'yes' if r['windows'] else 'no'} | {per:.3f} | "
              f"{per * 256 / 60:.1f} min | {per * 3072 / 60:.1f} min |")
    best = min(r["per_neuron_s"] for r in rows if not r["windows"]) / info["tracks"]
    print(f"\nscikit-learn `average_precision_score`, 1 neuron x 1 track (CDS), both strands: "
          f"{info['sklearn_one_track_s']:.2f} s; ours {best:.3f} s per neuron-track "
          f"({info['sklearn_one_track_s'] / best:.0f}x faster).")


if __name__ == "__main__":
    main()
