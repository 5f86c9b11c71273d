"""Names that engines and tools look for: bones (Mixamo / Ready Player Me and VRM 1.0) and morph targets.

Every avatar's nodes carry the Mixamo / Ready Player Me names (``Hips``, ``LeftArm``, ...) under one
root node ``Armature``; the VRM humanoid map points at the same nodes (``HUMANOID``). Morph targets
are named in ``mesh.extras.targetNames`` from the sets below; a request chooses the sets
(``MORPH_SETS``). These tuples are the single source of the names: the packer, the bridge's
``hello``, the tests and the Unity package's table are checked against them.
"""

from __future__ import annotations

# (Mixamo / RPM node name, VRM 1.0 humanoid bone or None) in the order of the node list. Fingers:
# Thumb1-3 map to the VRM metacarpal/proximal/distal thumb, Index..Pinky 1-3 to proximal/intermediate/distal.
_FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")
_VRM_FINGER = {"Thumb": ("Metacarpal", "Proximal", "Distal")}
_VRM_JOINTS = ("Proximal", "Intermediate", "Distal")


def _side(side: str) -> list[tuple[str, str | None]]:
    s, v = side, side.lower()
    out: list[tuple[str, str | None]] = [
        (f"{s}Shoulder", f"{v}Shoulder"),
        (f"{s}Arm", f"{v}UpperArm"),
        (f"{s}ForeArm", f"{v}LowerArm"),
        (f"{s}Hand", f"{v}Hand"),
    ]
    for f in _FINGERS:
        joints = _VRM_FINGER.get(f, _VRM_JOINTS)
        for k in range(3):  # VRM calls the pinky "Little"
            out.append((f"{s}Hand{f}{k + 1}", f"{v}{'Little' if f == 'Pinky' else f}{joints[k]}"))
    return out


def _leg(side: str) -> list[tuple[str, str | None]]:
    s, v = side, side.lower()
    return [(f"{s}UpLeg", f"{v}UpperLeg"), (f"{s}Leg", f"{v}LowerLeg"), (f"{s}Foot", f"{v}Foot"),
            (f"{s}ToeBase", f"{v}Toes")]  # fmt: skip


BONE_NAMES: tuple[tuple[str, str | None], ...] = (
    ("Hips", "hips"),
    ("Spine", "spine"),
    ("Spine1", "chest"),
    ("Spine2", "upperChest"),
    ("Neck", "neck"),
    ("Head", "head"),
    ("HeadTop_End", None),
    ("LeftEye", "leftEye"),
    ("RightEye", "rightEye"),
    *_side("Left"),
    *_side("Right"),
    *_leg("Left"),
    *_leg("Right"),
)
ROOT_NAME = "Armature"
HUMANOID: dict[str, str] = {vrm: node for node, vrm in BONE_NAMES if vrm}  # VRM bone -> node name
VRM_REQUIRED = (
    "hips", "spine", "head",
    "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot",
    "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm", "rightHand",
)  # fmt: skip

# --- morph targets ------------------------------------------------------------------------------
VRM_PRESETS = (
    "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh",
    "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral",
)  # fmt: skip
OCULUS_VISEMES = (
    "viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH", "viseme_SS",
    "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U",
)  # fmt: skip
ARKIT = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip
RPM_EXTRA = ("mouthOpen", "mouthSmile", "eyesClosed", "eyesLookUp", "eyesLookDown")

# A request's ``morph_targets``: a list of these set names ("none" alone for no morph targets).
MORPH_SETS: dict[str, tuple[str, ...]] = {
    "vrm": tuple(n for n in VRM_PRESETS if n != "neutral"),
    "oculus": OCULUS_VISEMES,
    "arkit": ARKIT + RPM_EXTRA,
}
DEFAULT_MORPH_SETS = ("vrm", "oculus", "arkit")


def check_morph_sets(value: object) -> tuple[str, ...]:
    """A request's ``morph_targets``: None (all sets), ["none"], or a list of MORPH_SETS names.

    Returns the sets in canonical order (so equal choices give equal cache keys); raises
    AttributeValueError naming the allowed sets.
    """
    from chibi_meta.errors import AttributeValueError

    allowed = (*MORPH_SETS, "none")
    if value is None:
        return DEFAULT_MORPH_SETS
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise AttributeValueError(f"morph_targets must be a non-empty list of set names, got {value!r}; "
                                  f"allowed: {', '.join(allowed)}")
    bad = [v for v in value if not isinstance(v, str) or v not in allowed]
    if bad:
        raise AttributeValueError(f"unknown morph-target set {bad[0]!r}; allowed: {', '.join(allowed)}")
    if "none" in value:
        if len(set(value)) > 1:
            raise AttributeValueError("morph_targets: 'none' cannot be combined with other sets")
        return ()
    return tuple(s for s in MORPH_SETS if s in value)
