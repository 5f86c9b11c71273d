"""chibi_meta: self-hosted generator of cute chibi 3D avatars (GLB, VRM 1.0) for metaverse engines.

The flow: ``chibi_meta.data`` (labelled avatar art) -> ``chibi_meta.gan`` (conditional texture GAN)
-> ``chibi_meta.avatar`` (rigged chibi GLB / VRM) -> ``chibi_meta.bridge`` (websocket server) ->
engine clients (``chibi_meta.client``, plugin_unity_bridge/).

    from chibi_meta import TextureGenerator
    gen = TextureGenerator.load()            # the shipped model, offline
    textures = gen.generate([7], [{"hair_color": "pink"}])

Heavy modules (torch) load on first use, not at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TextureGenerator", "build_avatar", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from chibi_meta.avatar import build_avatar
    from chibi_meta.gan.api import TextureGenerator


def __getattr__(name: str) -> Any:
    if name == "TextureGenerator":
        from chibi_meta.gan.api import TextureGenerator

        return TextureGenerator
    if name == "build_avatar":
        from chibi_meta.avatar import build_avatar

        return build_avatar
    raise AttributeError(f"module 'chibi_meta' has no attribute {name!r}")
