"""Skinning and the deformation test: retargeting on any rest axes, poses, morphs, and the issue's thresholds.

The deformation test runs on a real exported avatar over the pose set (A-pose, arms up, sitting,
8 walk phases, head turned +-60 degrees): >= 99 % of triangles keep their area within [0.5, 2] in
every pose, and no vertex of the head mesh (``AvatarHead``) is inside the body (``AvatarBody``).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from chibi_meta.avatar import names
from chibi_meta.avatar.poses import POSES, REFERENCE_HIPS_HEIGHT, SIT_DROP, Pose, axis_angle, pose_set, quat_matrix
from chibi_meta.avatar.skinning import Avatar, split_glb
from chibi_meta.errors import MeshError, UsageError


# --- GLB surgery helpers (also used by tests/test_avatar_render.py) ----------------------------
def write_glb(gltf: dict, binary: bytes) -> bytes:
    doc = json.dumps(gltf, separators=(",", ":")).encode()
    doc += b" " * (-len(doc) % 4)
    binary += b"\0" * (-len(binary) % 4)
    if gltf.get("buffers"):
        gltf["buffers"][0]["byteLength"] = len(binary)
        doc = json.dumps(gltf, separators=(",", ":")).encode()
        doc += b" " * (-len(doc) % 4)
    out = struct.pack("<II", len(doc), 0x4E4F534A) + doc
    if binary:
        out += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(out)) + out


def add_blob(gltf: dict, binary: bytes, data: bytes) -> tuple[bytes, int]:
    """Append ``data`` to the binary chunk as a new bufferView; returns (binary, view index)."""
    binary += b"\0" * (-len(binary) % 4)
    gltf.setdefault("bufferViews", []).append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data)})
    if not gltf.get("buffers"):
        gltf["buffers"] = [{"byteLength": 0}]
    return binary + data, len(gltf["bufferViews"]) - 1


def add_accessor(gltf: dict, binary: bytes, arr: np.ndarray, kind: str, ctype: int, **kw: object) -> tuple[bytes, int]:
    binary, view = add_blob(gltf, binary, np.ascontiguousarray(arr).tobytes())
    gltf.setdefault("accessors", []).append({"bufferView": view, "componentType": ctype, "count": len(arr),
                                             "type": kind, **kw})  # fmt: skip
    return binary, len(gltf["accessors"]) - 1


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return quat_matrix(q / np.linalg.norm(q))


def rotated_rig(data: bytes, seed: int = 0) -> bytes:
    """The same avatar with a random rest rotation on every node (bones, and ``Armature`` or other
    non-mesh nodes) under a new rotated, scaled root node.

    World geometry at rest is unchanged (local matrices and inverse bind matrices recomputed), so a
    normalized pose must move every vertex exactly as on the original rig.
    """
    gltf, binary = split_glb(data)
    av = Avatar(data)
    rng = np.random.default_rng(seed)
    nodes = gltf["nodes"]
    target = {}
    for i, n in enumerate(nodes):
        spin = np.eye(4)
        if "mesh" not in n or "skin" in n:  # an unskinned mesh keeps its frame (its geometry would move)
            spin[:3, :3] = random_rotation(rng)
        target[i] = av.rest_world[i] @ spin
    root = np.eye(4)
    root[:3, :3] = quat_matrix(axis_angle((1, 0.3, 0), 70)) * 0.5
    root[:3, 3] = (0.1, -0.2, 0.3)
    scene = gltf["scenes"][gltf.get("scene", 0)]
    nodes.append({"name": "Root", "children": list(scene["nodes"]), "rotation": list(axis_angle((1, 0.3, 0), 70)),
                  "scale": [0.5, 0.5, 0.5], "translation": [0.1, -0.2, 0.3]})  # fmt: skip
    scene["nodes"] = [len(nodes) - 1]
    for i, n in enumerate(nodes[:-1]):
        p = av.parent[i]
        local = np.linalg.inv(target[p] if p >= 0 else root) @ target[i]
        for k in ("translation", "rotation", "scale"):
            n.pop(k, None)
        n["matrix"] = local.T.reshape(-1).tolist()
    for skin in gltf["skins"]:
        ibm = np.stack([np.linalg.inv(target[j]).T for j in skin["joints"]]).astype(np.float32)
        binary, skin["inverseBindMatrices"] = add_accessor(gltf, binary, ibm.reshape(-1, 16), "MAT4", 5126)
    return write_glb(gltf, binary)


def mixamo_named(data: bytes) -> bytes:
    """The same VRM with Mixamo / RPM node names (``mixamorig:`` prefixed), without its VRM extension."""
    gltf, binary = split_glb(data)
    human = gltf.get("extensions", {}).pop("VRMC_vrm")["humanoid"]["humanBones"]
    for bone, v in human.items():
        gltf["nodes"][v["node"]]["name"] = "mixamorig:" + names.HUMANOID[bone]
    return write_glb(gltf, binary)


def positions(av: Avatar, pose: Pose | None = None, **kw: object) -> np.ndarray:
    return np.concatenate([p.positions for ps in av.skin(pose, **kw).values() for p in ps])


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A real avatar as `chibi-meta export` writes it, as GLB and as VRM."""
    from chibi_meta.cli import main

    out = tmp_path_factory.mktemp("deform")
    files = {}
    for fmt in ("glb", "vrm"):
        path = out / f"chibi-7.{fmt}"
        assert main(["export", "--seed", "7", "--out", str(path), "--texture-size", "256"]) == 0
        files[fmt] = path.read_bytes()
    return files


