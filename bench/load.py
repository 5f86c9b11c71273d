"""Load test of the websocket bridge against the offline pipeline measured in the same run.

    python bench/load.py                          # starts `chibi-meta serve` with the shipped model
    python bench/load.py --model runs/x/generator.safetensors --scenarios offline,miss1,miss32,hit,c256
    python bench/load.py --url ws://host:8765 --token T   # an existing server (no RSS figure)

Scenarios run in ``--repeat`` rounds (default 3; each round runs every scenario once, so load that
changes over the run touches all of them), then a MEDIAN line per scenario and a SUMMARY of the
ratios the issues set targets on. ``offline`` is the pipeline without the bridge, in this process,
no sockets: generate + pack + encode with the server's format, torch threads, batch size and pack
threads (one generating thread, packing in a pool), and one avatar at a time. The bridge scenarios
print, per run: throughput, p50/p95/p99 latency (client side, request sent -> asset received),
reply codes, the server's batch-size histogram and its peak RSS (VmHWM). Every client keeps
``--in-flight`` requests outstanding; a `busy` reply is counted and retried after its
``retry_after_ms``. Cache-miss scenarios use fresh random seeds, so nothing is cached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chibi_meta import limits  # noqa: E402
from chibi_meta.client import BridgeClient, RequestError  # noqa: E402

SCENARIOS = {
    # name: (clients, requests per client, cache hits?, requests in flight per client)
    "offline": (0, 0, False, 0),  # no bridge: the pipeline in this process (see Offline)
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
    morphs = args.morph_targets.split(",") if args.morph_targets else None
    async with await BridgeClient.connect(url, token=token, open_timeout=60) as c:
        queue = list(seeds)

        async def worker() -> None:
            while queue:
                seed = queue.pop()
                for _ in range(100):
                    t0 = time.perf_counter()
                    try:
                        await c.generate(seed=seed, format=args.format, texture_size=args.texture_size,
                                         texture_format=args.texture_format, morph_targets=morphs)
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


def _morph_sets(args: argparse.Namespace) -> tuple[str, ...]:
    """The morph-target sets the requests ask for (``--morph-targets``; empty: the server's default)."""
    from chibi_meta.avatar.names import check_morph_sets

    return check_morph_sets(args.morph_targets.split(",") if args.morph_targets else None)


class Offline:
    """The pipeline without the bridge, in this process: what the server does per request, minus
    sockets, asyncio, the batcher and the cache. Same model, format, texture options, morph-target
    sets, torch threads, batch size (``--max-batch``) and pack threads (``--pack-threads``) as the
    started server; like its Engine, the generator thread draws each batch's textures and their face
    sheets (``export.face_sheets``: the eye/mouth variants, on the face region only), and packing
    puts each face sheet into its avatar."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from chibi_meta.gan.api import TextureGenerator

        self.args = args
        torch.set_num_threads(args.torch_threads or os.cpu_count() or 1)  # as `chibi-meta serve` does
        self.gen = TextureGenerator.load(args.model)
        # the server's threads: the generator in one thread started after the model is loaded (as
        # Engine's "chibi-gen"), packing in a pool of --pack-threads
        self.gen_pool = ThreadPoolExecutor(1, thread_name_prefix="offline-gen")
        self.pool = ThreadPoolExecutor(max(1, args.pack_threads), thread_name_prefix="offline-pack")
        self.next_seed = random.randrange(0, 2**31)
        self.sets = _morph_sets(args)
        self.sheets = args.format != "png" and bool(self.sets)  # as Engine: a face sheet when morphs are wanted

    def warm_up(self) -> None:
        """Untimed, like the server's warm-up: a generator pass and every outfit's body once."""
        from chibi_meta.avatar import OUTFITS

        (tex, sheet), = self._gan([0], [self.gen.resolve(0, None)])
        if self.args.format != "png":
            for o in OUTFITS:
                self._pack(0, {**self.gen.resolve(0, None), "outfit": o}, (tex, sheet))

    def _seeds(self, n: int) -> list[int]:
        self.next_seed += n
        return list(range(self.next_seed - n, self.next_seed))

    def _attrs(self, seed: int) -> dict[str, str]:
        """As Engine.resolve: the generator's attributes drawn by seed, plus the outfit for 3D formats."""
        from chibi_meta.avatar import choose_outfit

        attrs = self.gen.resolve(seed, None)
        if self.args.format != "png":
            attrs["outfit"] = choose_outfit(seed, {})
        return attrs

    def _pack(self, seed: int, attrs: dict[str, str], generated: tuple[np.ndarray, Any]) -> bytes:
        """As Engine._package (the public functions it calls, with the same provenance)."""
        texture, sheet = generated
        prov = {"seed": seed, "attributes": attrs, "model_id": str(self.gen.model_id),
                "attribution": self.gen.attribution}  # fmt: skip
        if self.args.format == "png":
            from chibi_meta.bridge.engine import encode_png

            return encode_png(texture, prov)
        from chibi_meta.avatar import build_avatar

        return build_avatar(np.ascontiguousarray(texture), attrs, fmt=self.args.format,
                            texture_size=self.args.texture_size, texture_format=self.args.texture_format,
                            provenance=prov, face_sheet=sheet,
                            morph_targets=list(self.sets) if self.sets else ["none"])  # fmt: skip

    def _draw(self, seeds: list[int], gan_attrs: list[dict[str, str]]) -> list[tuple[np.ndarray, Any]]:
        from chibi_meta.avatar.export import face_sheets

        tex = self.gen.generate(seeds, gan_attrs)
        sheets = face_sheets(self.gen, seeds, gan_attrs) if self.sheets else [None] * len(seeds)
        return list(zip(tex, sheets, strict=True))

    def _gan(self, seeds: list[int], attrs: list[dict[str, str]]) -> list[tuple[np.ndarray, Any]]:
        """(texture, face sheet or None) per seed, drawn in the generator thread."""
        gan_attrs = [{k: v for k, v in a.items() if k != "outfit"} for a in attrs]
        return self.gen_pool.submit(self._draw, seeds, gan_attrs).result()

    def batched(self, n: int, pool: bool) -> float:
        """avatars/s of ``n`` avatars in batches of --max-batch; packing in the pack pool while the
        next batch generates (``pool``: the server's overlap), or after each batch, one by one."""
        seeds = self._seeds(n)
        futs = []
        t0 = time.perf_counter()
        for i in range(0, n, self.args.max_batch):
            chunk = seeds[i : i + self.args.max_batch]
            attrs = [self._attrs(s) for s in chunk]
            tex = self._gan(chunk, attrs)
            for s, a, t in zip(chunk, attrs, tex, strict=True):
                if pool:
                    futs.append(self.pool.submit(self._pack, s, a, t))
                else:
                    self._pack(s, a, t)
        for f in futs:
            f.result()
        return n / (time.perf_counter() - t0)

    def one_at_a_time(self, n: int) -> list[float]:
        """ms per avatar generated alone (a pass of the generator's chunk) and packed: a lone request's work."""
        out = []
        for s in self._seeds(n):
            t0 = time.perf_counter()
            a = self._attrs(s)
            self.pool.submit(self._pack, s, a, self._gan([s], [a])[0]).result()
            out.append((time.perf_counter() - t0) * 1000)
        return out

    def run(self) -> dict[str, Any]:
        a = self.args
        c0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        pooled = self.batched(a.offline_n, pool=True)
        sequential = self.batched(a.offline_n, pool=False)
        single = self.one_at_a_time(a.offline_single)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - c0
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        return {"scenario": "offline", "avatars": a.offline_n, "batch": a.max_batch, "pack_threads": a.pack_threads,
                "torch_threads": a.torch_threads or os.cpu_count(), "throughput_per_s": round(pooled, 1),
                "sequential_throughput_per_s": round(sequential, 1), "latency_ms": _pct(single),
                "one_at_a_time": a.offline_single, "wall_s": round(wall, 2),
                "cpu_ms_per_asset": round(cpu * 1000 / (2 * a.offline_n + a.offline_single), 2)}  # fmt: skip


def _run_offline(off: Offline) -> dict[str, Any]:
    r = off.run()
    lat = r["latency_ms"]
    print(f"offline avatars={r['avatars']:<4d} batch={r['batch']} pack-threads={r['pack_threads']} "
          f"torch-threads={r['torch_threads']}: {r['throughput_per_s']:7.1f}/s (sequential: "
          f"{r['sequential_throughput_per_s']:.1f}/s)  one at a time x{r['one_at_a_time']}: p50={lat['p50']:.1f} "
          f"p99={lat['p99']:.1f} ms  CPU per asset={r['cpu_ms_per_asset']} ms", flush=True)  # fmt: skip
    return r


def _spawn_server(args: argparse.Namespace) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "chibi_meta", "serve", "--port", "0", "--torch-threads", str(args.torch_threads),
           "--pack-threads", str(args.pack_threads), "--max-batch", str(args.max_batch),
           "--max-wait-ms", str(args.max_wait_ms), "--queue", str(args.queue), "--rate", "100000",
           "--burst", "100000"]
    if args.model:
        cmd += ["--model", args.model]
    log = open(args.server_log, "w")  # noqa: SIM115 - lives as long as the server; a pipe would fill up and stall it
    return subprocess.Popen(cmd, stderr=log, stdout=log, text=True, cwd=ROOT)


