"""Named poses of a VRM humanoid, in VRM *normalized* humanoid space.

A :class:`Pose` gives, per VRM humanoid bone, a local rotation as a quaternion ``(x, y, z, w)`` of
the *normalized* bone: every normalized bone's rest frame is world-aligned (T-pose, facing +Z, +Y up,
the avatar's left on +X), so a rotation means the same motion on any rig whatever its bone axes
(``chibi_meta.avatar.skinning`` retargets it onto the raw bones as three-vrm does). ``hips_offset``
moves the hips in world space, in metres of the reference skeleton of ``chibi_meta.avatar.clips``
(hips ``REFERENCE_HIPS_HEIGHT`` = 0.33 m above the floor); an avatar whose hips are at height ``h``
moves them by ``hips_offset * h / REFERENCE_HIPS_HEIGHT``, as three-vrm-animation scales a VRM
Animation's hips track. Bones a pose does not name stay at rest.

``POSES`` holds the fixed poses, :func:`walk_phases` samples the walk clip of
``chibi_meta.avatar.clips`` and :func:`pose_set` is the deformation pose set of the avatar checks:
A-pose, arms up, sitting, 8 phases of the walk, head turned 60 degrees left and right (in the A-pose).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from chibi_meta.avatar import clips as _clips

Quat = tuple[float, float, float, float]
IDENTITY: Quat = (0.0, 0.0, 0.0, 1.0)

# VRM 1.0 humanoid hierarchy: bone -> parent bone (hips is the root). A pose may name a bone an
# avatar lacks (the optional ones); its rotation then passes to the bone's children.
HUMANOID_PARENT: dict[str, str | None] = {
    "hips": None, "spine": "hips", "chest": "spine", "upperChest": "chest", "neck": "upperChest",
    "head": "neck", "leftEye": "head", "rightEye": "head", "jaw": "head",
}  # fmt: skip
for _s in ("left", "right"):
    HUMANOID_PARENT.update({
        f"{_s}UpperLeg": "hips", f"{_s}LowerLeg": f"{_s}UpperLeg", f"{_s}Foot": f"{_s}LowerLeg",
        f"{_s}Toes": f"{_s}Foot", f"{_s}Shoulder": "upperChest", f"{_s}UpperArm": f"{_s}Shoulder",
        f"{_s}LowerArm": f"{_s}UpperArm", f"{_s}Hand": f"{_s}LowerArm",
        f"{_s}ThumbMetacarpal": f"{_s}Hand", f"{_s}ThumbProximal": f"{_s}ThumbMetacarpal",
        f"{_s}ThumbDistal": f"{_s}ThumbProximal",
    })  # fmt: skip
    for _f in ("Index", "Middle", "Ring", "Little"):
        HUMANOID_PARENT.update({
            f"{_s}{_f}Proximal": f"{_s}Hand", f"{_s}{_f}Intermediate": f"{_s}{_f}Proximal",
            f"{_s}{_f}Distal": f"{_s}{_f}Intermediate",
        })  # fmt: skip
HUMAN_BONES = tuple(HUMANOID_PARENT)


@dataclass(frozen=True)
class Pose:
    """Local rotations of normalized humanoid bones (x, y, z, w) and a world-space hips offset (m)."""

    rotations: dict[str, Quat] = field(default_factory=dict)
    hips_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


def axis_angle(axis: tuple[float, float, float], degrees: float) -> Quat:
    """The quaternion (x, y, z, w) of a rotation by ``degrees`` about ``axis`` (right-handed)."""
    n = math.sqrt(sum(a * a for a in axis))
    h = math.radians(degrees) / 2
    s = math.sin(h) / n
    return (axis[0] * s, axis[1] * s, axis[2] * s, math.cos(h))


def quat_matrix(q: Iterable[float]) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w); it need not be normalised."""
    x, y, z, w = (float(c) for c in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-12:
        from chibi_meta.errors import UsageError

        raise UsageError(f"not a rotation quaternion: {(x, y, z, w)}")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def quat_mul(a: Iterable[float], b: Iterable[float]) -> tuple[float, float, float, float]:
    """Hamilton product a * b of quaternions (x, y, z, w): rotate by b, then by a."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)

REFERENCE_HIPS_HEIGHT: float = _clips.REST["hips"][1]
# Sitting lowers the hips by the upper-leg length (of the reference skeleton; scaled like every
# hips offset), so the thighs are level at the height of the standing knees (a chair seat at knee
# height) and the feet stay on the floor.
SIT_DROP: float = _clips.REST["leftUpperLeg"][1] - _clips.REST["leftLowerLeg"][1]


def _arms(degrees_down: float) -> dict[str, Quat]:
    # the left arm points +X: a rotation about -Z lowers it; the right arm (-X) mirrors it
    return {"leftUpperArm": axis_angle(_Z, -degrees_down), "rightUpperArm": axis_angle(_Z, degrees_down)}


def _head_yaw(degrees: float) -> dict[str, Quat]:
    # +yaw about +Y turns the face (+Z) toward +X, the avatar's left; neck and head share it
    return {"neck": axis_angle(_Y, degrees / 2), "head": axis_angle(_Y, degrees / 2)}


POSES: dict[str, Pose] = {
    "t": Pose(),
    "a": Pose(_arms(40.0)),
    "arms_up": Pose(_arms(-50.0)),  # 50 deg above level: higher, a chibi's short arms meet its big head
    "sit": Pose(
        {
            # as people sit: the pelvis tilts back 35 deg and the back curves it upright again over
            # the spine, chest and upper chest (a lumbar curve: one 35 deg fold at the waist creases
            # the belly), the thighs swing forward 55 deg more (level), the knees bend 70 deg; the
            # legs point -Y: a negative angle about X swings them forward (+Z), a positive one bends
            # the knees back
            "hips": axis_angle(_X, -35.0),
            "spine": axis_angle(_X, 35.0 / 3),
            "chest": axis_angle(_X, 35.0 / 3),
            "upperChest": axis_angle(_X, 35.0 / 3),
            "leftUpperLeg": axis_angle(_X, -55.0),
            "rightUpperLeg": axis_angle(_X, -55.0),
            "leftLowerLeg": axis_angle(_X, 70.0),
            "rightLowerLeg": axis_angle(_X, 70.0),
        },
        hips_offset=(0.0, -SIT_DROP, 0.0),
    ),
    # the head turns in the stance that clips turn it in, arms down (the A-pose), not in the bind
    # pose: level arms make shoulder-length hair that turns with the head sweep through them
    "head_left60": Pose({**_arms(40.0), **_head_yaw(60.0)}),
    "head_right60": Pose({**_arms(40.0), **_head_yaw(-60.0)}),
}


def walk_phases(n: int = 8) -> list[Pose]:
    """``n`` poses sampled evenly over one cycle of the walk clip (phase i at t = i/n of its duration)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        from chibi_meta.errors import UsageError

        raise UsageError(f"walk_phases needs n >= 1, got {n!r}")
    clip = _clips.CLIPS["walk"]
    out = []
    for i in range(n):
        t = clip.duration * i / n
        rot = {str(k): _quat(v) for k, v in clip.sample(t).items()}
        x, y, z = (float(c) for c in clip.hips_offset(t))
        out.append(Pose(rot, (x, y, z)))
    return out


def _quat(v: object) -> Quat:
    x, y, z, w = (float(c) for c in v)  # type: ignore[attr-defined]
    return (x, y, z, w)


WALK_PHASES = 8


def pose_set() -> dict[str, Pose]:
    """The deformation pose set: A-pose, arms up, sitting, walk0..walk7, head turned +-60 degrees."""
    out = {k: POSES[k] for k in ("a", "arms_up", "sit")}
    out.update({f"walk{i}": p for i, p in enumerate(walk_phases(WALK_PHASES))})
    out.update({k: POSES[k] for k in ("head_left60", "head_right60")})
    return out


def pose_names() -> tuple[str, ...]:
    """Every name :func:`get_pose` accepts (without loading the walk clip)."""
    return (*POSES, *(f"walk{i}" for i in range(WALK_PHASES)))


def get_poses(names: Iterable[str]) -> dict[str, Pose]:
    """The poses called ``names`` (keys of ``POSES`` or ``walk0``..``walk7``); UsageError for others.

    The walk clip is sampled once, and only when a walk phase is asked for.
    """
    names = list(names)
    bad = [n for n in names if n not in pose_names()]
    if bad:
        from chibi_meta.errors import UsageError

        raise UsageError(f"unknown pose {bad[0]!r}; allowed: {', '.join(pose_names())}")
    walk = walk_phases(WALK_PHASES) if any(n not in POSES for n in names) else []
    return {n: POSES[n] if n in POSES else walk[int(n[4:])] for n in names}
