"""Exported files checked by the real tools: Khronos glTF-Validator, three.js and three-vrm in headless Chromium.

Every outfit x format x texture format, the other texture sizes and an artist base: glTF-Validator
0 errors 0 warnings; three.js loads each with its two skinned meshes and no console error; three-vrm
finds every humanoid bone on the node of the Mixamo / RPM name (names.HUMANOID).

The node helpers live in tests/js (``npm ci --prefix tests/js``); Chromium is /usr/bin/chromium (or
$CHROMIUM). Each tool is started once for the whole module, on a batch of files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from chibi_meta.avatar import FORMATS, TEXTURE_FORMATS, build_avatar, load_base_mesh, names
from chibi_meta.avatar.body import OUTFITS

dicebear = pytest.importorskip("chibi_meta.data.dicebear")
JS = Path(__file__).parent / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def validator_available() -> bool:
    return bool(shutil.which("node")) and (JS / "node_modules" / "gltf-validator").is_dir()


def _need_node() -> None:
    if not validator_available():
        pytest.skip("needs node and the packages of tests/js: npm ci --prefix tests/js")


@contextlib.contextmanager
def run_validator(paths: Sequence[Path]) -> Iterator[Callable[[], list[dict]]]:
    """Start the glTF-Validator on ``paths`` in the background (one node process for all of them);
    the yielded function waits for it and returns one report per file."""
    _need_node()
    lst = Path(paths[0]).parent / "validate-files.txt"
    lst.write_text("\n".join(str(p) for p in paths))
    p = subprocess.Popen(["node", str(JS / "validate.mjs"), f"@{lst}"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip

    def reports() -> list[dict]:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        reps = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert [r["file"] for r in reps] == [str(x) for x in paths]
        return reps

    try:
        yield reports
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    jlen = int.from_bytes(data[12:16], "little")
    return json.loads(data[20 : 20 + jlen])


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """name -> path of every file kind we promise: each outfit x format x texture format, the other
    texture sizes, and an artist base (glb and vrm)."""
    from test_avatar_basemesh import make_artist_glb

    d = tmp_path_factory.mktemp("avatars")
    out: dict[str, Path] = {}
    kinds = [(o, f, t) for o in OUTFITS for f in FORMATS for t in TEXTURE_FORMATS]
    for i, (outfit, fmt, tf) in enumerate(kinds):
        img, attrs = dicebear.render(100 + i)
        attrs = {**attrs, "outfit": outfit}
        prov = {"seed": 100 + i, "attributes": attrs, "model_id": "dicebear-adventurer", "attribution": "CC BY 4.0"}
        name = f"{outfit}-{tf}.{fmt}"
        (d / name).write_bytes(build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf, provenance=prov))
        out[name] = d / name
    # open eyes (their whites) and a closed mouth, for the front / back screenshots
    for outfit, fmt in (("dress", "vrm"), ("tshirt_shorts", "glb")):
        img, attrs = dicebear.render(5, {"eyes": "eyes01", "mouth": "mouth09", "glasses": "none"})
        (d / f"face.{fmt}").write_bytes(build_avatar(img, {**attrs, "outfit": outfit}, fmt=fmt, texture_size=512))
        out[f"face.{fmt}"] = d / f"face.{fmt}"
    img, attrs = dicebear.render(42)
    (d / "big.glb").write_bytes(build_avatar(img, attrs, fmt="glb", texture_size=1024, texture_format="png"))
    (d / "mid.vrm").write_bytes(build_avatar(img, attrs, fmt="vrm", texture_size=512, texture_format="webp"))
    base = load_base_mesh(make_artist_glb(d / "artist-base.glb"))
    (d / "artist.vrm").write_bytes(build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base))
    (d / "artist.glb").write_bytes(
        build_avatar(img, attrs, fmt="glb", texture_size=512, texture_format="jpeg", base=base)
    )
    for n in ("big.glb", "mid.vrm", "artist-base.glb", "artist.vrm", "artist.glb"):
        out[n] = d / n
    return out


@pytest.fixture(scope="module")
def validator_reports(exported) -> dict[str, dict]:
    with run_validator(list(exported.values())) as reports:
        return {Path(x["file"]).name: x for x in reports()}


def test_every_outfit_format_and_texture_format_is_exported(exported):
    for o in OUTFITS:
        for f in FORMATS:
            for t in TEXTURE_FORMATS:
                doc = glb_json(exported[f"{o}-{t}.{f}"])
                assert doc["asset"]["extras"]["chibi_meta"]["attributes"]["outfit"] == o
                assert ("VRMC_vrm" in doc.get("extensions", {})) == (f == "vrm")


def test_validator_zero_errors_zero_warnings(exported, validator_reports):
    assert set(validator_reports) == set(exported)
    for name, rep in validator_reports.items():
        assert rep["numErrors"] == 0 and rep["numWarnings"] == 0, (name, rep["messages"])


@pytest.fixture(scope="module")
def browser_results(exported, tmp_path_factory) -> list[dict]:
    _need_node()
    if not (JS / "node_modules" / "playwright-core").is_dir() or not Path(CHROMIUM).exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} and playwright-core (npm ci --prefix tests/js)")
    shots = tmp_path_factory.mktemp("shots")
    jobs = []
    for name in exported:
        if name == "artist-base.glb":
            continue
        jobs.append({"file": name, "vrm": name.endswith(".vrm"), "yaw": 20, "shot": str(shots / f"{name}.png")})
    for yaw, view in ((0, "front"), (180, "back")):
        for name in ("face.vrm", "face.glb"):
            jobs.append({"file": name, "vrm": name.endswith(".vrm"), "yaw": yaw, "view": view,
                         "shot": str(shots / f"{view}-{name}.png")})  # fmt: skip
    spec = shots / "jobs.json"
    spec.write_text(json.dumps({"files_dir": str(next(iter(exported.values())).parent), "jobs": jobs}))
    r = subprocess.run(["node", str(JS / "render.mjs"), str(spec)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(res) == len(jobs)
    for job, x in zip(jobs, res, strict=True):
        x["shot"], x["view"] = job["shot"], job.get("view")
    return res


def _file_bounds(doc: dict) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of every mesh's POSITION accessor (the rest pose is the bind pose)."""
    acc = [doc["accessors"][p["attributes"]["POSITION"]] for m in doc["meshes"] for p in m["primitives"]]
    return np.min([a["min"] for a in acc], 0), np.max([a["max"] for a in acc], 0)


