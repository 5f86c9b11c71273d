"""The procedural chibi base: smooth ellipsoid parts, a VRM humanoid skeleton, skin weights, morph targets.

Everything here is geometry in metres, Y up, facing +Z, feet on Y=0, T-pose. The base is built once
per process (``chibi_base()`` is cached) and turned into binary glTF buffers by ``chibi_meta.avatar.gltf``.

Parts are axis-aligned ellipsoids (or patches of one) so the avatar is round and soft, not boxy. Colours
come from the texture atlas: every part but the face samples the centre of one flat colour swatch, the
front of the head samples the face region by planar projection along Z (undistorted from the front).
The blink/happy morph targets move hidden, head-conforming "lid" and "blush" patches out through the
surface of the head, so expressions work whatever face the texture shows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from chibi_meta.avatar import atlas

# --- skeleton: (name, parent, world position of the joint) ---------------------------------------
BONES: tuple[tuple[str, str | None, tuple[float, float, float]], ...] = (
    ("hips", None, (0.0, 0.27, 0.0)),
    ("spine", "hips", (0.0, 0.33, 0.0)),
    ("chest", "spine", (0.0, 0.41, 0.0)),
    ("neck", "chest", (0.0, 0.50, 0.0)),
    ("head", "neck", (0.0, 0.53, 0.0)),
    ("leftUpperArm", "chest", (0.10, 0.45, 0.0)),
    ("leftLowerArm", "leftUpperArm", (0.22, 0.45, 0.0)),
    ("leftHand", "leftLowerArm", (0.33, 0.45, 0.0)),
    ("rightUpperArm", "chest", (-0.10, 0.45, 0.0)),
    ("rightLowerArm", "rightUpperArm", (-0.22, 0.45, 0.0)),
    ("rightHand", "rightLowerArm", (-0.33, 0.45, 0.0)),
    ("leftUpperLeg", "hips", (0.065, 0.26, 0.0)),
    ("leftLowerLeg", "leftUpperLeg", (0.065, 0.14, 0.0)),
    ("leftFoot", "leftLowerLeg", (0.065, 0.05, 0.0)),
    ("rightUpperLeg", "hips", (-0.065, 0.26, 0.0)),
    ("rightLowerLeg", "rightUpperLeg", (-0.065, 0.14, 0.0)),
    ("rightFoot", "rightLowerLeg", (-0.065, 0.05, 0.0)),
)
BONE_INDEX = {name: i for i, (name, _, _) in enumerate(BONES)}
# where a leaf bone's segment ends (for skin weights)
_LEAF_TIPS = {
    "head": (0.0, 0.95, 0.0),
    "leftHand": (0.38, 0.45, 0.0),
    "rightHand": (-0.38, 0.45, 0.0),
    "leftFoot": (0.065, 0.03, 0.09),
    "rightFoot": (-0.065, 0.03, 0.09),
}

HEAD_CENTER = np.array([0.0, 0.74, 0.0])
HEAD_RADII = np.array([0.26, 0.25, 0.23])
# The face window (atlas.FACE_WINDOW, in texture pixels) maps to the head's front silhouette:
# half its width spans HEAD_RADII[0]; its centre sits FACE_DROP below the head centre (big forehead).
FACE_DROP = 0.02
EYE_HEIGHT = 0.745  # world Y of the eyes' centre, for lookAt / firstPerson

EXPRESSION_TARGETS = ("blinkLeft", "blinkRight", "happy")


@dataclass
class MeshData:
    positions: list[np.ndarray] = field(default_factory=list)
    normals: list[np.ndarray] = field(default_factory=list)
    uvs: list[np.ndarray] = field(default_factory=list)
    joints: list[np.ndarray] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    faces: list[np.ndarray] = field(default_factory=list)
    deltas: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)  # name -> (vertex offset, d)
    count: int = 0

    def add(self, pos: np.ndarray, nrm: np.ndarray, faces: np.ndarray, uv: np.ndarray, bones: tuple[str, ...]) -> int:
        """Append a part; returns the index of its first vertex."""
        faces = _orient(pos, nrm, faces)
        j, w = _skin(pos, bones)
        start = self.count
        self.positions.append(pos)
        self.normals.append(nrm)
        self.uvs.append(np.broadcast_to(uv, (len(pos), 2)).astype(np.float64))
        self.joints.append(j)
        self.weights.append(w)
        self.faces.append(faces + start)
        self.count += len(pos)
        return start


@dataclass(frozen=True)
class ChibiGeometry:
    """Final arrays of the procedural base (one primitive)."""

    positions: np.ndarray  # (V,3) float32
    normals: np.ndarray  # (V,3) float32
    uvs: np.ndarray  # (V,2) uint16 normalised
    joints: np.ndarray  # (V,4) uint8
    weights: np.ndarray  # (V,4) uint8 normalised, each row sums to 255
    indices: np.ndarray  # (T*3,) uint16
    targets: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (sorted vertex ids uint16, deltas float32)


def _frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axis = axis / np.linalg.norm(axis)
    helper = np.array([0.0, 1.0, 0.0]) if abs(axis[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, axis)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(axis, e1)


def ellipsoid_patch(
    center: np.ndarray,
    radii: np.ndarray,
    axis: tuple[float, float, float] = (0.0, 1.0, 0.0),
    theta: tuple[float, float] = (0.0, np.pi),
    rings: int = 8,
    segments: int = 12,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, normals and triangles of the part of an ellipsoid between polar angles ``theta``.

    Angles are measured from ``axis``; a patch that reaches a pole gets one pole vertex (no
    degenerate triangles). The longitude wraps without a seam (UVs here are seamless).
    """
    a = np.asarray(axis, dtype=np.float64)
    a /= np.linalg.norm(a)
    e1, e2 = _frame(a)
    t0, t1 = theta
    has_top, has_bottom = t0 <= 1e-9, t1 >= np.pi - 1e-9
    ts = np.linspace(t0, t1, rings + 1)
    ring_ts = ts[(1 if has_top else 0) : (len(ts) - 1 if has_bottom else len(ts))]
    phis = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    dirs = []
    if has_top:
        dirs.append(a[None])
    tt, pp = np.meshgrid(ring_ts, phis, indexing="ij")
    d = (
        np.cos(tt)[..., None] * a + np.sin(tt)[..., None] * (np.cos(pp)[..., None] * e1 + np.sin(pp)[..., None] * e2)
    ).reshape(-1, 3)
    dirs.append(d)
    if has_bottom:
        dirs.append(-a[None])
    dirs_a = np.concatenate(dirs)
    pos = center + dirs_a * radii
    nrm = dirs_a / radii
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    faces = []
    off = 1 if has_top else 0
    n_rings, s = len(ring_ts), segments
    if has_top:
        for k in range(s):
            faces.append((0, off + k, off + (k + 1) % s))
    for r in range(n_rings - 1):
        for k in range(s):
            a0, a1 = off + r * s + k, off + r * s + (k + 1) % s
            b0, b1 = a0 + s, a1 + s
            faces += [(a0, b0, b1), (a0, b1, a1)]
    if has_bottom:
        last = len(pos) - 1
        base = off + (n_rings - 1) * s
        for k in range(s):
            faces.append((last, base + (k + 1) % s, base + k))
    return pos, nrm, np.asarray(faces, dtype=np.int64)


