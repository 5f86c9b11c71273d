"""The generation pipeline behind the bridge: resolve -> cache -> batched GAN -> packaging -> cache.

Transport-agnostic (no sockets): the server calls :meth:`Engine.resolve` and :meth:`Engine.get`.
Identical requests in flight share one job; jobs admitted and not finished are bounded by
``queue_max`` (past it :class:`~chibi_meta.errors.Busy` at once). The generator runs in one
worker thread (one forward pass per batch; torch uses its own intra-op threads), packaging in a
small pool, disk I/O in another.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from chibi_meta import limits
from chibi_meta.avatar import faces, png
from chibi_meta.avatar.pack import PACKAGING_ATTRIBUTES, choose_outfit, split_packaging
from chibi_meta.bridge.batcher import Batcher
from chibi_meta.bridge.cache import Asset, AssetCache
from chibi_meta.bridge.protocol import (
    DEFAULT_MORPH_TARGETS,
    DEFAULT_TEXTURE_SIZE,
    FORMATS,
    MORPH_TARGET_SETS,
    TEXTURE_FORMATS,
    TEXTURE_SIZES,
    Generate,
    ResolvedRequest,
    morph_targets_json,
)
from chibi_meta.bridge.stats import Stats
from chibi_meta.errors import Busy

log = logging.getLogger("chibi_meta.bridge.engine")


class Generator(Protocol):
    """What the bridge needs of chibi_meta.gan.api.TextureGenerator."""

    model_id: str
    attribution: str
    resolution: int

    @property
    def schema(self) -> Any: ...

    def resolve(self, seed: int, attrs: Mapping[str, object] | None) -> dict[str, str]: ...

    def generate(
        self, seeds: Sequence[int], attrs_list: Sequence[Mapping[str, str]] | None = None, truncation: float = 1.0
    ) -> np.ndarray: ...


Packager = Callable[..., bytes]
Generated = tuple[np.ndarray, "faces.FaceSheet | None"]  # a texture and its face sheet


def _server_version() -> str:
    try:
        from importlib.metadata import version

        return f"chibi-meta/{version('chibi-meta')}"
    except Exception:
        return "chibi-meta"


def encode_png(texture: np.ndarray, provenance: Mapping[str, Any] | None = None) -> bytes:
    """The bare texture as PNG, deterministic (fixed compression, provenance in a tEXt chunk)."""
    text = {"chibi_meta": json.dumps(provenance, sort_keys=True, separators=(",", ":"))} if provenance else None
    return png.encode_png(np.ascontiguousarray(texture, dtype=np.uint8), text)


def _generator_chunk(generator: Generator) -> int:
    """Rows per forward pass of chibi_meta.gan.api (it pads batches to a multiple of this)."""
    chunk = getattr(generator, "chunk", None)
    if chunk is None:
        try:
            from chibi_meta.gan.api import CHUNK as chunk
        except ImportError:
            chunk = 1
    return max(1, int(chunk))


def default_packager() -> Packager:
    from chibi_meta.avatar import build_avatar

    return build_avatar


class Engine:
    """Turns resolved requests into assets, with caching, coalescing, batching and admission control."""

    def __init__(
        self,
        generator: Generator,
        *,
        cache: AssetCache | None = None,
        stats: Stats | None = None,
        max_batch: int = limits.BATCH_MAX_SIZE,
        max_wait_ms: float = limits.BATCH_MAX_WAIT_MS,
        queue_max: int = limits.QUEUE_MAX,
        pack_threads: int = limits.PACK_THREADS,
        packager: Packager | None = None,
    ) -> None:
        self.gen = generator
        self.cache = cache if cache is not None else AssetCache()
        self.stats = stats if stats is not None else Stats()
        self.queue_max = int(queue_max)
        self.packager = packager
        self._gen_pool = ThreadPoolExecutor(1, thread_name_prefix="chibi-gen")
        self._pack_pool = ThreadPoolExecutor(max(1, pack_threads), thread_name_prefix="chibi-pack")
        self._io_pool = ThreadPoolExecutor(2, thread_name_prefix="chibi-io")
        self.batcher: Batcher[tuple[int, dict[str, str], float, bool], Generated] = Batcher(
            self._generate_batch,
            self._gen_pool,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            on_batch=lambda n, ms: self.stats.record_batch(n, ms),
            align=_generator_chunk(generator),
        )
        self._jobs: dict[str, asyncio.Task[Asset]] = {}
        self._waiters: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self.packager is None:
            self.packager = default_packager()
        self.batcher.start()

    def warm_up(self) -> None:
        """One generation and packaging per format, so that the first client does not pay for lazy setup."""
        if self.packager is None:
            self.packager = default_packager()
        t0 = time.perf_counter()
        tex = self._generate_batch([(0, self.gen.resolve(0, None), 1.0, True)] * 2)[0]
        for fmt, outfit in [(f, o) for f in FORMATS if f != "png" for o in PACKAGING_ATTRIBUTES["outfit"]] + [
                ("png", None)]:  # fmt: skip
            attrs = {**self.gen.resolve(0, None), **({"outfit": outfit} if outfit else {})}
            req = ResolvedRequest(0, attrs, fmt, DEFAULT_TEXTURE_SIZE, "png", 1.0, str(self.gen.model_id))
            self._package(req, tex)
        log.info("event=warm_up ms=%.1f", (time.perf_counter() - t0) * 1000)

    async def close(self) -> None:
        await self.batcher.stop()
        for pool in (self._gen_pool, self._pack_pool, self._io_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    @property
    def pending(self) -> int:
        """Generation jobs admitted and not finished (the bounded queue's depth)."""
        return len(self._jobs)

    def capabilities(self, *, auth_required: bool, rate: float, burst: int, in_flight: int) -> dict[str, Any]:
        schema = self.gen.schema
        return {
            "server": _server_version(),
            "model_id": self.gen.model_id,
            "attribution": self.gen.attribution,
            "attributes": {**{a.name: list(a.values) for a in schema.attributes},
                           **{k: list(v) for k, v in PACKAGING_ATTRIBUTES.items()}},
            "formats": list(FORMATS),
            "texture_sizes": list(TEXTURE_SIZES),
            "texture_formats": list(TEXTURE_FORMATS),
            "morph_target_sets": list(MORPH_TARGET_SETS),
            "default_morph_targets": list(DEFAULT_MORPH_TARGETS),
            "texture_resolution": int(self.gen.resolution),
            "auth": "token" if auth_required else "none",
            "limits": {
                "max_message_bytes": limits.WS_MAX_MESSAGE_BYTES,
                "max_id_chars": limits.WS_MAX_ID_CHARS,
                "max_in_flight": int(in_flight),
                "rate_per_s": rate,
                "rate_burst": int(burst),
                "max_seed": limits.MAX_SEED,
                "max_truncation": limits.MAX_TRUNCATION,
                "max_batch": self.batcher.max_batch,
                "queue_max": self.queue_max,
            },
        }

    # -- requests -------------------------------------------------------------------------------
    def resolve(self, msg: Generate) -> ResolvedRequest:
        """Validate attributes against the model and fill what is missing (raises with allowed values)."""
        seed = msg.seed if msg.seed is not None else secrets.randbelow(limits.MAX_SEED + 1)
        gan_attrs, pkg = split_packaging(msg.attributes)
        attrs = self.gen.resolve(seed, gan_attrs)
        if msg.format == "png":  # the bare texture: native resolution, always PNG, no outfit, no morph targets
            size, tfmt, morphs = int(self.gen.resolution), "png", ()
            if pkg:
                choose_outfit(seed, pkg)  # still validated
        else:
            size, tfmt, morphs = msg.texture_size, msg.texture_format, tuple(msg.morph_targets)
            attrs["outfit"] = choose_outfit(seed, pkg)
        return ResolvedRequest(
            seed=seed,
            attributes=dict(attrs),
            format=msg.format,
            texture_size=size,
            texture_format=tfmt,
            truncation=float(msg.truncation),
            model_id=str(self.gen.model_id),
            morph_targets=morphs,
        )

    async def get(self, req: ResolvedRequest) -> tuple[Asset, bool]:
        """The asset for ``req`` and whether it came from the cache. Cancellable."""
        key = req.key()
        hit = self.cache.get_memory(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit, True
        job = self._jobs.get(key)
        if job is not None:
            self.stats.coalesced += 1
            self.stats.cache_misses += 1
            return await self._wait(key, job), False
        if self.cache.disk_dir is not None:
            hit = await asyncio.get_running_loop().run_in_executor(self._io_pool, self.cache.get_disk, key)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit, True
            job = self._jobs.get(key)  # another request may have started it meanwhile
            if job is not None:
                self.stats.coalesced += 1
                self.stats.cache_misses += 1
                return await self._wait(key, job), False
        if len(self._jobs) >= self.queue_max:
            busy = Busy(f"the generation queue is full ({self.queue_max} jobs); retry shortly")
            busy.retry_after_ms = 50 + 5 * len(self._jobs)  # type: ignore[attr-defined]
            raise busy
        self.stats.cache_misses += 1
        job = asyncio.get_running_loop().create_task(self._produce(req, key), name=f"job-{key[:8]}")
        self._jobs[key] = job
        job.add_done_callback(self._forget)
        return await self._wait(key, job), False

    def _forget(self, job: asyncio.Task[Asset]) -> None:
        for k, j in list(self._jobs.items()):
            if j is job:
                del self._jobs[k]

    async def _wait(self, key: str, job: asyncio.Task[Asset]) -> Asset:
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            cancelling = getattr(me, "cancelling", None)
            if job.cancelled() and cancelling is not None and not cancelling():
                raise Busy("the server dropped this job (it is shutting down); retry") from None
            raise
        finally:
            n = self._waiters.get(key, 1) - 1
            if n <= 0:
                self._waiters.pop(key, None)
                if not job.done():  # nobody wants it any more; new requests must not join it
                    if self._jobs.get(key) is job:
                        del self._jobs[key]
                    job.cancel()
            else:
                self._waiters[key] = n

    async def _produce(self, req: ResolvedRequest, key: str) -> Asset:
        loop = asyncio.get_running_loop()
        gan_attrs = {k: v for k, v in req.attributes.items() if k not in PACKAGING_ATTRIBUTES}
        sheet = req.format != "png" and bool(getattr(req, "morph_targets", True))
        fut = self.batcher.submit((req.seed, gan_attrs, req.truncation, sheet))
        try:
            texture = await fut
        except asyncio.CancelledError:
            fut.cancel()
            raise
        asset = await loop.run_in_executor(self._pack_pool, self._package_asset, req, texture)
        await loop.run_in_executor(self._io_pool, self.cache.put, key, asset)
        return asset

    # -- worker-thread functions ---------------------------------------------------------------
    def _generate_batch(self, items: list[tuple[int, dict[str, str], float, bool]]) -> list[Generated]:
        """Textures for every item, and the face sheets of those that want one (the variants of the
        whole batch go through the generator together, on the face region only)."""
        out: list[Generated | None] = [None] * len(items)
        groups: dict[float, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item[2], []).append(i)
        variants = faces.variants_for(self.gen.schema.names) if hasattr(self.gen, "generate_regions") else ()
        parts = frozenset(faces.parts_drawn(variants))
        for trunc, idx in groups.items():
            tex = self.gen.generate([items[i][0] for i in idx], [items[i][1] for i in idx], truncation=trunc)
            want = [i for i in idx if items[i][3] and variants]
            regions = self.gen.generate_regions(  # type: ignore[attr-defined]
                [items[i][0] for i in want], [items[i][1] for i in want], variants, faces.SHEET_BOX, truncation=trunc
            ) if want else None  # fmt: skip
            for j, i in enumerate(idx):
                sheet = faces.FaceSheet(regions[want.index(i)], parts) if regions is not None and i in want else None
                out[i] = (np.array(tex[j], copy=True), sheet)
        return out  # type: ignore[return-value]

    def _package_asset(self, req: ResolvedRequest, generated: Generated) -> Asset:
        return Asset.of(self._package(req, generated))  # hashing here keeps it off the event loop

    def _package(self, req: ResolvedRequest, generated: Generated) -> bytes:
        texture, sheet = generated
        provenance = {
            "seed": req.seed,
            "attributes": req.attributes,
            "model_id": req.model_id,
            "attribution": self.gen.attribution,
        }
        if req.format == "png":
            return encode_png(texture, provenance)
        packager = self.packager or default_packager()
        return packager(
            texture,
            req.attributes,
            fmt=req.format,
            texture_size=req.texture_size,
            texture_format=req.texture_format,
            provenance=provenance,
            **({"face_sheet": sheet} if sheet is not None else {}),
            morph_targets=morph_targets_json(req.morph_targets),  # the request's form: ["none"] for none
        )
