"""The procedural chibi: per outfit a packed skeleton + body (built once), per avatar its own head.

Node layout of every file (names as Mixamo / Ready Player Me have them)::

    scene "Armature": nodes 0, 56, 57
    0 Armature                       the skeleton's root
    1 .. 55 Hips, Spine, ... (rig.NAMES order), rest rotations per the RPM bone axes
    56 AvatarBody                    mesh 0, skin 0 (the outfit's body, shared by every avatar)
    57 AvatarHead                    mesh 1, skin 0 (built from this avatar's texture)

Skinned mesh nodes stay at the scene root (glTF ignores their parents' transforms, and the
Khronos validator warns about skinned meshes under another node); the scene itself is named
``Armature``, so three.js's scene group, where TalkingHead looks for its ``modelRoot``, is one
object named ``Armature`` holding the bones and both meshes.

Head placement: the drawing's chin (``atlas.CHIN_IMG``) sits on the neck at ``rig.CHIN_Y``, at
``PX`` metres per pixel of a 128 px texture (0.5 m across). The head is skinned rigidly to ``Head``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from chibi_meta.avatar import atlas, body, faces, rig
from chibi_meta.avatar.basemesh import BaseMesh
from chibi_meta.avatar.faces import Patches
from chibi_meta.avatar.head import HeadMesh, build_head
from chibi_meta.avatar.names import VRM_PRESETS

PX = 0.5 / 128  # metres per texture pixel (at 128 px)
HEAD_Z = 0.0  # the head's mid plane, metres
HAIR_CLEARANCE_M = 0.010  # hanging hair keeps this far from the body in every pose of the pose set
HEAD_CLEAR_DEG = 60.0  # ... with the head turned this far either way (in the A-pose, as poses.py turns it)
ARMS_DOWN_DEG = 40.0  # the A-pose's arms below level (poses "a", "head_left60", "head_right60")
ARMS_CLEAR_DEG = 50.0  # ... and the arms raised this far above level (poses "arms_up")
CLEAR_STEP = 0.008  # metres: the grid of that clearance field
CLEAR_ROUNDS = 30  # at most this many pushes (a node pushed through the hood or an arm needs ~15)
ARM_REACH_Y = 0.62  # m: the raised arms reach head nodes below this (the hair beside the face)
_CLEAR_LO, _CLEAR_HI = (-0.34, 0.37, -0.34), (0.34, 0.64, 0.18)
BODY_NODE, HEAD_NODE = 1 + len(rig.NAMES), 2 + len(rig.NAMES)
FLOAT, UNSIGNED_BYTE, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class _Buffer:
    """Buffer views and accessors appended to a glTF JSON document (4-byte aligned)."""

    def __init__(self, doc: dict, offset: int = 0) -> None:
        self.doc = doc
        self.chunks: list[bytes] = []
        self.offset = offset

    def view(self, data: bytes, target: int | None) -> int:
        v: dict = {"buffer": 0, "byteOffset": self.offset, "byteLength": len(data)}
        if target is not None:
            v["target"] = target
        self.doc["bufferViews"].append(v)
        pad = -len(data) % 4
        self.chunks += [data, bytes(pad)]
        self.offset += len(data) + pad
        return len(self.doc["bufferViews"]) - 1

    def accessor(self, arr: np.ndarray, typ: str, *, target: int | None = ARRAY_BUFFER, minmax: bool = False,
                 normalized: bool = False) -> int:  # fmt: skip
        ct = {np.float32: FLOAT, np.uint8: UNSIGNED_BYTE, np.uint16: UNSIGNED_SHORT, np.uint32: UNSIGNED_INT}
        acc: dict = {"bufferView": self.view(np.ascontiguousarray(arr).tobytes(), target),
                     "componentType": ct[arr.dtype.type], "count": len(arr), "type": typ}  # fmt: skip
        if normalized:
            acc["normalized"] = True
        if minmax:
            a2 = arr.reshape(len(arr), -1)
            acc["min"] = [float(x) for x in a2.min(0)]
            acc["max"] = [float(x) for x in a2.max(0)]
        self.doc["accessors"].append(acc)
        return len(self.doc["accessors"]) - 1

    def bytes(self) -> bytes:
        return b"".join(self.chunks)


def _uv16(uv: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(uv * 65535.0), 0, 65535).astype(np.uint16)


def _primitive(buf: _Buffer, pos: np.ndarray, nrm: np.ndarray, uv: np.ndarray, joints: np.ndarray,
               weights: np.ndarray, faces: np.ndarray) -> dict:  # fmt: skip
    idx = faces.astype(np.uint16 if len(pos) <= 65535 else np.uint32).ravel()
    return {
        "attributes": {
            "POSITION": buf.accessor(pos.astype(np.float32), "VEC3", minmax=True),
            "NORMAL": buf.accessor(nrm.astype(np.float32), "VEC3"),
            "TEXCOORD_0": buf.accessor(_uv16(uv), "VEC2", normalized=True),
            "JOINTS_0": buf.accessor(joints.astype(np.uint8), "VEC4"),
            "WEIGHTS_0": buf.accessor(weights.astype(np.uint8), "VEC4", normalized=True),
        },
        "indices": buf.accessor(idx, "SCALAR", target=ELEMENT_ARRAY_BUFFER),
        "material": 0,
    }


@functools.lru_cache(maxsize=len(body.OUTFITS))
def outfit_base(outfit: str) -> BaseMesh:
    """The skeleton and the body of ``outfit``, packed once per process; the head is added per avatar."""
    b = body.body_mesh(outfit)
    joints = rig.joints()
    nodes: list[dict] = [{"name": rig.ROOT_NAME, "children": [1]}]
    for j in joints:
        n: dict = {"name": j.name, "translation": list(j.translation)}
        if j.rotation != (0.0, 0.0, 0.0, 1.0):
            n["rotation"] = list(j.rotation)
        kids = [1 + rig.INDEX[c] for c in rig.CHILDREN[j.name]]
        if kids:
            n["children"] = kids
        nodes.append(n)
    nodes.append({"name": "AvatarBody", "mesh": 0, "skin": 0})
    nodes.append({"name": "AvatarHead", "mesh": 1, "skin": 0})
    doc: dict = {"accessors": [], "bufferViews": []}
    buf = _Buffer(doc)
    uv = np.stack([atlas.swatch_uv(body.REGIONS[r]) for r in range(len(body.REGIONS))])[b.regions]
    prim = _primitive(buf, b.positions, b.normals, uv, b.joints, b.weights, b.faces)
    ibm = np.stack([np.linalg.inv(j.world).T.ravel() for j in joints]).astype(np.float32)  # column-major
    ibm_acc = buf.accessor(ibm, "MAT4", target=None)
    doc.update(
        asset={"version": "2.0"},
        scene=0,
        scenes=[{"name": rig.ROOT_NAME, "nodes": [0, BODY_NODE, HEAD_NODE]}],
        nodes=nodes,
        meshes=[{"name": "AvatarBody", "primitives": [prim]}],
        skins=[{"name": rig.ROOT_NAME, "joints": list(range(1, 1 + len(joints))), "skeleton": 1,
                "inverseBindMatrices": ibm_acc}],  # fmt: skip
    )
    head_w = joints[rig.INDEX["Head"]].world[:3, 3]
    eyes = (np.array(rig.POSITIONS["LeftEye"]) + np.array(rig.POSITIONS["RightEye"])) / 2 - head_w
    return BaseMesh(
        name=f"chibi-{outfit}",
        doc=json.loads(json.dumps(doc)),
        bin=buf.bytes(),
        humanoid=rig.humanoid_nodes(1),
        expressions={},
        mesh_nodes=(BODY_NODE, HEAD_NODE),
        look_offset=tuple(round(float(v), 6) for v in eyes + np.array([0.0, 0.0, 0.05])),  # type: ignore[arg-type]
        source=f"procedural:{outfit}",
        first_person={BODY_NODE: "auto", HEAD_NODE: "thirdPersonOnly"},
    )


def head_world(head: HeadMesh | Patches) -> tuple[np.ndarray, np.ndarray]:
    """World positions and normals of a head (or its patches) built in texture pixels."""
    cx, cy = atlas.CHIN_IMG[0] * 128, atlas.CHIN_IMG[1] * 128
    p = head.positions
    pos = np.stack([(p[:, 0] - cx) * PX, rig.CHIN_Y + (cy - p[:, 1]) * PX, p[:, 2] * PX + HEAD_Z], 1)
    return pos, head.normals


@functools.lru_cache(maxsize=len(body.OUTFITS))
def _hair_clearance(outfit: str) -> tuple[np.ndarray, np.ndarray]:
    """Distance fields that the head must keep clear of, on one grid (cached per outfit), one per
    kind of pose of the pose set, stacked on the last axis: [0] the body in the A-pose (arms
    ARMS_DOWN_DEG below level) swept by the head turning +-HEAD_CLEAR_DEG (the hair turns with the
    head), [1] the rest-pose body and the body with the arms raised ARMS_CLEAR_DEG (the head still).
    The poses are kept apart: one field of both at once (raised or level arms swept by head turns,
    poses no clip makes) pushed shoulder-length hair up to 15 cm behind the back, a fin in side views."""
    axes = [np.arange(lo, hi + 1e-9, CLEAR_STEP) for lo, hi in zip(_CLEAR_LO, _CLEAR_HI, strict=True)]
    p = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    head = np.array(rig.POSITIONS["Head"])
    turn = None
    for deg in np.linspace(-HEAD_CLEAR_DEG, HEAD_CLEAR_DEG, 5):
        a = np.radians(deg)
        q = p - head
        r = np.stack([q[..., 0] * np.cos(a) + q[..., 2] * np.sin(a), q[..., 1],
                      -q[..., 0] * np.sin(a) + q[..., 2] * np.cos(a)], -1) + head  # fmt: skip
        d = body.sdf(r, outfit, -ARMS_DOWN_DEG)
        turn = d if turn is None else np.minimum(turn, d)
    up = np.minimum(body.sdf(p, outfit), body.sdf(p, outfit, ARMS_CLEAR_DEG))
    return np.asarray(_CLEAR_LO), np.stack([turn, up], -1)  # type: ignore[list-item]


def _clearance(pos: np.ndarray, outfit: str) -> np.ndarray:
    """(N, 2) distances of ``pos`` in the fields of ``_hair_clearance`` (trilinear; 1 m outside its grid)."""
    from scipy import ndimage

    lo, field = _hair_clearance(outfit)
    f = (pos - lo) / CLEAR_STEP
    k = np.repeat(np.arange(field.shape[-1]), len(pos))
    coords = np.concatenate([np.tile(f, (field.shape[-1], 1)), k[:, None]], 1).T
    out = ndimage.map_coordinates(field, coords, order=1, mode="nearest").reshape(field.shape[-1], -1).T
    inside = np.all((pos >= lo) & (pos <= np.asarray(_CLEAR_HI)), axis=1)
    return np.where(inside[:, None], out, 1.0)


def clear_of_body(pos: np.ndarray, outfit: str) -> np.ndarray:
    """Head nodes moved back (-Z), node by node (front and back together), until they keep
    HAIR_CLEARANCE_M from the body in every pose of the pose set: hair below the chin (and the jaw
    line) in the head turns, and everything up to ARM_REACH_Y (hair beside the face) from the
    raised arms (``_hair_clearance``)."""
    reach = pos[:, 1] < ARM_REACH_Y
    if not reach.any():
        return pos
    pos = pos.copy()
    key = np.round(pos[reach, :2] / 1e-5).astype(np.int64)  # 10 um cells; |x|, |y| < 2 m
    _, group = np.unique(key[:, 0] * (1 << 32) + key[:, 1], return_inverse=True)
    group = group.ravel()
    sub = pos[reach]
    low = sub[:, 1] < rig.CHIN_Y + 0.03  # the jaw line too
    push = np.zeros(group.max() + 1)
    todo = np.arange(len(sub))  # the nodes of groups still being pushed (the others stay put)
    for _ in range(CLEAR_ROUNDS):
        p = sub[todo]
        p[:, 2] -= push[group[todo]]
        d = _clearance(p, outfit)
        need = HAIR_CLEARANCE_M - np.where(low[todo], d.min(1), d[:, 1])
        short = need > 1e-4
        if not short.any():
            break
        np.maximum.at(push, group[todo[short]], push[group[todo[short]]] + need[short] * 1.2 + 0.001)
        todo = todo[np.isin(group[todo], group[todo[short]])]
    sub[:, 2] -= push[group]
    pos[reach] = sub
    return pos


def with_head(base: BaseMesh, head: HeadMesh, patches: Patches | None = None,
              target_names: Sequence[str] = ()) -> BaseMesh:  # fmt: skip
    """``base`` (from outfit_base) plus this avatar's head mesh, its face-state patches and the
    morph targets ``target_names`` (``faces.TARGETS`` says what each moves; others are all-zero)."""
    doc = dict(base.doc)
    doc["accessors"] = list(base.doc["accessors"])
    doc["bufferViews"] = list(base.doc["bufferViews"])
    buf = _Buffer(doc, offset=len(base.bin))
    pos, nrm = head_world(head)
    uv = atlas.head_uv(head.uvs, head.back)
    faces_all = head.faces
    nh = len(pos)
    if patches is not None and len(patches.positions):
        ppos, pnrm = head_world(patches)  # type: ignore[arg-type]
        slots = slot_index(patches.keys)
        # per patch: its slot (u0, v0, du, dv) and box size (w, h); then per vertex through its slot
        per = np.array([(*atlas.patch_slot(k[0], slots[k]), faces.PARTS[k[0]][3] - faces.PARTS[k[0]][2],
                         faces.PARTS[k[0]][1] - faces.PARTS[k[0]][0]) for k in patches.keys])[patches.slot]  # fmt: skip
        u0, v0, du, dv, bw, bh = per.T
        puv = np.empty((len(ppos), 2))
        # half a pixel in from the slot's edge: bilinear filtering never reads the next slot
        puv[:, 0] = u0 + np.clip(patches.uv_px[:, 0], 0.5, bw - 0.5) / bw * du
        puv[:, 1] = v0 + np.clip(patches.uv_px[:, 1], 0.5, bh - 0.5) / bh * dv
        pos, nrm = np.concatenate([pos, ppos]), np.concatenate([nrm, pnrm])
        uv = np.concatenate([uv, puv])
        faces_all = np.concatenate([faces_all, patches.faces + nh])
    outfit = base.source.split(":", 1)[-1]
    if outfit in body.OUTFITS:  # patches move with the head nodes they lie on (same x, y)
        pos = clear_of_body(pos, outfit)
    n = len(pos)
    joints = np.zeros((n, 4), np.uint8)
    joints[:, 0] = rig.INDEX["Head"]
    weights = np.zeros((n, 4), np.uint8)
    weights[:, 0] = 255  # rigid: hanging hair turns with the head and is kept clear of the body
    prim = _primitive(buf, pos, nrm, uv, joints, weights, faces_all)
    mesh: dict = {"name": "AvatarHead", "primitives": [prim]}
    expressions: dict[str, list[tuple[int, int]]] = {}
    if target_names:
        prim["targets"] = [{"POSITION": a} for a in _targets(buf, n, nh, patches, target_names)]
        mesh["weights"] = [0.0] * len(target_names)
        mesh["extras"] = {"targetNames": list(target_names)}
        expressions = {t: [(HEAD_NODE, i)] for i, t in enumerate(target_names) if t in VRM_PRESETS}
    doc["meshes"] = [*base.doc["meshes"], mesh]
    return replace(base, doc=doc, bin=base.bin + buf.bytes(), expressions=expressions,
                   expression_overrides=faces.VRM_OVERRIDES)  # fmt: skip


def slot_index(keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """Atlas slot of each patch: eyes and the mouth number their slots separately."""
    out: dict[tuple[str, int], int] = {}
    count = {"eye": 0, "mouth": 0}
    for key in keys:
        kind = "mouth" if key[0] == "mouth" else "eye"
        out[key] = count[kind]
        count[kind] += 1
    return out


def _targets(buf: _Buffer, n: int, nh: int, patches: Patches | None, names: Sequence[str]) -> list[int]:
    """One POSITION accessor per name: sparse deltas on its patches' vertices, or all zeros."""
    zero = None
    cache: dict[tuple, int] = {}
    out = []
    index = {k: i for i, k in enumerate(patches.keys)} if patches is not None else {}
    if patches is not None:  # build_patches appends each patch's vertices as one run, in key order
        start = np.searchsorted(patches.slot, np.arange(len(patches.keys) + 1))
    for name in names:
        parts = tuple(sorted((index[(p, v)], sc) for p, v, sc in faces.TARGETS.get(name, ())
                             if (p, v) in index and start[index[(p, v)] + 1] > start[index[(p, v)]]))  # fmt: skip
        if not parts:  # nothing drawn, or its patches have no vertices (no face cells in their box)
            if zero is None:
                zero = len(buf.doc["accessors"])
                buf.doc["accessors"].append({"componentType": FLOAT, "count": n, "type": "VEC3",
                                             "min": [0.0, 0.0, 0.0], "max": [0.0, 0.0, 0.0]})  # fmt: skip
            out.append(zero)
            continue
        if parts not in cache:
            ks = [k for k, _ in parts]
            counts = start[1:][ks] - start[:-1][ks]
            idx = np.concatenate([np.arange(nh + start[k], nh + start[k + 1]) for k in ks])
            dz = np.array([patches.show[k] * sc for k, sc in parts], np.float32)  # type: ignore[union-attr]
            val = np.zeros((len(idx), 3), np.float32)
            val[:, 2] = np.repeat(dz, counts)
            itype = np.uint16 if n <= 65535 else np.uint32
            cache[parts] = len(buf.doc["accessors"])
            buf.doc["accessors"].append({
                "componentType": FLOAT, "count": n, "type": "VEC3",
                "min": [0.0, 0.0, 0.0], "max": [0.0, 0.0, float(max(dz.max(), 0.0))],  # every delta is +Z
                "sparse": {"count": len(idx),
                           "indices": {"bufferView": buf.view(idx.astype(itype).tobytes(), None),
                                       "componentType": UNSIGNED_SHORT if itype is np.uint16 else UNSIGNED_INT},
                           "values": {"bufferView": buf.view(val.tobytes(), None)}},
            })  # fmt: skip
        out.append(cache[parts])
    return out


def avatar_head(texture: np.ndarray) -> HeadMesh:
    """The head of one texture, its long hair draped behind the neck."""
    return build_head(texture[..., 3], drape_below=atlas.CHIN_IMG[1] * 128)
