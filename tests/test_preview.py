"""The artist preview page (chibi_meta/preview) served by a real bridge server over loopback: its
HTTP routes and headers, path traversal, `--no-preview`, and the page itself driven in real headless
Chromium (tests/js/preview.mjs): form from `hello`, GLB and VRM generation, the canvas, download,
the expression and viseme sliders (pixels of the face region), Say (viseme weights sampled from the
page), the idle clip and blinks on a VRM, the morph-target choice, errors and the token."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bridge_support import JS_DIR, ServerThread, raw_connect, recv_json, run, small_model_path

from chibi_meta.avatar.names import ARKIT, MORPH_SETS, OCULUS_VISEMES, RPM_EXTRA
from chibi_meta.avatar.pack import PACKAGING_ATTRIBUTES
from chibi_meta.client import request
from chibi_meta.preview import files, lookup
from chibi_meta.preview.static import STATIC_DIR

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "preview-token-42"
CSP_PARTS = ("default-src 'self'", "connect-src 'self' ws: wss:", "img-src 'self' blob: data:", "style-src 'self'",
             "frame-ancestors 'none'", "object-src 'none'")


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def srv():
    s = ServerThread(max_wait_ms=5)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def token_srv():
    s = ServerThread(tokens=[TOKEN], max_wait_ms=5)
    yield s
    s.stop()


# -- HTTP -------------------------------------------------------------------------------------------


def test_routes_content_types_and_headers(srv) -> None:
    status, headers, _ = _get(srv.port, "/preview")
    assert status == 301 and headers["location"] == "/preview/"
    status, headers, body = _get(srv.port, "/preview/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (STATIC_DIR / "index.html").read_bytes()
    csp = headers["content-security-policy"]
    for part in CSP_PARTS:
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # the only inline script is the import map, allowed by its hash (computed here independently)
    inline = re.findall(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", body, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0]).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    assert b"style=" not in body and b"<style" not in body and b"http://" not in body and b"https://" not in body
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-cache"
    expected = {"preview.js": "text/javascript", "preview.css": "text/css", "vendor/three/LICENSE": "text/plain",
                "vendor/three-vrm/LICENSE": "text/plain", "vendor/three/build/three.module.min.js": "text/javascript",
                "speech.js": "text/javascript", "vendor/three-vrm-animation/three-vrm-animation.module.min.js":
                "text/javascript", "animations/idle.vrma": "model/gltf-binary"}
    for name, ctype in expected.items():
        status, headers, body = _get(srv.port, f"/preview/{name}?v=1")
        want = ctype if ctype.startswith("model/") else f"{ctype}; charset=utf-8"
        assert status == 200 and headers["content-type"] == want, name
        assert body == (STATIC_DIR / name).read_bytes()
        assert headers["x-content-type-options"] == "nosniff" and "content-security-policy" in headers
    status, headers, body = _get(srv.port, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_every_listed_file_is_served_and_nothing_else(srv) -> None:
    on_disk = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file())
    assert sorted(files()) == on_disk  # every file of static/ is a servable type
    for name in files():
        status, _, body = _get(srv.port, f"/preview/{name}")
        assert status == 200 and body == (STATIC_DIR / name).read_bytes(), name
    assert sum((STATIC_DIR / n).stat().st_size for n in files()) < 1.5 * 2**20


def test_idle_clip_is_the_shipped_one() -> None:
    # the page serves its own copy (package data); it must stay the clip that assets/ ships
    shipped = (ROOT / "assets" / "animations" / "idle.vrma").read_bytes()
    assert (STATIC_DIR / "animations" / "idle.vrma").read_bytes() == shipped


def test_speech_table_in_node() -> None:
    # speech.js is a plain module: text -> timed Oculus visemes, at a fixed rate
    script = (
        "const m = await import(process.argv[1]);"
        "const seq = m.textToVisemes('Hello, nice to meet you! The quick brown fox 42.');"
        "console.log(JSON.stringify({seq, visemes: m.VISEMES, timing: m.TIMING, map: m.VISEME_TO_VRM,"
        " empty: m.textToVisemes('?!'), word: m.wordToVisemes('thank')}));"
    )
    p = subprocess.run(["node", "--input-type=module", "-e", script, (STATIC_DIR / "speech.js").as_uri()],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["visemes"] == [v.removeprefix("viseme_") for v in OCULUS_VISEMES]
    seq = out["seq"]
    assert {s["viseme"] for s in seq} <= set(out["visemes"]) and len({s["viseme"] for s in seq}) >= 10
    assert seq[0]["start"] == 0
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in zip(seq, seq[1:], strict=False))
    t = out["timing"]
    for s in seq:  # every viseme lasts what the fixed rate gives it
        d = s["end"] - s["start"]
        if s["viseme"] in ("aa", "E", "I", "O", "U"):
            assert d == pytest.approx(t["vowel"])
        elif s["viseme"] != "sil":
            assert d == pytest.approx(t["consonant"])
    assert out["word"] == ["TH", "aa", "nn", "kk"]
    assert out["empty"][0]["viseme"] == "sil" and all(s["viseme"] == "sil" for s in out["empty"])
    vrm_mouth = {"aa", "ih", "ou", "ee", "oh"}
    assert set(out["map"]) == set(out["visemes"])
    assert out["map"]["sil"] is None and out["map"]["PP"] is None
    assert {m[0] for m in out["map"].values() if m} == vrm_mouth


TRAVERSALS = [
    "/preview/../chibi_meta/cli.py", "/preview/%2e%2e/x", "/preview/vendor/../../x",
    "/preview/%2E%2E/%2E%2E/pyproject.toml", "/preview/..%2fstatic.py", "/preview/vendor/three/../../static.py",
    "/preview/vendor\\..\\..\\static.py",
    "/preview//etc/passwd", "/preview/./index.html", "/preview/static.py", "/preview/__init__.py",
    "/preview/nope.js", "/preview/vendor/", "/preview/vendor/three/build", "/preview/index.html%00.js",
    "/preview/INDEX.HTML", "/preview/vendor/three/LICENSE/",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_and_unknown_files_are_404(srv, path: str) -> None:
    status, headers, body = _get(srv.port, path)
    assert status == 404, path
    assert body == b"not found\n" and headers["x-content-type-options"] == "nosniff"


def test_lookup_whitelist() -> None:
    assert lookup("") == ((STATIC_DIR / "index.html").read_bytes(), "text/html; charset=utf-8")
    assert lookup("preview.js?v=2#x") is not None and lookup("index.html#top") is not None
    for bad in ["..", "../static.py", "/etc/passwd", "/index.html", "C:\\x", "vendor\\three\\LICENSE",
                "vendor/three/../three/LICENSE", "%2e%2e/x", "index%2ehtml", "vendor//three/LICENSE", ".",
                "./index.html", "index.html/", "static.py", "__init__.py", "nope", "index.html\x00"]:
        assert lookup(bad) is None, bad


def test_no_preview_is_404_and_the_bridge_still_works() -> None:
    s = ServerThread(preview=False)
    try:
        for path in ("/preview", "/preview/", "/preview/preview.js"):
            assert _get(s.port, path)[0] == 404, path
        assert _get(s.port, "/healthz")[0] == 200

        async def main() -> dict:
            ws = await raw_connect(s.url)
            await ws.send(json.dumps({"type": "hello", "protocol": 1}))
            msg = await recv_json(ws)
            await ws.close()
            return msg

        assert run(main())["type"] == "hello"
    finally:
        s.stop()


def test_serve_command_no_preview_flag() -> None:
    args = [sys.executable, "-m", "chibi_meta", "serve", "--port", "0", "--model", str(small_model_path()),
            "--no-warmup", "--torch-threads", "1", "--no-preview"]
    p = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        port, lines = None, []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("chibi-meta serve: listening on"):
                port = int(line.strip().rsplit(":", 1)[-1])
                break
        assert port, "".join(lines)
        assert _get(port, "/preview/")[0] == 404 and _get(port, "/preview")[0] == 404
        assert _get(port, "/healthz")[0] == 200
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "/preview/" not in "".join(lines) + err  # no "preview page on" line
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# -- the page in Chromium ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(srv, token_srv, tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("preview")
    spec = {"open_url": f"http://127.0.0.1:{srv.port}/preview/", "token_url": f"http://127.0.0.1:{token_srv.port}/preview/",
            "token": TOKEN, "shots": str(d)}
    (d / "spec.json").write_text(json.dumps(spec))
    p = subprocess.run(["node", str(JS_DIR / "preview.mjs"), str(d / "spec.json")], cwd=JS_DIR,
                       capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert "exception" not in report, report["exception"]
    return report


def _clean(seen: dict) -> None:
    for key in ("console", "warnings", "pageErrors", "csp", "badResponses", "failedRequests"):
        assert seen[key] == [], (key, seen[key])


def test_page_loads_clean_and_lists_attributes(browser, srv) -> None:
    assert browser["ready"] == "ready"
    gen = srv.engine.gen
    form = browser["form"]
    # one dropdown per attribute of hello: the generator's and the packer's (outfit)
    assert form["attributes"] == {**{a.name: ["random", *a.values] for a in gen.schema.attributes},
                                  **{k: ["random", *v] for k, v in PACKAGING_ATTRIBUTES.items()}}
    assert "outfit" in form["attributes"]
    assert form["morphSets"] == [[name, True] for name in MORPH_SETS]  # default: all
    assert form["formats"] == ["glb", "vrm"] and form["textureSizes"] == ["256", "512", "1024"]
    assert form["attribution"] == gen.attribution and form["conn"].startswith("connected")
    assert browser["background"]["nonBackground"] == 0  # the empty stage is all background
    assert all(abs(a - b) <= 3 for a, b in zip(browser["background"]["rgb"], (0xEE, 0xF0, 0xF5), strict=True))
    _clean(browser["openSeen"])
    _clean(browser["tokenSeen"])


def test_generate_glb_shows_the_model(browser, srv) -> None:
    glb = browser["glb"]
    assert glb["state"] == "loaded" and glb["status"].startswith("loaded chibi-42.glb"), glb
    assert "SHA-256 verified" in glb["status"]
    assert glb["seed"] == "42" and glb["attrs"]["hair_color"] == "pink"
    assert set(glb["attrs"]) >= {a.name for a in srv.engine.gen.schema.attributes}
    w, h = browser["background"]["size"]
    assert glb["nonBackground"] > 0.02 * w * h, glb["nonBackground"]  # the avatar is on the canvas
    assert glb["download"]["name"] == "chibi-42.glb" and glb["download"]["href"] == "blob:"
    assert not glb["download"]["hidden"] and glb["faceShown"]
    assert glb["attrs"]["morph_targets"] == "vrm, oculus, arkit"
    assert glb["attrs"]["outfit"] in PACKAGING_ATTRIBUTES["outfit"]
    info = glb["info"]  # a GLB: its sliders are morph targets by name, no clip (no humanoid)
    assert info["sliders"] == {"expr": list(MORPH_SETS["vrm"]), "viseme": list(OCULUS_VISEMES),
                               "other": [*ARKIT, *RPM_EXTRA]}
    assert info["head"] == "AvatarHead" and info["clip"] is None and info["blink"] == ["m:blink"]
    assert info["mouth"] == "the Oculus viseme morph targets"
    dl = glb["downloaded"]
    assert dl["name"] == "chibi-42.glb" and dl["magic"] == "glTF"
    same = request(srv.url, seed=42, attributes={"hair_color": "pink"}, format="glb", texture_size=256)
    assert dl["sha256"] == same.sha256  # the downloaded file is exactly what the protocol serves


def test_generate_vrm_with_expressions(browser) -> None:
    vrm = browser["vrm"]
    assert vrm["state"] == "loaded" and vrm["status"].startswith("loaded chibi-7.vrm"), vrm
    assert "idle clip not loaded" not in vrm["status"]
    assert vrm["seed"] == "7" and vrm["download"]["name"] == "chibi-7.vrm" and vrm["faceShown"]
    assert vrm["attrs"]["outfit"] == "dress"  # the outfit dropdown reaches the server
    w, h = browser["background"]["size"]
    assert vrm["nonBackground"] > 0.02 * w * h
    info = vrm["info"]  # a VRM: expressions through expressionManager, visemes and the rest as morph targets
    assert info["sliders"] == {"expr": list(MORPH_SETS["vrm"]), "viseme": list(OCULUS_VISEMES),
                               "other": [*ARKIT, *RPM_EXTRA]}
    assert info["mouth"] == "the VRM expressions aa, ih, ou, ee, oh" and info["blink"] == ["x:blink"]


def _check_sliders(px: dict, names: list[str]) -> None:
    assert list(px["changed"]) == names
    w, h = px["size"]
    r = px["rect"]
    assert r["width"] > 0.3 * w and r["height"] > 0.5 * h  # the face view: the head fills the canvas
    for name, n in px["changed"].items():  # each one at 1 changes the face region
        assert n > 200, (name, n)
    assert px["allAtOnce"]["inside"] > 200 and px["allAtOnce"]["outside"] == 0, px["allAtOnce"]  # and only it
    assert px["restored"] == 0  # Reset gives back the neutral face, pixel for pixel
    assert px["nonZeroAfterReset"] == [] and px["slidersAtZero"]


def test_every_expression_slider_changes_the_face_and_reset_restores_it(browser) -> None:
    _check_sliders(browser["vrm"]["exprPixels"], list(MORPH_SETS["vrm"]))  # VRM: expressionManager
    _check_sliders(browser["glb"]["exprPixels"], list(MORPH_SETS["vrm"]))  # GLB: morph targets by name


def test_every_viseme_slider_drives_its_morph_target(browser) -> None:
    w = browser["glb"]["visemeWiring"]  # all at once, each at its own value
    assert list(w["set"]) == list(OCULUS_VISEMES) and len(set(w["set"].values())) == len(OCULUS_VISEMES)
    for name, value in w["morphs"].items():  # its own target by name, and nothing else
        assert value == pytest.approx(w["set"].get(name, 0.0), abs=1e-6), name
    assert w["zeroAfterReset"]


def test_say_drives_the_visemes(browser) -> None:
    glb = browser["glb"]["say"]  # GLB: the Oculus viseme morph targets
    assert glb["sawSpeaking"] and not glb["speakingAtEnd"] and glb["sayStatus"].startswith("said it"), glb
    # (software rendering draws a few frames a second: each frame samples the viseme of its moment)
    reached = [n for n in OCULUS_VISEMES[1:] if glb["maxMorph"].get(n, 0) >= 0.9]
    assert reached, (glb["frames"], glb["maxMorph"])
    assert {n for n, v in glb["maxMorph"].items() if v > 0} <= set(OCULUS_VISEMES)  # nothing else moved
    assert all(v == 0 for v in glb["endMorph"].values())  # the mouth closes at the end (decay)
    assert 2.0 < glb["seconds"] < 8.0, glb["seconds"]  # the sentence takes 2.8 s at the fixed rate
    vrm = browser["vrm"]["say"]  # VRM: the five mouth expressions, with blinks and the idle clip
    assert vrm["sawSpeaking"] and not vrm["speakingAtEnd"], vrm
    mouth = ("aa", "ih", "ou", "ee", "oh")
    assert [n for n in mouth if vrm["maxExpr"].get(n, 0) >= 0.9], (vrm["frames"], vrm["maxExpr"])
    assert all(vrm["endExpr"][n] == 0 for n in mouth)
    assert vrm["blinks"] >= 1 and vrm["maxExpr"]["blink"] == 1  # a random blink, shut for at least a frame
    others = set(MORPH_SETS["vrm"]) - {*mouth, "blink"}
    assert all(vrm["maxExpr"].get(n, 0) == 0 for n in others), vrm["maxExpr"]
    assert all(v == 0 for v in vrm["maxMorph"].values())  # Say drives expressions on a VRM, not raw targets


def test_idle_clip_plays_on_the_vrm(browser) -> None:
    vrm = browser["vrm"]
    clip = vrm["info"]["clip"]
    assert clip and clip["duration"] == pytest.approx(4.0) and clip["tracks"] > 10, clip
    say = vrm["say"]
    assert say["seconds"] > 2 and say["clipSeconds"] > 0.5, say  # the mixer runs (a frame counts 0.25 s at most)
    assert max(say["boneDeg"].values()) > 1.0, say["boneDeg"]  # normalized bones turn
    assert say["boneDeg"]["head"] > 1.0 and say["boneDeg"]["spine"] > 0.2, say["boneDeg"]
    assert browser["glb"]["info"]["clip"] is None  # no humanoid, no clip


def test_morph_targets_choice_reaches_the_server(browser, srv) -> None:
    none = browser["none"]  # every set unchecked: morph_targets ["none"]
    assert none["state"] == "loaded" and none["attrs"]["morph_targets"] == "none", none
    assert none["targetNames"] == [] and none["primitivesWithTargets"] == 0
    assert none["info"]["sliders"] == {"expr": [], "viseme": [], "other": []} and none["sayDisabled"]
    same = request(srv.url, seed=5, format="glb", texture_size=256, morph_targets=["none"])
    assert none["sha256"] == same.sha256


def test_server_errors_are_shown_and_the_page_recovers(browser) -> None:
    bad = browser["badSeed"]
    assert bad["state"] == "error" and bad["status"].startswith("invalid_value:"), bad
    assert bad["generateEnabled"]
    again = browser["afterError"]
    assert again["state"] == "loaded" and "cached" in again["status"] and again["seed"] == "42"


def test_token_in_hello(browser) -> None:
    for key in ("noToken", "wrongToken"):
        assert browser[key]["state"] == "error" and browser[key]["status"].startswith("unauthorized:"), browser[key]
    assert browser["rightToken"]["state"] == "ready", browser["rightToken"]
    assert browser["tokenGlb"]["state"] == "loaded" and browser["tokenGlb"]["seed"] == "3"


def test_vendored_licences_are_shipped() -> None:
    for lib in ("three", "three-vrm", "three-vrm-animation"):
        text = (STATIC_DIR / "vendor" / lib / "LICENSE").read_text("utf-8")
        assert "MIT" in text or "Permission is hereby granted" in text
    assert Path(STATIC_DIR / "vendor" / "README.txt").read_text("utf-8").count("MIT") >= 3
    js = STATIC_DIR / "vendor" / "three-vrm-animation" / "three-vrm-animation.module.min.js"
    assert js.read_bytes() == (ROOT / "tests/js/node_modules/@pixiv/three-vrm-animation/lib" / js.name).read_bytes()
