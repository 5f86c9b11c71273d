"""Avatar packaging: a generated face texture -> a rigged chibi GLB or VRM 1.0 file.

``build_avatar`` is the one entry point the bridge and the export command use.
"""

from __future__ import annotations

from chibi_meta.avatar.basemesh import BaseMesh, load_base_mesh
from chibi_meta.avatar.pack import (
    FORMATS,
    OUTFITS,
    PACKAGING_ATTRIBUTES,
    TEXTURE_FORMATS,
    TEXTURE_SIZES,
    build_avatar,
    check_options,
    choose_outfit,
    split_packaging,
)

__all__ = [
    "FORMATS",
    "OUTFITS",
    "PACKAGING_ATTRIBUTES",
    "TEXTURE_FORMATS",
    "TEXTURE_SIZES",
    "BaseMesh",
    "build_avatar",
    "check_options",
    "choose_outfit",
    "load_base_mesh",
    "split_packaging",
]
