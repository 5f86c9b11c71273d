"""The chibi body (chibi_meta.avatar.body): one closed smooth surface per outfit, skinned to the rig,
coloured by region along clean hems; the outfits differ in shape; a bad outfit names the allowed ones."""

from __future__ import annotations

import numpy as np
import pytest

from chibi_meta.avatar import body, rig
from chibi_meta.errors import UsageError

trimesh = pytest.importorskip("trimesh")


def welded(b: body.BodyMesh) -> trimesh.Trimesh:
    """The body with its per-region vertex copies merged by position."""
    p, inv = np.unique(b.positions, axis=0, return_inverse=True)
    return trimesh.Trimesh(p.astype(np.float64), inv.ravel()[b.faces], process=False)


@pytest.fixture(scope="module", params=body.OUTFITS)
def outfit(request) -> tuple[str, body.BodyMesh]:
    return request.param, body.body_mesh(request.param)


def test_body_is_one_closed_surface(outfit):
    name, b = outfit
    m = welded(b)
    assert m.is_watertight, name
    assert m.is_winding_consistent, name
    assert m.body_count == 1, name  # one continuous surface: no separate parts, no gaps
    assert m.euler_number == 2, name  # a sphere: no handles, no holes
    assert m.volume > 0, name  # outward facing
    assert (m.area_faces > 1e-12).all(), name
    assert b.faces.max() < len(b.positions) and len(b.faces) >= 4000, name


def test_body_normals_are_smooth_and_outward(outfit):
    name, b = outfit
    n = b.normals.astype(np.float64)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5), name
    m = welded(b)
    _, inv = np.unique(b.positions, axis=0, return_inverse=True)
    geo = np.asarray(m.vertex_normals)[inv.ravel()]
    dots = (n * geo).sum(1)
    assert (dots > 0).mean() > 0.995 and np.median(dots) > 0.95, (name, (dots > 0).mean(), np.median(dots))
    # vertex copies at a hem (one per region) share position and normal: no shading seam
    order = np.lexsort(b.positions.T)
    p = b.positions[order]
    same = (p[1:] == p[:-1]).all(1)
    assert same.any(), name
    assert np.allclose(n[order][1:][same], n[order][:-1][same], atol=1e-6), name


def test_skin_weights(outfit):
    name, b = outfit
    w = b.weights.astype(int)
    assert b.joints.shape == b.weights.shape == (len(b.positions), 4)
    assert b.joints.dtype == b.weights.dtype == np.uint8
    assert (w.sum(1) == 255).all(), name  # normalized bytes summing to exactly 1
    assert ((w > 0).sum(1) <= 4).all() and ((w > 0).sum(1) >= 1).all()
    assert (b.joints < len(rig.NAMES)).all(), name
    assert ((w > 0) | (b.joints == 0)).all(), name  # unused slots: joint 0, weight 0
    for k in range(4):  # the joints of one vertex are distinct
        for j in range(k + 1, 4):
            both = (w[:, k] > 0) & (w[:, j] > 0)
            assert (b.joints[both, k] != b.joints[both, j]).all(), name
    # the body is skinned to the body's bones, not to the head or the eyes
    used = {rig.NAMES[j] for j in np.unique(b.joints[w > 0])}
    assert not used & {"Head", "HeadTop_End", "LeftEye", "RightEye"}, name
    assert {"Hips", "Spine", "LeftArm", "RightArm", "LeftUpLeg", "RightLeg", "LeftFoot"} <= used, name


def test_skin_weights_follow_the_limbs(outfit):
    """A hand's vertices move with the hand, a shoe's with the foot (largest weight), on both sides."""
    name, b = outfit
    p = b.positions
    main = np.array(rig.NAMES)[b.joints[np.arange(len(p)), np.argmax(b.weights, 1)]]
    for side, sx in (("Left", 1), ("Right", -1)):
        hand = sx * p[:, 0] > rig.POSITIONS[f"{side}Hand"][0] * sx + 0.01
        hand_bones = [n for n in rig.NAMES if n.startswith(f"{side}Hand")]
        assert hand.sum() > 20 and np.isin(main[hand], hand_bones).all(), name
        shoe = (p[:, 1] < 0.03) & (sx * p[:, 0] > 0) & (p[:, 2] > 0.02)  # (the heel is as near the shin)
        assert shoe.sum() > 20 and np.isin(main[shoe], [f"{side}Foot", f"{side}ToeBase"]).all(), name
        knee = (np.abs(p[:, 1] - rig.POSITIONS[f"{side}Leg"][1]) < 0.005) & (sx * p[:, 0] > 0)
        assert np.isin(main[knee], [f"{side}UpLeg", f"{side}Leg"]).all(), name


