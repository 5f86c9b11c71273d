"""Animation clips keyed by code: an idle and a walk for the chibi, in VRM 1.0 normalized humanoid space.

Conventions (the ones three-vrm's normalized bones and VRM Animation use): every bone's rest frame is
world-aligned (T-pose, facing +Z, +Y up, the avatar's left on +X); ``Clip.sample(t)`` gives each bone's
LOCAL rotation relative to its parent as a quaternion ``(x, y, z, w)``; ``Clip.hips_offset(t)`` is the
hips translation in metres from its rest position, in world axes. Signs that follow from it: a leg or a
hanging arm swings forward with a negative rotation about X, a knee bends with a positive one, the spine
and head lean forward (nod) with a positive one; the left arm comes down from the T-pose with a negative
rotation about Z, the right arm with a positive one.

The clips are functions of time (sines and a few shaped pulses), no external data. The walk is in place
(no root motion); its hips height comes from forward kinematics on ``REST`` so that the lowest point of
the soles stays on the ground (Y=0). ``chibi_meta.avatar.vrma`` writes a clip as a ``.vrma`` file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

Quat = tuple[float, float, float, float]
Vec3 = tuple[float, float, float]

# --- reference skeleton: (bone, parent, world rest position), parents first -----------------------
# A chibi about 1.0 m tall: hips 0.33 m, legs ~0.30 m, arms ~0.25 m, head ~0.45 m; T-pose, feet on Y=0.
_FINGER_SEGMENTS = {"Thumb": ("Metacarpal", "Proximal", "Distal")}
_FINGER_JOINTS = ("Proximal", "Intermediate", "Distal")
_FINGER_Z = {"Thumb": 0.025, "Index": 0.015, "Middle": 0.005, "Ring": -0.005, "Little": -0.015}


def _skeleton() -> tuple[tuple[str, str | None, Vec3], ...]:
    out: list[tuple[str, str | None, Vec3]] = [
        ("hips", None, (0.0, 0.33, 0.0)),
        ("spine", "hips", (0.0, 0.37, 0.0)),
        ("chest", "spine", (0.0, 0.42, 0.0)),
        ("upperChest", "chest", (0.0, 0.47, 0.0)),
        ("neck", "upperChest", (0.0, 0.52, 0.0)),
        ("head", "neck", (0.0, 0.55, 0.0)),
    ]
    for side, sx in (("left", 1.0), ("right", -1.0)):
        out += [
            (f"{side}Shoulder", "upperChest", (0.03 * sx, 0.50, 0.0)),
            (f"{side}UpperArm", f"{side}Shoulder", (0.09 * sx, 0.50, 0.0)),
            (f"{side}LowerArm", f"{side}UpperArm", (0.195 * sx, 0.50, 0.0)),
            (f"{side}Hand", f"{side}LowerArm", (0.295 * sx, 0.50, 0.0)),
        ]
        for finger, z in _FINGER_Z.items():
            parent = f"{side}Hand"
            for k, joint in enumerate(_FINGER_SEGMENTS.get(finger, _FINGER_JOINTS)):
                x = (0.305 + (0.0 if finger == "Thumb" else 0.02) + 0.013 * k) * sx
                name = f"{side}{finger}{joint}"
                out.append((name, parent, (x, 0.50 - (0.005 if finger == "Thumb" else 0.0), z)))
                parent = name
    for side, sx in (("left", 1.0), ("right", -1.0)):
        out += [
            (f"{side}UpperLeg", "hips", (0.07 * sx, 0.31, 0.0)),
            (f"{side}LowerLeg", f"{side}UpperLeg", (0.07 * sx, 0.18, 0.0)),
            (f"{side}Foot", f"{side}LowerLeg", (0.07 * sx, 0.05, 0.0)),
            (f"{side}Toes", f"{side}Foot", (0.07 * sx, 0.015, 0.075)),
        ]
    return tuple(out)


SKELETON: tuple[tuple[str, str | None, Vec3], ...] = _skeleton()
BONES: tuple[str, ...] = tuple(b for b, _, _ in SKELETON)  # every bone a clip gives, parents first
PARENT: dict[str, str | None] = {b: p for b, p, _ in SKELETON}
REST: dict[str, Vec3] = {b: pos for b, _, pos in SKELETON}
# Points of each sole (bone they move with, rest position): heel and ball on the foot, tip on the toes.
_SOLE = {
    side: ((f"{side}Foot", (sx * 0.07, 0.0, -0.03)), (f"{side}Foot", (sx * 0.07, 0.0, 0.075)),
           (f"{side}Toes", (sx * 0.07, 0.0, 0.115)))
    for side, sx in (("left", 1.0), ("right", -1.0))
}  # fmt: skip

IDENTITY: Quat = (0.0, 0.0, 0.0, 1.0)


# --- quaternion helpers (x, y, z, w) ------------------------------------------------------------------
def quat_axis_angle(axis: Vec3, degrees: float) -> Quat:
    """The rotation of ``degrees`` about the unit ``axis``."""
    h = math.radians(degrees) / 2.0
    s = math.sin(h)
    return (axis[0] * s, axis[1] * s, axis[2] * s, math.cos(h))


def quat_mul(a: Quat, b: Quat) -> Quat:
    """``a * b``: rotate by ``b`` first, then by ``a``."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def quat_rotate(q: Quat, v: Vec3) -> Vec3:
    """The vector ``v`` rotated by the unit quaternion ``q``."""
    x, y, z, w = q
    tx = 2.0 * (y * v[2] - z * v[1])
    ty = 2.0 * (z * v[0] - x * v[2])
    tz = 2.0 * (x * v[1] - y * v[0])
    return (v[0] + w * tx + y * tz - z * ty, v[1] + w * ty + z * tx - x * tz, v[2] + w * tz + x * ty - y * tx)