# --- skinning ----------------------------------------------------------------------------------
def test_rest_pose_is_the_bind_pose(exported):
    for data in exported.values():
        av = Avatar(data)
        assert {"hips", "head", "leftUpperArm", "rightLowerLeg"} <= set(av.humanoid)
        for parts in av.skin().values():
            for p in parts:
                raw = av.meshes[p.mesh_index][0][p.primitive_index]
                # at rest, joint world x inverse bind = identity: the posed mesh is the stored one
                assert np.allclose(p.positions, raw.positions, atol=1e-5)
                assert p.uvs is not None and p.uvs.min() >= 0 and p.uvs.max() <= 1  # normalized UNSIGNED_SHORT
                assert p.material.image is not None and p.material.image.shape[2] == 4
                assert np.allclose(np.linalg.norm(p.normals, axis=1), 1, atol=1e-4)


def test_retarget_is_independent_of_rest_axes(exported):
    """A normalized pose moves every vertex the same on identity bones and on randomly rotated ones."""
    data = exported["vrm"]
    plain, turned, named = Avatar(data), Avatar(rotated_rig(data, 1)), Avatar(mixamo_named(rotated_rig(data, 2)))
    assert set(named.humanoid) == set(plain.humanoid)
    assert not np.allclose(turned.rest_world[turned.humanoid["leftUpperArm"]][:3, :3], np.eye(3))
    assert np.allclose(positions(turned), positions(plain), atol=1e-5)
    for name, pose in {**POSES, **pose_set()}.items():
        want = positions(plain, pose)
        assert np.allclose(positions(turned, pose), want, atol=1e-5), name
        assert np.allclose(positions(named, pose), want, atol=1e-5), name


def test_pose_directions(exported):
    av = Avatar(exported["glb"])
    h = av.humanoid

    def joint(pose: Pose | None, bone: str) -> np.ndarray:
        return av.pose_world(pose)[h[bone]][:3, 3]

    rest_hand = joint(None, "leftHand")
    a_hand = joint(POSES["a"], "leftHand")
    up_hand = joint(POSES["arms_up"], "leftHand")
    assert a_hand[1] < rest_hand[1] - 0.05 and a_hand[0] > 0  # the left arm comes down on the left (+X)
    assert up_hand[1] > rest_hand[1] + 0.1
    assert joint(POSES["a"], "rightHand")[1] == pytest.approx(a_hand[1])  # mirrored
    # sitting: the knees come forward (+Z) to hip height, the hips drop by the scaled upper-leg length
    drop = SIT_DROP * av.hips_height / REFERENCE_HIPS_HEIGHT
    assert joint(POSES["sit"], "hips")[1] == pytest.approx(joint(None, "hips")[1] - drop)
    knee = joint(POSES["sit"], "leftLowerLeg")
    assert knee[2] > 0.05 and knee[1] == pytest.approx(joint(POSES["sit"], "leftUpperLeg")[1], abs=1e-6)
    # head +60: the face (+Z) turns toward the avatar's left (+X)
    face = np.argsort(-positions(av)[:, 2])[:50]
    assert positions(av, POSES["head_left60"])[face, 0].mean() > 0.05
    assert positions(av, POSES["head_right60"])[face, 0].mean() < -0.05


def test_missing_bones_pass_their_rotation_on(exported):
    """A bone the avatar lacks (here upperChest, dropped from the VRM map) hands its rotation to its children."""
    gltf, binary = split_glb(exported["vrm"])
    gltf["extensions"]["VRMC_vrm"]["humanoid"]["humanBones"].pop("upperChest", None)
    av = Avatar(write_glb(gltf, binary))
    assert "upperChest" not in av.humanoid
    q = axis_angle((0, 1, 0), 40)
    folded = positions(av, Pose({"upperChest": q}))
    assert not np.allclose(folded, positions(av))
    assert np.allclose(folded, positions(av, Pose({"neck": q, "leftShoulder": q, "rightShoulder": q})), atol=1e-6)


