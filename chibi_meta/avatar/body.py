"""The chibi body: one continuous smooth surface per outfit, skinned to the rig, coloured by region.

The surface is the zero set of a smooth union (polynomial smooth-min) of round cones along the bones
(torso, neck, arms, legs), mitten hands with a thumb, round shoes and the outfit's own volumes (a
hood, a skirt), polygonised once with marching cubes (scikit-image), smoothed (trimesh, Taubin) and
decimated (fast-simplification). No parts meet at visible balls or gaps: it is one closed surface.

Clothes are colour regions of that surface, cut exactly along their hems (a sleeve end, a shorts
hem, a collar): triangles crossing a hem are split on it, and vertices on a hem get one copy per
region with that region's swatch UV, so the colour changes along a clean line with no shading seam.
Skin weights: inverse cube of the distance to each bone's segment (soft joints), at most 4 per vertex.

Built once per process and outfit (``body_mesh(outfit)``, about 0.5 s); nothing here depends on the
texture, so every avatar of an outfit shares these buffers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chibi_meta.avatar import rig
from chibi_meta.errors import AttributeValueError

OUTFITS = ("tshirt_shorts", "hoodie_trousers", "dress")
VOXEL = 0.0055  # marching-cubes cell, metres
TARGET_FACES = 6000  # after decimation
SMOOTH_K = 0.022  # smooth-union blend radius, metres
NECK_TOP = 0.497  # m: 3 mm under the chin (rig.CHIN_Y), so no head vertex is inside the neck
SOLE_FLAT_M = 0.0015
SNAP_T = 0.3  # a vertex this close to a hem (share of a crossing edge) moves onto it
SKIN_POWER, SKIN_EPS = 3.0, 0.010  # weights ~ 1 / (distance to the bone + eps) ** power: soft joints


def check_outfit(outfit: object) -> str:
    if outfit not in OUTFITS:
        raise AttributeValueError(f"unknown value {outfit!r} for attribute 'outfit'; allowed: {', '.join(OUTFITS)}")
    return str(outfit)


@dataclass(frozen=True)
class BodyMesh:
    positions: np.ndarray  # (V, 3) float32
    normals: np.ndarray  # (V, 3) float32
    regions: np.ndarray  # (V,) int: index into REGIONS
    joints: np.ndarray  # (V, 4) uint8 joint indices (rig.NAMES order)
    weights: np.ndarray  # (V, 4) uint8, each row sums to 255
    faces: np.ndarray  # (T, 3) int64


REGIONS = ("skin", "top", "bottom", "shoes", "sole", "accent")


# --- signed distance functions (metres; negative inside) ---------------------------------------
def _round_cone(p: np.ndarray, a: tuple, b: tuple, ra: float, rb: float, zscale: float = 1.0) -> np.ndarray:
    """Distance to a capsule whose radius goes from ra at a to rb at b (z squashed by ``zscale``)."""
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    q = p.copy()
    q[..., 2] = (q[..., 2] - a_[2]) / zscale + a_[2]
    ab = b_ - a_
    t = np.clip(((q - a_) @ ab) / (ab @ ab), 0.0, 1.0)
    d = np.linalg.norm(q - (a_ + t[..., None] * ab), axis=-1)
    return d - (ra + (rb - ra) * t)


def _ellipsoid(p: np.ndarray, c: tuple, r: tuple) -> np.ndarray:
    q = (p - np.asarray(c, float)) / np.asarray(r, float)
    k = np.linalg.norm(q, axis=-1)
    return (k - 1.0) * min(r)


def _smin(a: np.ndarray, b: np.ndarray, k: float = SMOOTH_K) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def sdf(p: np.ndarray, outfit: str, arms_deg: float = 0.0) -> np.ndarray:
    """Signed distance (approximately, metres; negative inside) to the rest-pose body of ``outfit``,
    or with both arms raised ``arms_deg`` above level (negative: lowered, -40 is the A-pose)."""
    return _sdf(np.asarray(p, np.float64), check_outfit(outfit), arms_deg)


def _arm(p: np.ndarray, sx: float) -> np.ndarray:
    """The left (sx = 1) or right (-1) arm: upper arm, forearm, mitten with a thumb."""
    P = {k: np.array(v) for k, v in rig.POSITIONS.items()}
    sy = rig.SHOULDER_Y
    elbow, wrist = P["LeftForeArm"] * [sx, 1, 1], P["LeftHand"] * [sx, 1, 1] - [sx * 0.006, 0, 0]
    d = _round_cone(p, (sx * 0.035, sy - 0.008, 0), tuple(elbow), 0.031, 0.026)
    d = _smin(d, _round_cone(p, tuple(elbow), tuple(wrist), 0.026, 0.022), 0.012)
    hand = _ellipsoid(p, (sx * 0.243, sy - 0.002, 0.001), (0.033, 0.019, 0.029))
    thumb = _round_cone(p, (sx * 0.226, sy - 0.006, 0.016), (sx * 0.243, sy - 0.010, 0.036), 0.0105, 0.009)
    return _smin(d, _smin(hand, thumb, 0.008), 0.012)


def _arm_frame(p: np.ndarray, sx: float, degrees: float) -> np.ndarray:
    """``p`` in the rest frame of the arm ``sx`` raised ``degrees`` about its shoulder joint (LeftArm / RightArm)."""
    if degrees == 0.0:
        return p
    c = np.array(rig.POSITIONS["LeftArm"]) * [sx, 1, 1]
    a = np.radians(-degrees * sx)  # rotate the point back: the arm's frame at rest
    q = p - c
    x, y = q[..., 0] * np.cos(a) - q[..., 1] * np.sin(a), q[..., 0] * np.sin(a) + q[..., 1] * np.cos(a)
    return np.stack([x, y, q[..., 2]], -1) + c


def raised_arms_sdf(p: np.ndarray, degrees: float) -> np.ndarray:
    """Both arms alone, raised ``degrees`` above the T-pose about their shoulder joints."""
    return np.minimum(_arm(_arm_frame(p, 1.0, degrees), 1.0), _arm(_arm_frame(p, -1.0, degrees), -1.0))


def _sdf(p: np.ndarray, outfit: str, arms_deg: float = 0.0) -> np.ndarray:
    P = {k: np.array(v) for k, v in rig.POSITIONS.items()}
    d = _round_cone(p, (0, 0.245, 0), (0, 0.40, 0), 0.088, 0.070, zscale=0.80)  # torso
    d = _smin(d, _ellipsoid(p, (0, 0.228, 0.0), (0.090, 0.052, 0.072)))  # seat
    neck = np.maximum(_round_cone(p, (0, 0.40, 0), (0, 0.53, 0), 0.037, 0.028), p[..., 1] - NECK_TOP)
    d = _smin(d, neck, 0.02)  # the neck: flat-topped just under the chin, so no gap shows below it
    for sx in (1.0, -1.0):
        d = _smin(d, _arm(_arm_frame(p, sx, arms_deg), sx))
        hip, knee, ankle = (P[k] * [sx, 1, 1] for k in ("LeftUpLeg", "LeftLeg", "LeftFoot"))
        d = _smin(d, _round_cone(p, tuple(hip + [0, 0.01, 0]), tuple(knee), 0.043, 0.033), 0.03)
        d = _smin(d, _round_cone(p, tuple(knee), tuple(ankle + [0, 0.01, 0]), 0.033, 0.029), 0.012)
        shoe = _ellipsoid(p, (sx * rig.POSITIONS["LeftFoot"][0], 0.032, 0.018), (0.040, 0.034, 0.062))
        d = _smin(d, np.maximum(shoe, -p[..., 1]), 0.012)  # flat sole at y = 0
    if outfit == "hoodie_trousers":  # the hood folded behind the neck
        d = _smin(d, _ellipsoid(p, (0, 0.425, -0.05), (0.075, 0.036, 0.042)), 0.015)
    if outfit == "dress":  # a flared skirt from the waist to above the knees
        skirt = _round_cone(p, (0, 0.255, 0), (0, 0.146, 0), 0.084, 0.128, zscale=0.82)
        d = _smin(d, np.maximum(skirt, 0.132 - p[..., 1]), 0.01)
    return d


# --- colour regions -----------------------------------------------------------------------------
# Hems: scalar fields whose zero set is a cut line; each region rule reads them at a triangle's centre.
def _hems(outfit: str) -> list[Callable[[np.ndarray], np.ndarray]]:
    ax = lambda p: np.abs(p[..., 0])  # noqa: E731
    collar = lambda p: np.linalg.norm(p - np.array([0.0, 0.455, 0.0]), axis=-1) - 0.05  # noqa: E731
    cuts = [collar, lambda p: ax(p) - 0.214, lambda p: p[..., 1] - 0.062, lambda p: p[..., 1] - 0.009]
    if outfit == "tshirt_shorts":
        cuts += [lambda p: ax(p) - 0.112, lambda p: ax(p) - 0.104, lambda p: p[..., 1] - 0.146,
                 lambda p: p[..., 1] - 0.245, lambda p: p[..., 1] - 0.238]
    elif outfit == "hoodie_trousers":
        cuts += [lambda p: ax(p) - 0.198, lambda p: p[..., 1] - 0.245, lambda p: p[..., 1] - 0.256]
    else:
        cuts += [lambda p: ax(p) - 0.092, lambda p: p[..., 1] - 0.134, lambda p: p[..., 1] - 0.252,
                 lambda p: p[..., 1] - 0.244]
    return cuts


def _region(c: np.ndarray, outfit: str) -> np.ndarray:
    """Region index of each triangle centre ``c``."""
    x, y = np.abs(c[:, 0]), c[:, 1]
    out = np.full(len(c), REGIONS.index("top"))
    neck = np.linalg.norm(c - np.array([0.0, 0.455, 0.0]), axis=1) < 0.05
    hand = x > 0.214
    shoe = (y < 0.062) & (x < 0.12)
    arm = (x > 0.09) & (y > 0.35)
    leg_zone = y < 0.21
    if outfit == "tshirt_shorts":
        bottom = (y < 0.245) & ~arm
        skin = neck | hand | (arm & (x > 0.112)) | (leg_zone & (y < 0.146))
        accent = (arm & (x > 0.104) & (x <= 0.112)) | ((y >= 0.238) & (y < 0.245) & ~arm)
    elif outfit == "hoodie_trousers":
        bottom = (y < 0.245) & ~arm
        skin = neck | hand
        accent = (arm & (x > 0.198)) | ((y >= 0.245) & (y < 0.256) & ~arm)
    else:
        bottom = np.zeros(len(c), bool)
        skin = neck | hand | (arm & (x > 0.092)) | (leg_zone & (y < 0.134))
        accent = (y >= 0.244) & (y < 0.252) & ~arm
    out[bottom] = REGIONS.index("bottom")
    out[accent] = REGIONS.index("accent")
    out[skin] = REGIONS.index("skin")
    out[shoe] = REGIONS.index("shoes")
    out[shoe & (y < 0.009)] = REGIONS.index("sole")
    return out


def _split(v: np.ndarray, f: np.ndarray, g: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Split every triangle that crosses the zero set of ``g`` along it (new vertices on the edges).

    A vertex closer to the cut than SNAP_T of a crossing edge first moves onto the cut along that
    edge (and counts as on it), so the cut makes no sliver triangles, which would deform erratically.
    """
    s = g(v)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = e[(s[e[:, 0]] < 0) != (s[e[:, 1]] < 0)]
    on = np.zeros(len(v), bool)
    if len(e):
        t = s[e[:, 0]] / (s[e[:, 0]] - s[e[:, 1]])  # where the cut crosses, from e0 (0) to e1 (1)
        a, b = np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]])
        ta = np.concatenate([t, 1.0 - t])
        near = ta < SNAP_T
        a, b, ta = a[near], b[near], ta[near]
        order = np.lexsort((ta, a))
        a, b, ta = a[order], b[order], ta[order]
        first = np.r_[True, a[1:] != a[:-1]] if len(a) else np.zeros(0, bool)
        a, b, ta = a[first], b[first], ta[first]
        a_only = ~np.isin(a, b)  # never move both ends of one edge
        a, b, ta = a[a_only], b[a_only], ta[a_only]
        v = v.copy()
        v[a] = v[a] + ta[:, None] * (v[b] - v[a])
        s = g(v)
        on[a] = True
    sg = np.where(on, 0, np.where(s < 0, -1, 1))
    fs = sg[f]
    pos, neg = (fs > 0).sum(1), (fs < 0).sum(1)
    zero = (fs == 0).sum(1)
    cut3 = (pos > 0) & (neg > 0) & (zero == 0)  # a lone vertex on one side: three triangles
    cut2 = (pos == 1) & (neg == 1) & (zero == 1)  # through a vertex on the cut: two triangles
    if not (cut3.any() or cut2.any()):
        return v, f
    keep = f[~(cut3 | cut2)]
    newv: list[np.ndarray] = []
    count = [len(v)]
    edge_id: dict[tuple[int, int], int] = {}

    def mid(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        out = np.empty(len(i), np.int64)
        for k, (p, q) in enumerate(zip(i.tolist(), j.tolist(), strict=True)):
            key = (p, q) if p < q else (q, p)
            if key not in edge_id:
                tt = s[p] / (s[p] - s[q])
                newv.append(v[p] + tt * (v[q] - v[p]))
                edge_id[key] = count[0]
                count[0] += 1
            out[k] = edge_id[key]
        return out

    parts = [keep]
    tri, tn = f[cut3], fs[cut3]
    if len(tri):
        lone = np.where((tn > 0).sum(1) == 1, np.argmax(tn > 0, 1), np.argmax(tn < 0, 1))
        tri = np.take_along_axis(tri, (lone[:, None] + np.arange(3)[None, :]) % 3, 1)
        x, y, z = tri[:, 0], tri[:, 1], tri[:, 2]
        xy, xz = mid(x, y), mid(x, z)
        parts += [np.stack([x, xy, xz], 1), np.stack([xy, y, z], 1), np.stack([xy, z, xz], 1)]
    tri, tn = f[cut2], fs[cut2]
    if len(tri):
        z0 = np.argmax(tn == 0, 1)
        tri = np.take_along_axis(tri, (z0[:, None] + np.arange(3)[None, :]) % 3, 1)
        x, y, z = tri[:, 0], tri[:, 1], tri[:, 2]
        yz = mid(y, z)
        parts += [np.stack([x, y, yz], 1), np.stack([x, yz, z], 1)]
    return np.concatenate([v, np.array(newv).reshape(-1, 3)]), np.concatenate(parts)


def skin_weights(pos: np.ndarray, bones: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse SKIN_POWER of the distance to each bone's segment; top 4, bytes summing to 255."""
    d = np.empty((len(pos), len(bones)))
    for k, b in enumerate(bones):
        s, e = np.array(rig.POSITIONS[b]), rig.tip(b)
        se = e - s
        t = np.clip(((pos - s) @ se) / max(float(se @ se), 1e-12), 0.0, 1.0)
        d[:, k] = np.linalg.norm(pos - (s + t[:, None] * se), axis=1)
    raw = 1.0 / (d + SKIN_EPS) ** SKIN_POWER
    order = np.argsort(-raw, axis=1, kind="stable")[:, :4]
    top = np.take_along_axis(raw, order, 1)
    top /= top.sum(1, keepdims=True)
    top[top < 0.02] = 0.0
    top /= top.sum(1, keepdims=True)
    q = np.floor(top * 255).astype(np.int64)
    q[:, 0] += 255 - q.sum(1)
    ids = np.array([rig.INDEX[b] for b in bones])[order]
    ids[q == 0] = 0
    return ids.astype(np.uint8), q.astype(np.uint8)


_BODY_BONES = tuple(n for n in rig.NAMES if n not in ("HeadTop_End", "LeftEye", "RightEye", "Head"))


@functools.lru_cache(maxsize=len(OUTFITS))
def body_mesh(outfit: str) -> BodyMesh:
    """The skinned, coloured body of ``outfit`` (cached per process)."""
    import fast_simplification
    import trimesh
    from skimage import measure

    outfit = check_outfit(outfit)
    lo, hi = np.array([-0.30, -0.01, -0.12]), np.array([0.30, 0.52, 0.14])
    shape = np.ceil((hi - lo) / VOXEL).astype(int) + 1
    axes = [lo[k] + VOXEL * np.arange(shape[k]) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    vol = _sdf(grid, outfit)
    verts, faces, _, _ = measure.marching_cubes(vol, 0.0, spacing=(VOXEL,) * 3)
    verts += lo
    m = trimesh.Trimesh(verts, faces, process=True)
    trimesh.smoothing.filter_taubin(m, lamb=0.5, nu=-0.53, iterations=8)
    v, f = fast_simplification.simplify(np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.int32),
                                        target_count=TARGET_FACES)  # fmt: skip
    m = trimesh.Trimesh(v, f, process=True)
    trimesh.smoothing.filter_taubin(m, lamb=0.5, nu=-0.53, iterations=4)
    v, f = np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64)
    v[:, 1] -= v[:, 1].min()  # soles exactly on the floor (smoothing lifts them a little)
    v[v[:, 1] < SOLE_FLAT_M, 1] = 0.0  # both soles flat on it (smoothing is not exactly symmetric)
    normals = trimesh.Trimesh(v, f, process=False).vertex_normals
    n_before = len(v)
    for g in _hems(outfit):
        v, f = _split(v, f, g)
    # normals of new hem vertices: interpolate from the smooth surface via the SDF gradient
    eps = 1e-4
    extra = v[n_before:]
    if len(extra):
        grad = np.stack([(_sdf(extra + e, outfit) - _sdf(extra - e, outfit)) / (2 * eps)
                         for e in np.eye(3) * eps], 1)  # fmt: skip
        normals = np.concatenate([normals, grad / np.linalg.norm(grad, axis=1, keepdims=True)])
    reg_t = _region(v[f].mean(1), outfit)
    # one copy of each vertex per region that uses it
    key = f * len(REGIONS) + reg_t[:, None]
    uniq, inv = np.unique(key.ravel(), return_inverse=True)
    src = uniq // len(REGIONS)
    pos = v[src]
    joints, weights = skin_weights(pos, _BODY_BONES)
    return BodyMesh(
        positions=pos.astype(np.float32),
        normals=normals[src].astype(np.float32),
        regions=(uniq % len(REGIONS)).astype(np.int64),
        joints=joints,
        weights=weights,
        faces=inv.reshape(-1, 3).astype(np.int64),
    )
