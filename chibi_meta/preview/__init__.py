"""The artist preview page: a browser client of the bridge, served by ``chibi-meta serve`` at ``/preview/``.

The page (``static/``) talks to the server only over the public websocket protocol
(docs/protocol.md), like any engine client. :mod:`chibi_meta.preview.static` answers the HTTP
GETs for its files from a whitelist; the bridge server calls :func:`respond`. See docs/preview.md.
"""

from chibi_meta.preview.static import content_security_policy, files, lookup, respond

__all__ = ["content_security_policy", "files", "lookup", "respond"]
