"""Protocol v1 of the websocket bridge, sans I/O: parse, validate and serialise messages.

Nothing here touches a socket. :func:`parse_client_message` turns one websocket frame from a
client into a typed request (or raises a :class:`~chibi_meta.errors.ChibiError` whose ``code`` is
the protocol error code); the ``*_message`` functions build the JSON the server sends back.
docs/protocol.md is the reference for engine developers; docs/schemas/*.json are the JSON Schemas
of every message, and the tests check real traffic against them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chibi_meta import limits
from chibi_meta.avatar import names
from chibi_meta.errors import (
    AttributeValueError,
    ChibiError,
    LimitExceeded,
    ProtocolError,
)

PROTOCOL_VERSION = 1
FORMATS = ("glb", "vrm", "png")
TEXTURE_SIZES = (256, 512, 1024)
TEXTURE_FORMATS = ("png", "jpeg", "webp")
DEFAULT_FORMAT = "glb"
DEFAULT_TEXTURE_SIZE = 256  # the atlas holds the 128 px face at its native size; 512+ only upscales
DEFAULT_TEXTURE_FORMAT = "png"
MEDIA_TYPES = {"glb": "model/gltf-binary", "vrm": "model/gltf-binary", "png": "image/png"}
# A request's ``morph_targets``: any of the sets of chibi_meta.avatar.names.MORPH_SETS, or "none" alone
MORPH_TARGET_SETS = (*names.MORPH_SETS, "none")
DEFAULT_MORPH_TARGETS = tuple(names.DEFAULT_MORPH_SETS)
ERROR_CODES = ("bad_request", "unknown_attribute", "invalid_value", "too_large", "busy", "unauthorized", "internal")

# Websocket close codes the server uses (RFC 6455 section 7.4.1).
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_POLICY = 1008  # unauthorized, or a flood past WS_MAX_STRIKES
CLOSE_TOO_BIG = 1009  # a message larger than WS_MAX_MESSAGE_BYTES
CLOSE_INTERNAL = 1011  # the server failed

_MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "hello": frozenset({"type", "protocol", "token", "client"}),
    "generate": frozenset(
        {"type", "id", "seed", "attributes", "format", "texture_size", "texture_format", "truncation",
         "morph_targets"}
    ),
    "cancel": frozenset({"type", "id"}),
    "stats": frozenset({"type"}),
}


@dataclass(frozen=True)
class Hello:
    protocol: int
    token: str | None = None
    client: str | None = None


@dataclass(frozen=True)
class Generate:
    """A `generate` request as the client sent it (attributes validated later, against the model)."""

    id: str
    seed: int | None
    attributes: dict[str, Any] = field(default_factory=dict)
    format: str = DEFAULT_FORMAT
    texture_size: int = DEFAULT_TEXTURE_SIZE
    texture_format: str = DEFAULT_TEXTURE_FORMAT
    truncation: float = 1.0
    morph_targets: tuple[str, ...] = DEFAULT_MORPH_TARGETS  # canonical order; () for ["none"]


@dataclass(frozen=True)
class Cancel:
    id: str


@dataclass(frozen=True)
class StatsRequest:
    pass


ClientMessage = Hello | Generate | Cancel | StatsRequest


@dataclass(frozen=True)
class ResolvedRequest:
    """A fully resolved generate request: what the asset depends on, and nothing else."""

    seed: int
    attributes: dict[str, str]
    format: str
    texture_size: int
    texture_format: str
    truncation: float
    model_id: str
    morph_targets: tuple[str, ...] = DEFAULT_MORPH_TARGETS  # canonical order; () = none; ignored for png

    def canonical(self) -> str:
        """Canonical JSON: sorted keys, no whitespace. Equal requests give equal strings.

        ``morph_targets`` is part of it for glb/vrm only: the bare png texture has no morph targets.
        """
        doc: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "seed": self.seed,
            "attributes": dict(sorted(self.attributes.items())),
            "format": self.format,
            "texture_size": self.texture_size,
            "texture_format": self.texture_format,
            "truncation": self.truncation,
            "model_id": self.model_id,
        }
        if self.format != "png":
            doc["morph_targets"] = list(self.morph_targets)
        return json.dumps(
            doc,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )

    def key(self) -> str:
        """The cache key: sha256 (hex) of :meth:`canonical`."""
        return hashlib.sha256(self.canonical().encode("ascii")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Parsing


def _reject_constant(name: str) -> float:
    raise ProtocolError(f"JSON constant {name} is not allowed; send finite numbers only")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ProtocolError(f"duplicate key {k!r} in a JSON object; send each field once")
        out[k] = v
    return out


def decode_frame(frame: str | bytes, *, max_bytes: int = limits.WS_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """One websocket frame -> a JSON object. Binary frames and non-objects are refused."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raise ProtocolError("binary frames are not accepted from clients; send control messages as JSON text frames")
    if len(frame) > max_bytes:  # websockets normally closes first (1009); this guards direct callers
        raise LimitExceeded(f"message of {len(frame)} characters exceeds the limit of {max_bytes} bytes")
    try:
        obj = json.loads(frame, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    except ValueError as e:
        raise ProtocolError(f"message is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"a message must be a JSON object with a \"type\" field, got {type(obj).__name__}")
    return obj


def _check_fields(obj: Mapping[str, Any], kind: str) -> None:
    unknown = sorted(set(obj) - _MESSAGE_FIELDS[kind])
    if unknown:
        allowed = ", ".join(sorted(_MESSAGE_FIELDS[kind]))
        raise ProtocolError(f"unknown field(s) {', '.join(map(repr, unknown))} in {kind!r}; allowed: {allowed}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_id(obj: Mapping[str, Any]) -> str:
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        raise ProtocolError(f"\"id\" must be a non-empty string, got {_describe(rid)}")
    if len(rid) > limits.WS_MAX_ID_CHARS:
        raise ProtocolError(f"\"id\" has {len(rid)} characters; the limit is {limits.WS_MAX_ID_CHARS}")
    return rid


def peek_id(obj: object) -> str | None:
    """The request id of a (possibly invalid) message, if it has a usable one; for error replies."""
    if isinstance(obj, dict):
        rid = obj.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= limits.WS_MAX_ID_CHARS:
            return rid
    return None


def _describe(v: object) -> str:
    text = repr(v)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(v).__name__} {text}"


def parse_client_message(frame: str | bytes, *, max_bytes: int = limits.WS_MAX_MESSAGE_BYTES) -> ClientMessage:
    """Parse and validate one client frame. Raises ChibiError subclasses carrying protocol codes."""
    return parse_object(decode_frame(frame, max_bytes=max_bytes))


def parse_object(obj: Mapping[str, Any]) -> ClientMessage:
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _MESSAGE_FIELDS:
        raise ProtocolError(
            f"unknown message type {_describe(kind)}; expected one of: {', '.join(_MESSAGE_FIELDS)}"
        )
    _check_fields(obj, kind)
    if kind == "hello":
        return _parse_hello(obj)
    if kind == "generate":
        return _parse_generate(obj)
    if kind == "cancel":
        return Cancel(parse_id(obj))
    return StatsRequest()


def _parse_hello(obj: Mapping[str, Any]) -> Hello:
    version = obj.get("protocol", PROTOCOL_VERSION)
    if not _is_int(version):
        raise ProtocolError(f"\"protocol\" must be an integer, got {_describe(version)}")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}")
    token = obj.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > 1024):
        raise ProtocolError("\"token\" must be a string of at most 1024 characters")
    client = obj.get("client")
    if client is not None and (not isinstance(client, str) or len(client) > 200):
        raise ProtocolError("\"client\" must be a string of at most 200 characters")
    return Hello(version, token, client)


