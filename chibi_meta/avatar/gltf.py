"""Binary glTF (GLB): the per-avatar GLB writer.

A base (``BaseMesh``: the procedural chibi of ``chibi_meta.avatar.procedural`` or an artist's mesh)
holds the JSON and binary buffer of the geometry; an avatar adds one image (two for VRM: the atlas
and the thumbnail), a texture, a sampler and one material, and its provenance in ``asset.extras``.
JSON is written with sorted keys and fixed separators, so the same request gives the same bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence

from chibi_meta.avatar.atlas import MIME
from chibi_meta.avatar.basemesh import BaseMesh

GENERATOR = "chibi_meta avatar packer 2"


def write_glb(
    base: BaseMesh,
    images: Sequence[tuple[bytes, str]],
    *,
    texture_format: str,
    alpha_mode: str,
    extras: Mapping[str, object],
    name: str,
    extensions: Mapping[str, object] | None = None,
) -> bytes:
    """Assemble the GLB: the base plus ``images`` (the first one is the atlas), one material."""
    doc = dict(base.doc)
    views = list(doc["bufferViews"])
    chunks = [base.bin]
    offset = len(base.bin)
    imgs = []
    for data, fmt in images:
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data)})
        imgs.append({"bufferView": len(views) - 1, "mimeType": MIME[fmt]})
        pad = -len(data) % 4
        chunks += [data, bytes(pad)]
        offset += len(data) + pad
    used: list[str] = []
    required: list[str] = []
    if texture_format == "webp":
        texture = {"sampler": 0, "extensions": {"EXT_texture_webp": {"source": 0}}}
        used.append("EXT_texture_webp")
        required.append("EXT_texture_webp")
    else:
        texture = {"sampler": 0, "source": 0}
    material: dict = {
        "name": name,
        "pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0.0, "roughnessFactor": 0.85},
    }
    if base.double_sided:
        material["doubleSided"] = True
    if alpha_mode != "OPAQUE":
        material["alphaMode"] = alpha_mode
        if alpha_mode == "MASK" and base.alpha_cutoff is not None:
            material["alphaCutoff"] = base.alpha_cutoff
    if extensions:
        doc["extensions"] = dict(extensions)
        used += sorted(extensions)
    if used:
        doc["extensionsUsed"] = sorted(used)
    if required:
        doc["extensionsRequired"] = required
    doc.update(
        asset={"version": "2.0", "generator": GENERATOR, "extras": dict(extras)},
        bufferViews=views,
        buffers=[{"byteLength": offset}],
        images=imgs,
        samplers=[{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}],
        textures=[texture],
        materials=[material],
    )
    js = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + offset
    return b"".join(
        [
            struct.pack("<III", 0x46546C67, 2, total),
            struct.pack("<II", len(js), 0x4E4F534A),
            js,
            struct.pack("<II", offset, 0x004E4942),
            *chunks,
        ]
    )
