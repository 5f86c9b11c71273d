"""Exported files checked by the real tools: Khronos glTF-Validator, three.js and three-vrm in headless Chromium.

The node helpers live in tests/js (``npm ci --prefix tests/js``); Chromium is /usr/bin/chromium (or
$CHROMIUM). Each tool is started once for the whole module, on a batch of files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chibi_meta.avatar import FORMATS, TEXTURE_FORMATS, build_avatar, load_base_mesh
from chibi_meta.avatar.basemesh import REQUIRED_BONES

dicebear = pytest.importorskip("chibi_meta.data.dicebear")
JS = Path(__file__).parent / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _need_node() -> None:
    if not shutil.which("node") or not (JS / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("needs node and the packages of tests/js: npm ci --prefix tests/js")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """name -> path of every file kind we promise: both formats x all texture formats, all sizes, an artist base."""
    from test_avatar_basemesh import make_artist_glb

    d = tmp_path_factory.mktemp("avatars")
    out: dict[str, Path] = {}
    for i, (fmt, tf) in enumerate((f, t) for f in FORMATS for t in TEXTURE_FORMATS):
        img, attrs = dicebear.render(100 + i)
        prov = {"seed": 100 + i, "attributes": attrs, "model_id": "dicebear-adventurer", "attribution": "CC BY 4.0"}
        name = f"{tf}.{fmt}"
        (d / name).write_bytes(build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf, provenance=prov))
        out[name] = d / name
    img, attrs = dicebear.render(42)
    (d / "big.glb").write_bytes(build_avatar(img, attrs, fmt="glb", texture_size=1024, texture_format="png"))
    (d / "mid.vrm").write_bytes(build_avatar(img, attrs, fmt="vrm", texture_size=512, texture_format="webp"))
    base = load_base_mesh(make_artist_glb(d / "artist-base.glb"))
    (d / "artist.vrm").write_bytes(build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base))
    (d / "artist.glb").write_bytes(
        build_avatar(img, attrs, fmt="glb", texture_size=512, texture_format="jpeg", base=base)
    )
    for n in ("big.glb", "mid.vrm", "artist.vrm", "artist.glb"):
        out[n] = d / n
    return out


@pytest.fixture(scope="module")
def validator_reports(exported) -> dict[str, dict]:
    _need_node()
    lst = next(iter(exported.values())).parent / "files.txt"
    lst.write_text("\n".join(str(p) for p in exported.values()))
    r = subprocess.run(
        ["node", str(JS / "validate.mjs"), f"@{lst}"], capture_output=True, text=True, timeout=300, check=True
    )
    reports = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return {Path(x["file"]).name: x for x in reports}


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
    jobs.append({"file": "png.vrm", "vrm": True, "expr": "blink", "shot": str(shots / "blink.png")})
    jobs.append({"file": "png.vrm", "vrm": True, "expr": "happy", "shot": str(shots / "happy.png")})
    jobs.append({"file": "png.vrm", "vrm": True, "shot": str(shots / "front.png")})
    spec = shots / "jobs.json"
    spec.write_text(json.dumps({"files_dir": str(next(iter(exported.values())).parent), "jobs": jobs}))
    r = subprocess.run(["node", str(JS / "render.mjs"), str(spec)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    for job, x in zip(jobs, res, strict=True):
        x["shot"] = job["shot"]
    return res


def test_three_loads_every_file(browser_results):
    for x in browser_results:
        assert x["ok"], x
        assert x["console"] == [], x  # no WebGL / loader errors
        assert x["meshes"] == 1 and x["skinned"] == 1, x
        assert {"blinkLeft", "blinkRight", "happy"} <= set(x["morphTargets"]), x
        (mn, mx) = x["bbox"]
        assert abs(mn[1]) < 0.01 and 0.9 < mx[1] < 1.1  # feet on the floor, about 1 m tall


def test_three_vrm_reports_bones_and_expressions(browser_results):
    vrms = [x for x in browser_results if x["file"].endswith(".vrm")]
    assert len(vrms) >= 5
    for x in vrms:
        assert set(REQUIRED_BONES) <= set(x["bones"]), x
        assert {"chest", "neck"} <= set(x["bones"])
        assert {"blink", "happy"} <= set(x["expressions"]), x
        assert x["metaVersion"] == "1"
        assert x["thumbnail"] == [128, 128]  # meta.thumbnailImage decodes


def _img(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_screenshots_show_a_chibi_with_a_face(browser_results):
    by = {(x["file"], x.get("expr")): x["shot"] for x in browser_results}
    front = _img(by[("png.vrm", None)])
    bg = front[2, 2]
    h, w, _ = front.shape
    fg = np.abs(front - bg).sum(-1) > 30
    assert 0.15 < fg.mean() < 0.7  # a figure, not an empty or a garbage frame
    rows = np.nonzero(fg.any(1))[0]
    head = front[rows[0] : rows[0] + (rows[-1] - rows[0]) // 2, w // 4 : 3 * w // 4]
    # the face: dark outlines/pupils and near-white eye whites on the front of the head
    lum = head.sum(-1) / 3
    assert (lum < 60).mean() > 0.005 and (lum > 225).mean() > 0.003
    # expressions change the face and nothing else
    for e in ("blink", "happy"):
        diff = np.abs(_img(by[("png.vrm", e)]) - front).sum(-1) > 30
        assert diff.mean() > 0.002, e
        ys = np.nonzero(diff.any(1))[0]
        assert ys.max() < rows[0] + (rows[-1] - rows[0]) * 0.55, e  # only the head changes
