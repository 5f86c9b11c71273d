"""Shared helpers of the bridge tests: a real generator, a real server on a loopback port in a
background thread, raw websocket helpers and the JSON Schemas of docs/schemas/."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schemas"
SHIPPED_MODEL = ROOT / "assets" / "model" / "generator.safetensors"
JS_DIR = ROOT / "tests" / "js"


@functools.lru_cache(maxsize=1)
def small_model_path() -> Path:
    """A real generator (chibi_meta.gan, freshly initialised, small widths) exported like a shipped model.

    The shipped model is used by bench/load.py and test_shipped_model; the other tests use this
    one so that they run in seconds on two shared cores. Everything around it is the real code.
    """
    import tempfile

    import torch

    from chibi_meta.data.attributes import ADVENTURER
    from chibi_meta.gan.api import export_generator
    from chibi_meta.gan.networks import Generator, NetConfig

    torch.manual_seed(0)
    cfg = NetConfig(z_dim=16, emb_dim=4, w_dim=32, g_channels=(32, 32, 16, 16, 8, 8), attr_sizes=ADVENTURER.sizes)
    path = Path(tempfile.mkdtemp(prefix="chibi-bridge-test-")) / "generator.safetensors"
    export_generator(path, Generator(cfg), ADVENTURER, {"name": "bridge-test", "attribution": "test model (random)"})
    return path


@functools.lru_cache(maxsize=1)
def load_generator() -> Any:
    import torch

    from chibi_meta.gan.api import TextureGenerator

    torch.set_num_threads(1)
    return TextureGenerator.load(small_model_path())


def have_packager() -> bool:
    try:
        from chibi_meta.avatar import build_avatar  # noqa: F401
    except ImportError:
        return False
    return True


class ServerThread:
    """A BridgeServer with its own event loop in a daemon thread."""

    def __init__(self, **config: Any) -> None:
        from chibi_meta.bridge.cache import AssetCache
        from chibi_meta.bridge.engine import Engine
        from chibi_meta.bridge.server import BridgeServer, ServerConfig

        engine_kw = {k: config.pop(k) for k in ("max_batch", "max_wait_ms", "queue_max", "pack_threads")
                     if k in config}
        cache = AssetCache(disk_dir=config.pop("cache_dir", None))
        packager = None if have_packager() else _no_packager
        self.engine = Engine(load_generator(), cache=cache, packager=packager, **engine_kw)
        config.setdefault("port", 0)
        self.server = BridgeServer(self.engine, ServerConfig(**config))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self.server.start())
        self.url = f"ws://127.0.0.1:{self.server.port}"
        self.port = self.server.port
        self.stopped = False

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run_sync(self, fn: Callable[[], Any]) -> Any:
        async def _f() -> Any:
            return fn()

        return self.call(_f())

    def stop(self, grace: float = 5.0) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.call(self.server.shutdown(grace), timeout=grace + 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def _no_packager(*_a: Any, **_k: Any) -> bytes:
    from chibi_meta.errors import MissingDependency

    raise MissingDependency("chibi_meta.avatar.build_avatar is not available yet")


@functools.cache
def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text("utf-8"))


def validate(msg: dict[str, Any], name: str | None = None) -> None:
    """Validate a message against docs/schemas/<type>.json (server messages: server_<type>)."""
    import jsonschema
    from referencing import Registry, Resource

    name = name or f"server_{msg['type']}"
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s))
        for s in (json.loads(p.read_text("utf-8")) for p in SCHEMAS.glob("*.json"))
    )
    jsonschema.Draft202012Validator(schema(name), registry=registry).validate(msg)


def run(coro: Any, timeout: float = 60.0) -> Any:
    async def _with_timeout() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(_with_timeout())


async def raw_connect(url: str, **kw: Any) -> Any:
    from websockets.asyncio.client import connect

    kw.setdefault("max_size", 64 * 1024 * 1024)
    kw.setdefault("compression", None)
    return await connect(url, **kw)


async def recv_json(ws: Any, timeout: float = 20.0) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), timeout)
    if not isinstance(frame, str):
        raise AssertionError(f"expected a text frame, got {len(frame)} bytes")
    return json.loads(frame)


async def recv_until(ws: Any, pred: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> list[Any]:
    """Frames (JSON dicts, or bytes) up to and including the first JSON message matching ``pred``."""
    out: list[Any] = []
    while True:
        frame = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(frame, str):
            msg = json.loads(frame)
            out.append(msg)
            if pred(msg):
                return out
        else:
            out.append(frame)


def validate_glb(data: bytes) -> dict[str, Any]:
    """Run the Khronos glTF-Validator on GLB bytes: the avatar tests' runner tests/js/validate.mjs
    (npm gltf-validator); returns its report (numErrors, numWarnings, messages)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "asset.glb"
        path.write_bytes(data)
        out = subprocess.run(["node", str(JS_DIR / "validate.mjs"), str(path)], cwd=JS_DIR,
                             capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
