"""Load test of the websocket bridge: N clients x M requests, cache misses and cache hits.

    python bench/load.py                          # starts `chibi-meta serve` with the shipped model
    python bench/load.py --model runs/x/generator.safetensors --scenarios miss1,miss32,hit,c256
    python bench/load.py --url ws://host:8765 --token T   # an existing server (no RSS figure)

Each scenario runs ``--repeat`` times (default 3) on the same server and a MEDIAN line follows.
Prints, per run: throughput, p50/p95/p99 latency (client side, request sent -> asset received),
reply codes, the server's batch-size histogram for the scenario and the server's peak RSS (VmHWM).
Every client keeps ``--in-flight`` requests outstanding; a `busy` reply is counted and retried after
its ``retry_after_ms``. Cache-miss scenarios use fresh random seeds, so nothing is cached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chibi_meta.client import BridgeClient, RequestError  # noqa: E402

SCENARIOS = {
    # name: (clients, requests per client, cache hits?, requests in flight per client)
    "miss1": (1, 60, False, 1),
    "miss32": (32, 20, False, 1),
    "hit": (1, 300, True, 1),
    "hit32": (32, 50, True, 1),
    "c256": (256, 4, False, 2),  # 512 outstanding > the queue of 256: some `busy` expected
}


def _pct(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    p50, p95, p99 = np.percentile(np.asarray(xs), [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


async def _client(url: str, token: str | None, seeds: list[int], args: argparse.Namespace,
                  lat: list[float], codes: Counter[str], in_flight: int = 1) -> None:
    async with await BridgeClient.connect(url, token=token, open_timeout=60) as c:
        queue = list(seeds)

        async def worker() -> None:
            while queue:
                seed = queue.pop()
                for _ in range(100):
                    t0 = time.perf_counter()
                    try:
                        await c.generate(seed=seed, format=args.format, texture_size=args.texture_size,
                                         texture_format=args.texture_format)
                    except RequestError as e:
                        codes[e.code] += 1
                        if e.code == "busy":
                            await asyncio.sleep((e.retry_after_ms or 50) / 1000)
                            continue
                        break
                    lat.append((time.perf_counter() - t0) * 1000)
                    codes["ok"] += 1
                    break

        await asyncio.gather(*(worker() for _ in range(in_flight)))


async def _stats(url: str, token: str | None) -> dict[str, Any]:
    async with await BridgeClient.connect(url, token=token, open_timeout=60) as c:
        return await c.stats(timeout=60)


async def run_scenario(name: str, url: str, token: str | None, args: argparse.Namespace) -> dict[str, Any]:
    clients, per_client, hits, in_flight = SCENARIOS[name]
    clients = args.clients or clients
    per_client = args.requests or per_client
    in_flight = args.in_flight or in_flight
    if hits:  # a small set of seeds, requested once beforehand so that every timed request hits
        pool = [7_000_000 + i for i in range(64)]
        await _client(url, token, list(pool), args, [], Counter())
        seed_lists = [[random.choice(pool) for _ in range(per_client)] for _ in range(clients)]
    else:
        base = random.randrange(0, 2**32 - 10_000_000)
        seed_lists = [[base + i * per_client + j for j in range(per_client)] for i in range(clients)]
    before = await _stats(url, token)
    lat: list[float] = []
    codes: Counter[str] = Counter()
    t0 = time.perf_counter()
    results = await asyncio.gather(*(_client(url, token, s, args, lat, codes, in_flight) for s in seed_lists),
                                   return_exceptions=True)
    wall = time.perf_counter() - t0
    for r in results:
        if isinstance(r, BaseException):
            codes[f"client_failed:{type(r).__name__}:{r}"[:80]] += 1
    after = await _stats(url, token)
    hb, ha = before["batches"]["histogram"], after["batches"]["histogram"]
    hist = {k: ha[k] - hb.get(k, 0) for k in sorted(ha, key=int) if ha[k] - hb.get(k, 0) > 0}
    return {
        "scenario": name, "clients": clients, "requests_per_client": per_client, "in_flight": in_flight,
        "cache": "hit" if hits else "miss", "served": codes["ok"], "wall_s": round(wall, 2),
        "throughput_per_s": round(codes["ok"] / wall, 1) if wall else 0.0, "latency_ms": _pct(lat),
        "codes": dict(codes), "batch_histogram": hist,
        "server_generate_ms_so_far": after["batches"].get("generate_ms"),
        "server_latency_ms_so_far": after["latency_ms"]["all"],
    }


def _start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "chibi_meta", "serve", "--port", "0", "--torch-threads", str(args.torch_threads),
           "--pack-threads", str(args.pack_threads), "--max-batch", str(args.max_batch),
           "--max-wait-ms", str(args.max_wait_ms), "--queue", str(args.queue), "--rate", "100000",
           "--burst", "100000"]
    if args.model:
        cmd += ["--model", args.model]
    log_path = Path(args.server_log)
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the server; a pipe would fill up and stall it
    p = subprocess.Popen(cmd, stderr=log, stdout=log, text=True, cwd=ROOT)
    deadline = time.time() + 300
    while time.time() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"server exited with {p.returncode}; see {log_path}")
        m = re.search(r"chibi-meta serve: listening on (\S+)", log_path.read_text())
        if m:
            return p, m.group(1)
        time.sleep(0.2)
    p.kill()
    raise SystemExit(f"server did not start within 300 s; see {log_path}")


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (from /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmHWM:\s+(\d+) kB", text)
    return round(int(m.group(1)) / 1024, 1) if m else None


def _run_once(name: str, url: str, proc: subprocess.Popen | None, args: argparse.Namespace) -> dict[str, Any]:
    cpu0 = _cpu_s(proc.pid if proc else None)
    r = asyncio.run(run_scenario(name, url, args.token, args))
    cpu1 = _cpu_s(proc.pid if proc else None)
    r["server_peak_rss_mb"] = _peak_rss_mb(proc.pid) if proc else None
    if cpu0 is not None and cpu1 is not None and r["served"]:
        # CPU per asset does not depend much on what else runs on the machine: 2 cores / this
        # is the throughput two idle cores would give (the scenario includes warm-up requests)
        r["server_cpu_ms_per_asset"] = round((cpu1 - cpu0) * 1000 / r["served"], 2)
    lat = r["latency_ms"]
    print(f"{name:7s} clients={r['clients']:<4d} x{r['requests_per_client']:<4d} cache={r['cache']:4s} "
          f"served={r['served']:<5d} {r['throughput_per_s']:7.1f}/s  p50={lat['p50']:.1f} "
          f"p95={lat['p95']:.1f} p99={lat['p99']:.1f} ms  rss={r['server_peak_rss_mb']} MB", flush=True)
    print(f"        codes={r['codes']} batches={r['batch_histogram']}", flush=True)
    g = r["server_generate_ms_so_far"] or {}
    print(f"        server: forward pass p50={g.get('p50')} ms (all scenarios so far), "
          f"CPU per asset={r.get('server_cpu_ms_per_asset')} ms", flush=True)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running server (default: start one)")
    ap.add_argument("--token", default=os.environ.get("CHIBI_META_TOKEN"))
    ap.add_argument("--model", help="generator for the started server (default: the shipped model)")
    ap.add_argument("--scenarios", default="miss1,miss32,hit,c256", help=f"comma list of {', '.join(SCENARIOS)}")
    ap.add_argument("--clients", type=int, default=0, help="override the scenario's client count")
    ap.add_argument("--requests", type=int, default=0, help="override requests per client")
    ap.add_argument("--in-flight", type=int, default=0, help="requests each client keeps outstanding (override)")
    ap.add_argument("--format", default="glb", choices=("glb", "vrm", "png"))
    ap.add_argument("--texture-size", type=int, default=256, choices=(256, 512, 1024))
    ap.add_argument("--texture-format", default="png", choices=("png", "jpeg", "webp"))
    ap.add_argument("--torch-threads", type=int, default=0, help="0: all CPUs (the server's default)")
    ap.add_argument("--pack-threads", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=4.0)
    ap.add_argument("--queue", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each scenario; the summary line is the median")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--server-log", default=os.path.join(tempfile.gettempdir(), "chibi-bench-server.log"),
                    help="stderr of the started server")
    args = ap.parse_args(argv)

    proc = None
    url = args.url
    if url is None:
        proc, url = _start_server(args)
    results = []
    try:
        for name in args.scenarios.split(","):
            if name not in SCENARIOS:
                raise SystemExit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
            runs = [_run_once(name, url, proc, args) for _ in range(max(args.repeat, 1))]
            results += runs
            if len(runs) > 1:
                med = {k: round(float(np.median([r["latency_ms"][k] for r in runs])), 2) for k in ("p50", "p99")}
                tput = [r["throughput_per_s"] for r in runs]
                print(f"{name:7s} MEDIAN of {len(runs)}: {float(np.median(tput)):.1f}/s (runs {tput})  "
                      f"p50={med['p50']} p99={med['p99']} ms  peak rss={runs[-1]['server_peak_rss_mb']} MB", flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    load = os.getloadavg()
    conditions = {"format": args.format, "texture_size": args.texture_size, "texture_format": args.texture_format,
                  "torch_threads": args.torch_threads, "pack_threads": args.pack_threads, "max_batch": args.max_batch,
                  "max_wait_ms": args.max_wait_ms, "cpus": os.cpu_count(), "loadavg_1m_at_end": round(load[0], 2),
                  "model": args.model or "shipped"}
    print(f"conditions: {json.dumps(conditions)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"conditions": conditions, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
