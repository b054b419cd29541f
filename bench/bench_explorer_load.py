"""Load test of the explorer's server: concurrent clients on 127.0.0.1 for a bounded time.

    python bench/bench_explorer_load.py [--clients 50] [--seconds 30] [--atlas DIR ...]

Starts ``dnatlas explore``'s app (uvicorn, one process, the bundled model on CPU) on a free
127.0.0.1 port in a subprocess, then runs ``--clients`` asyncio clients (httpx) in this
process for ``--seconds`` (at most ``--max-requests`` requests in all), each looping over
a mix of what the explorer's pages ask for:

==========  ======  =====================================================================
kind        share   request
==========  ======  =====================================================================
page        35 %    ``/api/feature/{dictionary}/{feature}`` (a random feature)
list        10 %    ``/api/features`` (a random order and page)
annotation  10 %    ``/api/annotation`` + ``/api/labels`` of a 100 kb region
track       30 %    ``/api/track`` of a 100 kb region: a client pans by 10 kb steps around
                    one of 6 loci (igv's pattern), both strands, downsampled to 2,000 points
sequence     5 %    ``POST /api/sequence``: a 2 kb pasted sequence, most active features
meta        10 %    ``/api/meta`` or ``/api/search?q=<gene>``
==========  ======  =====================================================================

Before the timed mix, each locus's first 100 kb view is asked once, alone (the cold cost:
the model on 100 kb of both strands), and printed. Then prints p50/p95/p99 latency and
status counts per kind, and checks the targets: no 5xx but
deliberate 503 (busy, with Retry-After), 100 kb tracks p95 < 1 s, feature pages p95 < 100 ms.
Without ``--atlas`` a synthetic atlas (tests/explorer_fixtures.py: real E. coli genome and
annotation, the bundled model and SAE, made-up statistics) is written to a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

SERVER = """
import sys, json, uvicorn
from pathlib import Path
from dnatlas.explorer.app import create_app
from dnatlas.explorer.config import ExplorerConfig, ExplorerLimits
args = json.loads(sys.argv[1])
cfg = ExplorerConfig(atlas=Path(args["atlas"]), fasta=args["fasta"],
                     annotations=args["annotations"], allowed_hosts=["127.0.0.1"],
                     limits=ExplorerLimits(workers=args["workers"], queue=args["queue"]))
uvicorn.run(create_app(cfg), host="127.0.0.1", port=args["port"], log_level="warning",
            timeout_keep_alive=30)