def vertex_normals(pos: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of a triangle mesh (faces wound counter-clockwise)."""
    n = np.cross(pos[faces[:, 1]] - pos[faces[:, 0]], pos[faces[:, 2]] - pos[faces[:, 0]])
    out = np.zeros_like(pos)
    for k in range(3):
        np.add.at(out, faces[:, k], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def hair_volume(
    center: np.ndarray, radii: np.ndarray, axis: tuple[float, float, float], rings: int = 10, segments: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A hood of hair over the top, sides and back: open over the face with a scalloped fringe,
    its surface gently lumpy like locks of hair. The pole is at the back of the head."""
    a = np.asarray(axis, dtype=np.float64)
    a /= np.linalg.norm(a)
    e1, e2 = _frame(a)
    phis = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    # the opening's half-angle: wider at the chin, scalloped (locks) around the forehead and cheeks
    up = np.cos(phis) * (e1 @ [0, 1, 0]) + np.sin(phis) * (e2 @ [0, 1, 0])  # +1 toward the top
    theta0 = np.radians(62.0 - 10.0 * up + 7.0 * np.abs(np.sin(4.0 * phis)) * (up > -0.3))
    t = np.linspace(0.0, 1.0, rings + 1)[:-1]
    tt = theta0[None, :] + t[:, None] ** 0.9 * (np.pi - theta0[None, :])
    pp = np.broadcast_to(phis, tt.shape)
    d = np.cos(tt)[..., None] * a + np.sin(tt)[..., None] * (np.cos(pp)[..., None] * e1 + np.sin(pp)[..., None] * e2)
    lump = 1.0 + 0.025 * np.sin(8.0 * pp) * np.sin(tt) ** 2
    pos = np.concatenate([(center + d * radii * lump[..., None]).reshape(-1, 3), [center - a * radii]])
    faces = []
    s = segments
    for r in range(rings - 1):
        for k in range(s):
            a0, a1 = r * s + k, r * s + (k + 1) % s
            faces += [(a0, a0 + s, a1 + s), (a0, a1 + s, a1)]
    last, base = len(pos) - 1, (rings - 1) * s
    faces += [(last, base + (k + 1) % s, base + k) for k in range(s)]
    faces_a = np.asarray(faces, dtype=np.int64)
    outward = pos - center
    faces_a = _orient(pos, outward, faces_a)
    return pos, vertex_normals(pos, faces_a), faces_a


def _orient(pos: np.ndarray, nrm: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Make every triangle wind counter-clockwise seen from outside (along its vertex normals)."""
    a, b, c = pos[faces[:, 0]], pos[faces[:, 1]], pos[faces[:, 2]]
    n = np.cross(b - a, c - a)
    flip = (n * (nrm[faces[:, 0]] + nrm[faces[:, 1]] + nrm[faces[:, 2]])).sum(1) < 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return faces


def _segment(name: str) -> tuple[np.ndarray, np.ndarray]:
    start = np.array(BONES[BONE_INDEX[name]][2])
    children = [b[2] for b in BONES if b[1] == name]
    if name in _LEAF_TIPS:
        end = np.array(_LEAF_TIPS[name])
    elif name == "chest":  # the chest runs up to the neck, not out to the arms
        end = np.array(BONES[BONE_INDEX["neck"]][2])
    else:
        end = np.array(children[0])
    return start, end


def _skin(pos: np.ndarray, bones: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Smooth weights over the candidate ``bones``: inverse 4th power of the distance to each segment.

    At most 4 influences, quantised to bytes that sum to exactly 255.
    """
    n = len(pos)
    if len(bones) == 1:
        j = np.zeros((n, 4), np.uint8)
        j[:, 0] = BONE_INDEX[bones[0]]
        w = np.zeros((n, 4), np.uint8)
        w[:, 0] = 255
        return j, w
    dist = []
    for b in bones:
        s, e = _segment(b)
        se = e - s
        t = np.clip(((pos - s) @ se) / max(float(se @ se), 1e-12), 0.0, 1.0)
        dist.append(np.linalg.norm(pos - (s + t[:, None] * se), axis=1))
    d = np.stack(dist, 1)
    raw = 1.0 / (d + 0.01) ** 4
    order = np.argsort(-raw, axis=1, kind="stable")[:, :4]
    top = np.take_along_axis(raw, order, 1)
    top = top / top.sum(1, keepdims=True)
    top[top < 0.02] = 0.0
    top = top / top.sum(1, keepdims=True)
    q = np.floor(top * 255).astype(np.int64)
    q[:, 0] += 255 - q.sum(1)  # the largest weight absorbs the rounding
    ids = np.array([BONE_INDEX[b] for b in bones])[order]
    ids[q == 0] = 0  # unused slots: joint 0, weight 0
    # padding when fewer than 4 candidates
    j = np.zeros((n, 4), np.uint8)
    w = np.zeros((n, 4), np.uint8)
    k = ids.shape[1]
    j[:, :k] = ids
    w[:, :k] = q
    return j, w


def _head_surface_z(x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
    rx, ry, rz = HEAD_RADII * scale
    u = 1.0 - ((x - HEAD_CENTER[0]) / rx) ** 2 - ((y - HEAD_CENTER[1]) / ry) ** 2
    return HEAD_CENTER[2] + rz * np.sqrt(np.clip(u, 0.0, None))


def face_uv(pos: np.ndarray) -> np.ndarray:
    """Planar projection along Z of head-front points into the atlas' face region."""
    half = HEAD_RADII[0]
    fx = (pos[:, 0] - HEAD_CENTER[0]) / half  # -1..1 across the face window
    fy = (pos[:, 1] - (HEAD_CENTER[1] - FACE_DROP)) / half
    # texture x grows to the viewer's right = +X world (the avatar faces +Z, the viewer looks at -Z)
    u = 0.5 + 0.5 * fx
    v = 0.5 - 0.5 * fy
    return atlas.face_uv(np.stack([u, v], 1))


def _face_point(px: float, py: float) -> tuple[float, float]:
    """World (x, y) on the head front of a point given in face-image fractions (0..1, y down)."""
    wu, wv = atlas.face_image_to_window(px, py)
    half = HEAD_RADII[0]
    return HEAD_CENTER[0] + (wu - 0.5) * 2 * half, HEAD_CENTER[1] - FACE_DROP - (wv - 0.5) * 2 * half


def _lid(m: MeshData, cx: float, cy: float, rx: float, ry: float, uv: np.ndarray, target: str) -> None:
    """A patch conforming to the head, hidden just under its surface; ``target`` pushes it out."""
    rings, segs = 4, 14
    r = np.linspace(0, 1, rings + 1)[1:]
    ph = np.linspace(0, 2 * np.pi, segs, endpoint=False)
    rr, pp = np.meshgrid(r, ph, indexing="ij")
    xs = np.concatenate([[cx], (cx + rx * rr * np.cos(pp)).ravel()])
    ys = np.concatenate([[cy], (cy + ry * rr * np.sin(pp)).ravel()])
    surf = np.stack([xs, ys, _head_surface_z(xs, ys)], 1)
    rel = surf - HEAD_CENTER
    nrm = rel / HEAD_RADII**2
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    rest = HEAD_CENTER + rel * 0.97
    faces = [(0, 1 + k, 1 + (k + 1) % segs) for k in range(segs)]
    for i in range(rings - 1):
        for k in range(segs):
            a0, a1 = 1 + i * segs + k, 1 + i * segs + (k + 1) % segs
            faces += [(a0, a0 + segs, a1 + segs), (a0, a1 + segs, a1)]
    start = m.add(rest, nrm, np.asarray(faces), uv, ("head",))
    m.deltas.setdefault(target, []).append((start, rel * 0.045))


def _build() -> MeshData:
    m = MeshData()
    sw = atlas.swatch_uv
    head = ("head",)
    # head: the front half carries the face (planar UVs), the back half the hair colour
    pos, nrm, f = ellipsoid_patch(HEAD_CENTER, HEAD_RADII, (0, 0, 1), (0.0, np.pi / 2), rings=10, segments=24)
    m.add(pos, nrm, f, face_uv(pos), head)
    pos, nrm, f = ellipsoid_patch(HEAD_CENTER, HEAD_RADII, (0, 0, 1), (np.pi / 2, np.pi), rings=8, segments=24)
    m.add(pos, nrm, f, sw("hair"), head)
    # hair volume: a hood over the top, sides and back, open over the face
    tilt = np.radians(18.0)
    hair_axis = (0.0, -np.sin(tilt), np.cos(tilt))
    hc = HEAD_CENTER + np.array([0.0, 0.012, -0.012])
    pos, nrm, f = hair_volume(hc, HEAD_RADII * [1.07, 1.08, 1.09], hair_axis)
    m.add(pos, nrm, f, sw("hair"), head)
    # eyelids (blink) and happy lower lids + blush
    for side, (ex, ey) in (("Left", atlas.EYE_RIGHT_IMG), ("Right", atlas.EYE_LEFT_IMG)):
        # the image's right eye is the avatar's left eye
        cx, cy = _face_point(ex, ey)
        k = HEAD_RADII[0] / atlas.WINDOW_HALF_IMG  # world metres per texture width
        rx, ry = atlas.EYE_HALF_IMG[0] * k, atlas.EYE_HALF_IMG[1] * k
        _lid(m, cx, cy, rx, ry, sw("skin"), f"blink{side}")
        _lid(m, cx, cy - ry * 0.9, rx * 1.08, ry * 0.8, sw("skin"), "happy")
        bx = cx + (0.45 * rx if side == "Left" else -0.45 * rx)
        _lid(m, bx, cy - ry * 2.0, rx * 0.55, ry * 0.38, sw("blush"), "happy")
    # body
    pos, nrm, f = ellipsoid_patch(np.array([0.0, 0.37, 0.0]), np.array([0.125, 0.145, 0.095]), rings=8, segments=16)
    m.add(pos, nrm, f, sw("clothes"), ("hips", "spine", "chest", "neck"))
    for sx, side in ((1.0, "left"), (-1.0, "right")):
        up, lo, hand = f"{side}UpperArm", f"{side}LowerArm", f"{side}Hand"
        ax = (1.0, 0.0, 0.0)
        pos, nrm, f = ellipsoid_patch(np.array([sx * 0.16, 0.45, 0.0]), np.array([0.075, 0.042, 0.042]), ax, rings=7)
        m.add(pos, nrm, f, sw("clothes"), ("chest", up, lo))
        pos, nrm, f = ellipsoid_patch(np.array([sx * 0.27, 0.45, 0.0]), np.array([0.065, 0.034, 0.034]), ax, rings=7)
        m.add(pos, nrm, f, sw("skin"), (up, lo, hand))
        pos, nrm, f = ellipsoid_patch(np.array([sx * 0.35, 0.45, 0.0]), np.array([0.045, 0.04, 0.038]), ax, rings=6)
        m.add(pos, nrm, f, sw("skin"), (lo, hand))
        ul, ll, foot = f"{side}UpperLeg", f"{side}LowerLeg", f"{side}Foot"
        x = sx * 0.065
        pos, nrm, f = ellipsoid_patch(np.array([x, 0.20, 0.0]), np.array([0.055, 0.085, 0.055]), rings=7)
        m.add(pos, nrm, f, sw("pants"), ("hips", ul, ll))
        pos, nrm, f = ellipsoid_patch(np.array([x, 0.10, 0.0]), np.array([0.042, 0.07, 0.042]), rings=7)
        m.add(pos, nrm, f, sw("skin"), (ul, ll, foot))
        pos, nrm, f = ellipsoid_patch(np.array([x, 0.036, 0.022]), np.array([0.052, 0.036, 0.078]), rings=7)
        m.add(pos, nrm, f, sw("shoes"), (ll, foot))
    return m


@functools.lru_cache(maxsize=1)
def chibi_geometry() -> ChibiGeometry:
    """The procedural base, built once per process."""
    m = _build()
    pos = np.concatenate(m.positions).astype(np.float32)
    pos[:, 1] = np.maximum(pos[:, 1], 0.0)  # feet exactly on Y=0 (the soles' poles)
    nrm = np.concatenate(m.normals).astype(np.float32)
    uv = np.clip(np.rint(np.concatenate(m.uvs) * 65535.0), 0, 65535).astype(np.uint16)
    targets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in EXPRESSION_TARGETS:
        ids = np.concatenate([np.arange(s, s + len(d)) for s, d in m.deltas[name]]).astype(np.uint16)
        d = np.concatenate([d for _, d in m.deltas[name]]).astype(np.float32)
        order = np.argsort(ids, kind="stable")
        targets[name] = (ids[order], d[order])
    if m.count > 65535:  # pragma: no cover - a construction bug, not input
        raise RuntimeError("base mesh too large for 16-bit indices")
    return ChibiGeometry(
        positions=pos,
        normals=nrm,
        uvs=uv,
        joints=np.concatenate(m.joints),
        weights=np.concatenate(m.weights),
        indices=np.concatenate(m.faces).astype(np.uint16).ravel(),
        targets=targets,
    )


def bone_world(name: str) -> tuple[float, float, float]:
    return BONES[BONE_INDEX[name]][2]
