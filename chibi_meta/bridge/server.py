"""The websocket front end of the bridge (asyncio, `websockets`): handshake, auth, limits, dispatch.

Everything about message syntax lives in :mod:`chibi_meta.bridge.protocol`; everything about
producing assets in :mod:`chibi_meta.bridge.engine`. This module only moves frames: it checks the
HTTP handshake (``GET /healthz``, bearer token, origin, connection count), enforces per-connection
limits (rate, requests in flight), runs each request as a task so replies finish in any order,
and sends each result as a JSON header immediately followed by one binary frame. Plain GETs under
``/preview`` get the artist page's files (:mod:`chibi_meta.preview`), which is just another client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from chibi_meta import limits
from chibi_meta.bridge import protocol as P
from chibi_meta.bridge.auth import TokenAuth
from chibi_meta.bridge.engine import Engine
from chibi_meta.errors import Busy, ChibiError, LimitExceeded, ProtocolError
from chibi_meta.preview import respond as preview_response

log = logging.getLogger("chibi_meta.bridge.server")
_conn_ids = itertools.count(1)


@dataclass
class ServerConfig:
    """Every knob of the server, defaulting to chibi_meta.limits."""

    host: str = "127.0.0.1"
    port: int = 8765
    tokens: Sequence[str] = ()
    origins: Sequence[str] | None = None  # None: any origin; else this allow-list (and no Origin header)
    max_message_bytes: int = limits.WS_MAX_MESSAGE_BYTES
    max_in_flight: int = limits.WS_MAX_IN_FLIGHT
    rate_per_s: float = limits.WS_RATE_PER_S
    rate_burst: int = limits.WS_RATE_BURST
    max_strikes: int = limits.WS_MAX_STRIKES
    max_connections: int = limits.WS_MAX_CONNECTIONS
    max_queue_frames: int = limits.WS_MAX_QUEUE_FRAMES
    write_limit: int = limits.WS_WRITE_LIMIT
    hello_timeout_s: float = limits.WS_HELLO_TIMEOUT_S
    ping_interval_s: float | None = limits.WS_PING_INTERVAL_S
    ping_timeout_s: float | None = limits.WS_PING_TIMEOUT_S
    open_timeout_s: float = limits.WS_OPEN_TIMEOUT_S
    close_timeout_s: float = limits.WS_CLOSE_TIMEOUT_S
    grace_s: float = limits.SHUTDOWN_GRACE_S
    compression: str | None = None  # assets are PNG/GLB: deflate costs CPU and saves little
    preview: bool = True  # serve the artist preview page at /preview/ (docs/preview.md)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self.tokens = self.burst
        self.t = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after_ms(self) -> int:
        return int(max(1.0, (1.0 - self.tokens) / self.rate * 1000.0)) if self.rate > 0 else 1000


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    cid: int
    bucket: TokenBucket
    authed: bool
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # id -> request task, until it sends
    cancelling: set[str] = field(default_factory=set)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    strikes: int = 0


class BridgeServer:
    """One bridge server process. ``await start()``, then ``await shutdown()``."""

    def __init__(self, engine: Engine, config: ServerConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ServerConfig()
        self.auth = TokenAuth(self.config.tokens)
        self.stats = engine.stats
        self.draining = False
        self._server: Server | None = None
        self._conns: set[_Conn] = set()
        self._all_tasks: set[asyncio.Task[None]] = set()
        self._hello: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        c = self.config
        self.engine.start()
        self._hello = P.hello_message(
            self.engine.capabilities(
                auth_required=self.auth.required, rate=c.rate_per_s, burst=c.rate_burst, in_flight=c.max_in_flight
            )
        )
        origins: list[str | None] | None = None if c.origins is None else [*c.origins, None]
        self._server = await serve(
            self._handler,
            c.host,
            c.port,
            origins=origins,  # type: ignore[arg-type]
            compression=c.compression,
            process_request=self._process_request,
            max_size=c.max_message_bytes,
            max_queue=c.max_queue_frames,
            write_limit=c.write_limit,
            ping_interval=c.ping_interval_s,
            ping_timeout=c.ping_timeout_s,
            open_timeout=c.open_timeout_s,
            close_timeout=c.close_timeout_s,
            server_header="chibi-meta",
        )
        log.info("event=listening host=%s port=%d auth=%s origins=%s", c.host, self.port,
                 "token" if self.auth.required else "none", ",".join(c.origins) if c.origins else "any")

    @property
    def port(self) -> int:
        if self._server is None:
            return self.config.port
        return int(self._server.sockets[0].getsockname()[1])

    async def shutdown(self, grace_s: float | None = None) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace_s``), then close with 1001."""
        grace = self.config.grace_s if grace_s is None else grace_s
        self.draining = True
        log.info("event=draining in_flight=%d grace_s=%.1f", len(self._all_tasks), grace)
        if self._all_tasks:
            _, pending = await asyncio.wait(set(self._all_tasks), timeout=max(0.0, grace))
            for t in pending:
                t.cancel()
            if pending:
                log.warning("event=grace_expired cancelled=%d", len(pending))
                await asyncio.wait(pending, timeout=2.0)
        if self._server is not None:
            self._server.close(close_connections=True, code=P.CLOSE_GOING_AWAY, reason="server shutting down")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), self.config.close_timeout_s + 1)
        await self.engine.close()
        log.info("event=stopped")

    # -- HTTP handshake ---------------------------------------------------------------------------
    def _http(self, status: http.HTTPStatus, body: dict[str, Any], **headers: str) -> Response:
        data = (json.dumps(body) + "\n").encode()
        h = Headers({"Content-Type": "application/json", "Content-Length": str(len(data)), **headers})
        return Response(status.value, status.phrase, h, data)

    def _preview(self, target: str) -> Response:
        """The artist page's static files (chibi_meta.preview), or 404 when ``config.preview`` is off."""
        if not self.config.preview:
            return self._http(http.HTTPStatus.NOT_FOUND, {"error": "not_found", "message": "the preview is off"})
        status, reason, headers, body = preview_response(target)
        return Response(status, reason, Headers(headers), body)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            if self.draining:
                return self._http(http.HTTPStatus.SERVICE_UNAVAILABLE, {"status": "draining"})
            return self._http(
                http.HTTPStatus.OK,
                {"status": "ok", "model_id": self.engine.gen.model_id, "connections": len(self._conns),
                 "queue_depth": self.engine.pending},
            )
        if path == "/preview" or path.startswith("/preview/"):
            return self._preview(request.path)
        if self.draining:
            return self._http(http.HTTPStatus.SERVICE_UNAVAILABLE, {"error": "busy", "message": "shutting down"})
        if len(self._conns) >= self.config.max_connections:
            return self._http(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                {"error": "busy", "message": f"connection limit reached ({self.config.max_connections})"},
                **{"Retry-After": "1"},
            )
        verdict = self.auth.check_header(request.headers.get("Authorization"))
        if verdict is False:
            log.info("event=refused reason=bad_token remote=%s", _remote(connection))
            return self._http(
                http.HTTPStatus.UNAUTHORIZED,
                {"error": "unauthorized", "message": "wrong bearer token"},
                **{"WWW-Authenticate": 'Bearer realm="chibi-meta"'},
            )
        connection.chibi_authed = bool(verdict) or not self.auth.required  # type: ignore[attr-defined]
        return None

    # -- connections ------------------------------------------------------------------------------
    async def _handler(self, ws: ServerConnection) -> None:
        c = self.config
        conn = _Conn(ws, next(_conn_ids), TokenBucket(c.rate_per_s, c.rate_burst), getattr(ws, "chibi_authed", False))
        self._conns.add(conn)
        self.stats.connections = len(self._conns)
        self.stats.connections_total += 1
        origin = ws.request.headers.get("Origin") if ws.request else None
        log.info("event=connect conn=%d remote=%s origin=%s", conn.cid, _remote(ws), origin or "-")
        reason = "closed"
        try:
            if not conn.authed and not await self._authenticate(conn):
                reason = "unauthorized"
                return
            async for frame in ws:
                if not conn.bucket.take():
                    conn.strikes += 1
                    self.stats.errors["busy"] += 1
                    if conn.strikes > c.max_strikes:
                        reason = "flood"
                        await self._send_error(conn, None, Busy("rate limit exceeded repeatedly; closing"))
                        await _close_and_drain(ws, P.CLOSE_POLICY, "rate limit exceeded")
                        return
                    busy = Busy(f"rate limit: at most {c.rate_per_s:g} messages/s per connection "
                                f"(burst {c.rate_burst}); slow down")
                    busy.retry_after_ms = conn.bucket.retry_after_ms()  # type: ignore[attr-defined]
                    await self._send_error(conn, _peek(frame), busy)
                    continue
                conn.strikes = 0
                await self._on_frame(conn, frame)
        except ConnectionClosed as e:
            reason = f"closed code={e.rcvd.code if e.rcvd else e.sent.code if e.sent else '-'}"
        finally:
            for t in list(conn.tasks.values()):
                t.cancel()
            self._conns.discard(conn)
            self.stats.connections = len(self._conns)
            log.info("event=disconnect conn=%d reason=%r cancelled=%d", conn.cid, reason, len(conn.tasks))

    async def _authenticate(self, conn: _Conn) -> bool:
        """No valid Authorization header: the first message must be a `hello` with the token."""
        try:
            frame = await asyncio.wait_for(conn.ws.recv(), self.config.hello_timeout_s)
            msg = P.parse_client_message(frame, max_bytes=self.config.max_message_bytes)
            ok = isinstance(msg, P.Hello) and self.auth.check(msg.token)
        except asyncio.TimeoutError:
            ok, msg = False, None
        except ChibiError:
            ok, msg = False, None
        if not ok:
            self.stats.errors["unauthorized"] += 1
            log.info("event=refused reason=no_token conn=%d", conn.cid)
            text = (
                "this server needs a token: send it in the Authorization: Bearer header, or as the \"token\" "
                "of a `hello` message, the first message on the connection"
            )
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(P.error_message(None, "unauthorized", text))
            await _close_and_drain(conn.ws, P.CLOSE_POLICY, "unauthorized")
            return False
        conn.authed = True
        await self._send(conn, self._hello or "")
        return True

    async def _on_frame(self, conn: _Conn, frame: str | bytes) -> None:
        try:
            msg = P.parse_client_message(frame, max_bytes=self.config.max_message_bytes)
        except ChibiError as e:
            if isinstance(frame, str):
                with contextlib.suppress(Exception):
                    if P.decode_frame(frame).get("type") == "generate":
                        self.stats.requests += 1
            await self._send_error(conn, _peek(frame), e)
            return
        if isinstance(msg, P.Generate):
            await self._on_generate(conn, msg)
        elif isinstance(msg, P.Cancel):
            task = conn.tasks.get(msg.id)
            if task is not None and not task.done():
                conn.cancelling.add(msg.id)
                task.cancel()
            # else: unknown id or its result is already being sent -- nothing to do (documented)
        elif isinstance(msg, P.Hello):
            if msg.token is not None and self.auth.required and not self.auth.check(msg.token):
                await self._send_error(conn, None, _unauthorized())
                await _close_and_drain(conn.ws, P.CLOSE_POLICY, "unauthorized")
                return
            await self._send(conn, self._hello or "")
        else:
            snap = self.stats.snapshot(
                queue_depth=self.engine.pending, in_flight=len(self._all_tasks), cache=self.engine.cache.stats()
            )
            await self._send(conn, P.stats_message(snap))

    async def _on_generate(self, conn: _Conn, msg: P.Generate) -> None:
        self.stats.requests += 1
        t0 = time.perf_counter()
        err: ChibiError | None = None
        if self.draining:
            err = Busy("the server is shutting down; reconnect to another replica")
        elif msg.id in conn.tasks:
            err = ProtocolError(f"a request with id {msg.id!r} is already in flight on this connection")
        elif len(conn.tasks) >= self.config.max_in_flight:
            err = LimitExceeded(
                f"too many requests in flight on this connection (limit {self.config.max_in_flight}); "
                "wait for replies or open another connection"
            )
        if err is None:
            try:
                req = self.engine.resolve(msg)
            except ChibiError as e:
                err = e
        if err is not None:
            await self._send_error(conn, msg.id, err)
            return
        task = asyncio.get_running_loop().create_task(self._serve_one(conn, msg.id, req, t0))
        self._all_tasks.add(task)
        task.add_done_callback(self._all_tasks.discard)
        task.add_done_callback(functools.partial(self._reap, conn, msg.id))
        conn.tasks[msg.id] = task

    def _reap(self, conn: _Conn, rid: str, task: asyncio.Task) -> None:
        """A task cancelled before its coroutine started never ran _serve_one's handlers: answer here."""
        if not task.cancelled() or conn.tasks.get(rid) is not task:
            return
        conn.tasks.pop(rid, None)
        if rid in conn.cancelling:
            conn.cancelling.discard(rid)
            if not self.draining:
                self.stats.cancelled += 1
                reply = asyncio.get_running_loop().create_task(self._send(conn, P.cancelled_message(rid)))
                self._all_tasks.add(reply)
                reply.add_done_callback(self._all_tasks.discard)

    async def _serve_one(self, conn: _Conn, rid: str, req: P.ResolvedRequest, t0: float) -> None:
        try:
            try:
                asset, cached = await self.engine.get(req)
            except asyncio.CancelledError:
                if rid in conn.cancelling and not self.draining:
                    self.stats.cancelled += 1
                    conn.tasks.pop(rid, None)
                    await self._send(conn, P.cancelled_message(rid))
                    return
                if self.draining and conn.ws.state.name == "OPEN":
                    with contextlib.suppress(Exception):
                        await self._send(conn, P.error_message(rid, "internal", "the server shut down first"))
                raise
            except Exception as e:  # ChibiError -> its code; anything else -> internal (logged)
                if not isinstance(e, ChibiError):
                    log.exception("event=request_failed conn=%d id=%r", conn.cid, rid)
                conn.tasks.pop(rid, None)
                await self._send_error(conn, rid, e)
                return
            conn.tasks.pop(rid, None)  # from here on the reply is committed: cancel is a no-op
            header = P.result_message(rid, req, sha256=asset.sha256, byte_length=len(asset.data), cached=cached)
            async with conn.send_lock:
                await conn.ws.send(header)
                await conn.ws.send(asset.data)
            ms = (time.perf_counter() - t0) * 1000.0
            self.stats.served += 1
            self.stats.record_latency(ms, cached)
            log.debug("event=served conn=%d id=%r format=%s cached=%s bytes=%d ms=%.2f",
                      conn.cid, rid, req.format, cached, len(asset.data), ms)
        except ConnectionClosed:
            pass
        finally:
            conn.tasks.pop(rid, None)
            conn.cancelling.discard(rid)

    # -- sending ----------------------------------------------------------------------------------
    async def _send(self, conn: _Conn, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            async with conn.send_lock:
                await conn.ws.send(text)

    async def _send_error(self, conn: _Conn, rid: str | None, exc: BaseException) -> None:
        code = exc.code if isinstance(exc, ChibiError) else "internal"
        self.stats.errors[code] += 1
        log.info("event=error conn=%d id=%r code=%s message=%r", conn.cid, rid, code, str(exc)[:200])
        await self._send(conn, P.error_from_exception(rid, exc))


async def _close_and_drain(ws: ServerConnection, code: int, reason: str) -> None:
    """Close, discarding what the client still sends: unread frames would stall the closing handshake."""
    closing = asyncio.get_running_loop().create_task(ws.close(code, reason))
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass
    with contextlib.suppress(Exception):
        await closing


def _peek(frame: str | bytes) -> str | None:
    if not isinstance(frame, str) or len(frame) > limits.WS_MAX_MESSAGE_BYTES:
        return None
    try:
        return P.peek_id(json.loads(frame))
    except (ValueError, RecursionError):
        return None


def _unauthorized() -> ChibiError:
    from chibi_meta.errors import Unauthorized

    return Unauthorized("wrong token")


def _remote(ws: ServerConnection) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except Exception:
        return "-"