"""
SHARES = [("page", 35), ("list", 10), ("annotation", 10), ("track", 30), ("sequence", 5),
          ("meta", 10)]
ORDERS = ("max", "frac_active", "score_concept", "score_unexplained", "feature")
GENES = ("thrA", "dnaK", "lacZ", "rpoB", "gyrA", "recA", "ftsZ", "araC")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


async def client(c, i: int, meta: dict, seq: str, stop: float, budget: list, out: dict,
                 only: set | None = None, think: float = 0.0):
    import httpx

    rng = random.Random(i)
    kinds = [k for k, w in SHARES for _ in range(w) if not only or k in only]
    dicts = [d for d in meta["dictionaries"] if d["live"]]
    rec = meta["records"][0]
    locus = rng.randrange(6) * (rec["length"] // 6)
    pan = 0
    while time.perf_counter() < stop and budget[0] > 0:
        budget[0] -= 1
        kind = rng.choice(kinds)
        d = rng.choice(dicts)
        if kind == "page":
            req = ("GET", f"/api/feature/{d['dictionary']}/{rng.randrange(d['n_features'])}", None)
        elif kind == "list":
            req = ("GET", "/api/features", {"dictionary": d["dictionary"],
                                            "order": rng.choice(ORDERS), "limit": 50,
                                            "offset": 50 * rng.randrange(5)})
        elif kind == "annotation":
            a = rng.randrange(rec["length"] - 100_000)
            req = ("GET", rng.choice(("/api/annotation", "/api/labels")),
                   {"chr": rec["record"], "start": a + 1, "end": a + 100_000})
        elif kind == "track":
            pan = pan + rng.choice((-1, 0, 1))              # igv: small pans around a locus
            a = min(max(0, locus + 10_000 * pan), rec["length"] - 100_000)
            req = ("GET", "/api/track", {"dictionary": d["dictionary"],
                                         "feature": rng.randrange(min(64, d["n_features"])),
                                         "chr": rec["record"], "start": a + 1,
                                         "end": a + 100_000})
        elif kind == "sequence":
            a = rng.randrange(len(seq) - 2_000)
            req = ("POST", "/api/sequence", {"sequence": seq[a:a + 2_000], "top": 10})
        else:
            req = (("GET", "/api/meta", None) if rng.random() < 0.5 else
                   ("GET", "/api/search", {"q": rng.choice(GENES)}))
        method, path, payload = req
        t0 = time.perf_counter()
        try:
            if method == "GET":
                r = await c.get(path, params=payload)
            else:
                r = await c.post(path, json=payload)
            status = r.status_code
            if status == 200:
                r.json()
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        dt = time.perf_counter() - t0
        out.setdefault(kind, {"lat": [], "ok": [], "status": {}})
        out[kind]["lat"].append(dt)
        if status == 200:
            out[kind]["ok"].append(dt)
        out[kind]["status"][status] = out[kind]["status"].get(status, 0) + 1
        if status == 503:
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))
        elif think:
            await asyncio.sleep(rng.uniform(0, 2 * think))   # a user reading the page


async def first_views(c, meta: dict) -> list[float]:
    """Each locus's first 100 kb view, one at a time (what a user waits for on arriving at
    a new locus: the model runs on 100 kb of both strands); returns the seconds each took."""
    rec, d = meta["records"][0], next(d for d in meta["dictionaries"] if d["live"])
    times = []
    for k in range(6):
        a = min(k * (rec["length"] // 6), rec["length"] - 100_000)
        t0 = time.perf_counter()
        r = await c.get("/api/track", params={"dictionary": d["dictionary"], "feature": 0,
                                              "chr": rec["record"], "start": a + 1,
                                              "end": a + 100_000})
        r.raise_for_status()
        times.append(time.perf_counter() - t0)
    return times


async def run_load(base: str, clients: int, seconds: float, max_requests: int, seq: str,
                   only: set | None = None, think: float = 0.0):
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:
        meta = (await c.get("/api/meta")).json()
        cold = await first_views(c, meta) if not only or "track" in only else []
        print("first view of each locus (100 kb, cold): "
              + ", ".join(f"{t:.2f}" for t in cold) + " s", flush=True)
        out: dict = {"_cold": cold}
        budget = [max_requests]
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, i, meta, seq, t0 + seconds, budget, out, only, think)
                               for i in range(clients)))
        return out, time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--max-requests", type=int, default=100_000)
    p.add_argument("--atlas", help="an atlas folder (default: a synthetic one, full E. coli)")
    p.add_argument("--genome", default=None)
    p.add_argument("--annotations", action="append")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--queue", type=int, default=8)
    p.add_argument("--only", help="comma-separated kinds to send (default: the whole mix)")
    p.add_argument("--think", type=float, default=0.0, metavar="S",
                   help="mean pause of a client between answers (uniform 0..2S; default 0: "
                        "each client asks again at once)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()

    from tests.explorer_fixtures import make_explorer_inputs

    tmp = tempfile.TemporaryDirectory(prefix="dnatlas-load-")
    if args.atlas is None:
        t = time.perf_counter()
        made = make_explorer_inputs(tmp.name, length=None)
        print(f"synthetic atlas of the full E. coli genome in {time.perf_counter() - t:.0f} s")
        atlas, fasta, ann = str(made["atlas"]), str(made["fasta"]), [str(made["annotations"][0])]
    else:
        atlas, fasta, ann = args.atlas, args.genome, args.annotations
    fasta_text = Path(fasta or made["fasta"]).read_text() if args.atlas is None else None
    seq = "".join(fasta_text.split("\n")[1:])[:200_000] if fasta_text else "ACGT" * 50_000
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    spec = json.dumps({"atlas": atlas, "fasta": fasta, "annotations": ann, "port": port,
                       "workers": args.workers, "queue": args.queue})
    server = subprocess.Popen([sys.executable, "-c", SERVER, spec], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        t = time.perf_counter()
        while True:
            try:
                if httpx.get(base + "/api/meta", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - t > 300:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        print(f"server up in {time.perf_counter() - t:.0f} s on {base}; {args.clients} "
              f"clients for {args.seconds:g} s ...", flush=True)
        only = set(args.only.split(",")) if args.only else None
        out, wall = asyncio.run(run_load(base, args.clients, args.seconds, args.max_requests,
                                         seq, only, args.think))
    finally:
        server.terminate()
        server.wait(30)
        tmp.cleanup()
    return report(out, wall, args)


def report(out: dict, wall: float, args) -> int:
    cold = out.pop("_cold")
    total = sum(len(v["lat"]) for v in out.values())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{total:,} requests in {wall:.1f} s ({total / wall:.0f}/s), {args.clients} clients, "
          f"{os.cpu_count()} CPUs (load average {load:.1f} at the end), workers={args.workers} "
          f"queue={args.queue} think={args.think:g} s\n")
    print("latency of the 200 answers; statuses of all")
    print(f"{'kind':<11}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}  statuses")
    rows = {}
    for kind, _ in SHARES:
        if kind not in out:
            continue
        lat = out[kind]["lat"]
        ok = [x * 1000 for x in out[kind]["ok"]]        # latencies of the answered (200)
        rows[kind] = {"n": len(lat), "p50": percentile(ok, 50), "p95": percentile(ok, 95),
                      "p99": percentile(ok, 99), "status": out[kind]["status"]}
        r = rows[kind]
        print(f"{kind:<11}{r['n']:>7}{r['p50']:>10.1f}{r['p95']:>10.1f}{r['p99']:>10.1f}  "
              + ", ".join(f"{k}: {v}" for k, v in sorted(r["status"].items(), key=str)))
    bad = {k: {s: n for s, n in r["status"].items() if s != 200 and s != 503}
           for k, r in rows.items()}
    bad = {k: v for k, v in bad.items() if v}
    checks = [("no errors but deliberate 503", not bad, bad or ""),
              ("100 kb track p95 < 1000 ms", rows.get("track", {}).get("p95", 1e9) < 1000,
               f"{rows.get('track', {}).get('p95', float('nan')):.0f} ms"),
              ("feature page p95 < 100 ms", rows.get("page", {}).get("p95", 1e9) < 100,
               f"{rows.get('page', {}).get('p95', float('nan')):.0f} ms")]
    print()
    for name, passed, detail in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}  {detail}")
    if args.json:
        Path(args.json).write_text(json.dumps({"wall_s": wall, "rows": rows, "cold_s": cold,
                                               "clients": args.clients}, indent=1,
                                              default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
