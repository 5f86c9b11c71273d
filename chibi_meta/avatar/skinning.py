"""Pose any skinned glTF 2.0 avatar on the CPU: parse once, retarget a normalized humanoid pose, skin.

:class:`Avatar` parses a GLB (or a self-contained ``.gltf`` with data URIs; ``gltf_read``) once: accessors (strided,
normalized integers, sparse), the node tree with its rest transforms, skins, morph targets
(names from ``mesh.extras.targetNames``) and base-colour textures. Humanoid bones come from the
``VRMC_vrm`` humanoid map, else VRM 0.x's, else node names (the Mixamo / Ready Player Me names of
``chibi_meta.avatar.names``, with or without a ``mixamorig:`` prefix, or the VRM bone names).

:meth:`Avatar.skin` applies a :class:`~chibi_meta.avatar.poses.Pose` given in VRM *normalized*
space as three-vrm's normalized humanoid rig does: for a raw bone with rest local rotation ``L``
whose raw parent has rest world rotation ``P``, a normalized local rotation ``q`` becomes the raw
local rotation ``P^-1 q P L``. By induction each posed raw bone then has world rotation
``Q R`` (``Q`` = product of the normalized rotations down the chain, ``R`` = its rest world
rotation), so the motion is the same on any rest axes (identity, RPM's +Y-along-the-bone, or a
Blender armature's). ``hips_offset`` moves the hips in world space, scaled by the avatar's hips
height over ``poses.REFERENCE_HIPS_HEIGHT`` (as three-vrm-animation scales a hips track). Then
morph targets and linear blend skinning (vectorised numpy) give per mesh node the posed positions,
normals, UVs, triangle indices and material (with its decoded texture image).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from chibi_meta.avatar import names
from chibi_meta.avatar.gltf_read import MAX_FILE_BYTES, Reader, split_glb, triangles
from chibi_meta.avatar.poses import HUMANOID_PARENT, REFERENCE_HIPS_HEIGHT, Pose, quat_matrix, quat_mul
from chibi_meta.errors import MeshError, UsageError

log = logging.getLogger(__name__)

_MIXAMO_PREFIX = re.compile(r"^mixamorig\d*[:_]", re.IGNORECASE)
# VRM 0.x thumb names -> VRM 1.0 (0.x has no metacarpal; its proximal is 1.0's metacarpal)
_VRM0_THUMB = {"ThumbProximal": "ThumbMetacarpal", "ThumbIntermediate": "ThumbProximal"}


def _polar(m: np.ndarray) -> np.ndarray:
    """The rotation part of a 3x3 linear map (scale and shear removed)."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


# --- what skin() returns -----------------------------------------------------------------------
@dataclass
class Material:
    """The parts of a glTF material a renderer needs; ``image`` is RGBA uint8 (H, W, 4) or None."""

    name: str = ""
    base_color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    image: np.ndarray | None = None
    tex_coord: int = 0
    sampler: dict = field(default_factory=dict)
    alpha_mode: str = "OPAQUE"
    alpha_cutoff: float = 0.5
    double_sided: bool = False
    metallic: float = 1.0
    roughness: float = 1.0
    unlit: bool = False


@dataclass
class Part:
    """One posed primitive: world-space positions/normals (V, 3), UVs (V, 2) or None, triangles (T, 3)."""

    node: str
    node_index: int
    mesh_index: int
    primitive_index: int
    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray | None
    colors: np.ndarray | None
    indices: np.ndarray
    material: Material


@dataclass
class _Prim:
    positions: np.ndarray
    normals: np.ndarray | None
    uvs: np.ndarray | None
    colors: np.ndarray | None
    joints: np.ndarray | None
    weights: np.ndarray | None
    targets: list[tuple[np.ndarray | None, np.ndarray | None]]
    indices: np.ndarray
    material: int | None


