"""The chibi skeleton: Mixamo / Ready Player Me node names and bone axes, VRM 1.0 humanoid roles.

Rest pose: T-pose, facing +Z, +Y up, feet on Y = 0, the avatar's left on +X, metres. About 0.87 m
tall with the hair, the head (chin to crown) 0.37 m: 2.35 heads; the chin rests on the shoulders.

Bone axes follow the RPM / Mixamo convention that retargeting tools and TalkingHead's absolute poses
expect (checked against the RPM reference avatar): +Y of every bone points along the bone to its
child; spine, neck, head and eyes keep the world axes (+Z forward); the legs point +Y down with +Z
forward; the arms and fingers point +Y along the arm with +Z down (T-pose); the foot points +Y to the
toes with +Z up-forward; the toes +Y forward with +Z up. VRM 1.0 allows any rest rotation (its
loaders normalise them), so one file serves both conventions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from chibi_meta.avatar.names import BONE_NAMES, HUMANOID, ROOT_NAME

CHIN_Y = 0.50  # world height of the drawing's chin
NECK_Y = 0.43
HEAD_Y = 0.475  # the head joint (top of the neck, just under the chin: the head hides the neck)
SHOULDER_Y = 0.405
_ARM_X = (0.028, 0.075, 0.150, 0.220)  # shoulder, upper arm, forearm, hand joints (x of the left side)
_FINGER_Z = {"Index": 0.017, "Middle": 0.006, "Ring": -0.005, "Pinky": -0.015}
_FINGER_LEN = {"Index": 0.016, "Middle": 0.017, "Ring": 0.016, "Pinky": 0.013}  # per phalanx
_LEG_X = 0.052


def _positions() -> dict[str, tuple[float, float, float]]:
    p: dict[str, tuple[float, float, float]] = {
        "Hips": (0.0, 0.225, 0.0),
        "Spine": (0.0, 0.27, 0.0),
        "Spine1": (0.0, 0.32, 0.0),
        "Spine2": (0.0, 0.37, 0.0),
        "Neck": (0.0, NECK_Y, 0.0),
        "Head": (0.0, HEAD_Y, 0.0),
        "HeadTop_End": (0.0, 0.86, 0.0),
        "LeftEye": (0.0195, 0.629, 0.07),  # the drawing's eyes (atlas.EYE_*_IMG) on the head
        "RightEye": (-0.0996, 0.629, 0.07),
    }
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        x0, x1, x2, x3 = (sx * v for v in _ARM_X)
        p[f"{side}Shoulder"] = (x0, SHOULDER_Y + 0.012, 0.0)
        p[f"{side}Arm"] = (x1, SHOULDER_Y, 0.0)
        p[f"{side}ForeArm"] = (x2, SHOULDER_Y, 0.0)
        p[f"{side}Hand"] = (x3, SHOULDER_Y, 0.0)
        for f, z in _FINGER_Z.items():
            for k in range(3):
                x = x3 + sx * (0.030 + k * _FINGER_LEN[f])
                p[f"{side}Hand{f}{k + 1}"] = (x, SHOULDER_Y - 0.002, z)
        for k in range(3):  # the thumb: forward and a little down, from the heel of the hand
            p[f"{side}HandThumb{k + 1}"] = (x3 + sx * (0.008 + 0.011 * k), SHOULDER_Y - 0.006 - 0.002 * k,
                                            0.018 + 0.011 * k)  # fmt: skip
        lx = sx * _LEG_X
        p[f"{side}UpLeg"] = (lx, 0.212, 0.0)
        p[f"{side}Leg"] = (lx, 0.122, 0.0)
        p[f"{side}Foot"] = (lx, 0.042, 0.0)
        p[f"{side}ToeBase"] = (lx, 0.014, 0.055)
    return p


POSITIONS = _positions()
# where each leaf's segment ends (the tip used for its axis and for skin weights)
_TIPS = {
    "HeadTop_End": (0.0, 0.92, 0.0),
    "LeftEye": (0.0195, 0.629, 0.10),
    "RightEye": (-0.0996, 0.629, 0.10),
    "LeftToeBase": (_LEG_X, 0.014, 0.095),
    "RightToeBase": (-_LEG_X, 0.014, 0.095),
}


def _parent_map() -> dict[str, str | None]:
    par: dict[str, str | None] = {"Hips": None, "Spine": "Hips", "Spine1": "Spine", "Spine2": "Spine1",
                                  "Neck": "Spine2", "Head": "Neck", "HeadTop_End": "Head",
                                  "LeftEye": "Head", "RightEye": "Head"}  # fmt: skip
    for s in ("Left", "Right"):
        par.update({f"{s}Shoulder": "Spine2", f"{s}Arm": f"{s}Shoulder", f"{s}ForeArm": f"{s}Arm",
                    f"{s}Hand": f"{s}ForeArm", f"{s}UpLeg": "Hips", f"{s}Leg": f"{s}UpLeg",
                    f"{s}Foot": f"{s}Leg", f"{s}ToeBase": f"{s}Foot"})  # fmt: skip
        for f in ("Thumb", "Index", "Middle", "Ring", "Pinky"):
            par[f"{s}Hand{f}1"] = f"{s}Hand"
            par[f"{s}Hand{f}2"] = f"{s}Hand{f}1"
            par[f"{s}Hand{f}3"] = f"{s}Hand{f}2"
    return par


PARENT = _parent_map()
NAMES = tuple(n for n, _ in BONE_NAMES)
INDEX = {n: i for i, n in enumerate(NAMES)}
CHILDREN = {n: tuple(c for c in NAMES if PARENT[c] == n) for n in NAMES}
_NO_TIP_CHILD = {"Hips": "Spine", "Spine2": "Neck", "Head": "HeadTop_End", "LeftHand": "LeftHandMiddle1",
                 "RightHand": "RightHandMiddle1"}  # fmt: skip


def tip(name: str) -> np.ndarray:
    """The end of a bone's segment: its (main) child's joint, or a leaf's tip."""
    if name in _TIPS:
        return np.array(_TIPS[name])
    kids = CHILDREN[name]
    if name in _NO_TIP_CHILD:
        return np.array(POSITIONS[_NO_TIP_CHILD[name]])
    if kids:
        return np.array(POSITIONS[kids[0]])
    d = np.array(POSITIONS[name]) - np.array(POSITIONS[PARENT[name]])  # finger tips: continue the last phalanx
    return np.array(POSITIONS[name]) + d


