"""Animation clips (chibi_meta.avatar.clips) and their VRM Animation files (chibi_meta.avatar.vrma).

Clip sampling is checked in Python (unit quaternions, loops, the walk's gait, grounded soles, arms clear
of the body); the shipped ``assets/animations/*.vrma`` must equal what the code writes, pass the Khronos
glTF-Validator with 0 errors and 0 warnings, and play on an exported VRM in headless Chromium with
three-vrm + @pixiv/three-vrm-animation (tests/js/anim.mjs; needs ``npm ci --prefix tests/js`` and
/usr/bin/chromium or $CHROMIUM). The browser checks use only the VRM humanoid (normalized bones), so
they hold for any rig the packer exports.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chibi_meta.avatar import build_avatar
from chibi_meta.avatar.clips import BONES, CLIPS, PARENT, REST, Clip, forward_kinematics, quat_rotate, sole_points
from chibi_meta.avatar.vrma import ANIMATIONS_DIR, EXTENSION, shipped_clip, vrma_bytes, write_all, write_vrma
from chibi_meta.errors import UsageError

JS = Path(__file__).parent / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
VRM_BONES = {  # every VRM 1.0 humanoid bone but the eyes (a .vrma may not animate them)
    "hips", "spine", "chest", "upperChest", "neck", "head", "jaw",
    *(f"{s}{b}" for s in ("left", "right") for b in (
        "Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes",
        "ThumbMetacarpal", "ThumbProximal", "ThumbDistal",
        *(f"{f}{j}" for f in ("Index", "Middle", "Ring", "Little") for j in ("Proximal", "Intermediate", "Distal")),
    )),
}  # fmt: skip


def _angle(q) -> float:
    """Rotation angle of a unit quaternion, degrees."""
    return math.degrees(2.0 * math.acos(min(1.0, abs(q[3]))))


def _times(clip: Clip, n: int = 64) -> list[float]:
    return [clip.duration * i / n for i in range(n)]


# --- clips ------------------------------------------------------------------------------------------------
def test_reference_skeleton():
    assert set(BONES) <= VRM_BONES and len(BONES) == len(set(BONES))
    assert REST["hips"] == (0.0, 0.33, 0.0)
    for b in BONES:  # parents first, left = +X, mirrored sides
        assert PARENT[b] is None or BONES.index(PARENT[b]) < BONES.index(b)
        if b.startswith("left"):
            r, l = REST["right" + b[4:]], REST[b]
            assert l[0] > 0 and (l[0], l[1], l[2]) == (-r[0], r[1], r[2])
    assert min(p[1] for p in REST.values()) > 0 and REST["head"][1] < 0.6


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_clip_unit_quaternions_loop_and_smooth(name):
    clip = CLIPS[name]
    assert clip.name == name and clip.loop and clip.fps == 30
    assert clip.sample(0.0) == clip.sample(clip.duration) and clip.hips_offset(0.0) == clip.hips_offset(clip.duration)
    assert clip.sample(0.25) == clip.sample(0.25 + 3 * clip.duration)  # loops wrap
    prev = None
    for t in clip.frame_times():
        s = clip.sample(t)
        assert set(s) == set(BONES)
        for q in s.values():
            assert abs(sum(c * c for c in q) - 1.0) < 1e-9 and q[3] >= 0.0
        if prev is not None:  # no jumps between keys: < 12 degrees per bone per frame (360 deg/s)
            for b in BONES:
                dot = abs(sum(a * c for a, c in zip(prev[b], s[b], strict=True)))
                assert math.degrees(2 * math.acos(min(1.0, dot))) < 12.0, (name, b, t)
        prev = s
    off = [clip.hips_offset(t) for t in clip.frame_times()]
    assert max(abs(c) for o in off for c in o) < 0.04  # a chibi's hips move by centimetres


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_soles_on_the_ground(name):
    clip = CLIPS[name]
    for t in _times(clip):
        soles = sole_points(clip.sample(t), clip.hips_offset(t))
        lowest = min(p[1] for pts in soles.values() for p in pts)
        assert abs(lowest) < 1e-9, (t, lowest)  # the lowest sole point touches Y=0, none below


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_arms_down_and_clear_of_body_and_head(name):
    clip = CLIPS[name]
    for t in _times(clip):
        pos, _ = forward_kinematics(clip.sample(t), clip.hips_offset(t))
        for side, sx in (("left", 1.0), ("right", -1.0)):
            ua, la, hand = (np.array(pos[f"{side}{b}"]) for b in ("UpperArm", "LowerArm", "Hand"))
            d = la - ua
            down = math.degrees(math.asin(-d[1] / np.linalg.norm(d)))
            assert 60.0 <= down <= 80.0, (name, side, t, down)  # about 65-75 degrees down, not 90
            assert sx * hand[0] > sx * ua[0] + 0.05  # the hand hangs outside the shoulder joint
            assert hand[1] < pos["neck"][1] - 0.12  # well below the (big) head


def test_idle_breathes_and_sways():
    clip = CLIPS["idle"]
    assert 3.5 <= clip.duration <= 4.5
    samples = [clip.sample(t) for t in _times(clip)]
    for b in ("chest", "spine", "head"):
        angles = [_angle(s[b]) for s in samples]
        assert 0.5 < max(angles) - min(angles) < 6.0, b
    sway = [clip.hips_offset(t)[0] for t in _times(clip)]
    assert 0.003 < max(sway) - min(sway) < 0.03


def _leg_forward(q) -> float:
    """Forward (Z) component of a leg pointing down, rotated by ``q``."""
    return quat_rotate(q, (0.0, -1.0, 0.0))[2]


def test_walk_legs_alternate_and_arms_swing_opposite():
    clip = CLIPS["walk"]
    assert 0.8 <= clip.duration <= 1.2
    ts = _times(clip)
    s = [clip.sample(t) for t in ts]
    left = np.array([_leg_forward(x["leftUpperLeg"]) for x in s])
    right = np.array([_leg_forward(x["rightUpperLeg"]) for x in s])
    swing = math.degrees(math.asin(left.max()))
    assert 20.0 <= swing <= 30.0  # upper leg about +-25 degrees
    assert np.corrcoef(left, right)[0, 1] < -0.95  # the legs alternate
    arm_l = np.array([quat_rotate(x["leftUpperArm"], (1.0, 0.0, 0.0))[2] for x in s])
    assert np.corrcoef(arm_l, left)[0, 1] < -0.9  # the left arm swings with the right leg
    knee = [_angle(x["leftLowerLeg"]) for x in s]
    assert max(knee) > 30.0 and min(knee) < 8.0  # the knee bends in the swing, straightens in stance
    bob = [clip.hips_offset(t)[1] for t in ts]
    assert 0.005 < max(bob) - min(bob) < 0.04


def test_walk_head_steady():
    clip = CLIPS["walk"]
    for t in _times(clip):
        _, rot = forward_kinematics(clip.sample(t), clip.hips_offset(t))
        assert _angle(rot["head"]) < 2.0, t  # world orientation of the head stays within 2 degrees


# --- .vrma files -----------------------------------------------------------------------------------------
def _glb_json(data: bytes) -> tuple[dict, bytes]:
    magic, version, total = struct.unpack_from("<III", data)
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942
    return json.loads(data[20 : 20 + jlen]), data[28 + jlen : 28 + jlen + blen]


def test_shipped_files_equal_the_code(tmp_path):
    sizes = write_all(tmp_path)
    assert set(sizes) == set(CLIPS)
    for name in CLIPS:
        fresh = (tmp_path / f"{name}.vrma").read_bytes()
        assert len(fresh) == sizes[name] and fresh == vrma_bytes(CLIPS[name])  # deterministic
        shipped = shipped_clip(name)
        assert shipped.parent == ANIMATIONS_DIR
        assert shipped.read_bytes() == fresh, f"{shipped} is stale: run python assets/animations/make_clips.py"
        assert len(fresh) < 200_000
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_vrma_structure(name):
    clip = CLIPS[name]
    doc, binary = _glb_json(shipped_clip(name).read_bytes())
    assert doc["extensionsUsed"] == [EXTENSION] and "extensionsRequired" not in doc
    ext = doc["extensions"][EXTENSION]
    assert ext["specVersion"] == "1.0"
    bones = ext["humanoid"]["humanBones"]
    assert set(bones) == set(BONES) and "leftEye" not in bones
    nodes = doc["nodes"]
    # rest pose: identity rotations, no scale, translations add up to REST (T-pose, hips at 0.33 m)
    world = {}
    for b in BONES:
        n = nodes[bones[b]["node"]]
        assert n["name"] == b and "rotation" not in n and "scale" not in n
        p = PARENT[b]
        base = world[p] if p else np.zeros(3)
        world[b] = base + np.array(n["translation"])
        assert np.allclose(world[b], REST[b], atol=1e-6)
        for c in n.get("children", []):
            assert PARENT[nodes[c]["name"]] == b
    (anim,) = doc["animations"]
    assert anim["name"] == name
    targets = [(nodes[c["target"]["node"]]["name"], c["target"]["path"]) for c in anim["channels"]]
    assert ("hips", "translation") in targets
    assert sorted(b for b, p in targets if p == "rotation") == sorted(clip.moved_bones())
    assert all(p == "rotation" or b == "hips" for b, p in targets)  # no translation but the hips'
    assert {"leftUpperLeg", "rightUpperArm", "chest", "head"} <= {b for b, _ in targets}
    acc, views = doc["accessors"], doc["bufferViews"]

    def read(i: int) -> np.ndarray:
        a = acc[i]
        v = views[a["bufferView"]]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[a["type"]]
        raw = binary[v["byteOffset"] : v["byteOffset"] + v["byteLength"]]
        return np.frombuffer(raw, "<f4").reshape(a["count"], width)

    for s in anim["samplers"]:
        assert s["interpolation"] == "LINEAR"
        times = read(s["input"])[:, 0]
        assert len(times) == round(clip.duration * clip.fps) + 1 and times[0] == 0.0
        assert abs(times[-1] - clip.duration) < 1e-6 and np.all(np.diff(times) > 0)
        out = read(s["output"])
        assert np.allclose(out[0], out[-1])  # a loop's last key equals its first
        if out.shape[1] == 4:
            assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
        else:  # hips: absolute positions in the reference skeleton
            assert np.allclose(out[:, 1], REST["hips"][1], atol=0.04)


def test_bad_input(tmp_path):
    with pytest.raises(UsageError, match="allowed: idle, walk"):
        shipped_clip("dance")
    bad = Clip(name="bad", duration=0.0, fps=30, loop=True, pose=CLIPS["idle"].pose)
    with pytest.raises(UsageError, match="positive"):
        vrma_bytes(bad)
    target = tmp_path / "keep.vrma"
    target.write_bytes(b"old")
    with pytest.raises(UsageError):
        write_vrma(bad, target)
    assert target.read_bytes() == b"old"  # nothing written over


# --- real tools ------------------------------------------------------------------------------------------
def _need_node(*packages: str) -> None:
    if not shutil.which("node") or not all((JS / "node_modules" / p).is_dir() for p in packages):
        pytest.skip("needs node and the packages of tests/js: npm ci --prefix tests/js")


def test_validator_zero_errors_zero_warnings():
    _need_node("gltf-validator")
    files = [str(shipped_clip(n)) for n in sorted(CLIPS)]
    r = subprocess.run(["node", str(JS / "validate.mjs"), *files], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    reports = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(reports) == len(files)
    for rep in reports:
        assert rep["numErrors"] == 0 and rep["numWarnings"] == 0, (rep["file"], rep["messages"])
        assert set(rep["infos"]) <= {"UNSUPPORTED_EXTENSION", "NODE_EMPTY"}, rep  # VRMC_vrm_animation; leaf bones


def _texture(seed: int) -> tuple[np.ndarray, dict]:
    try:
        from chibi_meta.data import dicebear
    except ImportError:  # no [data] extra: a plain face-coloured disc does for animation
        yy, xx = np.mgrid[:128, :128]
        img = np.zeros((128, 128, 4), np.uint8)
        img[(yy - 64) ** 2 + (xx - 64) ** 2 < 56**2] = (240, 200, 170, 255)
        return img, {"hair_color": "brown"}
    return dicebear.render(seed)


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> list[dict]:
    _need_node("playwright-core", "@pixiv/three-vrm", "@pixiv/three-vrm-animation")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    d = tmp_path_factory.mktemp("anim")
    img, attrs = _texture(7)
    (d / "model.vrm").write_bytes(build_avatar(img, attrs, fmt="vrm", texture_size=256))
    files = {"model.vrm": str(d / "model.vrm"), **{f"{n}.vrma": str(shipped_clip(n)) for n in CLIPS}}
    jobs = [
        {"model": "model.vrm", "anim": "idle.vrma", "frames": 16, "shot": 1.0, "yaw": 20, "png": str(d / "idle.png")},
        {"model": "model.vrm", "anim": "walk.vrma", "frames": 16, "shot": 0.25, "yaw": 30, "png": str(d / "walk.png")},
        {"model": "model.vrm", "anim": "walk.vrma", "frames": 4, "shot": 0.25, "yaw": 90, "png": str(d / "side.png")},
    ]
    spec = d / "jobs.json"
    spec.write_text(json.dumps({"files": files, "jobs": jobs}))
    r = subprocess.run(["node", str(JS / "anim.mjs"), str(spec)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(res) == len(jobs), r.stderr[-2000:]
    for job, x in zip(jobs, res, strict=True):
        x["png"] = job["png"]
    return res


def test_three_vrm_plays_without_errors(played):
    for x in played:
        assert x["ok"], x.get("error")
        assert x["errors"] == [], x["errors"]  # no console or page errors
        warnings = [w for w in x["warnings"] if "GL Driver Message" not in w]  # SwiftShader's ReadPixels note
        assert warnings == [], warnings  # e.g. no "VRMLookAtQuaternionProxy is not found", no spec warning
        clip = CLIPS[x["anim"].split(".")[0]]
        assert abs(x["duration"] - clip.duration) < 1e-6
        # a track for every moved bone the model has (the rest are skipped), + the hips position
        assert x["tracks"] == len(set(clip.moved_bones()) & set(x["modelBones"])) + 1
        assert abs(x["animRestHipsY"] - REST["hips"][1]) < 1e-6
        frames = x["frames"]
        for b in x["bones"]:
            assert np.allclose(frames[0]["quat"][b], frames[-1]["quat"][b], atol=1e-4), b  # the loop closes
        for f in frames:
            for q in f["quat"].values():
                assert abs(np.linalg.norm(q) - 1.0) < 1e-4


def test_three_vrm_bones_move_and_feet_stay_down(played):
    for x in played:
        frames = x["frames"][:-1]
        if len(frames) < 8:
            continue
        quat = {b: np.array([f["quat"][b] for f in frames]) for b in x["bones"]}
        pos = {b: np.array([f["pos"][b] for f in frames]) for b in x["bones"]}
        mesh_min = np.array([f["meshMinY"] for f in frames])
        assert mesh_min.min() > -0.02 and mesh_min.max() < 0.02, mesh_min  # soles on the floor, none below
        for side in ("left", "right"):
            assert pos[f"{side}Foot"][:, 1].min() > -0.005
            assert np.all(pos["hips"][:, 1] > pos[f"{side}Foot"][:, 1] + 0.1)  # hips above the feet
            hand, ua = pos[f"{side}Hand"], pos[f"{side}UpperArm"]
            assert np.all(np.abs(hand[:, 0]) > np.abs(ua[:, 0]))  # arms hang outward, clear of the body
            down = (ua[:, 1] - hand[:, 1]) / np.linalg.norm(hand - ua, axis=1)
            assert np.all((down > 0.75) & (down < 0.995)), down  # 49-84 deg below horizontal (swing, elbow)
        mid = (pos["leftFoot"][:, [0, 2]] + pos["rightFoot"][:, [0, 2]]) / 2
        assert np.all(np.linalg.norm(pos["hips"][:, [0, 2]] - mid, axis=1) < 0.06)  # hips over the feet
        if x["anim"] == "walk.vrma":
            leg = [_angle(q) for q in quat["leftUpperLeg"]]
            assert max(leg) > 15.0  # the normalized leg really rotates
            lz = pos["leftFoot"][:, 2] - pos["hips"][:, 2]
            rz = pos["rightFoot"][:, 2] - pos["hips"][:, 2]
            assert lz.max() - lz.min() > 0.1 and np.corrcoef(lz, rz)[0, 1] < -0.8  # strides, alternating
        else:
            chest = [_angle(q) for q in quat["chest"]]
            assert max(chest) - min(chest) > 0.5  # breathing
            assert np.ptp(pos["leftFoot"], axis=0).max() < 0.01  # idle feet stay put


def test_three_vrm_screenshots(played):
    from PIL import Image

    for x in played:
        img = np.asarray(Image.open(x["png"]).convert("RGB")).astype(int)
        bg = img[2, 2]
        fg = np.abs(img - bg).sum(axis=2) > 40
        assert 0.05 < fg.mean() < 0.7, (x["png"], fg.mean())  # the avatar is in the picture
        rows = np.nonzero(fg.any(axis=1))[0]
        assert rows.min() > 2  # the head is not cut off at the top