def _parse_generate(obj: Mapping[str, Any]) -> Generate:
    rid = parse_id(obj)
    seed = obj.get("seed")
    if seed is not None:
        if not _is_int(seed):
            raise AttributeValueError(
                f"\"seed\" must be an integer in [0, {limits.MAX_SEED}] or null, got {_describe(seed)}"
            )
        if not 0 <= seed <= limits.MAX_SEED:
            raise AttributeValueError(f"seed {seed} out of range; allowed: integers in [0, {limits.MAX_SEED}]")
    attrs = obj.get("attributes", {})
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, dict):
        raise ProtocolError(f"\"attributes\" must be an object of name -> value, got {_describe(attrs)}")
    for k, v in attrs.items():
        if not isinstance(v, str):
            raise AttributeValueError(f"attribute {k!r} takes a string value, got {_describe(v)}")
    fmt = obj.get("format", DEFAULT_FORMAT)
    if fmt not in FORMATS or not isinstance(fmt, str):
        raise AttributeValueError(f"unknown format {_describe(fmt)}; allowed: {', '.join(FORMATS)}")
    size = obj.get("texture_size", DEFAULT_TEXTURE_SIZE)
    if not _is_int(size) or size not in TEXTURE_SIZES:
        raise AttributeValueError(
            f"unsupported texture_size {_describe(size)}; allowed: {', '.join(map(str, TEXTURE_SIZES))}"
        )
    tfmt = obj.get("texture_format", DEFAULT_TEXTURE_FORMAT)
    if not isinstance(tfmt, str) or tfmt not in TEXTURE_FORMATS:
        raise AttributeValueError(f"unknown texture_format {_describe(tfmt)}; allowed: {', '.join(TEXTURE_FORMATS)}")
    trunc = obj.get("truncation", 1.0)
    if isinstance(trunc, bool) or not isinstance(trunc, (int, float)):
        raise AttributeValueError(
            f"\"truncation\" must be a number in [0, {limits.MAX_TRUNCATION}], got {_describe(trunc)}"
        )
    if not 0 <= trunc <= limits.MAX_TRUNCATION or (isinstance(trunc, float) and not math.isfinite(trunc)):
        raise AttributeValueError(f"truncation {trunc} out of range; allowed: [0, {limits.MAX_TRUNCATION}]")
    morphs = parse_morph_targets(obj.get("morph_targets"))
    return Generate(rid, seed, dict(attrs), fmt, size, tfmt, float(trunc), morphs)