def test_three_loads_every_file(exported, browser_results):
    for x in browser_results:
        assert x["ok"], x
        assert x["console"] == [], x  # no WebGL / loader errors
        doc = glb_json(exported[x["file"]])
        assert x["meshes"] == 2 and x["skinned"] == 2, x  # the body and the head, both skinned
        want_targets = {t for m in doc["meshes"] for t in (m.get("extras") or {}).get("targetNames", [])}
        assert set(x["morphTargets"]) == want_targets, x["file"]
        # the root TalkingHead and RPM clients look for: the scene group is "Armature"
        assert x["sceneName"] == "Armature" and x["armature"], x["file"]
        lo, hi = _file_bounds(doc)
        (mn, mx) = np.array(x["bbox"])
        assert np.abs(mn - lo).max() < 0.002 and np.abs(mx - hi).max() < 0.002, (x["file"], x["bbox"], lo, hi)
        assert abs(mn[1]) < 0.002 and 0.7 < mx[1] < 1.0, x["bbox"]  # feet on the floor, a chibi under 1 m


def test_three_vrm_finds_every_humanoid_bone_on_its_node(exported, browser_results):
    vrms = [x for x in browser_results if x["file"].endswith(".vrm")]
    assert len(vrms) >= 10
    for x in vrms:
        assert set(x["bones"]) == set(names.HUMANOID), (x["file"], set(names.HUMANOID) ^ set(x["bones"]))
        assert set(names.VRM_REQUIRED) <= set(x["bones"])
        for bone, node in x["boneNodes"].items():
            assert node == names.HUMANOID[bone], (x["file"], bone, node)
        doc = glb_json(exported[x["file"]])
        assert set(x["expressions"]) == set(doc["extensions"]["VRMC_vrm"]["expressions"]["preset"]), x["file"]
        assert x["metaVersion"] == "1"
        assert x["thumbnail"] == [128, 128]  # meta.thumbnailImage decodes


def _img(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_screenshots_show_a_chibi_with_its_face_in_front(browser_results):
    by = {(x["file"], x["view"]): x["shot"] for x in browser_results if x["view"]}
    for name in ("face.vrm", "face.glb"):
        front, back = _img(by[(name, "front")]), _img(by[(name, "back")])
        bg = front[2, 2]
        fg = np.abs(front - bg).sum(-1) > 30
        assert 0.08 < fg.mean() < 0.7, (name, fg.mean())  # a figure, not an empty or a garbage frame
        rows = np.nonzero(fg.any(1))[0]
        cols = np.nonzero(fg.any(0))[0]
        assert rows[-1] - rows[0] > 0.5 * front.shape[0], name  # standing, most of the frame high
        # the head (the top half of the figure): the drawing's dark outlines and eye whites in
        # front, none of the eye whites from behind (the back shows hair and skin)
        top = slice(rows[0], rows[0] + (rows[-1] - rows[0]) // 2)
        mid = slice(cols[0], cols[-1] + 1)
        head_f, head_b = front[top, mid], back[top, mid]
        lum_f, lum_b = head_f.sum(-1) / 3, head_b.sum(-1) / 3
        fg_f, fg_b = np.abs(head_f - bg).sum(-1) > 30, np.abs(head_b - bg).sum(-1) > 30
        assert (lum_f < 60).mean() > 0.005, name
        white_f, white_b = ((lum_f > 225) & fg_f).mean(), ((lum_b > 225) & fg_b).mean()
        assert white_f > 0.003 and white_b < 0.3 * white_f, (name, white_f, white_b)
        # front and back silhouettes: the same head, mirrored (one closed surface, no decal)
        fgb = np.abs(back - bg).sum(-1) > 30
        iou = (fg & fgb[:, ::-1]).sum() / (fg | fgb[:, ::-1]).sum()
        assert iou > 0.8, (name, iou)
