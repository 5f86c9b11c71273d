"""Faces that move: expression and viseme states drawn by the generator, shown by morph targets.

Face sheet: for each avatar the generator draws its face again with only the eyes and/or mouth
changed (``VARIANTS``: same latent, same other attributes), and only the region around the eyes and
mouth (``SHEET_BOX``, see ``TextureGenerator.generate_regions``). Each state is a set of *patches*:
the avatar's own left eye, right eye or mouth region (``PARTS``) from one variant, blended into the
neutral face where the variant differs (feathered), stored in the atlas.

On the head a patch is a copy of the front sheet's vertices in its region, pushed ``HIDE_M`` back
(-Z, the front view's depth) behind the surface (invisible) and pulled forward to ``SHOW_M[k]`` in
front of it by its morph target, so a state shows past weight HIDE/(HIDE+SHOW) ~ 0.45 and is hidden
below it. Moving along the view axis, not the surface normal, keeps a shown patch exactly on its box
in the front view. Patches of one part get distinct SHOW offsets (no z-fighting; a closed eye is
the frontmost, ``FRONTMOST``), and eye and mouth states combine freely. This works in every loader
that supports position morph targets (three.js, glTFast, UniVRM, Blender, Babylon, Godot).

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
# its left eye is on the right of the drawing. Measured on the shipped generator (60 faces, every
# face-sheet eyes / mouth value drawn, where the pixels change): eyes rows 53-80 (lids and pupils),
# columns 25-47 and 54-80; mouths rows 80-101, columns 34-82 (an open mouth reaches row 80). The
# eye boxes end where the mouth box begins, so every state carries its whole feature.
PARTS: dict[str, tuple[int, int, int, int]] = {
    "eyeL": (52, 80, 52, 84),
    "eyeR": (52, 80, 20, 52),
    "mouth": (80, 102, 34, 82),
}
# box edges that meet another part's box: a patch is not faded to the neutral face there (the
# feature runs on across them); its other edges fade over FADE_PX
SHARED_EDGES: dict[str, frozenset[str]] = {
    "eyeL": frozenset({"bottom"}), "eyeR": frozenset({"bottom"}), "mouth": frozenset({"top"}),
}
FADE_PX = 3.0
SHEET_BOX = (52, 102, 18, 88)  # the union, drawn per variant
HIDE_M = 0.0015  # metres a hidden patch sits inside the head
SHOW_M = 0.0012  # metres in front of it when shown; + SHOW_STEP per further patch of the same part
SHOW_STEP = 0.0003
FEATHER_PX = 2.0
DIFF_MIN = 60  # a variant pixel replaces the neutral one where their RGB differ by more (sum of |d|)
PATCH_STRIDE = 2  # patch quads span 2 x 2 head cells (4 px; single cells near the rim, at the
# box's edges and where a 2 x 2 quad would dip more than CHORD_M under the surface)
CHORD_M = 0.0008  # < SHOW_M: a shown patch stays in front of the surface it covers

# The generator draws each variant; a variant serves an eye state and/or a mouth state. Chosen by
# measurement (docs/avatar.md, "Face states"): among the values that show a state (READS_AS), the
# one whose patch, pasted on 100 held-out faces of the shipped generator (seeds 20000-20099), the
# eval classifier reads as that state most often. Closed eyes come from the two winks (each closes
# one eye) rather than eyes20, which the generator draws as requested 7 % as often as real art.
VARIANTS: tuple[dict[str, str], ...] = (
    {"eyes": "eyes21", "mouth": "mouth30"},  # 0 the avatar's left eye closed (wink) | open triangle (aa, surprised)
    {"eyes": "eyes22", "mouth": "mouth10"},  # 1 the avatar's right eye closed (wink) | pressed (PP, angry)
    {"eyes": "eyes19", "mouth": "mouth25"},  # 2 closed happy arcs | open smile
    {"eyes": "eyes16", "mouth": "mouth03"},  # 3 drooping lids (sad) | small pout (sad)
    {"eyes": "eyes17", "mouth": "mouth01"},  # 4 flat lowered lids, small pupils (angry) | closed smile (relaxed)
    {"eyes": "eyes25", "mouth": "mouth28"},  # 5 wide open (surprised) | open, rounded (oh)
    {"eyes": "eyes26", "mouth": "mouth05"},  # 6 pupils to the drawing's right (lookLeft) | teeth (ih)
    {"eyes": "eyes13", "mouth": "mouth23"},  # 7 pupils to the drawing's left (lookRight) | wide teeth (ee)
    {"eyes": "eyes11", "mouth": "mouth07"},  # 8 pupils low (lookDown) | small round (ou)
    {"eyes": "eyes04"},  # 9 pupils high under calm lids (lookUp, relaxed)
)
# state -> {part: variant}
STATES: dict[str, dict[str, int]] = {
    "closed": {"eyeL": 0, "eyeR": 1}, "closedL": {"eyeL": 0, "eyeR": 0}, "closedR": {"eyeL": 1, "eyeR": 1},
    "happyEyes": {"eyeL": 2, "eyeR": 2}, "sadEyes": {"eyeL": 3, "eyeR": 3}, "angryEyes": {"eyeL": 4, "eyeR": 4},
    "wideEyes": {"eyeL": 5, "eyeR": 5}, "calmEyes": {"eyeL": 9, "eyeR": 9},
    "lookLeft": {"eyeL": 6, "eyeR": 6}, "lookRight": {"eyeL": 7, "eyeR": 7},
    "lookDown": {"eyeL": 8, "eyeR": 8}, "lookUp": {"eyeL": 9, "eyeR": 9},
    "mouthAa": {"mouth": 0}, "mouthClosed": {"mouth": 1}, "mouthSmile": {"mouth": 2}, "mouthFrown": {"mouth": 3},
    "mouthAngry": {"mouth": 1}, "mouthOh": {"mouth": 5}, "mouthSoft": {"mouth": 4}, "mouthIh": {"mouth": 6},
    "mouthEe": {"mouth": 7}, "mouthOu": {"mouth": 8},
}  # fmt: skip


def _values(attr: str, *numbers: int) -> frozenset[str]:
    return frozenset(f"{attr}{n:02d}" for n in numbers)


# The DiceBear adventurer values that show each state (every value rendered and looked at:
# docs/img/face_values.png): what the eval classifier must read for an expression to count as
# shown (tests/test_avatar_expressions.py). Near-identical drawings are one state (eyes19 / eyes20
# both closed; eyes01 / eyes26 both looking to the drawing's right; eyes05 / eyes11 both low).
CLOSED_EYES = _values("eyes", 19, 20)
OPEN_MOUTHS = _values("mouth", 15, 16, 24, 25, 26, 27, 28, 30)
READS_AS: dict[str, dict[str, frozenset[str]]] = {
    "happy": {"eyes": CLOSED_EYES, "mouth": _values("mouth", 1, 5, 24, 25, 26)},
    "angry": {"eyes": _values("eyes", 14, 17), "mouth": _values("mouth", 2, 9, 10, 19, 29)},
    "sad": {"eyes": _values("eyes", 15, 16), "mouth": _values("mouth", 3, 4, 20)},
    "relaxed": {"eyes": _values("eyes", 4, 18), "mouth": _values("mouth", 1, 2, 6, 13)},
    "surprised": {"eyes": _values("eyes", 2, 3, 8, 23, 24, 25), "mouth": OPEN_MOUTHS | _values("mouth", 18)},
    "aa": {"mouth": OPEN_MOUTHS}, "ih": {"mouth": _values("mouth", 5, 11, 22, 23)},
    "ou": {"mouth": _values("mouth", 7, 17, 18, 21)}, "ee": {"mouth": _values("mouth", 5, 11, 22, 23)},
    "oh": {"mouth": _values("mouth", 15, 18, 27, 28)},
    "blink": {"eyes": CLOSED_EYES}, "blinkLeft": {"eyes": _values("eyes", 21)},
    "blinkRight": {"eyes": _values("eyes", 22)},
    "lookUp": {"eyes": _values("eyes", 4)}, "lookDown": {"eyes": _values("eyes", 5, 11, 12)},
    "lookLeft": {"eyes": _values("eyes", 1, 26)}, "lookRight": {"eyes": _values("eyes", 13)},
}  # fmt: skip
# A wink (closedL / closedR) is the wink variant's whole pair of eyes: its open eye is drawn for
# the wink, as the generator (and DiceBear) draw it. The closed eye of each wink is in front of
# every other patch of its part, so winks, blink and their sums always show both closed eyes.
FRONTMOST = frozenset({("eyeL", STATES["closed"]["eyeL"]), ("eyeR", STATES["closed"]["eyeR"])})


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
        "surprised": st("wideEyes", "mouthAa"), "aa": st("mouthAa"), "ih": st("mouthIh"), "ou": st("mouthOu"),
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
    keys = {k for o in overrides for k in o}
    return ({"eyeL", "eyeR"} if "eyes" in keys else set()) | ({"mouth"} if "mouth" in keys else set())


# 2 px in each image of a stack (a 4-neighbour step twice: a diamond), not across the stack
_GROW = (np.abs(np.arange(-2, 3))[:, None] + np.abs(np.arange(-2, 3))[None, :] <= 2)[None]


def patch_image(front: np.ndarray, variant: np.ndarray, part: str) -> np.ndarray:
    """RGB of patches of ``part`` ((h, w, 4) -> (h, w, 3), or a stack (K, h, w, 4) -> (K, h, w, 3)):
    each variant where it differs from the neutral face ``front`` (the atlas's front image, RGB),
    feathered, and the neutral face elsewhere; faded to the neutral face over FADE_PX along the box
    edges that meet no other part, so its border matches the face."""
    from scipy import ndimage

    one = variant.ndim == 3
    var = variant[None] if one else variant
    y0, y1, x0, x1 = PARTS[part]
    n = front[y0:y1, x0:x1].astype(np.float32)[None]
    a = var[..., 3:4].astype(np.float32) / 255.0
    v = var[..., :3].astype(np.float32) * a + n * (1.0 - a)
    diff = np.abs(n - v).sum(-1) > DIFF_MIN
    grown = ndimage.binary_dilation(diff, structure=_GROW).astype(np.float32)
    m = ndimage.gaussian_filter1d(ndimage.gaussian_filter1d(grown, FEATHER_PX, axis=1), FEATHER_PX, axis=2)
    h, w = y1 - y0, x1 - x0
    ys, xs = np.arange(h) + 0.5, np.arange(w) + 0.5
    big = np.full(h, np.inf)
    shared = SHARED_EDGES[part]
    top = big if "top" in shared else ys
    bottom = big if "bottom" in shared else h - ys
    edge = np.minimum(np.minimum(top, bottom)[:, None], np.minimum(xs, w - xs)[None, :])
    m = np.clip(m * 1.5, 0.0, 1.0) * np.clip(edge / FADE_PX, 0.0, 1.0)
    out = np.rint(n * (1 - m[..., None]) + v * m[..., None]).astype(np.uint8)
    return out[0] if one else out


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


def patch_images(texture: np.ndarray, sheet: FaceSheet, keys: Sequence[tuple[str, int]],
                 front: np.ndarray | None = None) -> list[np.ndarray]:  # fmt: skip
    """The RGB image of each patch ``keys`` (part, variant) from the neutral ``texture`` (128 px);
    ``front``: ``atlas.front_image(texture)`` if the caller has it already."""
    from chibi_meta.avatar.atlas import front_image

    if not keys:
        return []
    front = front_image(texture) if front is None else front
    out: list[np.ndarray] = [np.zeros(0, np.uint8)] * len(keys)
    sy, sx = SHEET_BOX[0], SHEET_BOX[2]
    for part in dict.fromkeys(p for p, _ in keys):
        y0, y1, x0, x1 = PARTS[part]
        idx = [i for i, (p, _) in enumerate(keys) if p == part]
        stack = sheet.images[[keys[i][1] for i in idx], y0 - sy : y1 - sy, x0 - sx : x1 - sx]
        for i, img in zip(idx, patch_image(front, stack, part), strict=True):
            out[i] = img
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
    show: np.ndarray  # (K,) metres each patch moves toward +Z at weight 1 (HIDE + its SHOW)


def _quads(ok: np.ndarray, z: np.ndarray, stride: int, tol: float) -> np.ndarray:
    """Quads (Q, 4) of flat node ids (row * W + col; corners top-left, top-right, bottom-right,
    bottom-left) over the cells ``ok`` (h, w) of a node grid (h + 1, w + 1) with heights ``z``: a
    stride x stride block of cells that are all ok, and whose surface its two triangles (split
    top-left to bottom-right) follow within ``tol``, is one quad; the other ok cells (the rim, the
    box's edge, a strongly curved chin) are a quad each."""
    h, w = ok.shape
    W = w + 1
    bi, bj = np.arange(0, h - stride + 1, stride), np.arange(0, w - stride + 1, stride)
    r = np.arange(stride + 1)
    zb = z[(bi[:, None] + r)[:, None, :, None], (bj[:, None] + r)[None, :, None, :]]  # (Bi, Bj, s+1, s+1)
    uu, vv = np.meshgrid(r / stride, r / stride)  # uu: along the columns, vv: along the rows
    za, zr, zc, zd = (zb[..., a, c][..., None, None] for a, c in ((0, 0), (0, -1), (-1, -1), (-1, 0)))
    flat = np.where(uu >= vv, za + (zr - za) * uu + (zc - zr) * vv, za + (zc - zd) * uu + (zd - za) * vv)
    big = (zb - flat).max((-1, -2)) <= tol
    covered = np.zeros_like(ok)
    for di in range(stride):
        for dj in range(stride):
            big &= ok[(bi + di)[:, None], (bj + dj)[None, :]]
    for di in range(stride):
        for dj in range(stride):
            covered[(bi + di)[:, None], (bj + dj)[None, :]] |= big
    gi, gj = np.nonzero(big)
    i, j = bi[gi], bj[gj]
    blocks = np.stack([i * W + j, i * W + j + stride, (i + stride) * W + j + stride, (i + stride) * W + j], 1)
    i, j = np.nonzero(ok & ~covered)
    cells = np.stack([i * W + j, i * W + j + 1, (i + 1) * W + j + 1, (i + 1) * W + j], 1)
    return np.concatenate([blocks, cells]).astype(np.int64).reshape(-1, 4)


def _part_mesh(head: HeadMesh, part: str, px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positions hidden HIDE_M behind the surface, normals, pixel coordinates in the box, faces)
    of the patch mesh of ``part``: every patch of a part has this geometry, each its own image."""
    k = 128 / (head.front_node.shape[0] - 1)
    y0, y1, x0, x1 = PARTS[part]
    i0, i1, j0, j1 = int(np.ceil(y0 / k)), int(y1 // k), int(np.ceil(x0 / k)), int(x1 // k)
    sub = head.interior[i0 : i1 + 1, j0 : j1 + 1]
    node = head.front_node[i0 : i1 + 1, j0 : j1 + 1]
    z = np.where(node >= 0, head.positions[np.maximum(node, 0), 2], 0.0)
    ok = sub[:-1, :-1] & sub[:-1, 1:] & sub[1:, :-1] & sub[1:, 1:]
    quads = _quads(ok, z, PATCH_STRIDE, CHORD_M / px)
    used, inv = np.unique(quads, return_inverse=True)
    ni, nj = np.divmod(used, sub.shape[1])
    vid = node[ni, nj]
    p = head.positions[vid].copy()
    p[:, 2] -= HIDE_M / px  # pixel z is toward the viewer, like world z
    q = inv.reshape(-1, 4)
    tris = np.concatenate([q[:, [0, 3, 2]], q[:, [0, 2, 1]]])
    # front UVs are planar: a rim node snapped onto the contour keeps its own spot
    return p, head.normals[vid], p[:, :2] - (x0, y0), tris


def build_patches(head: HeadMesh, keys: Sequence[tuple[str, int]], px: float) -> Patches:
    """Geometry of the patches ``keys`` on ``head``'s front (``px`` metres per pixel): each covers
    the front sheet's cells in its PARTS box (PATCH_STRIDE-sized quads, single cells near the rim),
    HIDE_M behind the surface along -Z; its target moves it along +Z to ``show`` (the further, the
    higher its rank in its part; FRONTMOST patches rank highest)."""
    order = sorted(range(len(keys)), key=lambda i: (keys[i] in FRONTMOST, keys[i]))
    rank: dict[str, int] = {}
    show = np.zeros(len(keys))
    for i in order:
        part = keys[i][0]
        r = rank[part] = rank.get(part, -1) + 1
        show[i] = HIDE_M + SHOW_M + SHOW_STEP * r
    meshes = {part: _part_mesh(head, part, px) for part in dict.fromkeys(p for p, _ in keys)}
    pos, nrm, uvp, slot, faces = [], [], [], [], []
    count = 0
    for i, (part, _variant) in enumerate(keys):
        p, n, uv, tris = meshes[part]
        if not len(tris):
            continue
        pos.append(p)
        nrm.append(n)
        uvp.append(uv)
        slot.append(np.full(len(p), i))
        faces.append(tris + count)
        count += len(p)
    if not pos:
        z3, z2 = np.zeros((0, 3)), np.zeros((0, 2))
        return Patches(z3, z3, z2, np.zeros(0, np.int64), np.zeros((0, 3), np.int64), tuple(keys), show)
    return Patches(np.concatenate(pos), np.concatenate(nrm), np.concatenate(uvp), np.concatenate(slot),
                   np.concatenate(faces), tuple(keys), show)  # fmt: skip


def needed_keys(names: Sequence[str], drawn: set[str]) -> tuple[tuple[str, int], ...]:
    """The (part, variant) patches the requested target ``names`` use, among the parts ``drawn``."""
    out: dict[tuple[str, int], None] = {}
    for name in names:
        for part, v, _ in TARGETS.get(name, ()):
            if part in drawn:
                out[(part, v)] = None
    return tuple(sorted(out))