def _wait_server(p: subprocess.Popen, args: argparse.Namespace) -> str:
    log_path = Path(args.server_log)
    deadline = time.time() + 300
    while time.time() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"server exited with {p.returncode}; see {log_path}")
        m = re.search(r"chibi-meta serve: listening on (\S+)", log_path.read_text())
        if m:
            return m.group(1)
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
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    r = asyncio.run(run_scenario(name, url, args.token, args))
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu1 = _cpu_s(proc.pid if proc else None)
    if r["served"]:  # the load generator (this process) shares the machine with the server
        me = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
        r["client_cpu_ms_per_asset"] = round(me * 1000 / r["served"], 2)
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
          f"CPU per asset={r.get('server_cpu_ms_per_asset')} ms; load generator CPU per asset="
          f"{r.get('client_cpu_ms_per_asset')} ms", flush=True)
    return r


def _median(xs: list[float]) -> float:
    return float(np.median(xs)) if xs else float("nan")


def summary(by: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The ratios that the issues set targets on, from medians of this run's rounds."""
    lines = []
    off = by.get("offline", [])
    off_tput = _median([r["throughput_per_s"] for r in off])
    off_p50 = _median([r["latency_ms"]["p50"] for r in off])
    if off and "miss32" in by:
        m32 = _median([r["throughput_per_s"] for r in by["miss32"]])
        share = m32 / off_tput
        pairs = zip(by["miss32"], off, strict=True)
        rounds = " ".join(f"{a['throughput_per_s'] / b['throughput_per_s']:.2f}" for a, b in pairs)
        seq = _median([r["sequential_throughput_per_s"] for r in off])
        lines.append(f"bridge miss32 throughput / offline throughput: {m32:.1f} / {off_tput:.1f} = {share:.2f} "
                     f"(per round: {rounds}; / offline sequential {seq:.1f} = {m32 / seq:.2f}); "
                     f"target >= 0.9: {'met' if share >= 0.9 else 'MISSED'}")
    if off and "miss1" in by:
        p50 = _median([r["latency_ms"]["p50"] for r in by["miss1"]])
        x = p50 / off_p50
        lines.append(f"bridge miss1 p50 / offline one-at-a-time p50: {p50:.1f} / {off_p50:.1f} ms = {x:.2f}x "
                     f"(/ offline batched time per avatar {1000 / off_tput:.1f} ms = {p50 * off_tput / 1000:.2f}x); "
                     f"target <= 2x: {'met' if x <= 2 else 'MISSED'}")
    if "hit" in by:
        p50 = _median([r["latency_ms"]["p50"] for r in by["hit"]])
        lines.append(f"cache hit p50: {p50:.2f} ms; target <= 3 ms: {'met' if p50 <= 3 else 'MISSED'}")
    if "c256" in by:
        codes: Counter[str] = Counter()
        for r in by["c256"]:
            codes.update(r["codes"])
        other = {k: v for k, v in codes.items() if k not in ("ok", "busy")}
        lines.append(f"c256 replies over {len(by['c256'])} runs: ok={codes['ok']} busy={codes['busy']} other={other}; "
                     f"only ok or busy: {'yes' if not other else 'NO'}")
    rss = [r["server_peak_rss_mb"] for rs in by.values() for r in rs if r.get("server_peak_rss_mb")]
    if rss:
        lines.append(f"server peak RSS: {max(rss)} MB; target <= 800 MB: {'met' if max(rss) <= 800 else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running server (default: start one)")
    ap.add_argument("--token", default=os.environ.get("CHIBI_META_TOKEN"))
    ap.add_argument("--model", help="generator for the started server and the offline pipeline (default: shipped)")
    ap.add_argument("--scenarios", default="offline,miss1,miss32,hit,c256",
                    help=f"comma list of {', '.join(SCENARIOS)}")
    ap.add_argument("--clients", type=int, default=0, help="override the scenario's client count")
    ap.add_argument("--requests", type=int, default=0, help="override requests per client")
    ap.add_argument("--in-flight", type=int, default=0, help="requests each client keeps outstanding (override)")
    ap.add_argument("--offline-n", type=int, default=256, help="avatars per offline batched run")
    ap.add_argument("--offline-single", type=int, default=24, help="avatars per offline one-at-a-time run")
    ap.add_argument("--format", default="glb", choices=("glb", "vrm", "png"))
    ap.add_argument("--texture-size", type=int, default=256, choices=(256, 512, 1024))
    ap.add_argument("--texture-format", default="png", choices=("png", "jpeg", "webp"))
    ap.add_argument("--morph-targets", default="",
                    help="comma list of morph-target sets (vrm, oculus, arkit; none); default: the server's (all)")
    ap.add_argument("--torch-threads", type=int, default=0, help="0: all CPUs (the server's default)")
    ap.add_argument("--pack-threads", type=int, default=limits.PACK_THREADS)
    ap.add_argument("--max-batch", type=int, default=limits.BATCH_MAX_SIZE)
    ap.add_argument("--max-wait-ms", type=float, default=4.0)
    ap.add_argument("--queue", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of all scenarios; the summary lines are medians")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--server-log", default=os.path.join(tempfile.gettempdir(), "chibi-bench-server.log"),
                    help="stderr of the started server")
    args = ap.parse_args(argv)
    names = args.scenarios.split(",")
    _morph_sets(args)  # a bad set fails here, naming the allowed ones
    for name in names:
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} CPUs)", flush=True)

    proc = None
    url = args.url
    by: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    try:
        if url is None:
            proc = _spawn_server(args)
        off = None
        if "offline" in names:  # its warm-up overlaps the server's
            off = Offline(args)
            off.warm_up()
            if args.url:
                print("note: the offline pipeline runs on this machine, the bridge at --url", flush=True)
        if proc is not None:
            url = _wait_server(proc, args)
        rounds = max(args.repeat, 1)
        for i in range(rounds):
            if rounds > 1:
                print(f"-- round {i + 1}/{rounds}", flush=True)
            for name in names:
                by[name].append(_run_offline(off) if name == "offline" else _run_once(name, url, proc, args))
        if rounds > 1:
            for name, runs in by.items():
                tput = [r["throughput_per_s"] for r in runs]
                med = {k: round(_median([r["latency_ms"][k] for r in runs]), 2) for k in ("p50", "p99")}
                if name == "offline":
                    print(f"{name:7s} MEDIAN of {len(runs)}: {_median(tput):.1f}/s (runs {tput})  one at a time "
                          f"p50={med['p50']} p99={med['p99']} ms", flush=True)
                else:
                    print(f"{name:7s} MEDIAN of {len(runs)}: {_median(tput):.1f}/s (runs {tput})  "
                          f"p50={med['p50']} p99={med['p99']} ms  peak rss={runs[-1]['server_peak_rss_mb']} MB",
                          flush=True)
        lines = summary(by)
        if lines:
            print(f"SUMMARY (medians of {rounds} round{'s' if rounds > 1 else ''}, ratios within this run):")
            for line in lines:
                print(f"  {line}", flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    load = os.getloadavg()
    conditions = {"format": args.format, "texture_size": args.texture_size, "texture_format": args.texture_format,
                  "morph_targets": args.morph_targets or "default", "torch_threads": args.torch_threads,
                  "pack_threads": args.pack_threads, "max_batch": args.max_batch,
                  "max_wait_ms": args.max_wait_ms, "cpus": os.cpu_count(), "loadavg_1m_at_start": round(load0[0], 2),
                  "loadavg_1m_at_end": round(load[0], 2), "model": args.model or "shipped"}
    print(f"conditions: {json.dumps(conditions)}")
    if args.json:
        results = [r for runs in by.values() for r in runs]
        Path(args.json).write_text(json.dumps({"conditions": conditions, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