def vertex_normals(positions: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of a triangle mesh (unit length; zero where undefined)."""
    p = positions[tris]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n = np.zeros_like(positions, dtype=np.float64)
    for k in range(3):
        np.add.at(n, tris[:, k], fn)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    return (n / np.where(ln > 0, ln, 1)).astype(np.float32)


class Avatar:
    """A parsed skinned glTF avatar that can be posed many times (see the module docstring)."""

    def __init__(self, data: bytes) -> None:
        gltf, binary = split_glb(bytes(data))
        self.gltf = gltf
        r = Reader(gltf, binary)
        nodes = gltf.get("nodes", [])
        if len(nodes) > 100_000:
            raise MeshError(f"{len(nodes)} nodes; at most 100000 are read")
        self.node_names = [str(n.get("name", "")) for n in nodes]
        self.parent = np.full(len(nodes), -1)
        for i, n in enumerate(nodes):
            for c in n.get("children", []):
                if not 0 <= c < len(nodes) or self.parent[c] >= 0 or c == i:
                    raise MeshError(f"node {i} has a bad child {c} (missing, or with two parents)")
                self.parent[c] = i
        self.order = self._topological(len(nodes))
        self._rest_local = np.stack([self._local(n) for n in nodes]) if nodes else np.zeros((0, 4, 4))
        self._trs = [self._decompose(m) for m in self._rest_local]
        self.rest_world = self._world(self._rest_local)
        self._rest_rot = [_polar(m[:3, :3]) for m in self.rest_world]
        self.humanoid, self.facing = self._find_humanoid()
        hips = self.humanoid.get("hips")
        self.hips_height = float(self.rest_world[hips][1, 3]) if hips is not None else 0.0
        self._images: dict[int, np.ndarray | None] = {}
        self.materials = [self._material(r, m) for m in gltf.get("materials", [])]
        self._default_material = Material(name="default")
        self.skins = []
        for s in gltf.get("skins", []):
            joints = np.asarray(s.get("joints", []), dtype=np.int64)
            if len(joints) == 0 or joints.min() < 0 or joints.max() >= len(nodes):
                raise MeshError("a skin has no joints or names a missing node")
            ibm = (r.accessor(s["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
                   if "inverseBindMatrices" in s else np.tile(np.eye(4), (len(joints), 1, 1)))  # fmt: skip
            if len(ibm) < len(joints):
                raise MeshError("a skin has fewer inverse bind matrices than joints")
            self.skins.append((joints, ibm[: len(joints)].astype(np.float64)))
        self.meshes: list[tuple[list[_Prim], list[str], list[float]]] = []
        for m in gltf.get("meshes", []):
            prims = [self._primitive(r, p) for p in m.get("primitives", [])]
            tn = (m.get("extras") or {}).get("targetNames") or []
            self.meshes.append((prims, [str(t) for t in tn], [float(w) for w in m.get("weights", [])]))
        self.mesh_nodes = [i for i in self._scene_nodes() if "mesh" in nodes[i]]
        for i in self.mesh_nodes:
            if not 0 <= nodes[i]["mesh"] < len(self.meshes):
                raise MeshError(f"node {i} names a missing mesh")
            if "skin" in nodes[i] and not 0 <= nodes[i]["skin"] < len(self.skins):
                raise MeshError(f"node {i} names a missing skin")
        self.target_names = sorted({t for _, tn, _ in self.meshes for t in tn})
        labels: dict[str, int] = {}
        for i in self.mesh_nodes:
            name = self.node_names[i] or f"node{i}"
            labels[name if name not in labels else f"{name}#{i}"] = i
        self.mesh_labels = {i: k for k, i in labels.items()}

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Avatar:
        try:
            size = os.path.getsize(path)
            if size > MAX_FILE_BYTES:
                raise MeshError(f"{path} is {size} bytes; at most {MAX_FILE_BYTES} are read")
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
        return cls(data)

    # --- structure ---
    def _topological(self, n: int) -> list[int]:
        order, seen = [], np.zeros(n, bool)
        children: list[list[int]] = [[] for _ in range(n)]
        for c in range(n):
            if self.parent[c] >= 0:
                children[self.parent[c]].append(c)
        stack = [i for i in range(n) if self.parent[i] < 0][::-1]
        while stack:
            i = stack.pop()
            seen[i] = True
            order.append(i)
            stack.extend(children[i][::-1])
        if not seen.all():
            raise MeshError("the node hierarchy has a cycle")
        self.children = children
        return order

    def _scene_nodes(self) -> list[int]:
        scenes = self.gltf.get("scenes") or []
        if scenes:
            s = self.gltf.get("scene", 0)
            roots = scenes[s].get("nodes", []) if 0 <= s < len(scenes) else []
        else:
            roots = [i for i in range(len(self.parent)) if self.parent[i] < 0]
        out, stack = [], list(roots)[::-1]
        while stack:
            i = stack.pop()
            if not 0 <= i < len(self.parent):
                raise MeshError(f"the scene names a missing node {i}")
            out.append(i)
            stack.extend(self.children[i][::-1])
        return out

    @staticmethod
    def _local(n: dict) -> np.ndarray:
        if "matrix" in n:
            m = np.asarray(n["matrix"], dtype=np.float64)
            if m.shape != (16,):
                raise MeshError("a node matrix does not have 16 numbers")
            return m.reshape(4, 4).T
        m = np.eye(4)
        m[:3, :3] = quat_matrix(n.get("rotation", (0, 0, 0, 1))) * np.asarray(n.get("scale", (1, 1, 1)), float)
        m[:3, 3] = n.get("translation", (0, 0, 0))
        return m

    @staticmethod
    def _decompose(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.linalg.norm(m[:3, :3], axis=0)
        s = np.where(s > 1e-12, s, 1.0)
        rot = m[:3, :3] / s
        if np.linalg.det(rot) < 0:
            s[0], rot[:, 0] = -s[0], -rot[:, 0]
        return m[:3, 3].copy(), rot, s

    def _world(self, local: np.ndarray) -> np.ndarray:
        world = np.empty_like(local)
        for i in self.order:
            p = self.parent[i]
            world[i] = local[i] if p < 0 else world[p] @ local[i]
        return world

    def _find_humanoid(self) -> tuple[dict[str, int], np.ndarray]:
        ext = self.gltf.get("extensions") or {}
        n = len(self.node_names)
        bones: dict[str, int] = {}
        facing = np.eye(3)
        try:
            if "VRMC_vrm" in ext:
                for b, v in ext["VRMC_vrm"]["humanoid"]["humanBones"].items():
                    bones[str(b)] = int(v["node"])
            elif "VRM" in ext:  # VRM 0.x faces -Z: its normalized space is turned 180 degrees about Y
                facing = np.diag([-1.0, 1.0, -1.0])
                for v in ext["VRM"]["humanoid"]["humanBones"]:
                    b = str(v["bone"])
                    for old, new in _VRM0_THUMB.items():
                        b = b.replace(old, new) if b.endswith(old) else b
                    bones[b] = int(v["node"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise MeshError("malformed VRM humanoid map") from None
        if not bones:
            by_name = {node.lower(): vrm for vrm, node in names.HUMANOID.items()}
            by_name.update({vrm.lower(): vrm for vrm in HUMANOID_PARENT})
            for i, nm in enumerate(self.node_names):
                b = by_name.get(_MIXAMO_PREFIX.sub("", nm).lower())
                if b and b not in bones:
                    bones[b] = i
        bones = {b: i for b, i in bones.items() if b in HUMANOID_PARENT}
        if any(not 0 <= i < n for i in bones.values()):
            raise MeshError("the humanoid map names a missing node")
        return bones, facing

    def _material(self, r: Reader, m: dict) -> Material:
        pbr = m.get("pbrMetallicRoughness") or {}
        image, sampler, tex_coord = None, {}, 0
        bct = pbr.get("baseColorTexture")
        if bct is not None:
            tex_coord = int(bct.get("texCoord", 0))
            try:
                tex = self.gltf["textures"][bct["index"]]
            except (IndexError, KeyError, TypeError):
                raise MeshError("a material names a missing texture") from None
            src = tex.get("source")
            for e in ("EXT_texture_webp", "KHR_texture_basisu", "EXT_texture_avif"):
                src = (tex.get("extensions") or {}).get(e, {}).get("source", src)
            if src is not None:
                if src not in self._images:
                    self._images[src] = r.image(src)
                image = self._images[src]
            if "sampler" in tex:
                sampler = dict(self.gltf.get("samplers", [])[tex["sampler"]])
        bc = tuple(float(c) for c in pbr.get("baseColorFactor", (1, 1, 1, 1)))
        return Material(
            name=str(m.get("name", "")),
            base_color=bc if len(bc) == 4 else (1.0, 1.0, 1.0, 1.0),  # type: ignore[arg-type]
            image=image,
            tex_coord=tex_coord,
            sampler=sampler,
            alpha_mode=str(m.get("alphaMode", "OPAQUE")),
            alpha_cutoff=float(m.get("alphaCutoff", 0.5)),
            double_sided=bool(m.get("doubleSided", False)),
            metallic=float(pbr.get("metallicFactor", 1.0)),
            roughness=float(pbr.get("roughnessFactor", 1.0)),
            unlit="KHR_materials_unlit" in (m.get("extensions") or {}),
        )

    def _primitive(self, r: Reader, p: dict) -> _Prim:
        at = p.get("attributes") or {}
        if "POSITION" not in at:
            raise MeshError("a primitive has no POSITION")
        pos = r.accessor(at["POSITION"]).astype(np.float64)
        nv = len(pos)

        def attr(name: str, width: int) -> np.ndarray | None:
            if name not in at:
                return None
            a = r.accessor(at[name])
            if len(a) != nv or a.shape[1] < width:
                raise MeshError(f"{name} has {len(a)} items for {nv} vertices")
            return a[:, :width]

        mat = p.get("material")
        tc = self.materials[mat].tex_coord if mat is not None and 0 <= mat < len(self.materials) else 0
        uv = attr(f"TEXCOORD_{tc}", 2)
        col = attr("COLOR_0", 3)
        if col is not None:
            col = col.astype(np.float32)  # normalized integers are already floats in [0, 1]
            col = np.hstack([col, np.ones((nv, 1), np.float32)]) if col.shape[1] == 3 else col
        joints, weights, k = [], [], 0
        while f"JOINTS_{k}" in at and f"WEIGHTS_{k}" in at:
            joints.append(attr(f"JOINTS_{k}", 4).astype(np.int64))  # type: ignore[union-attr]
            weights.append(attr(f"WEIGHTS_{k}", 4).astype(np.float64))  # type: ignore[union-attr]
            k += 1
        jw = (np.hstack(joints), np.hstack(weights)) if joints else (None, None)
        if jw[1] is not None:
            w = jw[1]
            s = w.sum(1, keepdims=True)
            w = np.where(s > 0, w / np.where(s > 0, s, 1), np.eye(w.shape[1])[0])
            jw = (jw[0], w)
        targets = []
        for t in p.get("targets") or []:
            dp = r.accessor(t["POSITION"]).astype(np.float64) if "POSITION" in t else None
            dn = r.accessor(t["NORMAL"]).astype(np.float64) if "NORMAL" in t else None
            if (dp is not None and len(dp) != nv) or (dn is not None and len(dn) != nv):
                raise MeshError("a morph target has another vertex count than its primitive")
            targets.append((dp, dn))
        idx = r.accessor(p["indices"])[:, 0].astype(np.int64) if "indices" in p else np.arange(nv)
        if len(idx) and (idx.min() < 0 or idx.max() >= nv):
            raise MeshError(f"a primitive's indices reach past its {nv} vertices")
        nrm = attr("NORMAL", 3)
        return _Prim(pos, None if nrm is None else nrm.astype(np.float64), uv, col, jw[0], jw[1], targets,
                     triangles(int(p.get("mode", 4)), idx).astype(np.uint32), mat)  # fmt: skip

    # --- posing ---
    def _fold(self, rotations: Mapping[str, Iterable[float]]) -> dict[str, np.ndarray]:
        unknown = sorted(set(rotations) - set(HUMANOID_PARENT))
        if unknown:
            raise UsageError(f"unknown humanoid bones in the pose: {', '.join(unknown)}")
        kids: dict[str | None, list[str]] = {}
        for b, par in HUMANOID_PARENT.items():
            kids.setdefault(par, []).append(b)
        out: dict[str, np.ndarray] = {}
        stack: list[tuple[str, tuple | None]] = [("hips", None)]
        while stack:
            b, carry = stack.pop()
            q = tuple(float(c) for c in rotations[b]) if b in rotations else None
            if carry is not None:
                q = quat_mul(carry, q) if q is not None else carry
            if b in self.humanoid:
                if q is not None:
                    out[b] = quat_matrix(q)
                q = None
            stack.extend((c, q) for c in kids.get(b, []))
        return out

    def pose_world(self, pose: Pose | None = None) -> np.ndarray:
        """World matrices (N, 4, 4) of every node with ``pose`` applied (None: the rest pose)."""
        if pose is None or (not pose.rotations and not any(pose.hips_offset)):
            return self.rest_world
        local = self._rest_local.copy()
        f = self.facing
        for b, q in self._fold(pose.rotations).items():
            i = self.humanoid[b]
            par = self.parent[i]
            p = self._rest_rot[par] if par >= 0 else np.eye(3)
            t, rot, s = self._trs[i]
            local[i, :3, :3] = (p.T @ (f @ q @ f.T) @ p @ rot) * s
        off = np.asarray(pose.hips_offset, dtype=np.float64)
        if off.shape != (3,) or not np.isfinite(off).all():
            raise UsageError(f"hips_offset must be 3 finite numbers, got {pose.hips_offset!r}")
        if off.any() and "hips" in self.humanoid:
            i = self.humanoid["hips"]
            par = self.parent[i]
            lin = self.rest_world[par][:3, :3] if par >= 0 else np.eye(3)
            scale = self.hips_height / REFERENCE_HIPS_HEIGHT if self.hips_height > 0 else 1.0
            local[i, :3, 3] = self._trs[i][0] + np.linalg.solve(lin, f @ off * scale)
        return self._world(local)

    def skin(
        self,
        pose: Pose | None = None,
        morphs: Mapping[str, float] | None = None,
        nodes: Iterable[str] | None = None,
    ) -> dict[str, list[Part]]:
        """Posed geometry per mesh node (keyed by node name), optionally only the nodes named in ``nodes``."""
        morphs = dict(morphs or {})
        bad = sorted(set(morphs) - set(self.target_names))
        if bad:
            raise UsageError(f"unknown morph targets {', '.join(bad)}; allowed: {', '.join(self.target_names)}")
        want = None if nodes is None else set(nodes)
        if want is not None and want - set(self.mesh_labels.values()):
            raise UsageError(f"no mesh nodes {', '.join(sorted(want - set(self.mesh_labels.values())))}; "
                             f"mesh nodes: {', '.join(self.mesh_labels.values())}")  # fmt: skip
        world = self.pose_world(pose)
        out: dict[str, list[Part]] = {}
        for ni in self.mesh_nodes:
            label = self.mesh_labels[ni]
            if want is not None and label not in want:
                continue
            node = self.gltf["nodes"][ni]
            prims, tnames, mweights = self.meshes[node["mesh"]]
            ntar = max((len(t.targets) for t in prims), default=0)
            w = ([float(x) for x in node.get("weights", mweights)] + [0.0] * ntar)[:ntar]
            for k, name in enumerate(tnames):
                if name in morphs:
                    w[k] = float(morphs[name])
            if "skin" in node:
                joints, ibm = self.skins[node["skin"]]
                skin_m = world[joints] @ ibm
            parts = []
            for pi, p in enumerate(prims):
                pos, nrm = p.positions, p.normals
                for k, (dp, dn) in enumerate(p.targets):
                    if w[k]:
                        pos = pos + w[k] * dp if dp is not None else pos
                        nrm = nrm + w[k] * dn if dn is not None and nrm is not None else nrm
                if "skin" in node and p.joints is not None:
                    if p.joints.max(initial=0) >= len(joints):
                        raise MeshError(f"mesh {node['mesh']} uses joint indices past its skin's {len(joints)}")
                    m = np.einsum("vk,vkij->vij", p.weights, skin_m[p.joints])
                else:
                    m = np.broadcast_to(world[ni], (len(pos), 4, 4))
                lin = m[:, :3, :3]
                ppos = np.einsum("vij,vj->vi", lin, pos) + m[:, :3, 3]
                tris = p.indices
                if nrm is not None:
                    a, b, c = lin[:, :, 0], lin[:, :, 1], lin[:, :, 2]
                    det = np.einsum("vi,vi->v", a, np.cross(b, c))
                    pn = (np.cross(b, c) * nrm[:, :1] + np.cross(c, a) * nrm[:, 1:2] + np.cross(a, b) * nrm[:, 2:3])
                    pn *= np.sign(det)[:, None]
                    ln = np.linalg.norm(pn, axis=1, keepdims=True)
                    pn = (pn / np.where(ln > 0, ln, 1)).astype(np.float32)
                else:
                    pn = vertex_normals(ppos, tris)
                if "skin" not in node and np.linalg.det(world[ni][:3, :3]) < 0:
                    tris = tris[:, ::-1]  # a mirroring node transform reverses the winding
                mat = (self.materials[p.material] if p.material is not None and 0 <= p.material < len(self.materials)
                       else self._default_material)  # fmt: skip
                parts.append(Part(label, ni, node["mesh"], pi, ppos.astype(np.float32), pn,
                                  p.uvs, p.colors, np.ascontiguousarray(tris), mat))  # fmt: skip
            out[label] = parts
        return out