def test_sparse_morph_target(exported):
    """A sparse morph target (named in mesh.extras.targetNames) moves only its vertices, by weight x delta."""
    gltf, binary = split_glb(exported["glb"])
    for m in gltf["meshes"]:  # drop the file's own targets: only the one added here remains
        m.pop("extras", None)
        m.pop("weights", None)
        for p in m["primitives"]:
            p.pop("targets", None)
    for n in gltf["nodes"]:
        n.pop("weights", None)
    mesh = gltf["meshes"][0]
    prim = mesh["primitives"][0]
    nv = gltf["accessors"][prim["attributes"]["POSITION"]]["count"]
    idx = np.arange(0, nv, 7, dtype=np.uint16)
    delta = np.tile(np.float32([0.0, 0.01, 0.02]), (len(idx), 1))
    binary, vi = add_blob(gltf, binary, idx.tobytes())
    binary, vv = add_blob(gltf, binary, delta.tobytes())
    gltf["accessors"].append({"componentType": 5126, "count": nv, "type": "VEC3", "sparse": {
        "count": len(idx), "indices": {"bufferView": vi, "componentType": 5123}, "values": {"bufferView": vv}}})
    for p in mesh["primitives"]:
        p["targets"] = [{"POSITION": len(gltf["accessors"]) - 1}] if p is prim else [{}]
    mesh["extras"] = {"targetNames": ["testShape"]}
    av = Avatar(write_glb(gltf, binary))
    assert av.target_names == ["testShape"]
    label = av.mesh_labels[next(i for i in av.mesh_nodes if gltf["nodes"][i]["mesh"] == 0)]
    rest = av.skin(nodes=[label])[label][0].positions
    half = av.skin(morphs={"testShape": 0.5}, nodes=[label])[label][0].positions
    moved = np.flatnonzero(np.abs(half - rest).max(1) > 1e-7)
    assert np.array_equal(moved, idx)
    # at rest the skin is the identity on the bind pose, so the delta shows as it is
    assert np.allclose(half[idx] - rest[idx], 0.5 * delta, atol=1e-5)
    with pytest.raises(UsageError, match="unknown morph"):
        av.skin(morphs={"no_such_target": 1.0})
    with pytest.raises(UsageError, match="unknown humanoid bones"):
        av.skin(Pose({"LeftArm": (0, 0, 0, 1)}))


def test_uint16_joints_and_float_weights(exported):
    gltf, binary = split_glb(exported["glb"])
    av = Avatar(exported["glb"])
    prim = gltf["meshes"][0]["primitives"][0]
    raw = av.meshes[0][0][0]
    binary, j = add_accessor(gltf, binary, raw.joints.astype(np.uint16), "VEC4", 5123)
    binary, w = add_accessor(gltf, binary, raw.weights.astype(np.float32), "VEC4", 5126)
    prim["attributes"].update(JOINTS_0=j, WEIGHTS_0=w)
    other = Avatar(write_glb(gltf, binary))
    assert np.allclose(positions(other, POSES["a"]), positions(av, POSES["a"]), atol=1e-5)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "not a GLB"),
        (b"{", "does not parse"),
        (b"glTF\x02\x00\x00\x00", "truncated"),
        (b"glTF\x01\x00\x00\x00" + b"\0" * 12, "version 1"),
        (b"\x89PNG\r\n\x1a\n", "not a GLB"),
        (json.dumps({"asset": {"version": "2.0"}, "buffers": [{"uri": "../../etc/passwd", "byteLength": 4}]}).encode(),
         "external URI"),
        (json.dumps({"asset": {"version": "2.0"}, "nodes": [{"children": [0]}]}).encode(), "bad child"),
        (json.dumps({"asset": {"version": "2.0"}, "extensionsRequired": ["KHR_draco_mesh_compression"]}).encode(),
         "requires KHR_draco_mesh_compression"),
    ],
)  # fmt: skip
def test_bad_files_are_mesh_errors(data, match):
    with pytest.raises(MeshError, match=match):
        Avatar(data)


def test_accessor_bounds_checked(exported):
    gltf, binary = split_glb(exported["glb"])
    gltf["accessors"][0]["count"] = 10**6
    with pytest.raises(MeshError, match="outside"):
        Avatar(write_glb(gltf, binary))


