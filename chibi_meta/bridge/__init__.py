"""The websocket bridge: engines ask for avatars over protocol v1 (docs/protocol.md).

protocol (sans-I/O messages) -> server (websockets front end) -> engine (cache, batching,
generation, packaging). The Python client is :mod:`chibi_meta.client`.
"""
