"""The preview page's files over HTTP: a whitelist of ``static/``, content types and security headers.

Only files that exist under ``static/`` when the module first serves, with a known type, can be
served; a request path is never joined to a filesystem path. Anything else (traversal, encoded
characters, backslashes, absolute or empty segments, unknown names) is ``None`` / 404.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import re
from pathlib import Path

log = logging.getLogger("chibi_meta.preview")

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/preview"
INDEX = "index.html"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".vrma": "model/gltf-binary",  # VRM Animation (a GLB): the idle clip the page plays on VRM avatars
}
_TEXT = "text/plain; charset=utf-8"
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_IMPORT_MAP = re.compile(r"<script type=\"importmap\">(.*?)</script>", re.DOTALL)


def _content_type(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1]
    if base == "LICENSE" or base.startswith("LICENSE."):
        return _TEXT
    for suffix, ctype in _TYPES.items():
        if base.endswith(suffix):
            return ctype
    return None


@functools.cache
def _whitelist() -> dict[str, tuple[Path, str]]:
    """Relative POSIX name -> (file, content type), for every servable file under static/."""
    out: dict[str, tuple[Path, str]] = {}
    for p in sorted(STATIC_DIR.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        rel = p.relative_to(STATIC_DIR).as_posix()
        ctype = _content_type(rel)
        if ctype is None or not all(_SAFE_SEGMENT.fullmatch(s) for s in rel.split("/")):
            continue
        out[rel] = (p, ctype)
    return out


@functools.cache
def _read(rel: str) -> bytes:
    return _whitelist()[rel][0].read_bytes()


def files() -> list[str]:
    """The names that :func:`lookup` serves (relative to ``/preview/``)."""
    return list(_whitelist())


def lookup(path: str) -> tuple[bytes, str] | None:
    """``(body, content type)`` of a preview file, or ``None``.

    ``path`` is the name under ``/preview/`` (``""`` is the index), optionally with a query string
    or fragment, which are ignored. Names are matched exactly against the whitelist: no decoding,
    no normalisation, so ``..``, ``%2e``, ``\\`` and absolute paths never match.
    """
    name = path.split("?", 1)[0].split("#", 1)[0] or INDEX
    entry = _whitelist().get(name)  # keys are plain relative names: "..", "%2e", "\\", "/x" never match
    if entry is None:
        return None
    try:
        return _read(name), entry[1]
    except OSError:
        log.warning("event=preview_unreadable name=%s", name)
        return None


def _script_hash(html: str) -> str | None:
    m = _IMPORT_MAP.search(html)
    if m is None:
        return None
    digest = hashlib.sha256(m.group(1).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@functools.cache
def content_security_policy() -> str:
    """The page's CSP: only its own files, plus the inline import map by its SHA-256 (browsers need
    import maps inline); websockets to any host (the page connects to the server it came from)."""
    try:
        h = _script_hash((STATIC_DIR / INDEX).read_text("utf-8"))
    except OSError:
        h = None
    script = "script-src 'self'" + (f" {h}" if h else "")
    return (
        f"default-src 'self'; {script}; connect-src 'self' ws: wss: blob:; img-src 'self' blob: data:; "
        "style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _headers(ctype: str, length: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", ctype),
        ("Content-Length", str(length)),
        ("Content-Security-Policy", content_security_policy()),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-cache"),
        ("Referrer-Policy", "no-referrer"),
        ("Connection", "close"),  # the websocket server answers one plain HTTP request per connection
    ]


def respond(target: str) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """The HTTP answer ``(status, reason, headers, body)`` to ``GET target``, where ``target`` is the
    request target starting with ``/preview``: 301 to ``/preview/``, 200 with a file, or 404."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if path == PREFIX:
        body = b"moved to /preview/\n"
        return 301, "Moved Permanently", [*_headers(_TEXT, len(body)), ("Location", PREFIX + "/")], body
    found = lookup(path[len(PREFIX) + 1:]) if path.startswith(PREFIX + "/") else None
    if found is None:
        body = b"not found\n"
        return 404, "Not Found", _headers(_TEXT, len(body)), body
    data, ctype = found
    return 200, "OK", _headers(ctype, len(data)), data