def parse_morph_targets(value: object) -> tuple[str, ...]:
    """A request's ``morph_targets`` -> the sets in canonical order (``()`` for ``["none"]``).

    Absent or null: every set (DEFAULT_MORPH_TARGETS). Raises AttributeValueError (invalid_value)
    naming the allowed sets; messages quote the offending value shortened, as the other fields do.
    """
    if value is None:
        return DEFAULT_MORPH_TARGETS
    allowed = ", ".join(MORPH_TARGET_SETS)
    if not isinstance(value, list) or not value:
        raise AttributeValueError(
            f"\"morph_targets\" must be a non-empty list of set names, got {_describe(value)}; allowed: {allowed}"
        )
    for v in value:
        if not isinstance(v, str) or v not in MORPH_TARGET_SETS:
            raise AttributeValueError(f"unknown morph-target set {_describe(v)}; allowed: {allowed}")
    if "none" in value and any(v != "none" for v in value):
        raise AttributeValueError(f"\"morph_targets\": \"none\" cannot be combined with other sets; allowed: {allowed}")
    return names.check_morph_sets(value)  # the one canonical order (names.MORPH_SETS)


def morph_targets_json(sets: tuple[str, ...]) -> list[str]:
    """Resolved morph-target sets as a request would send them (``["none"]`` for no morph targets)."""
    return list(sets) if sets else ["none"]


# ---------------------------------------------------------------------------------------------
# Serialising server messages


def dumps(obj: Mapping[str, Any]) -> str:
    # ASCII-only output: a lone surrogate echoed from a request stays valid UTF-8 on the wire
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def hello_message(capabilities: Mapping[str, Any]) -> str:
    return dumps({"type": "hello", "protocol": PROTOCOL_VERSION, **capabilities})


def result_message(
    rid: str, req: ResolvedRequest, *, sha256: str, byte_length: int, cached: bool
) -> str:
    extra = {} if req.format == "png" else {"morph_targets": morph_targets_json(req.morph_targets)}
    return dumps(
        {
            "type": "result",
            "id": rid,
            "seed": req.seed,
            "attributes": req.attributes,
            "format": req.format,
            "texture_size": req.texture_size,
            "texture_format": req.texture_format,
            "truncation": req.truncation,
            "model_id": req.model_id,
            **extra,
            "media_type": MEDIA_TYPES[req.format],
            "sha256": sha256,
            "byte_length": byte_length,
            "cached": cached,
        }
    )


def error_message(rid: str | None, code: str, message: str, *, retry_after_ms: int | None = None) -> str:
    if code not in ERROR_CODES:
        code = "internal"
    out: dict[str, Any] = {"type": "error", "id": rid, "code": code, "message": message}
    if retry_after_ms is not None:
        out["retry_after_ms"] = int(retry_after_ms)
    return dumps(out)


def error_from_exception(rid: str | None, exc: BaseException) -> str:
    """Map an exception to an error message. Only ChibiError messages reach the client verbatim."""
    if isinstance(exc, ChibiError):
        return error_message(rid, exc.code, str(exc), retry_after_ms=getattr(exc, "retry_after_ms", None))
    return error_message(rid, "internal", "internal server error; the server log has details")


def cancelled_message(rid: str) -> str:
    return dumps({"type": "cancelled", "id": rid})


def stats_message(stats: Mapping[str, Any]) -> str:
    return dumps({"type": "stats", **stats})