def test_regions_are_whole_triangles_and_hems_clean(outfit):
    name, b = outfit
    r = b.regions[b.faces]
    assert (r == r[:, :1]).all(), name  # a triangle has one colour: hems run along edges
    used = {body.REGIONS[i] for i in np.unique(b.regions)}
    want = {"skin", "top", "shoes", "sole", "accent"} | ({"bottom"} if name != "dress" else set())
    assert used == want, (name, used)
    # skin at the neck and the hands, shoes on the floor
    p = b.positions
    reg = np.array(body.REGIONS)[b.regions]
    assert (reg[np.abs(p[:, 0]) > 0.23] == "skin").all(), name
    assert set(reg[p[:, 1] < 0.005]) <= {"sole"}, name


def winding_number(m: trimesh.Trimesh, q: np.ndarray) -> np.ndarray:
    """Generalised winding number of points ``q`` (~1 inside a closed mesh, ~0 outside)."""
    t = m.vertices[m.faces][None] - np.asarray(q, float)[:, None, None, :]  # (Q, T, 3, 3)
    a, b, c = t[..., 0, :], t[..., 1, :], t[..., 2, :]
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    num = np.einsum("...i,...i", a, np.cross(b, c))
    den = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
    return (2 * np.arctan2(num, den)).sum(-1) / (4 * np.pi)


def _profile(b: body.BodyMesh, y0: float, y1: float, fn) -> float:
    p = b.positions
    sel = (p[:, 1] >= y0) & (p[:, 1] <= y1) & (np.abs(p[:, 0]) < 0.15)
    return float(fn(p[sel]))


def test_outfits_differ_in_shape():
    t, h, d = (body.body_mesh(o) for o in body.OUTFITS)
    vol = {o: welded(body.body_mesh(o)).volume for o in body.OUTFITS}
    print("body volumes (litres):", {o: round(v * 1000, 2) for o, v in vol.items()})
    # the dress: a flared skirt around the thighs, far wider than the shorts' legs there
    hem = lambda m: _profile(m, 0.15, 0.22, lambda q: np.hypot(q[:, 0], q[:, 2] / 0.82).max())  # noqa: E731
    assert hem(d) > hem(t) + 0.02, (hem(d), hem(t))
    # between the thighs and behind the neck: inside the skirt / the hood, outside the t-shirt body
    between_legs, behind_neck = [0.0, 0.14, 0.0], [0.0, 0.425, -0.085]
    wt = winding_number(welded(t), np.array([between_legs, behind_neck]))
    assert np.allclose(wt, 0, atol=0.01), wt
    assert winding_number(welded(d), np.array([between_legs]))[0] > 0.99
    assert winding_number(welded(h), np.array([behind_neck]))[0] > 0.99
    assert winding_number(welded(h), np.array([between_legs]))[0] < 0.01  # trousers: two legs
    back = lambda m: _profile(m, 0.40, 0.45, lambda q: -q[:, 2].min())  # noqa: E731
    assert back(h) > back(t) + 0.01, (back(h), back(t))
    assert vol["dress"] > vol["tshirt_shorts"] * 1.1 and vol["hoodie_trousers"] > vol["tshirt_shorts"]
    # the rest of the body (arms and hands) is the same
    for m in (h, d):
        hands = m.positions[np.abs(m.positions[:, 0]) > 0.23]
        ref = t.positions[np.abs(t.positions[:, 0]) > 0.23]
        assert np.abs(hands.max(0) - ref.max(0)).max() < 0.005 and np.abs(hands.min(0) - ref.min(0)).max() < 0.005


def test_body_is_deterministic_and_cached():
    a = body.body_mesh("dress")
    assert body.body_mesh("dress") is a  # built once per process
    body.body_mesh.cache_clear()
    b = body.body_mesh("dress")
    for f in ("positions", "normals", "regions", "joints", "weights", "faces"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


@pytest.mark.parametrize("bad", ["cape", "", "DRESS", "tshirt", None, 0, ["dress"]])
def test_check_outfit(bad):
    with pytest.raises(UsageError, match="allowed: tshirt_shorts, hoodie_trousers, dress") as e:
        body.check_outfit(bad)
    assert repr(bad) in str(e.value)
    if not isinstance(bad, list):  # (body_mesh is cached by its argument: hashable values only)
        with pytest.raises(UsageError, match="allowed: tshirt_shorts, hoodie_trousers, dress"):
            body.body_mesh(bad)  # type: ignore[arg-type]


def test_check_outfit_accepts_every_outfit():
    for o in body.OUTFITS:
        assert body.check_outfit(o) == o
