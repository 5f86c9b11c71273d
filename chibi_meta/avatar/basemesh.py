"""A base mesh ready for packing, and loading an artist's own rigged chibi from an untrusted GLB.

``BaseMesh`` holds everything that is the same for every avatar made from one base: the glTF JSON
(without images, textures, samplers and materials; every primitive uses material 0), the binary
buffer, the humanoid bone map and which morph targets make which expression. Per avatar only the
atlas image is added (``chibi_meta.avatar.gltf.write_glb``).

An artist's GLB is untrusted input: it is size-capped, must be self-contained (no URIs), every
index and byte range is checked before use, and it must carry a skin, the VRM humanoid bones
(by node name, or mapped in extras / a sidecar file), UVs, and the face's UV rectangle.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chibi_meta import limits
from chibi_meta.avatar.names import HUMANOID
from chibi_meta.errors import LimitExceeded, MeshError

log = logging.getLogger(__name__)

REQUIRED_BONES = (
    "hips", "spine", "head",
    "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot",
    "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm", "rightHand",
)  # fmt: skip
OPTIONAL_BONES = ("chest", "upperChest", "neck", "leftShoulder", "rightShoulder", "leftToes", "rightToes")
EXPRESSION_PRESETS = (
    "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh",
    "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral",
)  # fmt: skip
SIDECAR_SUFFIX = ".chibi.json"
EXTRAS_KEY = "chibi_meta"


@dataclass(frozen=True)
class BaseMesh:
    """A rigged base, pre-packed once, from which every avatar is assembled."""

    name: str
    doc: dict  # glTF JSON: no images/textures/samplers/materials; primitives use material 0
    bin: bytes  # the geometry buffer, length a multiple of 4
    humanoid: dict[str, int]  # VRM bone name -> node index
    expressions: dict[str, list[tuple[int, int]]]  # preset -> [(node, morph target index)]
    mesh_nodes: tuple[int, ...]
    look_offset: tuple[float, float, float]  # eyes relative to the head bone
    face_rect: tuple[float, float, float, float] | None = None  # None: the procedural atlas layout
    background: np.ndarray | None = field(default=None, repr=False)  # artist texture, RGBA
    alpha_mode: str = "OPAQUE"
    alpha_cutoff: float | None = None
    double_sided: bool = False
    source: str = "procedural"
    first_person: dict[int, str] | None = None  # mesh node -> VRM firstPerson type (default "auto")
    expression_overrides: dict[str, dict[str, str]] | None = None  # preset -> VRM override* fields


# ---------------------------------------------------------------------------------------------
# Loading an artist's GLB
_COMPONENT_SIZE = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_COUNT = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_KEEP = ("asset", "scene", "scenes", "nodes", "meshes", "skins", "accessors", "bufferViews", "buffers")


def _parse_glb(data: bytes) -> tuple[dict, bytes]:
    if len(data) < 20 or data[:4] != b"glTF":
        raise MeshError("base mesh is not a binary glTF (.glb) file")
    version, total = struct.unpack_from("<II", data, 4)
    if version != 2 or total != len(data):
        raise MeshError("base mesh: unsupported GLB version or wrong length in its header")
    jlen, jtype = struct.unpack_from("<II", data, 12)
    if jtype != 0x4E4F534A or 20 + jlen > len(data):
        raise MeshError("base mesh: the first GLB chunk is not JSON")
    if jlen > limits.MAX_BASE_MESH_JSON_BYTES:
        raise LimitExceeded(f"base mesh JSON is {jlen} bytes; the limit is {limits.MAX_BASE_MESH_JSON_BYTES}")
    try:
        doc = json.loads(data[20 : 20 + jlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MeshError(f"base mesh: malformed glTF JSON ({e})") from None
    if not isinstance(doc, dict):
        raise MeshError("base mesh: glTF JSON is not an object")
    off = 20 + jlen
    binary = b""
    if off + 8 <= len(data):
        blen, btype = struct.unpack_from("<II", data, off)
        if btype != 0x004E4942 or off + 8 + blen > len(data):
            raise MeshError("base mesh: malformed BIN chunk")
        binary = data[off + 8 : off + 8 + blen]
    return doc, binary


def _list(doc: dict, key: str) -> list:
    v = doc.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise MeshError(f"base mesh: {key!r} must be a list of objects")
    return v


def _index(v: object, n: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
        raise MeshError(f"base mesh: {what} refers to a missing object ({v!r})")
    return v


def _view_slice(doc: dict, binary: bytes, vi: object, offset: object, count: int, elem: int, what: str) -> bytes:
    """``count`` elements of ``elem`` bytes from buffer view ``vi`` (honouring its stride), bounds-checked."""
    views = doc["bufferViews"]
    bv = views[_index(vi, len(views), what)]
    if bv.get("buffer", 0) != 0:
        raise MeshError("base mesh: only the GLB's own binary buffer may be used")
    try:
        v_off, v_len = int(bv.get("byteOffset", 0)), int(bv.get("byteLength", 0))
        start = v_off + int(offset or 0)
        stride = int(bv.get("byteStride", 0)) or elem
    except (TypeError, ValueError):
        raise MeshError(f"base mesh: {what} has a malformed buffer view") from None
    end = start + stride * (count - 1) + elem
    if start < v_off or stride < elem or end > v_off + v_len or end > len(binary):
        raise MeshError(f"base mesh: {what} reaches past the end of its buffer")
    if stride == elem:
        return binary[start:end]
    a = np.frombuffer(binary, np.uint8, count=end - start, offset=start)
    return np.lib.stride_tricks.as_strided(a, shape=(count, elem), strides=(stride, 1)).tobytes()


def _accessor_bytes(doc: dict, binary: bytes, ai: int) -> bytes:
    """The raw, tightly packed (and densified, if sparse) bytes of accessor ``ai`` after bounds checks."""
    acc = doc["accessors"][ai]
    ct, typ, count = acc.get("componentType"), acc.get("type"), acc.get("count")
    if ct not in _COMPONENT_SIZE or typ not in _TYPE_COUNT or not isinstance(count, int) or count < 1:
        raise MeshError(f"base mesh: accessor {ai} has an invalid type or count")
    if count > limits.MAX_BASE_MESH_VERTICES * 3:
        raise LimitExceeded(f"base mesh: accessor {ai} has {count} elements; too many")
    elem = _COMPONENT_SIZE[ct] * _TYPE_COUNT[typ]
    what = f"accessor {ai}"
    if "bufferView" in acc:
        raw = _view_slice(doc, binary, acc["bufferView"], acc.get("byteOffset", 0), count, elem, what)
    else:
        raw = bytes(elem * count)
    sp = acc.get("sparse")
    if sp is None:
        return raw
    if not isinstance(sp, dict) or not isinstance(sp.get("indices"), dict) or not isinstance(sp.get("values"), dict):
        raise MeshError(f"base mesh: {what} has a malformed sparse block")
    n = sp.get("count")
    ict = sp["indices"].get("componentType")
    if not isinstance(n, int) or not 1 <= n <= count or ict not in (5121, 5123, 5125):
        raise MeshError(f"base mesh: {what} has a malformed sparse block")
    idt = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32}[ict]
    ib = _view_slice(doc, binary, sp["indices"].get("bufferView"), sp["indices"].get("byteOffset", 0), n,
                     _COMPONENT_SIZE[ict], what)  # fmt: skip
    vb = _view_slice(doc, binary, sp["values"].get("bufferView"), sp["values"].get("byteOffset", 0), n, elem, what)
    idx = np.frombuffer(ib, idt).astype(np.int64)
    if idx.max() >= count:
        raise MeshError(f"base mesh: {what} has sparse indices past its count")
    dense = np.frombuffer(raw, np.uint8).reshape(count, elem).copy()
    dense[idx] = np.frombuffer(vb, np.uint8).reshape(n, elem)
    return dense.tobytes()


def _load_image(doc: dict, binary: bytes, material: dict) -> np.ndarray | None:
    from PIL import Image

    tex_ref = (material.get("pbrMetallicRoughness") or {}).get("baseColorTexture")
    if not isinstance(tex_ref, dict):
        return None
    textures, images, views = _list(doc, "textures"), _list(doc, "images"), _list(doc, "bufferViews")
    tex = textures[_index(tex_ref.get("index"), len(textures), "baseColorTexture")]
    src = tex.get("source")
    if src is None:
        src = ((tex.get("extensions") or {}).get("EXT_texture_webp") or {}).get("source")
    img = images[_index(src, len(images), "texture source")]
    if "uri" in img:
        raise MeshError("base mesh: images must be embedded in the GLB (no URIs)")
    bv = views[_index(img.get("bufferView"), len(views), "image")]
    start, length = int(bv.get("byteOffset", 0)), int(bv.get("byteLength", 0))
    if start < 0 or start + length > len(binary):
        raise MeshError("base mesh: image reaches past the end of the buffer")
    Image.MAX_IMAGE_PIXELS = limits.MAX_IMAGE_PIXELS
    try:
        im = Image.open(io.BytesIO(binary[start : start + length]))
        if im.width * im.height > limits.MAX_IMAGE_PIXELS:
            raise LimitExceeded("base mesh: its texture is too large")
        return np.asarray(im.convert("RGBA").resize((1024, 1024), Image.Resampling.BICUBIC))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise MeshError(f"base mesh: its texture cannot be decoded ({e})") from None


def _settings(doc: dict, path: Path) -> dict:
    side = path.with_name(path.name.removesuffix(".glb") + SIDECAR_SUFFIX)
    if side.is_file():
        if side.stat().st_size > 1024 * 1024:
            raise LimitExceeded(f"sidecar {side} is larger than 1 MiB")
        try:
            s = json.loads(side.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MeshError(f"sidecar {side}: malformed JSON ({e})") from None
    else:
        s = ((doc.get("asset") or {}).get("extras") or {}).get(EXTRAS_KEY) or (doc.get("extras") or {}).get(EXTRAS_KEY)
    if not isinstance(s, dict):
        raise MeshError(
            f"base mesh: declare the face's UV rectangle in asset.extras.{EXTRAS_KEY}.face_uv_rect "
            f"or in a sidecar file {side.name} (see docs/avatar.md)"
        )
    return s


def load_base_mesh(path: str | Path) -> BaseMesh:
    """Load and check an artist's rigged chibi GLB. Raises MeshError / LimitExceeded with the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.MAX_BASE_MESH_BYTES:
            raise LimitExceeded(f"base mesh {path} is {size} bytes; the limit is {limits.MAX_BASE_MESH_BYTES}")
        data = path.read_bytes()
    except OSError as e:
        raise MeshError(f"cannot read base mesh {path}: {e.strerror or e}") from None
    doc, binary = _parse_glb(data)
    for b in _list(doc, "buffers"):
        if "uri" in b:
            raise MeshError("base mesh: buffers must be embedded in the GLB (no external or data URIs)")
    for im in _list(doc, "images"):
        if "uri" in im:
            raise MeshError("base mesh: images must be embedded in the GLB (no URIs)")
    nodes, meshes, skins = _list(doc, "nodes"), _list(doc, "meshes"), _list(doc, "skins")
    accessors, _ = _list(doc, "accessors"), _list(doc, "bufferViews")
    if len(nodes) > limits.MAX_BASE_MESH_NODES:
        raise LimitExceeded(f"base mesh has {len(nodes)} nodes; the limit is {limits.MAX_BASE_MESH_NODES}")
    if not skins:
        raise MeshError("base mesh has no skin: it must be rigged (a skinned mesh with joints and weights)")
    settings = _settings(doc, path)
    rect = settings.get("face_uv_rect")
    if (
        not isinstance(rect, list)
        or len(rect) != 4
        or not all(isinstance(x, (int, float)) and 0.0 <= x <= 1.0 for x in rect)
        or not (rect[0] < rect[2] and rect[1] < rect[3])
    ):
        raise MeshError("base mesh: face_uv_rect must be [u0, v0, u1, v1] with 0 <= u0 < u1 <= 1, 0 <= v0 < v1 <= 1")
    # humanoid: explicit map, else node names equal to the VRM bone names or to the Mixamo / RPM
    # names (chibi_meta.avatar.names.HUMANOID; a "mixamorig:" prefix is ignored), case-insensitive
    bone_map = settings.get("human_bones") or {}
    by_name = {str(n.get("name", "")).lower().removeprefix("mixamorig:"): i for i, n in enumerate(nodes)}
    humanoid: dict[str, int] = {}
    for bone in dict.fromkeys(REQUIRED_BONES + OPTIONAL_BONES + tuple(HUMANOID)):
        given = bone_map.get(bone) if isinstance(bone_map, dict) else None
        for name in ((given,) if given else (bone, HUMANOID.get(bone))):
            if isinstance(name, str) and name.lower() in by_name:
                humanoid[bone] = by_name[name.lower()]
                break
    missing = [b for b in REQUIRED_BONES if b not in humanoid]
    if missing:
        raise MeshError(
            f"base mesh lacks humanoid bones: {', '.join(missing)} (name the nodes after the VRM bones or the "
            f"Mixamo / Ready Player Me bones, or map them in {EXTRAS_KEY}.human_bones)"
        )
    joints_all = set()
    for s in skins:
        joints_all.update(_index(j, len(nodes), "skin joint") for j in s.get("joints", []))
    if not set(humanoid.values()) <= joints_all:
        raise MeshError("base mesh: the humanoid bones must be joints of its skin")
    # the skinned mesh nodes
    mesh_nodes = [i for i, n in enumerate(nodes) if "mesh" in n]
    if not mesh_nodes:
        raise MeshError("base mesh has no mesh")
    n_verts = 0
    materials = _list(doc, "materials")
    for i in mesh_nodes:
        n = nodes[i]
        mesh = meshes[_index(n["mesh"], len(meshes), f"node {i}")]
        if "skin" not in n:
            raise MeshError(f"base mesh: mesh node {n.get('name', i)!r} is not skinned")
        for p in mesh.get("primitives", []):
            att = p.get("attributes", {})
            for key in ("POSITION", "JOINTS_0", "WEIGHTS_0", "TEXCOORD_0"):
                if key not in att:
                    what = "UVs (TEXCOORD_0)" if key == "TEXCOORD_0" else key
                    raise MeshError(f"base mesh: a primitive of mesh {mesh.get('name', '')!r} has no {what}")
            n_verts += int(accessors[_index(att["POSITION"], len(accessors), "POSITION")].get("count", 0))
    if n_verts > limits.MAX_BASE_MESH_VERTICES:
        raise LimitExceeded(f"base mesh has {n_verts} vertices; the limit is {limits.MAX_BASE_MESH_VERTICES}")
    # repack: keep only accessors' data; drop images/materials; all primitives -> material 0
    new_views: list[dict] = []
    new_bin = bytearray()
    new_acc = []
    for ai, acc in enumerate(accessors):
        raw = _accessor_bytes(doc, binary, ai)
        a = {k: v for k, v in acc.items() if k not in ("bufferView", "byteOffset", "sparse")}  # densified
        view = {"buffer": 0, "byteOffset": len(new_bin), "byteLength": len(raw)}
        new_bin += raw + bytes(-len(raw) % 4)
        a["bufferView"] = len(new_views)
        new_views.append(view)
        new_acc.append(a)
    # vertex attribute views get a target, index views the element target
    for m in meshes:
        for p in m.get("primitives", []):
            for ai in list(p.get("attributes", {}).values()):
                new_views[new_acc[_index(ai, len(new_acc), "attribute")]["bufferView"]]["target"] = 34962
            if "indices" in p:
                new_views[new_acc[_index(p["indices"], len(new_acc), "indices")]["bufferView"]]["target"] = 34963
            p["material"] = 0
    first_mat = materials[0] if materials else {}
    background = _load_image(doc, binary, first_mat) if first_mat else None
    alpha_mode = first_mat.get("alphaMode", "OPAQUE") if isinstance(first_mat, dict) else "OPAQUE"
    if alpha_mode not in ("OPAQUE", "MASK", "BLEND"):
        raise MeshError(f"base mesh: unknown alphaMode {alpha_mode!r}")
    # expressions from morph target names
    expressions: dict[str, list[tuple[int, int]]] = {}
    for i in mesh_nodes:
        mesh = meshes[nodes[i]["mesh"]]
        names = (mesh.get("extras") or {}).get("targetNames") or []
        for k, name in enumerate(names):
            if name in EXPRESSION_PRESETS:
                expressions.setdefault(name, []).append((i, k))
    if "blink" not in expressions and "blinkLeft" in expressions and "blinkRight" in expressions:
        expressions["blink"] = expressions["blinkLeft"] + expressions["blinkRight"]
    if not expressions:
        log.warning("base mesh %s has no morph targets named after VRM expressions; none exported", path.name)
    out = {k: doc[k] for k in _KEEP if k in doc}
    out["accessors"], out["bufferViews"] = new_acc, new_views
    out["buffers"] = [{"byteLength": len(new_bin)}]
    out["asset"] = {"version": "2.0"}
    for n in out.get("nodes", []):
        n.pop("camera", None)
    look = settings.get("look_offset", [0.0, 0.06, 0.0])
    if not isinstance(look, list) or len(look) != 3 or not all(isinstance(x, (int, float)) for x in look):
        raise MeshError("base mesh: look_offset must be [x, y, z] in metres from the head bone")
    return BaseMesh(
        name=path.stem,
        doc=out,
        bin=bytes(new_bin),
        humanoid=humanoid,
        expressions=expressions,
        mesh_nodes=tuple(mesh_nodes),
        look_offset=tuple(float(x) for x in look[:3]),  # type: ignore[arg-type]
        face_rect=tuple(float(x) for x in rect),  # type: ignore[arg-type]
        background=background,
        alpha_mode=alpha_mode,
        alpha_cutoff=first_mat.get("alphaCutoff") if alpha_mode == "MASK" else None,
        double_sided=bool(first_mat.get("doubleSided", False)),
        source="sha256:" + hashlib.sha256(data).hexdigest(),
    )
