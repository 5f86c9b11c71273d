"""Python client of the chibi_meta websocket bridge (protocol v1, see docs/protocol.md).

Async::

    async with await BridgeClient.connect("ws://127.0.0.1:8765", token="...") as c:
        r = await c.generate(seed=7, attributes={"hair_color": "pink"}, format="glb")
        open("a.glb", "wb").write(r.data)

Many ``generate`` calls may run at once on one client (``asyncio.gather``); replies are matched
by id. Cancelling the awaiting task sends a ``cancel``. Sync: :func:`request`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chibi_meta.errors import BridgeError

log = logging.getLogger("chibi_meta.client")
_ids = itertools.count(1)


class RequestError(BridgeError):
    """The server answered `error` (``code`` is the protocol error code) or the connection failed."""

    def __init__(self, code: str, message: str, *, id: str | None = None, retry_after_ms: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.id = id
        self.retry_after_ms = retry_after_ms


class RequestCancelled(BridgeError):
    """The server confirmed a `cancel`."""

    code = "cancelled"


@dataclass(frozen=True)
class Result:
    """A `result` header and its asset bytes."""

    header: dict[str, Any]
    data: bytes

    @property
    def id(self) -> str:
        return self.header["id"]

    @property
    def seed(self) -> int:
        return self.header["seed"]

    @property
    def attributes(self) -> dict[str, str]:
        return self.header["attributes"]

    @property
    def sha256(self) -> str:
        return self.header["sha256"]

    @property
    def media_type(self) -> str:
        return self.header["media_type"]

    @property
    def morph_targets(self) -> list[str] | None:
        """The morph-target sets the GLB/VRM carries (``["none"]``: none); None for a png."""
        return self.header.get("morph_targets")

    @property
    def cached(self) -> bool:
        return bool(self.header.get("cached"))


class BridgeClient:
    """One websocket connection to a bridge server. Create with :meth:`connect`."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.hello: dict[str, Any] = {}
        self._pending: dict[str, asyncio.Future[Result]] = {}
        self._control: dict[str, list[asyncio.Future[dict[str, Any]]]] = {"hello": [], "stats": []}
        self._header: dict[str, Any] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed_error: RequestError | None = None
        self.unmatched_errors: list[dict[str, Any]] = []  # errors with no id (e.g. rate limit on garbage)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        token_in_hello: bool = False,
        origin: str | None = None,
        open_timeout: float = 10.0,
        max_size: int = 256 * 1024 * 1024,
        client_name: str = "chibi_meta.client",
    ) -> BridgeClient:
        """Open, send `hello` (with the token when ``token_in_hello``), wait for the server's `hello`."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        headers = {"Authorization": f"Bearer {token}"} if token and not token_in_hello else None
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                origin=origin,  # type: ignore[arg-type]
                open_timeout=open_timeout,
                max_size=max_size,
                compression=None,
            )
        except InvalidStatus as e:
            status = e.response.status_code
            code = {401: "unauthorized", 403: "unauthorized", 503: "busy"}.get(status, "internal")
            body = e.response.body.decode("utf-8", "replace").strip() if e.response.body else ""
            raise RequestError(code, f"handshake refused with HTTP {status} {body}".strip()) from None
        except (OSError, asyncio.TimeoutError) as e:
            raise RequestError("internal", f"cannot connect to {url}: {e}") from None
        client = cls(ws)
        client._reader = asyncio.get_running_loop().create_task(client._read())
        hello: dict[str, Any] = {"type": "hello", "protocol": 1, "client": client_name}
        if token and token_in_hello:
            hello["token"] = token
        try:
            client.hello = await client._control_request("hello", hello, timeout=open_timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def __aenter__(self) -> BridgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)

    # -- requests -------------------------------------------------------------------------------
    async def generate(
        self,
        *,
        seed: int | None = None,
        attributes: Mapping[str, str] | None = None,
        format: str = "glb",
        texture_size: int | None = None,
        texture_format: str | None = None,
        truncation: float | None = None,
        morph_targets: Sequence[str] | None = None,
        id: str | None = None,
        verify: bool = True,
    ) -> Result:
        """Request one asset; raises :class:`RequestError` with the server's code on `error`.

        ``morph_targets``: which morph-target sets a GLB/VRM carries, any of ``hello["morph_target_sets"]``
        (``"vrm"``, ``"oculus"``, ``"arkit"``) or ``["none"]``; None: the server's default (all).
        """
        rid = id or f"r{next(_ids)}"
        msg: dict[str, Any] = {"type": "generate", "id": rid, "seed": seed, "format": format}
        if attributes:
            msg["attributes"] = dict(attributes)
        if texture_size is not None:
            msg["texture_size"] = texture_size
        if texture_format is not None:
            msg["texture_format"] = texture_format
        if truncation is not None:
            msg["truncation"] = truncation
        if morph_targets is not None:  # a list as is; anything else too, so that the server names the error
            msg["morph_targets"] = list(morph_targets) if isinstance(morph_targets, (list, tuple)) else morph_targets
        if self._closed_error is not None:
            raise self._closed_error
        if rid in self._pending:
            raise RequestError("bad_request", f"id {rid!r} is already in flight on this client")
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self.ws.send(json.dumps(msg))
            res = await asyncio.shield(fut)
        except asyncio.CancelledError:
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody awaits it any more
            if not fut.done():
                with contextlib.suppress(Exception):
                    await self.ws.send(json.dumps({"type": "cancel", "id": rid}))
            raise
        except Exception as e:
            if not isinstance(e, BridgeError):
                raise RequestError("internal", f"connection failed: {e}") from None
            raise
        finally:
            if fut.done() or fut.cancelled():
                self._pending.pop(rid, None)
        digest = hashlib.sha256(res.data).hexdigest() if verify else res.sha256
        if len(res.data) != res.header.get("byte_length") or digest != res.sha256:
            raise RequestError("internal", f"asset for {rid!r} does not match its sha256/byte_length")
        return res

    async def cancel(self, rid: str) -> None:
        """Ask the server to drop request ``rid``; its generate() then raises RequestCancelled."""
        await self.ws.send(json.dumps({"type": "cancel", "id": rid}))

    async def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        return await self._control_request("stats", {"type": "stats"}, timeout=timeout)

    async def send_raw(self, frame: str | bytes) -> None:
        """Send any frame as is (for tests and debugging)."""
        await self.ws.send(frame)

    async def _control_request(self, kind: str, msg: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        if self._closed_error is not None:
            raise self._closed_error
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._control[kind].append(fut)
        try:
            await self.ws.send(json.dumps(msg))
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise RequestError("internal", f"no {kind!r} reply within {timeout:g} s") from None
        except BridgeError:
            raise
        except Exception as e:
            raise RequestError("internal", f"connection failed: {e}") from None
        finally:
            with contextlib.suppress(ValueError):
                self._control[kind].remove(fut)

    # -- reading ----------------------------------------------------------------------------------
    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        err = RequestError("internal", "connection closed")
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self._on_binary(frame)
                else:
                    self._on_text(frame)
        except ConnectionClosed:
            pass
        except Exception as e:  # a protocol violation by the server
            log.warning("event=client_read_failed error=%r", e)
            err = RequestError("internal", f"bad reply from server: {e}")
        rcvd = getattr(self.ws, "close_rcvd", None)
        if rcvd is not None:
            err = RequestError(
                "unauthorized" if rcvd.code == 1008 and "unauth" in rcvd.reason else "internal",
                f"connection closed by server: code {rcvd.code} {rcvd.reason}".strip(),
            )
        for e in self.unmatched_errors:
            if e.get("code") == "unauthorized":
                err = RequestError("unauthorized", e.get("message", ""))
        self._closed_error = err
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        for futs in self._control.values():
            for f in futs:
                if not f.done():
                    f.set_exception(err)

    def _on_text(self, frame: str) -> None:
        msg = json.loads(frame)
        kind = msg.get("type")
        if kind == "result":
            self._header = msg
        elif kind in ("hello", "stats"):
            futs = self._control[kind]
            while futs:
                f = futs.pop(0)
                if not f.done():
                    f.set_result(msg)
                    break
        elif kind == "error":
            rid = msg.get("id")
            fut = self._pending.get(rid) if rid is not None else None
            exc = RequestError(msg.get("code", "internal"), msg.get("message", ""), id=rid,
                               retry_after_ms=msg.get("retry_after_ms"))
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                self._pending.pop(rid, None)
            else:
                self.unmatched_errors.append(msg)
                if msg.get("code") == "unauthorized":
                    for futs in self._control.values():
                        for f in futs:
                            if not f.done():
                                f.set_exception(exc)
        elif kind == "cancelled":
            fut = self._pending.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_exception(RequestCancelled(f"request {msg.get('id')!r} cancelled"))
        else:
            log.warning("event=unknown_message type=%r", kind)

    def _on_binary(self, frame: bytes) -> None:
        header, self._header = self._header, None
        if header is None:
            raise ValueError("binary frame without a result header")
        fut = self._pending.pop(header["id"], None)
        if fut is not None and not fut.done():
            fut.set_result(Result(header, frame))


async def request_one(url: str, *, token: str | None = None, **kwargs: Any) -> Result:
    """Connect, request one asset, disconnect."""
    async with await BridgeClient.connect(url, token=token) as c:
        return await c.generate(**kwargs)


def request(url: str, *, token: str | None = None, **kwargs: Any) -> Result:
    """Blocking helper: one asset from the bridge at ``url`` (see :meth:`BridgeClient.generate`)."""
    return asyncio.run(request_one(url, token=token, **kwargs))
