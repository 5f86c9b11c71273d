"""Binary glTF (GLB): the procedural base packed once with pygltflib, and the per-avatar GLB writer.

The base's JSON and binary buffer are built once per process (``procedural_base()``); an avatar adds
one image (two for VRM: the atlas and the thumbnail), a texture, a sampler and one material, and
its provenance in ``asset.extras``. JSON is written with sorted keys and fixed separators, so the
same request gives the same bytes.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Mapping, Sequence

import numpy as np

from chibi_meta.avatar import mesh
from chibi_meta.avatar.atlas import MIME
from chibi_meta.avatar.basemesh import BaseMesh

GENERATOR = "chibi_meta avatar packer 1"
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
FLOAT, UNSIGNED_BYTE, UNSIGNED_SHORT = 5126, 5121, 5123


class _Packer:
    """Collects buffer views (4-byte aligned) for pygltflib objects."""

    def __init__(self) -> None:
        import pygltflib

        self.g = pygltflib
        self.bin = bytearray()
        self.views: list = []
        self.accessors: list = []

    def view(self, data: bytes, target: int | None = None) -> int:
        self.views.append(self.g.BufferView(buffer=0, byteOffset=len(self.bin), byteLength=len(data), target=target))
        self.bin += data + bytes(-len(data) % 4)
        return len(self.views) - 1

    def accessor(self, arr: np.ndarray, typ: str, *, target: int | None = ARRAY_BUFFER, minmax: bool = False,
                 normalized: bool = False) -> int:  # fmt: skip
        ct = {np.float32: FLOAT, np.uint8: UNSIGNED_BYTE, np.uint16: UNSIGNED_SHORT}[arr.dtype.type]
        acc = self.g.Accessor(
            bufferView=self.view(np.ascontiguousarray(arr).tobytes(), target),
            componentType=ct,
            count=len(arr),
            type=typ,
            normalized=normalized or None,
        )
        if minmax:
            a2 = arr.reshape(len(arr), -1)
            acc.min = [float(x) for x in a2.min(0)]
            acc.max = [float(x) for x in a2.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def sparse_vec3(self, n: int, ids: np.ndarray, values: np.ndarray) -> int:
        """A VEC3 float accessor of ``n`` zeros except ``values`` at ``ids`` (for morph targets)."""
        full = np.zeros((n, 3), np.float32)
        full[ids] = values
        acc = self.g.Accessor(
            componentType=FLOAT,
            count=n,
            type="VEC3",
            min=[float(x) for x in full.min(0)],
            max=[float(x) for x in full.max(0)],
            sparse=self.g.Sparse(
                count=len(ids),
                indices=self.g.AccessorSparseIndices(bufferView=self.view(ids.tobytes()), componentType=UNSIGNED_SHORT),
                values=self.g.AccessorSparseValues(bufferView=self.view(values.astype(np.float32).tobytes())),
            ),
        )
        self.accessors.append(acc)
        return len(self.accessors) - 1


@functools.lru_cache(maxsize=1)
def procedural_base() -> BaseMesh:
    """The built-in chibi, packed once per process."""
    import pygltflib as g

    geo = mesh.chibi_geometry()
    p = _Packer()
    n = len(geo.positions)
    attributes = g.Attributes(
        POSITION=p.accessor(geo.positions, "VEC3", minmax=True),
        NORMAL=p.accessor(geo.normals, "VEC3"),
        TEXCOORD_0=p.accessor(geo.uvs, "VEC2", normalized=True),
        JOINTS_0=p.accessor(geo.joints, "VEC4"),
        WEIGHTS_0=p.accessor(geo.weights, "VEC4", normalized=True),
    )
    indices = p.accessor(geo.indices, "SCALAR", target=ELEMENT_ARRAY_BUFFER)
    names = list(mesh.EXPRESSION_TARGETS)
    targets = [g.Attributes(POSITION=p.sparse_vec3(n, *geo.targets[t])) for t in names]
    # nodes: the bones (identity rotations, translations relative to the parent), then the body
    nodes = []
    for name, parent, world in mesh.BONES:
        local = np.array(world) - (np.array(mesh.bone_world(parent)) if parent else 0.0)
        kids = [i for i, b in enumerate(mesh.BONES) if b[1] == name]
        nodes.append(g.Node(name=name, translation=[round(float(x), 6) for x in local], children=kids or None))
    body = len(nodes)
    nodes.append(g.Node(name="Body", mesh=0, skin=0))
    ibm = np.zeros((len(mesh.BONES), 16), np.float32)
    ibm[:, [0, 5, 10, 15]] = 1.0
    for i in range(len(mesh.BONES)):
        # inverse bind = translate(-world position); the float32 of the node chain's sum
        chain = np.zeros(3)
        j = i
        while j is not None:
            nm, parent, w = mesh.BONES[j]
            local = np.array(w) - (np.array(mesh.bone_world(parent)) if parent else 0.0)
            chain += np.array([round(float(x), 6) for x in local])
            j = mesh.BONE_INDEX[parent] if parent else None
        ibm[i, 12:15] = -chain
    ibm_acc = p.accessor(ibm, "MAT4", target=None)
    doc = g.GLTF2(
        asset=g.Asset(version="2.0", generator=GENERATOR),
        scene=0,
        scenes=[g.Scene(name="chibi", nodes=[0, body])],
        nodes=nodes,
        meshes=[
            g.Mesh(
                name="Body",
                primitives=[g.Primitive(attributes=attributes, indices=indices, material=0, targets=targets)],
                weights=[0.0] * len(names),
                extras={"targetNames": names},
            )
        ],
        skins=[g.Skin(name="Armature", joints=list(range(len(mesh.BONES))), skeleton=0, inverseBindMatrices=ibm_acc)],
        accessors=p.accessors,
        bufferViews=p.views,
        buffers=[g.Buffer(byteLength=len(p.bin))],
    )
    d = json.loads(doc.to_json())
    for a in d["accessors"]:
        if a.get("normalized") is False:
            del a["normalized"]
        if "bufferView" not in a:
            a.pop("byteOffset", None)
    eyes = (0.0, mesh.EYE_HEIGHT - mesh.bone_world("head")[1], float(mesh.HEAD_RADII[2]) * 0.9)
    expr = {t: [(body, names.index(t))] for t in names}
    expr["blink"] = expr["blinkLeft"] + expr["blinkRight"]
    return BaseMesh(
        name="chibi",
        doc=d,
        bin=bytes(p.bin),
        humanoid={name: i for i, (name, _, _) in enumerate(mesh.BONES)},
        expressions=expr,
        mesh_nodes=(body,),
        look_offset=eyes,
        double_sided=True,  # the inside of the hair hood shows through its opening
    )


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
