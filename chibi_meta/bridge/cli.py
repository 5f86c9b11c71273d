"""`chibi-meta serve` (the websocket bridge) and `chibi-meta request` (a one-shot client)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from chibi_meta import limits
from chibi_meta.errors import UsageError

log = logging.getLogger("chibi_meta.bridge")
TOKEN_ENV = "CHIBI_META_TOKEN"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the websocket bridge that engines ask for avatars",
        description="Serve protocol v1 (docs/protocol.md) over websockets. Tokens may also come from "
        f"${TOKEN_ENV} (comma-separated), which keeps them out of `ps`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--token", action="append", default=[], help="accepted bearer token (repeat to rotate)")
    p.add_argument("--origins", action="append", default=None,
                   help="allowed browser Origin, e.g. https://game.example (repeat or comma-separate); "
                        "default: any. Clients that send no Origin (engines) are always allowed")
    p.add_argument("--model", default=None, help="generator .safetensors (default: the shipped model)")
    p.add_argument("--cache-dir", default=None, help="on-disk asset cache, shareable by replicas")
    p.add_argument("--cache-mb", type=float, default=limits.CACHE_MEMORY_BYTES / 2**20, help="memory cache size")
    p.add_argument("--cache-disk-mb", type=float, default=limits.CACHE_DISK_BYTES / 2**20, help="disk cache size")
    p.add_argument("--max-batch", type=int, default=limits.BATCH_MAX_SIZE, help="textures per forward pass")
    p.add_argument("--max-wait-ms", type=float, default=limits.BATCH_MAX_WAIT_MS, help="batch fill wait")
    p.add_argument("--queue", type=int, default=limits.QUEUE_MAX, help="jobs admitted before `busy`")
    p.add_argument("--max-in-flight", type=int, default=limits.WS_MAX_IN_FLIGHT, help="per connection")
    p.add_argument("--rate", type=float, default=limits.WS_RATE_PER_S, help="messages/s per connection")
    p.add_argument("--burst", type=int, default=limits.WS_RATE_BURST, help="rate-limit burst per connection")
    p.add_argument("--max-connections", type=int, default=limits.WS_MAX_CONNECTIONS)
    p.add_argument("--grace", type=float, default=limits.SHUTDOWN_GRACE_S, help="seconds to drain on SIGTERM")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch intra-op threads (default 0: all CPUs; measured on 2 cores: p50 21 ms vs 46 ms with 1)")
    p.add_argument("--pack-threads", type=int, default=limits.PACK_THREADS,
                   help=f"packaging threads (default {limits.PACK_THREADS}: packing holds the GIL; docs/limits.md)")
    p.add_argument("--deflate", action="store_true",
                   help="offer permessage-deflate: GLBs shrink ~25-40%% but each send costs ~3-4 ms of CPU")
    p.add_argument("--no-preview", action="store_true",
                   help="do not serve the artist preview page at http://HOST:PORT/preview/ (docs/preview.md)")
    p.add_argument("--no-warmup", action="store_true", help="skip the warm-up generation at start")
    p.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    p.set_defaults(func=serve_main)

    r = sub.add_parser(
        "request",
        help="ask a running bridge for one avatar",
        description=f"Request one asset over protocol v1. The token may come from ${TOKEN_ENV}.",
    )
    r.add_argument("url", help="ws://HOST:PORT")
    r.add_argument("--seed", type=int, default=None, help="seed (default: the server picks one and reports it)")
    r.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="attribute (repeatable)")
    r.add_argument("--format", default="glb", choices=("glb", "vrm", "png"))
    r.add_argument("--texture-size", type=int, default=None, choices=(256, 512, 1024))
    r.add_argument("--texture-format", default=None, choices=("png", "jpeg", "webp"))
    r.add_argument("--truncation", type=float, default=None)
    r.add_argument("--morph-targets", default=None, metavar="SETS",
                   help="morph-target sets in the GLB/VRM, comma-separated: vrm, oculus, arkit, or none "
                        "(default: all; ignored for png)")
    r.add_argument("--token", default=None, help=f"bearer token (default ${TOKEN_ENV})")
    r.add_argument("--out", required=True, help="output file (written atomically)")
    r.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the asset")
    r.set_defaults(func=request_main)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``key=value`` pairs of the message become fields."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        out: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name}
        fields = _kv(msg)
        if fields:
            out.update(fields)
        else:
            out["msg"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _kv(msg: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in msg.split(" "):
        k, eq, v = part.partition("=")
        if not eq or not k.isidentifier():
            return {}
        out[k] = v
    return out


def _tokens(given: list[str]) -> list[str]:
    env = [t.strip() for t in os.environ.get(TOKEN_ENV, "").split(",") if t.strip()]
    return [t for t in given if t] + env


def limit_malloc_arenas(n: int) -> bool:
    """Cap glibc's malloc arenas at ``n`` (``mallopt(M_ARENA_MAX)``), unless the environment's
    MALLOC_ARENA_MAX already chose. glibc gives each thread that meets contention its own arena
    (up to 8 per core), and freed memory in one arena is not reused by another: with the generator,
    packing and I/O threads that kept about 70 MB more resident at the server's peak (bench/load.py,
    c256, one run: 907 -> 835 MB; throughput within the run-to-run noise). Must run before the
    threads start; returns whether it was applied (False off glibc)."""
    if n <= 0 or "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(-8, int(n)))  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (musl has no mallopt arenas)
        return False
    log.debug("event=malloc_arenas max=%d applied=%s", n, ok)
    return ok


def serve_main(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    if args.log_json:
        for h in logging.getLogger().handlers:
            h.setFormatter(JsonFormatter())
    for name, lo in (("port", 0), ("max_batch", 1), ("queue", 1), ("max_in_flight", 1), ("burst", 1),
                     ("max_connections", 1), ("pack_threads", 1), ("torch_threads", 0)):
        if getattr(args, name) < lo:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {lo}")
    if args.rate <= 0 or args.max_wait_ms < 0 or args.grace < 0:
        raise UsageError("--rate must be > 0; --max-wait-ms and --grace must be >= 0")
    origins = None
    if args.origins:
        origins = [o.strip() for arg in args.origins for o in arg.split(",") if o.strip()]

    limit_malloc_arenas(limits.SERVER_MALLOC_ARENAS)  # before torch starts its threads
    import torch

    from chibi_meta.bridge.cache import AssetCache
    from chibi_meta.bridge.engine import Engine
    from chibi_meta.bridge.server import BridgeServer, ServerConfig
    from chibi_meta.gan.api import TextureGenerator

    torch.set_num_threads(args.torch_threads or os.cpu_count() or 1)
    gen = TextureGenerator.load(args.model)
    cache = AssetCache(int(args.cache_mb * 2**20), args.cache_dir, int(args.cache_disk_mb * 2**20))
    engine = Engine(gen, cache=cache, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                    queue_max=args.queue, pack_threads=args.pack_threads)
    if not args.no_warmup:
        engine.warm_up()
    config = ServerConfig(
        host=args.host, port=args.port, tokens=_tokens(args.token), origins=origins,
        max_in_flight=args.max_in_flight, rate_per_s=args.rate, rate_burst=args.burst,
        max_connections=args.max_connections, grace_s=args.grace,
        compression="deflate" if args.deflate else None, preview=not args.no_preview,
    )
    server = BridgeServer(engine, config)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        print(f"chibi-meta serve: listening on ws://{args.host}:{server.port}", file=sys.stderr, flush=True)
        if config.preview:
            print(f"chibi-meta serve: preview page on http://{args.host}:{server.port}/preview/", file=sys.stderr,
                  flush=True)
        await stop.wait()
        await server.shutdown()

    asyncio.run(run())
    return 0


def _parse_attrs(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq or not k:
            raise UsageError(f"--attr takes KEY=VALUE, got {item!r}")
        out[k.strip()] = v.strip()
    return out


def _parse_morph_targets(spec: str | None) -> list[str] | None:
    """``--morph-targets vrm,oculus`` -> ["vrm", "oculus"]; the server checks the names (exit 2 naming the sets)."""
    if spec is None:
        return None
    sets = [s.strip() for s in spec.split(",") if s.strip()]
    if not sets:
        raise UsageError("--morph-targets takes comma-separated set names; allowed: vrm, oculus, arkit, none")
    return sets


def request_main(args: argparse.Namespace) -> int:
    import asyncio

    from chibi_meta.atomic import atomic_write_bytes
    from chibi_meta.client import BridgeClient

    if not args.url.startswith(("ws://", "wss://")):
        raise UsageError(f"the URL must start with ws:// or wss://, got {args.url!r}")
    attrs = _parse_attrs(args.attr)
    morphs = _parse_morph_targets(args.morph_targets)
    token = args.token or (os.environ.get(TOKEN_ENV, "").split(",")[0].strip() or None)

    async def go() -> Any:
        async with await BridgeClient.connect(args.url, token=token) as c:
            return await asyncio.wait_for(
                c.generate(seed=args.seed, attributes=attrs, format=args.format, texture_size=args.texture_size,
                           texture_format=args.texture_format, truncation=args.truncation,
                           morph_targets=morphs),
                args.timeout,
            )

    try:
        res = asyncio.run(go())
    except asyncio.TimeoutError:
        raise UsageError(f"no reply within {args.timeout:g} s") from None
    atomic_write_bytes(args.out, res.data)
    print(json.dumps(res.header, sort_keys=True))
    print(f"chibi-meta request: wrote {args.out} ({len(res.data)} bytes, seed {res.seed})", file=sys.stderr)
    return 0
