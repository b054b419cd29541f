"""The feature atlas: build time against a bare forward pass, scaling with genome length
and dictionary size, peak memory, and the latency of reading one feature's page.

    python bench/bench_atlas.py                         # bundled model, SAE, whole MG1655
    python bench/bench_atlas.py --length 500000         # the first 0.5 Mb (annotation cut)
    python bench/bench_atlas.py --genome FASTA --annotations GFF|none
    python bench/bench_atlas.py --features 16384        # a random TopK SAE (k=16) instead
    python bench/bench_atlas.py --read runs/atlas       # page latency of an existing atlas

Each build run reports, in one process: the bare forward pass (``extract_activations``
over every chunk of the genome, both strands, nothing else) and then ``build_atlas``
(the same chunks) with its own breakdown (maxima pass, forward, encode, accumulate,
finish, write), the genome's positions per second, and the process's peak RSS after
each phase. ``--skip-forward`` leaves the reference pass out, ``--forward-only`` runs only it. CPU
seconds (``*_cpu_s``, all threads of the process) are reported next to wall time: on a
machine shared with other jobs, wall time measures the other jobs too. ``--read`` times
``Atlas.feature`` for ``--pages`` random features (wall p50, p95, max, and the process's
CPU time per page, all threads: the figure that holds on a machine shared with other
jobs) after one warm-up.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cut_genome(genome: str, length: int, annotations, tmp: Path):
    """The first ``length`` nt of the first record (FASTA) and, for the bundled genome,
    the annotation features that lie inside it."""
    from dnatlas import bundled
    from dnatlas.genome.alphabet import decode
    from dnatlas.genome.readers import read_records
    from dnatlas.genome.sources import resolve_bundled_genome

    record = next(iter(read_records(resolve_bundled_genome(genome))))
    fasta = tmp / "genome.fa"
    fasta.write_text(f">{record.id}\n{decode(record.seq[:length])}\n")
    if annotations is None and genome == "ecoli_k12_mg1655":
        lines = []
        for path in bundled.annotation_paths(genome):
            with gzip.open(path, "rt") as fh:
                lines += [line for line in fh if not line.startswith("#")
                          and len(line.split("\t")) >= 9 and int(line.split("\t")[4]) <= length]
        gff = tmp / "annotation.gff3"
        gff.write_text("##gff-version 3\n" + "".join(lines))
        annotations = str(gff)
    return str(fasta), annotations


def random_sae(model, features: int, folder: Path, k: int = 16,
               site: str = "blocks.2.residual") -> str:
    """A random-init TopK SAE of ``features`` latents on ``site`` (SAELens folder)."""
    from dnatlas.sae.architectures import build_sae

    from dnatlas.sae.config import SAEConfig
    from dnatlas.sae.saelens_format import save_sae

    cfg = SAEConfig(arch="topk", d_in=model.d(site), d_sae=features, k=k, hook_name=site,
                    normalize=False)
    save_sae(build_sae(cfg), folder)
    return str(folder)


def forward_pass(model, genome, chunk_size: int) -> tuple[float, int]:
    """Seconds of a bare forward pass over every chunk, both strands; positions done."""
    from dnatlas.analysis.extract import extract_activations
    from dnatlas.concepts.splits import make_splits
    from dnatlas.pipelines.atlas_pass import _pass_chunks
    from dnatlas.pipelines.concepts import _genome

    codes, _ = _genome(genome, None)
    splits = make_splits({r: len(c) for r, c in codes.items()})
    chunks = _pass_chunks(splits, chunk_size)
    t0 = time.perf_counter()
    for record, a, b, _ in chunks:
        extract_activations(model, codes[record], layers=["blocks.2.residual"], start=a, end=b,
                            strand="both", chunk_size=chunk_size, progress=False)
    return time.perf_counter() - t0, 2 * sum(b - a for _, a, b, _ in chunks)


def read_pages(folder: str, pages: int, seed: int = 0) -> dict:
    from dnatlas.atlas.reader import Atlas

    t0 = time.perf_counter()
    atlas = Atlas.open(folder)
    opened = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    dictionaries = atlas.dictionaries()
    times, cpu = [], []
    for i in range(pages + 1):
        d = dictionaries[int(rng.integers(len(dictionaries)))]
        f = int(rng.integers(d["n_features"]))
        t0, c0 = time.perf_counter(), time.process_time()
        page = atlas.feature(d["dictionary"], f)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        assert page["feature"]["feature"] == f
        if i:                      # the first read warms DuckDB's caches
            times.append(dt)
            cpu.append(dc)
    atlas.close()
    ms = np.array(times) * 1e3
    cpu_ms = np.array(cpu) * 1e3
    return {"open_ms": round(opened * 1e3, 1), "pages": pages,
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "max_ms": round(float(ms.max()), 2),
            "cpu_p50_ms": round(float(np.percentile(cpu_ms, 50)), 2),
            "cpu_p95_ms": round(float(np.percentile(cpu_ms, 95)), 2),
            "features": sum(d["n_features"] for d in dictionaries)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--genome", default="ecoli_k12_mg1655")
    p.add_argument("--annotations", default=None)
    p.add_argument("--length", type=int, default=0, help="first N nt of the first record")
    p.add_argument("--features", type=int, default=0,
                   help="a random TopK SAE of N latents instead of the bundled SAE")
    p.add_argument("--no-neurons", action="store_true")
    p.add_argument("--skip-forward", action="store_true")
    p.add_argument("--forward-only", action="store_true")
    p.add_argument("--chunk-size", type=int, default=1 << 16)
    p.add_argument("--out", default=None, help="the atlas folder (default: a temporary one)")
    p.add_argument("--read", default=None, help="only time page reads of this atlas")
    p.add_argument("--pages", type=int, default=200)
    args = p.parse_args()
    if args.read:
        read = read_pages(args.read, args.pages)
        print(json.dumps({"read": read, "torch_imported": "torch" in sys.modules,
                          "load": load()}))
        return

    import torch

    from dnatlas.models import load_model
    from dnatlas.pipelines.atlas import AtlasSettings, build_atlas

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        genome, annotations = args.genome, args.annotations
        if args.length:
            genome, annotations = cut_genome(args.genome, args.length, annotations, tmp)
        if annotations is None and genome != "ecoli_k12_mg1655":
            annotations = "none"
        model = load_model(None)
        saes = ["default"]
        if args.features:
            saes = [random_sae(model, args.features, tmp / f"random{args.features}")]
        result = {"genome": args.genome, "length": args.length or None,
                  "features": args.features or 1024, "neurons": not args.no_neurons,
                  **info, "load_before": load()}
        if not args.skip_forward:
            c0 = time.process_time()
            seconds, positions = forward_pass(model, genome, args.chunk_size)
            result.update(forward_s=round(seconds, 1), positions=positions,
                          forward_cpu_s=round(time.process_time() - c0, 1),
                          forward_nt_per_s=round(positions / seconds),
                          rss_after_forward_mb=round(rss_mb()))
            if args.forward_only:
                print(json.dumps(result))
                return
        out = args.out or str(tmp / "atlas")
        t0, c0 = time.perf_counter(), time.process_time()
        built = build_atlas(model, genome, annotations, saes=saes,
                            neurons=[] if args.no_neurons else None,
                            settings=AtlasSettings(chunk_size=args.chunk_size), out=out,
                            force=True)
        wall = time.perf_counter() - t0
        result.update(atlas_s=round(wall, 1), atlas_cpu_s=round(time.process_time() - c0, 1),
                      breakdown_s={k: round(v, 1) for k, v in built.timings.items()
                                   if k != "parts"},
                      parts_s={k: round(v, 1) for k, v in built.timings["parts"].items()},
                      rows=built.manifest.get("rows"), rss_after_atlas_mb=round(rss_mb()),
                      load_after=load())
        if "forward_s" in result:
            result["atlas_over_forward"] = round(wall / result["forward_s"], 2)
            result["atlas_nt_per_s"] = round(result["positions"] / wall)
        result["read"] = read_pages(out, args.pages)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