def _frame(y: np.ndarray, z_hint: np.ndarray) -> np.ndarray:
    """Rotation matrix with columns X, Y, Z: Y along ``y``, Z as close to ``z_hint`` as possible."""
    y = y / np.linalg.norm(y)
    z = z_hint - (z_hint @ y) * y
    z = z / np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], 1)


def world_rotation(name: str) -> np.ndarray:
    """The bone's rest orientation in world space (3x3), per the RPM / Mixamo convention."""
    up, fwd, down = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])
    if name in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End", "LeftEye", "RightEye"):
        return np.eye(3)
    d = tip(name) - np.array(POSITIONS[name])
    if "UpLeg" in name or name.endswith("Leg"):
        return _frame(down, fwd)
    if name.endswith("Foot"):
        return _frame(d, up + fwd)
    if name.endswith("ToeBase"):
        return _frame(fwd, up)
    return _frame(d, down)  # shoulders, arms, hands, fingers (thumbs too): Z down


@dataclass(frozen=True)
class Joint:
    name: str
    parent: int | None
    translation: tuple[float, float, float]  # local, in the parent's frame
    rotation: tuple[float, float, float, float]  # local quaternion (x, y, z, w)
    world: np.ndarray  # 4x4 rest world matrix


def _quat(m: np.ndarray) -> tuple[float, float, float, float]:
    from scipy.spatial.transform import Rotation

    q = Rotation.from_matrix(m).as_quat()  # x, y, z, w
    if q[3] < 0:
        q = -q
    return tuple(round(float(v), 7) for v in q)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def joints() -> tuple[Joint, ...]:
    """Every bone in node order, with local transforms whose chain reproduces the world rest pose."""
    from scipy.spatial.transform import Rotation

    out: list[Joint] = []
    worlds: dict[str, np.ndarray] = {}
    for name in NAMES:
        par = PARENT[name]
        rot_w = world_rotation(name)
        pos_w = np.array(POSITIONS[name])
        if par is None:
            local_r, local_t = rot_w, pos_w
        else:
            pw = worlds[par]
            local_r = pw[:3, :3].T @ rot_w
            local_t = pw[:3, :3].T @ (pos_w - pw[:3, 3])
        q = _quat(local_r)
        t = tuple(round(float(v), 6) for v in local_t)
        # the world matrix of the rounded local transforms (what a loader computes)
        local = np.eye(4)
        local[:3, :3] = Rotation.from_quat(q).as_matrix()
        local[:3, 3] = t
        world = local if par is None else worlds[par] @ local
        worlds[name] = world
        out.append(Joint(name, INDEX[par] if par else None, t, q, world))  # type: ignore[arg-type]
    return tuple(out)


def humanoid_nodes(first_bone_node: int) -> dict[str, int]:
    """VRM humanoid bone -> node index, when the bones are nodes ``first_bone_node`` + INDEX."""
    return {vrm: first_bone_node + INDEX[node] for vrm, node in sorted(HUMANOID.items())}


__all__ = ["CHIN_Y", "NAMES", "PARENT", "POSITIONS", "ROOT_NAME", "Joint", "humanoid_nodes", "joints", "tip",
           "world_rotation"]