def _canon(q: Quat) -> Quat:
    n = math.sqrt(sum(c * c for c in q))
    s = (1.0 if q[3] >= 0.0 else -1.0) / n
    return (q[0] * s, q[1] * s, q[2] * s, q[3] * s)


def _euler(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> Quat:
    """Rotate about Z first, then Y, then X (world axes), angles in degrees."""
    q = quat_axis_angle((0.0, 0.0, 1.0), z)
    q = quat_mul(quat_axis_angle((0.0, 1.0, 0.0), y), q)
    return quat_mul(quat_axis_angle((1.0, 0.0, 0.0), x), q)


def forward_kinematics(
    rotations: dict[str, Quat], hips: Vec3 = (0.0, 0.0, 0.0)
) -> tuple[dict[str, Vec3], dict[str, Quat]]:
    """World positions and rotations of the ``REST`` skeleton posed by local ``rotations`` (+ hips offset)."""
    pos: dict[str, Vec3] = {}
    rot: dict[str, Quat] = {}
    for bone, parent, rest in SKELETON:
        local = rotations.get(bone, IDENTITY)
        if parent is None:
            pos[bone] = (rest[0] + hips[0], rest[1] + hips[1], rest[2] + hips[2])
            rot[bone] = local
            continue
        pr = REST[parent]
        d = quat_rotate(rot[parent], (rest[0] - pr[0], rest[1] - pr[1], rest[2] - pr[2]))
        pp = pos[parent]
        pos[bone] = (pp[0] + d[0], pp[1] + d[1], pp[2] + d[2])
        rot[bone] = quat_mul(rot[parent], local)
    return pos, rot


def sole_points(rotations: dict[str, Quat], hips: Vec3 = (0.0, 0.0, 0.0)) -> dict[str, list[Vec3]]:
    """World positions of each foot's sole points (heel, ball, toe tip) per side (``left``/``right``)."""
    pos, rot = forward_kinematics(rotations, hips)
    out: dict[str, list[Vec3]] = {}
    for side, points in _SOLE.items():
        out[side] = []
        for bone, p in points:
            r = REST[bone]
            d = quat_rotate(rot[bone], (p[0] - r[0], p[1] - r[1], p[2] - r[2]))
            out[side].append((pos[bone][0] + d[0], pos[bone][1] + d[1], pos[bone][2] + d[2]))
    return out


# --- clips ----------------------------------------------------------------------------------------------
Pose = tuple[dict[str, Quat], Vec3]  # local rotations, hips offset before grounding (x, z used; y added)


@dataclass(frozen=True)
class Clip:
    """A looping (or clamped) clip: ``sample(t)`` rotations and ``hips_offset(t)``, ``t`` in seconds."""

    name: str
    duration: float
    fps: int
    loop: bool
    pose: Callable[[float], Pose] = field(repr=False, compare=False)  # phase in [0, 1) -> Pose
    grounded: bool = True  # hips height keeps the lowest sole point on Y=0

    def _phase(self, t: float) -> float:
        if self.loop:
            return (t % self.duration) / self.duration
        return min(max(t, 0.0), self.duration) / self.duration

    def sample(self, t: float) -> dict[str, Quat]:
        """Local rotation ``(x, y, z, w)`` of every bone in ``BONES`` at time ``t`` (identity if unmoved)."""
        rots = self.pose(self._phase(t))[0]
        return {b: _canon(rots.get(b, IDENTITY)) for b in BONES}

    def hips_offset(self, t: float) -> Vec3:
        """Hips translation (metres) from its ``REST`` position at time ``t``, world axes."""
        rots, off = self.pose(self._phase(t))
        if not self.grounded:
            return off
        soles = sole_points(rots, (off[0], 0.0, off[2]))
        lowest = min(p[1] for pts in soles.values() for p in pts)
        return (off[0], off[1] - lowest, off[2])

    def frame_times(self) -> list[float]:
        """Key times at ``fps`` over the whole clip, both ends included (for a loop the last = the first)."""
        n = max(1, round(self.duration * self.fps))
        return [self.duration * i / n for i in range(n + 1)]

    def moved_bones(self) -> tuple[str, ...]:
        """The bones whose rotation is not the identity at some key time, in ``BONES`` order."""
        moved: set[str] = set()
        for t in self.frame_times():
            moved |= {b for b, q in self.sample(t).items() if abs(q[3]) < 1.0 - 1e-9}
        return tuple(b for b in BONES if b in moved)


def _arm(side: str, down: float, forward: float, elbow: float, twist: float = 0.0) -> dict[str, Quat]:
    """An arm lowered ``down`` degrees from the T-pose, swung ``forward``, elbow bent ``elbow`` degrees."""
    s = 1.0 if side == "left" else -1.0
    return {
        f"{side}UpperArm": _euler(x=-forward, y=-s * twist, z=-s * down),
        f"{side}LowerArm": _euler(y=-s * elbow),
    }


def _relaxed_hand(side: str, curl: float) -> dict[str, Quat]:
    """Fingers curled toward the palm (palm down in the T-pose), thumb slightly in."""
    s = 1.0 if side == "left" else -1.0
    out: dict[str, Quat] = {f"{side}Hand": _euler(z=-s * 6.0)}
    for finger, spread in (("Index", 4.0), ("Middle", 0.0), ("Ring", -3.0), ("Little", -6.0)):
        for k, joint in enumerate(_FINGER_JOINTS):
            out[f"{side}{finger}{joint}"] = _euler(y=-s * spread if k == 0 else 0.0, z=-s * curl * (1.0, 1.3, 1.0)[k])
    out[f"{side}ThumbMetacarpal"] = _euler(y=-s * 10.0)
    out[f"{side}ThumbProximal"] = _euler(z=-s * curl * 0.5)
    out[f"{side}ThumbDistal"] = _euler(z=-s * curl * 0.5)
    return out


def _plant(side: str, hips_rot: Quat, hips_dx: float) -> dict[str, Quat]:
    """Leg rotations that keep a straight leg's foot under its rest position when the hips sway."""
    leg = REST[f"{side}UpperLeg"][1] - REST[f"{side}Foot"][1]
    lean = math.degrees(math.asin(max(-1.0, min(1.0, -hips_dx / leg))))
    inv = (-hips_rot[0], -hips_rot[1], -hips_rot[2], hips_rot[3])
    return {f"{side}UpperLeg": quat_mul(inv, _euler(z=lean)), f"{side}Foot": _euler(z=-lean)}


def _idle(phase: float) -> Pose:
    p = 2.0 * math.pi * phase
    breath = math.sin(p)  # one breath per loop: in while positive
    sway = math.sin(p + 0.4)
    hips = _euler(z=1.2 * sway)
    dx = -0.006 * sway
    r: dict[str, Quat] = {
        "hips": hips,
        "spine": _euler(x=0.8 - 0.6 * breath, z=-0.8 * sway),
        "chest": _euler(x=-1.0 * breath, z=-0.4 * sway),
        "upperChest": _euler(x=-1.2 * breath),
        "neck": _euler(x=0.5 * breath, y=1.5 * math.sin(p + 1.2)),
        "head": _euler(x=-1.5 + 1.2 * math.sin(2.0 * p + 0.5) + 0.5 * breath,
                       y=3.0 * math.sin(p + 1.2), z=1.5 * math.sin(p + 2.2)),
        "leftShoulder": _euler(z=1.0 * breath),
        "rightShoulder": _euler(z=-1.0 * breath),
    }  # fmt: skip
    for side, ph in (("left", 0.0), ("right", 0.6)):
        r |= _arm(side, down=70.0 - 1.5 * breath, forward=8.0 + 1.5 * math.sin(p + ph), elbow=14.0 + 2.0 * breath)
        r |= _relaxed_hand(side, curl=22.0 + 3.0 * math.sin(p + ph))
        r |= _plant(side, hips, dx)
    return r, (dx, 0.0, 0.0)


def _bump(p: float, centre: float, width: float) -> float:
    """A smooth periodic pulse in [0, 1], 1 at ``centre`` (radians), ``width`` ~ its half-width."""
    return ((1.0 + math.cos(p - centre)) / 2.0) ** (math.pi / max(width, 1e-3))


def _walk(phase: float) -> Pose:
    p = 2.0 * math.pi * phase  # left leg forward at p = pi/2, right leg forward at p = 3 pi/2
    s, c = math.sin(p), math.cos(p)
    hips_yaw, hips_roll = -5.0 * s, -2.0 * c  # left hip forward with the left leg; swing side drops
    r: dict[str, Quat] = {
        "hips": _euler(y=hips_yaw, z=hips_roll),
        "spine": _euler(x=3.0, y=-hips_yaw * 0.6, z=-hips_roll * 0.7),
        "chest": _euler(x=1.0, y=-hips_yaw * 0.8, z=-hips_roll * 0.3),
        "upperChest": _euler(y=-hips_yaw * 0.2),
    }
    # head steady: neck and head undo the yaw left over (hips - spine - chest - upperChest = -0.6 x hips)
    # and the 4 degree forward lean; a tiny nod with each step
    r["neck"] = _euler(x=-1.5, y=0.3 * hips_yaw)
    r["head"] = _euler(x=-2.5 + 0.8 * math.cos(2.0 * p), y=0.3 * hips_yaw)
    for side, off in (("left", 0.0), ("right", math.pi)):
        q = p + off
        swing = 25.0 * math.sin(q)  # forward positive
        knee = 4.0 + 42.0 * _bump(q, -0.35, 1.0)  # bent most in mid-swing (leg passing under the hips)
        toe_off = 14.0 * _bump(q, -math.pi / 2.0 + 0.45, 0.6)  # push off just after the leg is furthest back
        heel = 6.0 * _bump(q, math.pi / 2.0, 0.7)  # toes up at heel strike
        r[f"{side}UpperLeg"] = _euler(x=-swing)
        r[f"{side}LowerLeg"] = _euler(x=knee)
        r[f"{side}Foot"] = _euler(x=swing - knee + toe_off - heel)  # sole level, then toe-off / heel strike
        r[f"{side}Toes"] = _euler(x=-toe_off)
        # the arm swings with the opposite leg
        r |= _arm(side, down=68.0, forward=6.0 - 18.0 * math.sin(q), elbow=14.0 + 10.0 * max(0.0, -math.sin(q)))
        r |= _relaxed_hand(side, curl=22.0)
        r[f"{side}Shoulder"] = _euler(y=(1.0 if side == "left" else -1.0) * 2.0 * math.sin(q))
    return r, (-0.008 * c, 0.0, 0.0)  # weight over the stance leg


CLIPS: dict[str, Clip] = {
    "idle": Clip(name="idle", duration=4.0, fps=30, loop=True, pose=_idle),
    "walk": Clip(name="walk", duration=1.0, fps=30, loop=True, pose=_walk),
}
