"""Faces that move: expression and viseme states drawn by the generator, shown by morph targets.

Face sheet: for each avatar the generator draws its face again with only the eyes and/or mouth
changed (``VARIANTS``: same latent, same other attributes), and only the region around the eyes and
mouth (``SHEET_BOX``, see ``TextureGenerator.generate_regions``). Each state is a set of *patches*:
the avatar's own left eye, right eye or mouth region (``PARTS``) from one variant, blended into the
neutral face where the variant differs (feathered), stored in the atlas.

On the head a patch is a copy of the front sheet's vertices in its region, pushed ``HIDE_M`` inside
the surface (invisible) and pulled out to ``SHOW_M[k]`` in front of it by its morph target, so a
state shows past weight HIDE/(HIDE+SHOW) ~ 0.45 and is hidden below it. Patches of one part get
distinct SHOW offsets (no z-fighting), and eye and mouth states combine freely. This works in every
loader that supports position morph targets (three.js, glTFast, UniVRM, Blender, Babylon, Godot).

Names (``names.py``): the VRM presets, the 15 Oculus visemes, the ARKit 52 and the RPM extras map
onto the states in ``TARGETS``; names with no drawable state are all-zero targets (documented in
docs/avatar.md as having no visible effect). A side-specific ARKit name (mouthSmileLeft) moves its
patch half-way, so the left and right names together make one full state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from chibi_meta.avatar.head import HeadMesh

# Regions in pixels of a 128 px texture: (y0, y1, x0, x1). "L"/"R" are the avatar's left and right:
# its left eye is on the right of the drawing.
PARTS: dict[str, tuple[int, int, int, int]] = {
    "eyeL": (53, 85, 52, 84),
    "eyeR": (53, 85, 20, 52),
    "mouth": (85, 101, 38, 78),
}
SHEET_BOX = (52, 102, 18, 88)  # the union, drawn per variant
HIDE_M = 0.0015  # metres a hidden patch sits inside the head
SHOW_M = 0.0012  # metres in front of it when shown; + SHOW_STEP per further patch of the same part
SHOW_STEP = 0.0003
FEATHER_PX = 2.0
PATCH_STRIDE = 2  # patch vertices on every 2nd head node (4 px): chords stay 0.2 mm from the surface

# The generator draws each variant; a variant serves an eye state and a mouth state at once.
# Chosen by measurement: the values the shipped generator draws as requested most often among those
# that read as the state (docs/avatar.md, "Face states", has the per-value accuracies). Closed eyes
# come from the two winks (each closes one eye, drawn as requested 95-100 % of the time as often as
# on real art) rather than eyes20 (7 %).
VARIANTS: tuple[dict[str, str], ...] = (
    {"eyes": "eyes21", "mouth": "mouth30"},  # 0 the avatar's left eye closed | open triangle (aa)
    {"eyes": "eyes22", "mouth": "mouth10"},  # 1 the avatar's right eye closed | closed line (PP)
    {"eyes": "eyes19", "mouth": "mouth25"},  # 2 happy arcs | open smile
    {"eyes": "eyes16", "mouth": "mouth03"},  # 3 sad lids | small open (sad)
    {"eyes": "eyes17", "mouth": "mouth14"},  # 4 lowered lids (angry) | grimace
    {"eyes": "eyes15", "mouth": "mouth28"},  # 5 raised lids (surprised) | open V (oh)
    {"eyes": "eyes18", "mouth": "mouth01"},  # 6 half closed (relaxed) | closed smile
    {"eyes": "eyes26", "mouth": "mouth05"},  # 7 pupils to the drawing's right (lookLeft) | teeth (ih)
    {"eyes": "eyes13", "mouth": "mouth23"},  # 8 pupils to the drawing's left (lookRight) | wide teeth (ee)
    {"eyes": "eyes12", "mouth": "mouth07"},  # 9 pupils low (lookDown) | small round (ou)
    {"eyes": "eyes04", "mouth": "mouth30"},  # 10 pupils high under the lids (lookUp) | (as 0)
)
# state -> {part: variant}
STATES: dict[str, dict[str, int]] = {
    "closed": {"eyeL": 0, "eyeR": 1}, "closedL": {"eyeL": 0}, "closedR": {"eyeR": 1},
    "happyEyes": {"eyeL": 2, "eyeR": 2}, "sadEyes": {"eyeL": 3, "eyeR": 3}, "angryEyes": {"eyeL": 4, "eyeR": 4},
    "wideEyes": {"eyeL": 5, "eyeR": 5}, "calmEyes": {"eyeL": 6, "eyeR": 6},
    "lookLeft": {"eyeL": 7, "eyeR": 7}, "lookRight": {"eyeL": 8, "eyeR": 8},
    "lookDown": {"eyeL": 9, "eyeR": 9}, "lookUp": {"eyeL": 10, "eyeR": 10},
    "mouthAa": {"mouth": 0}, "mouthClosed": {"mouth": 1}, "mouthSmile": {"mouth": 2}, "mouthFrown": {"mouth": 3},
    "mouthAngry": {"mouth": 4}, "mouthOh": {"mouth": 5}, "mouthSoft": {"mouth": 6}, "mouthIh": {"mouth": 7},
    "mouthEe": {"mouth": 8}, "mouthOu": {"mouth": 9},
}  # fmt: skip


def _side(state: str, part: str) -> dict[str, int]:
    return {part: STATES[state][part]}


# target name -> [(part, variant, scale)]; missing names are all-zero targets
def _targets() -> dict[str, list[tuple[str, int, float]]]:
    def st(*states: str, scale: float = 1.0) -> list[tuple[str, int, float]]:
        return [(p, v, scale) for s in states for p, v in STATES[s].items()]

    def one(state: str, part: str, scale: float = 1.0) -> list[tuple[str, int, float]]:
        return [(part, STATES[state][part], scale)]

    t = {
        # VRM presets
        "happy": st("happyEyes", "mouthSmile"), "angry": st("angryEyes", "mouthAngry"),
        "sad": st("sadEyes", "mouthFrown"), "relaxed": st("calmEyes", "mouthSoft"),
        "surprised": st("wideEyes", "mouthOh"), "aa": st("mouthAa"), "ih": st("mouthIh"), "ou": st("mouthOu"),
        "ee": st("mouthEe"), "oh": st("mouthOh"), "blink": st("closed"), "blinkLeft": st("closedL"),
        "blinkRight": st("closedR"), "lookUp": st("lookUp"), "lookDown": st("lookDown"),
        "lookLeft": st("lookLeft"), "lookRight": st("lookRight"),
        # Oculus visemes (sil: rest, no state)
        "viseme_PP": st("mouthClosed"), "viseme_FF": st("mouthIh"), "viseme_TH": st("mouthIh"),
        "viseme_DD": st("mouthIh"), "viseme_kk": st("mouthAa"), "viseme_CH": st("mouthEe"),
        "viseme_SS": st("mouthEe"), "viseme_nn": st("mouthIh"), "viseme_RR": st("mouthOu"),
        "viseme_aa": st("mouthAa"), "viseme_E": st("mouthEe"), "viseme_I": st("mouthIh"),
        "viseme_O": st("mouthOh"), "viseme_U": st("mouthOu"),
        # ARKit (per eye where the name has a side; a sideless patch moves half-way per side)
        "eyeBlinkLeft": one("closed", "eyeL"), "eyeBlinkRight": one("closed", "eyeR"),
        "eyeLookUpLeft": one("lookUp", "eyeL"), "eyeLookUpRight": one("lookUp", "eyeR"),
        "eyeLookDownLeft": one("lookDown", "eyeL"), "eyeLookDownRight": one("lookDown", "eyeR"),
        "eyeLookInLeft": one("lookRight", "eyeL"), "eyeLookOutLeft": one("lookLeft", "eyeL"),
        "eyeLookInRight": one("lookLeft", "eyeR"), "eyeLookOutRight": one("lookRight", "eyeR"),
        "eyeSquintLeft": one("calmEyes", "eyeL"), "eyeSquintRight": one("calmEyes", "eyeR"),
        "eyeWideLeft": one("wideEyes", "eyeL"), "eyeWideRight": one("wideEyes", "eyeR"),
        "browDownLeft": one("angryEyes", "eyeL"), "browDownRight": one("angryEyes", "eyeR"),
        "browInnerUp": st("sadEyes"), "browOuterUpLeft": one("wideEyes", "eyeL"),
        "browOuterUpRight": one("wideEyes", "eyeR"), "cheekSquintLeft": one("happyEyes", "eyeL"),
        "cheekSquintRight": one("happyEyes", "eyeR"),
        "jawOpen": st("mouthAa"), "mouthClose": st("mouthClosed"), "mouthFunnel": st("mouthOh"),
        "mouthPucker": st("mouthOu"), "mouthSmileLeft": st("mouthSmile", scale=0.5),
        "mouthSmileRight": st("mouthSmile", scale=0.5), "mouthFrownLeft": st("mouthFrown", scale=0.5),
        "mouthFrownRight": st("mouthFrown", scale=0.5), "mouthStretchLeft": st("mouthEe", scale=0.5),
        "mouthStretchRight": st("mouthEe", scale=0.5),
        # Ready Player Me extras
        "mouthOpen": st("mouthAa"), "mouthSmile": st("mouthSmile"), "eyesClosed": st("closed"),
        "eyesLookUp": st("lookUp"), "eyesLookDown": st("lookDown"),
    }  # fmt: skip
    return t


TARGETS = _targets()
# VRM expression -> which VRM built-in procedures it overrides (the state already draws the eyes/mouth)
VRM_OVERRIDES: dict[str, dict[str, str]] = {
    "happy": {"overrideBlink": "block", "overrideMouth": "block"},
    "angry": {"overrideBlink": "block", "overrideMouth": "block"},
    "sad": {"overrideBlink": "block", "overrideMouth": "block"},
    "relaxed": {"overrideBlink": "block", "overrideMouth": "block"},
    "surprised": {"overrideBlink": "block", "overrideMouth": "block", "overrideLookAt": "block"},
    "blink": {"overrideLookAt": "block"}, "blinkLeft": {"overrideLookAt": "block"},
    "blinkRight": {"overrideLookAt": "block"},
}  # fmt: skip


def variants_for(attribute_names: Sequence[str]) -> tuple[dict[str, str], ...]:
    """The variants a model can draw: all of VARIANTS when it has ``eyes`` and ``mouth`` attributes;
    only the eye (or mouth) half when it has one of them; none for a model with neither (a user's
    own art without those labels: its avatars keep the neutral face, every target all-zero)."""
    keep = {k for k in ("eyes", "mouth") if k in attribute_names}
    if not keep:
        return ()
    return tuple({k: v for k, v in o.items() if k in keep} for o in VARIANTS)


def parts_drawn(overrides: Sequence[Mapping[str, str]]) -> set[str]:
    if not overrides:
        return set()
    keys = set(overrides[0])
    return ({"eyeL", "eyeR"} if "eyes" in keys else set()) | ({"mouth"} if "mouth" in keys else set())


def patch_image(front: np.ndarray, variant: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """RGB of one patch: the variant where it differs from the neutral face ``front`` (the atlas's
    front image, RGB), feathered, and the neutral face elsewhere, so its border matches the face."""
    from scipy import ndimage

    y0, y1, x0, x1 = box
    n = front[y0:y1, x0:x1].astype(np.float32)
    a = variant[..., 3:4].astype(np.float32) / 255.0
    v = variant[..., :3].astype(np.float32) * a + n * (1.0 - a)
    diff = np.abs(n - v).sum(-1) > 60
    m = ndimage.gaussian_filter(ndimage.binary_dilation(diff, iterations=2).astype(np.float32), FEATHER_PX)
    ys, xs = np.arange(y1 - y0) + 0.5, np.arange(x1 - x0) + 0.5
    edge = np.minimum(np.minimum(ys, (y1 - y0) - ys)[:, None], np.minimum(xs, (x1 - x0) - xs)[None, :])
    m = np.clip(m * 1.5, 0.0, 1.0) * np.clip(edge / 3.0, 0.0, 1.0)  # the patch's own border: neutral
    return np.rint(n * (1 - m[..., None]) + v * m[..., None]).astype(np.uint8)


@dataclass(frozen=True)
class FaceSheet:
    """One avatar's face sheet: ``images[v]`` is SHEET_BOX of the face drawn with VARIANTS[v]
    ((V, h, w, 4) uint8); ``parts`` the parts those variants change (see ``parts_drawn``)."""

    images: np.ndarray
    parts: frozenset[str]

    @classmethod
    def empty(cls) -> FaceSheet:
        y0, y1, x0, x1 = SHEET_BOX
        return cls(np.zeros((0, y1 - y0, x1 - x0, 4), np.uint8), frozenset())


def patch_images(texture: np.ndarray, sheet: FaceSheet,
                 keys: Sequence[tuple[str, int]]) -> list[np.ndarray]:  # fmt: skip
    """The RGB image of each patch ``keys`` (part, variant) from the neutral ``texture`` (128 px)."""
    from chibi_meta.avatar.atlas import front_image

    front = front_image(texture) if keys else texture
    out = []
    sy, sx = SHEET_BOX[0], SHEET_BOX[2]
    for part, v in keys:
        y0, y1, x0, x1 = PARTS[part]
        out.append(patch_image(front, sheet.images[v][y0 - sy : y1 - sy, x0 - sx : x1 - sx], PARTS[part]))
    return out


@dataclass(frozen=True)
class Patches:
    """Patch geometry appended to the head (pixel space, like HeadMesh) and its morph targets."""

    positions: np.ndarray  # (P, 3) pixel units, hidden (inside the head)
    normals: np.ndarray  # (P, 3)
    uv_px: np.ndarray  # (P, 2) pixel coordinates inside the patch's box (for its atlas slot)
    slot: np.ndarray  # (P,) int: which patch (index into keys)
    faces: np.ndarray  # (T, 3) into these P vertices
    keys: tuple[tuple[str, int], ...]  # (part, variant) of each patch
    show: np.ndarray  # (K,) metres each patch moves out at weight 1 (HIDE + its SHOW)


def build_patches(head: HeadMesh, keys: Sequence[tuple[str, int]], px: float) -> Patches:
    """Geometry of the patches ``keys`` on ``head``'s front (``px`` metres per pixel)."""
    k = 128 / (head.front_node.shape[0] - 1)
    st = PATCH_STRIDE
    pos, nrm, uvp, slot, faces = [], [], [], [], []
    show = []
    count = 0
    rank: dict[str, int] = {}
    for i, (part, _variant) in enumerate(keys):
        y0, y1, x0, x1 = PARTS[part]
        r = rank[part] = rank.get(part, -1) + 1
        show.append(HIDE_M + SHOW_M + SHOW_STEP * r)
        i0, i1 = int(np.ceil(y0 / k)), int(y1 // k)
        j0, j1 = int(np.ceil(x0 / k)), int(x1 // k)
        i1, j1 = i0 + (i1 - i0) // st * st, j0 + (j1 - j0) // st * st
        sub = head.interior[i0 : i1 + 1 : st, j0 : j1 + 1 : st]
        cells = sub[:-1, :-1] & sub[:-1, 1:] & sub[1:, :-1] & sub[1:, 1:]
        if not cells.any():
            continue
        nodes = np.zeros_like(sub)
        ci, cj = np.nonzero(cells)
        for di in (0, 1):
            for dj in (0, 1):
                nodes[ci + di, cj + dj] = True
        ni, nj = np.nonzero(nodes)
        vid = head.front_node[i0 + st * ni, j0 + st * nj]
        local = -np.ones(nodes.shape, np.int64)
        local[ni, nj] = count + np.arange(len(ni))
        p = head.positions[vid].copy()
        n = head.normals[vid]
        pn = np.stack([n[:, 0], -n[:, 1], n[:, 2]], 1)  # normals are world-oriented, positions y-down
        p -= pn * (HIDE_M / px)
        pos.append(p)
        nrm.append(n)
        uvp.append(np.stack([(j0 + st * nj) * k - x0, (i0 + st * ni) * k - y0], 1))
        slot.append(np.full(len(ni), i))
        a, b = local[ci, cj], local[ci, cj + 1]
        c, d = local[ci + 1, cj + 1], local[ci + 1, cj]
        faces.append(np.concatenate([np.stack([a, d, c], 1), np.stack([a, c, b], 1)]))
        count += len(ni)
    if not pos:
        z3, z2 = np.zeros((0, 3)), np.zeros((0, 2))
        return Patches(z3, z3, z2, np.zeros(0, np.int64), np.zeros((0, 3), np.int64), tuple(keys), np.array(show))
    return Patches(np.concatenate(pos), np.concatenate(nrm), np.concatenate(uvp), np.concatenate(slot),
                   np.concatenate(faces), tuple(keys), np.array(show))  # fmt: skip


def needed_keys(names: Sequence[str], drawn: set[str]) -> tuple[tuple[str, int], ...]:
    """The (part, variant) patches the requested target ``names`` use, among the parts ``drawn``."""
    out: dict[tuple[str, int], None] = {}
    for name in names:
        for part, v, _ in TARGETS.get(name, ()):
            if part in drawn:
                out[(part, v)] = None
    return tuple(sorted(out))
