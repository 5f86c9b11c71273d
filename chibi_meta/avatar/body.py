"""The chibi body: one continuous smooth surface per outfit, skinned to the rig, coloured by region.

The surface is the zero set of a smooth union (polynomial smooth-min) of round cones along the bones
(torso, neck, arms, legs), mitten hands with a thumb, round shoes and the outfit's own volumes (a
hood, a skirt), polygonised once with marching cubes (scikit-image), smoothed (trimesh, Taubin) and
decimated (fast-simplification). No parts meet at visible balls or gaps: it is one closed surface.

Clothes are colour regions of that surface, cut exactly along their hems (a sleeve end, a shorts
hem, a collar): triangles crossing a hem are split on it, and vertices on a hem get one copy per
region with that region's swatch UV, so the colour changes along a clean line with no shading seam.
Skin weights: inverse 4th power of the distance to each bone's segment, at most 4 joints per vertex.

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


def _sdf(p: np.ndarray, outfit: str) -> np.ndarray:
    P = {k: np.array(v) for k, v in rig.POSITIONS.items()}
    sy = rig.SHOULDER_Y
    d = _round_cone(p, (0, 0.245, 0), (0, 0.40, 0), 0.088, 0.070, zscale=0.80)  # torso
    d = _smin(d, _ellipsoid(p, (0, 0.228, 0.0), (0.090, 0.052, 0.072)))  # seat
    d = _smin(d, _round_cone(p, (0, 0.40, 0), (0, 0.49, 0), 0.037, 0.030), 0.02)  # neck, hidden by the head
    for sx in (1.0, -1.0):
        elbow, wrist = P["LeftForeArm"] * [sx, 1, 1], P["LeftHand"] * [sx, 1, 1] - [sx * 0.006, 0, 0]
        d = _smin(d, _round_cone(p, (sx * 0.035, sy - 0.008, 0), tuple(elbow), 0.031, 0.026))
        d = _smin(d, _round_cone(p, tuple(elbow), tuple(wrist), 0.026, 0.022), 0.012)
        hand = _ellipsoid(p, (sx * 0.243, sy - 0.002, 0.001), (0.033, 0.019, 0.029))
        thumb = _round_cone(p, (sx * 0.226, sy - 0.006, 0.016), (sx * 0.243, sy - 0.010, 0.036), 0.0105, 0.009)
        d = _smin(d, _smin(hand, thumb, 0.008), 0.012)
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
    """Split every triangle that crosses the zero set of ``g`` along it (new vertices on the edges)."""
    s = g(v)
    s = np.where(np.abs(s) < 1e-7, 1e-7, s)
    neg = s[f] < 0
    cross = neg.any(1) & ~neg.all(1)
    if not cross.any():
        return v, f
    keep, tri = f[~cross], f[cross]
    tn = neg[cross]
    # rotate each triangle so that its lone vertex (the one on its own side) comes first
    lone = np.where(tn.sum(1) == 1, np.argmax(tn, 1), np.argmin(tn, 1))
    order = (lone[:, None] + np.arange(3)[None, :]) % 3
    tri = np.take_along_axis(tri, order, 1)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    edges = np.sort(np.concatenate([np.stack([a, b], 1), np.stack([a, c], 1)]), 1)
    uniq, inv = np.unique(edges, axis=0, return_inverse=True)
    inv = inv.ravel()
    t = s[uniq[:, 0]] / (s[uniq[:, 0]] - s[uniq[:, 1]])
    newv = v[uniq[:, 0]] + t[:, None] * (v[uniq[:, 1]] - v[uniq[:, 0]])
    base = len(v)
    m = len(tri)
    ab, ac = base + inv[:m], base + inv[m:]
    parts = [np.stack([a, ab, ac], 1), np.stack([ab, b, c], 1), np.stack([ab, c, ac], 1)]
    return np.concatenate([v, newv]), np.concatenate([keep, *parts])


def skin_weights(pos: np.ndarray, bones: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse 4th power of the distance to each bone's segment; top 4, bytes summing to 255."""
    d = np.empty((len(pos), len(bones)))
    for k, b in enumerate(bones):
        s, e = np.array(rig.POSITIONS[b]), rig.tip(b)
        se = e - s
        t = np.clip(((pos - s) @ se) / max(float(se @ se), 1e-12), 0.0, 1.0)
        d[:, k] = np.linalg.norm(pos - (s + t[:, None] * se), axis=1)
    raw = 1.0 / (d + 0.004) ** 4
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
    v[:, 1] = np.maximum(v[:, 1], 0.0)  # soles exactly on the floor
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
