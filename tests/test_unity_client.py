"""The Unity package's runtime client (plugin_unity_bridge/Runtime, plain C#) compiled with Mono's
`mcs` and run with `mono` against a real bridge server on a loopback port: hello, GLB/VRM/PNG,
requests in flight at once, errors, auth, cancel, the file cache. The Unity-only glue
(Runtime/Unity, Editor, Samples~) is compiled and run against facades of the real APIs in
tests/test_unity_glue.py."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bridge_support import ServerThread

from chibi_meta.client import request

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "plugin_unity_bridge"
CHECKS_SRC = ROOT / "tests" / "unity" / "BridgeClientChecks.cs"
TOKEN = "unity-token-456"
INSTALL = "apt-get install -y mono-devel"

CHECKS = ["json", "wrong_token_refused_401", "token_in_hello", "unreachable_server", "hello", "glb", "vrm", "png",
          "morph_targets",
          "in_flight_many", "error_unknown_attribute", "error_invalid_value", "duplicate_id_refused_locally", "cancel",
          "cancel_by_token", "file_cache", "stats", "close"]


def runtime_sources() -> list[Path]:
    """The .cs files of the ChibiMeta.Bridge assembly, chosen as Unity does: everything under Runtime/
    except folders that hold their own .asmdef (Runtime/Unity, compiled only inside Unity)."""
    runtime = PKG / "Runtime"
    own = [p.parent for p in runtime.rglob("*.asmdef") if p.parent != runtime]
    return sorted(p for p in runtime.rglob("*.cs") if not any(d in p.parents for d in own))


@pytest.fixture(scope="module")
def mono_tools() -> None:
    missing = [t for t in ("mcs", "mono") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed; install Mono with: {INSTALL}")


@pytest.fixture(scope="module")
def built(mono_tools, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unity-client")
    lib = out / "ChibiMeta.Bridge.dll"
    # the runtime must compile with no UnityEngine, documented (CS1591) and warning-free
    _mcs("-target:library", f"-out:{lib}", f"-doc:{out / 'ChibiMeta.Bridge.xml'}", "-warnaserror",
         *map(str, runtime_sources()))
    _mcs(f"-out:{out / 'checks.exe'}", f"-r:{lib}", "-r:System.Core.dll", str(CHECKS_SRC))
    return out


def _mcs(*args: str) -> None:
    proc = subprocess.run(["mcs", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def srv():
    # one texture per forward pass, no batching wait: queued requests stay queued long enough to cancel
    s = ServerThread(tokens=[TOKEN], max_batch=1, max_wait_ms=0)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def checks(built, srv, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("unity-run")
    proc = subprocess.run(["mono", "--debug", str(built / "checks.exe"), srv.url, TOKEN, str(work / "cache"),
                           str(work / "out")], capture_output=True, text=True, timeout=180)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            results[rec["check"]] = rec
    results["_proc"] = proc
    results["_out"] = work / "out"
    return results


def test_runtime_compiles_without_unity(built) -> None:
    assert (built / "ChibiMeta.Bridge.dll").exists()
    for src in runtime_sources():
        used = re.findall(r"^\s*using\s+(?:static\s+)?([\w.]+)\s*;", src.read_text("utf-8"), re.MULTILINE)
        banned = ("UnityEngine", "UnityEditor", "Newtonsoft", "System.Text.Json")
        assert not [u for u in used if u.startswith(banned)], src


@pytest.mark.parametrize("name", CHECKS)
def test_client_check(checks, name: str) -> None:
    rec = checks.get(name)
    proc = checks["_proc"]
    assert rec is not None, (f"check {name!r} did not run (exit {proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    assert rec["ok"], rec["detail"]


def test_all_checks_ran_and_program_exit_code(checks) -> None:
    proc = checks["_proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {k for k in checks if not k.startswith("_")} == set(CHECKS)


def test_hello_matches_server(checks, srv) -> None:
    hello = checks["hello"]["detail"]
    from chibi_meta.avatar.pack import PACKAGING_ATTRIBUTES  # drawn by the packer (outfit), not the generator

    assert list(hello["attributes"]) == [*srv.engine.gen.schema.names, *PACKAGING_ATTRIBUTES]
    assert hello["formats"] == ["glb", "vrm", "png"] and hello["limits"]["max_in_flight"] == 32


def test_assets_are_the_bytes_the_python_client_gets(checks, srv) -> None:
    """Same request from the reference Python client: same sha256 (the server answers from its cache)."""
    assets = json.loads((checks["_out"] / "assets.json").read_text("utf-8"))
    assert set(assets) == {"glb", "vrm", "png"}
    for name, a in assets.items():
        data = (checks["_out"] / a["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == a["sha256"] and len(data) == a["byte_length"]
        kw = {"texture_size": a["texture_size"]} if a["format"] != "png" else {}
        r = request(srv.url, token=TOKEN, seed=a["seed"], attributes=a["attributes"], format=a["format"], **kw)
        assert r.sha256 == a["sha256"], name


def test_package_layout() -> None:
    pkg = json.loads((PKG / "package.json").read_text("utf-8"))
    assert pkg["name"] == "dev.chibimeta.bridge" and pkg["unity"] == "2021.3"
    runtime = json.loads((PKG / "Runtime" / "ChibiMeta.Bridge.asmdef").read_text("utf-8"))
    assert runtime["name"] == "ChibiMeta.Bridge" and runtime["noEngineReferences"] is True
    unity = json.loads((PKG / "Runtime" / "Unity" / "ChibiMeta.Bridge.Unity.asmdef").read_text("utf-8"))
    assert "ChibiMeta.Bridge" in unity["references"]
    assert {d["name"] for d in unity["versionDefines"]} >= {"com.atteneder.gltfast", "com.unity.cloud.gltfast",
                                                             "com.vrmc.vrm"}
    editor = json.loads((PKG / "Editor" / "ChibiMeta.Bridge.Editor.asmdef").read_text("utf-8"))
    assert editor["includePlatforms"] == ["Editor"]
    for f in ("README.md", "CHANGELOG.md", "LICENSE.md"):
        assert (PKG / f).is_file(), f


def test_every_unity_asset_has_a_meta_file() -> None:
    """Unity ignores files without .meta in a package installed from git; GUIDs must be unique.
    Fix with `python tests/unity/unity_meta.py`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("unity_meta", ROOT / "tests" / "unity" / "unity_meta.py")
    unity_meta = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unity_meta)
    assert unity_meta.problems() == []