# --- the deformation check -------------------------------------------------------------------
def test_head_inside_body_counts_penetration():
    trimesh = pytest.importorskip("trimesh")
    from chibi_meta.avatar.deform import head_inside_body
    from chibi_meta.avatar.skinning import Material, Part

    def part(mesh: object, shift: tuple[float, float, float]) -> Part:
        v = np.asarray(mesh.vertices, np.float32) + np.asarray(shift, np.float32)  # type: ignore[attr-defined]
        f = np.asarray(mesh.faces, np.uint32)  # type: ignore[attr-defined]
        return Part("n", 0, 0, 0, v, v, None, None, f, Material())

    body = [part(trimesh.creation.icosphere(subdivisions=3, radius=0.2), (0, 0, 0))]
    head = np.asarray(trimesh.creation.icosphere(subdivisions=2, radius=0.1).vertices)
    inside, method, _ = head_inside_body(head + (0, 0.31, 0), body)
    assert not inside.any() and method == "contains"
    inside, method, depth = head_inside_body(head + (0, 0.25, 0), body)
    assert inside.any() and method == "contains" and 0 < depth <= 0.06
    assert (head[inside][:, 1] < 0).all()  # the lower cap of the head sphere is in
    body[0].indices = body[0].indices[1:]  # one face missing: not watertight
    inside2, method2, _ = head_inside_body(head + (0, 0.25, 0), body)
    assert method2 == "signed_distance" and abs(int(inside2.sum()) - int(inside.sum())) <= 2


WITHIN = 0.99  # issue 8: the share of triangles within [0.5, 2] in every pose


def test_deformation_over_the_pose_set(exported):
    """The issue's thresholds on a real exported avatar (see the module docstring)."""
    from chibi_meta.avatar.deform import RATIO_HI, RATIO_LO, deformation_report, summary

    report = deformation_report(exported["vrm"])
    text = summary(report)
    assert set(report["poses"]) == set(pose_set()) and len(report["poses"]) == 13
    assert report["triangles"] > 1000 and report["degenerate"] < report["triangles"] * 0.01, text
    # sitting reached 97.6-98.9 % while the back straightened in one 35 deg fold at the waist; with
    # the lumbar curve spread over spine, chest and upper chest it reaches 99.0-99.4 % (24 seeds,
    # every outfit; the dress is the lowest)
    need = {k: WITHIN for k in report["poses"]}
    low = {k: round(100 * e["within"], 3) for k, e in report["poses"].items() if e["within"] < need[k]}
    assert not low, f"poses under their share of triangles within [{RATIO_LO}, {RATIO_HI}]: {low}\n{text}"
    assert report["head_check"], (
        f"no separate AvatarHead / AvatarBody mesh nodes (meshes: {report['meshes']}): cannot check that no "
        f"head vertex enters the body\n{text}"
    )
    inside = {k: (e["head_inside"], e["head_entered"]) for k, e in report["poses"].items() if e["head_inside"]}
    assert not inside, f"head vertices inside the body (all, new since rest): {inside}\n{text}"


# --- long hair ---------------------------------------------------------------------------------
# Long hair is rigid to the head and moved back just clear of the body (procedural.clear_of_body).
# These three avatars had hair inside the raised arms (24 and 39 vertices) or the hood (1, at rest),
# and their hair reached 6.0, 1.9 and 15.1 cm behind the back of the head (a fin in side views),
# before the clearance kept the head turns (A-pose) and the raised arms (head still) apart.
LONG_HAIR = [(40004, "long05", "tshirt_shorts"), (40007, "long04", "dress"), (40008, "long09", "hoodie_trousers")]
FIN_MAX_M = {40004: 0.01, 40007: 0.01, 40008: 0.09}  # measured 0.0, 0.0 and 8.2 cm (the hood's sweep)


def hair_behind_head(av: Avatar) -> float:
    """How far (m) the head's parts below the chin reach behind the back of the head above it."""
    p = np.concatenate([q.positions for q in av.skin()["AvatarHead"]])
    top, low = p[p[:, 1] > 0.56], p[p[:, 1] < 0.5]
    return max(0.0, float(top[:, 2].min() - low[:, 2].min())) if len(low) else 0.0


@pytest.mark.parametrize("seed,hair,outfit", LONG_HAIR)
def test_long_hair_clears_the_body_in_every_pose(seed, hair, outfit, tmp_path):
    from chibi_meta.avatar.deform import deformation_report, summary
    from chibi_meta.cli import main

    path = tmp_path / f"chibi-{seed}.glb"
    assert main(["export", "--seed", str(seed), "--attr", f"hair_style={hair}", "--attr", f"outfit={outfit}",
                 "--out", str(path), "--texture-size", "256"]) == 0  # fmt: skip
    data = path.read_bytes()
    report = deformation_report(data)
    inside = {k: e["head_inside"] for k, e in report["poses"].items() if e["head_inside"]}
    assert report["head_inside_rest"] == 0 and not inside, summary(report)
    assert min(e["within"] for e in report["poses"].values()) >= 0.99, summary(report)
    fin = hair_behind_head(Avatar(data))
    print(f"\n{seed} {hair} {outfit}: hair reaches {fin * 100:.1f} cm behind the back of the head")
    assert fin <= FIN_MAX_M[seed], fin
