"""Extraction throughput against the fp32 matmul peak, and its cost against genome length.

    python bench/bench_extract.py                         # both tables, default sizes
    python bench/bench_extract.py --repeats 5 --lengths 0.5 1 2 4.64 9.28
    python bench/bench_extract.py --baseline 3578698      # also an older commit's code
    python bench/bench_extract.py --plain --lengths       # folded vs plain path, interleaved
    python bench/bench_extract.py --lengths 0.5 8 63 --fasta human_grch37_chr20.fa.gz

The bundled DNAtlas model over the bundled *E. coli* MG1655 genome (longer "genomes" are
it followed by the other bundled genomes), on the CPU with torch's default threads.

**Throughput** (one process, after a warm-up extraction that lets the activation compile):
each repeat measures the fp32 matmul peak (2048^3, ``bench_model.matmul_peak``), runs the
job over ``--core`` nt, and measures the peak again; the job's share of the peak uses the
mean of the two peaks around it, and the table gives the best and the median share over
``--repeats`` with the range of nt/s. FLOPs are the model's forward FLOPs per *output*
nucleotide of the blocks the job needs (``flops_per_nucleotide`` without the head; an
extraction of layer 2 runs blocks 0-2 only), so chunk flanks count against the job.
Jobs, as the commands run them:

* ``extract``: ``extract_to_dir``, all layers' ``neurons``, float16, positions x channels;
* ``neurons``: ``extract_to_dir``, ``blocks.2.neurons``, float16, neuron-major;
* ``concepts eval``: ``extract_activations``, ``blocks.2.residual``, both strands, float32;
* ``forward 8 x 1 kb``: a bare forward of batches of 8 windows of 1,024 nt (SAE stream).

**Genome length**: every length in a fresh process (``neurons``, as above, to disk),
timed from the first chunk (model loaded; the compile, when the default policy triggers it,
included), with the process's peak RSS. Flat RSS = memory independent of genome length.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MB = 1_000_000


def _genome(length: int, fasta: str | None = None) -> np.ndarray:
    """The first ``length`` nt of ``fasta``'s records (default: the bundled genomes,
    MG1655 first), concatenated."""
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import bundled_genome_paths

    paths = [fasta] if fasta else sorted(bundled_genome_paths(),
                                         key=lambda p: "mg1655" not in p.name)
    parts, total = [], 0
    for path in paths:
        for record in read_records(path):
            parts.append(record.seq)
            total += len(record.seq)
            if total >= length:
                return np.concatenate(parts)[:length]
    raise SystemExit(f"{fasta or 'the bundled genomes'} hold(s) only {total:,} nt")


def _flops(model, names) -> float:
    """Forward FLOPs per nucleotide of the blocks needed for ``names`` (no head)."""
    cfg = model.model.config
    per_block = (cfg.flops_per_nucleotide() - 2 * cfg.d_model * cfg.n_outputs) / cfg.n_layers
    deepest = max(int(n.split(".")[1]) for n in names)
    return per_block * (deepest + 1)


def _jobs(model, tmp: str):
    import torch

    from dnatlas.analysis.extract import extract_activations
    from dnatlas.analysis.extract_folder import extract_to_dir

    def extract(seq):
        extract_to_dir(model, seq, f"{tmp}/lc", "all", "neurons", progress=False, force=True)

    def neurons(seq):
        extract_to_dir(model, seq, f"{tmp}/cl", "blocks.2.neurons", layout="CL",
                       progress=False, force=True)

    def concepts(seq):
        extract_activations(model, seq, "blocks.2.residual", strand="both", progress=False)

    def forward(seq):
        n = len(seq) // 8192 * 8192
        tokens = torch.from_numpy(seq[:n].astype(np.int64)).view(-1, 8, 1024)
        with torch.inference_mode():
            for batch in tokens:
                model.model(batch)

    all_layers = model.select_keys("all", "neurons")
    return [("extract", extract, all_layers), ("neurons", neurons, ["blocks.2.neurons"]),
            ("concepts eval", concepts, ["blocks.2.residual"]),
            ("forward 8 x 1 kb", forward, all_layers)]


def throughput(core: int, repeats: int, plain: bool = False) -> list[dict]:
    """Child process: the throughput rows (see the module docstring); ``plain``: each
    repeat also runs the job on the plain (unfolded) inference path right after, and the
    row gets the median of the per-repeat ratios folded / plain."""
    import torch

    sys.path.insert(0, HERE)
    from bench_model import matmul_peak
    from dnatlas.models import load_model

    model = load_model()
    seq = _genome(core)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = _jobs(model, tmp)
        jobs[0][1](_genome(400_000))  # warm-up: the default policy compiles the activation
        for name, fn, names in jobs:
            flops = _flops(model, names)  # concepts: both strands from one pass (RCPS)
            shares, rates, ratios = [], [], []
            nt = len(seq) // 8192 * 8192 if name.startswith("forward") else len(seq)
            for _ in range(repeats):
                before = matmul_peak(torch.device("cpu"), torch.float32)
                t = time.perf_counter()
                fn(seq)
                seconds = time.perf_counter() - t
                after = matmul_peak(torch.device("cpu"), torch.float32)
                rates.append(nt / seconds)
                shares.append(flops * rates[-1] / ((before + after) / 2))
                if plain:  # the same job on the plain tiled path, right after
                    from dnatlas.architectures.dnatlas.folded import plain_inference

                    with plain_inference():
                        t = time.perf_counter()
                        fn(seq)
                        ratios.append((time.perf_counter() - t) / seconds)
            rows.append({"job": name, "layers": len(names), "mflop_nt": flops / 1e6,
                         "nt_s_median": statistics.median(rates), "nt_s_min": min(rates),
                         "nt_s_max": max(rates), "share_best": max(shares),
                         "share_median": statistics.median(shares),
                         "gflops_best": flops * max(rates) / 1e9,
                         "peak_gflops": (before + after) / 2e9,
                         "vs_plain": statistics.median(ratios) if ratios else None})
    return rows


def scaling(length: int, fasta: str | None = None) -> dict:
    """Child process: one ``neurons`` extraction over ``length`` nt, its time and peak RSS."""
    from dnatlas.analysis.extract_folder import extract_to_dir
    from dnatlas.models import load_model

    model = load_model()
    seq = _genome(length, fasta)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        extract_to_dir(model, seq, tmp, "blocks.2.neurons", layout="CL", progress=False,
                       force=True)
        seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"length": length, "seconds": seconds, "nt_s": length / seconds,
            "rss_mib": rss, "rss_before_mib": rss0,
            "out_mib": length * model.d("blocks.2.neurons") * 2 / 2**20}


def _child(call: str, source: str | None = None):
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    code = (f"import json, sys; sys.path.insert(0, {HERE!r}); import bench_extract as b; "
            f"print('RESULT' + json.dumps({call}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env).stdout
    return json.loads(out.rsplit("RESULT", 1)[1])


def _source_of(rev: str, tmp: str) -> str:
    """The ``src`` folder of an older commit, for a baseline run."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=True, cwd=HERE).stdout.strip()
    archive = subprocess.run(["git", "archive", rev, "src"], capture_output=True, check=True,
                             cwd=root).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    return os.path.join(tmp, "src")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", type=float, default=0.5, help="Mb per throughput run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lengths", type=float, nargs="*", default=[0.5, 1, 2, 4.64],
                    help="genome lengths in Mb for the scaling table (none: skip it)")
    ap.add_argument("--baseline", help="also run the throughput jobs with this commit's code")
    ap.add_argument("--fasta", help="genome of the scaling table (default: the bundled "
                                    "ones, 31 Mb; e.g. GRCh37 chr20 for 63 Mb)")
    ap.add_argument("--plain", action="store_true",
                    help="also time each repeat on the plain (unfolded) inference path, "
                         "interleaved, and give the speed-up of the folded path")
    args = ap.parse_args()
    import torch

    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f} at the start\n")
    core = int(args.core * MB)
    runs = [("this tree", None)]
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            runs.append((args.baseline, _source_of(args.baseline, tmp)))
        print(f"Throughput over {core:,} nt, {args.repeats} repeats (matmul peak measured "
              "around each):\n")
        extra = " folded / plain speed |" if args.plain else ""
        print("| code | job | MFLOP/nt | nt/s median (range) | GFLOP/s best | % of peak best "
              "| % of peak median | peak GFLOP/s |" + extra)
        print("|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if args.plain else ""))
        for label, source in runs:
            plain = args.plain and source is None  # older code: no plain switch
            for r in _child(f"b.throughput({core}, {args.repeats}, {plain})", source):
                speed = "" if not args.plain else f" {r['vs_plain']:.2f}x |" if plain else " |"
                print(f"| {label} | {r['job']} | {r['mflop_nt']:.2f} | {r['nt_s_median']:,.0f} "
                      f"({r['nt_s_min']:,.0f}-{r['nt_s_max']:,.0f}) | {r['gflops_best']:.1f} | "
                      f"{100 * r['share_best']:.0f}% | {100 * r['share_median']:.0f}% | "
                      f"{r['peak_gflops']:.0f} |{speed}", flush=True)
    if args.lengths:
        print("\n`neurons` extraction (blocks.2.neurons, float16, neuron-major, to disk) "
              "against genome length, one fresh process each:\n")
        print("| length (nt) | seconds | nt/s | peak RSS (MiB) | output (MiB) |")
        print("|---:|---:|---:|---:|---:|")
        for mb in args.lengths:
            r = _child(f"b.scaling({int(mb * MB)}, {args.fasta!r})")
            print(f"| {r['length']:,} | {r['seconds']:.1f} | {r['nt_s']:,.0f} | "
                  f"{r['rss_mib']:.0f} | {r['out_mib']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
