"""The Unity package's expression names under Mono: plugin_unity_bridge/Runtime's MorphTargetNames must be
the tables of chibi_meta/avatar/names.py, and its ExpressionMap must map the morph targets of real
exports (GLB and VRM from build_avatar, read from `meshes[*].extras.targetNames` and the VRM's
expressions) to the blend-shape index glTFast and UniVRM give them (the glTF target order). Also the
`morph_targets` request field of GenerateRequest against the server's own check (names.check_morph_sets)."""

from __future__ import annotations

import inspect
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from chibi_meta.avatar import build_avatar, names

sys.path.insert(0, str(Path(__file__).parent / "unity"))
import unity_compile as uc  # noqa: E402

HERE = Path(__file__).parent / "unity"
ALL_NAMES = [*names.VRM_PRESETS, *names.OCULUS_VISEMES, *names.ARKIT, *names.RPM_EXTRA]
VISEME_QUERIES = [*names.OCULUS_VISEMES, *(v.removeprefix("viseme_") for v in names.OCULUS_VISEMES),
                  "aa", "ih", "ou", "ee", "oh", "happy", "blink", "nope"]
MORPH_VALUES = [None, ["vrm"], ["oculus", "vrm"], ["arkit", "oculus", "vrm"], ["none"], ["arkit", "arkit"],
                ["vrm", "vrm", "oculus", "arkit"], [], ["bogus"], ["none", "vrm"]]


def gltf_json(glb: bytes) -> dict:
    assert glb[:4] == b"glTF"
    length, kind = struct.unpack_from("<I4s", glb, 12)
    assert kind == b"JSON"
    return json.loads(glb[20:20 + length])


def target_names(doc: dict) -> list[list[str]]:
    """Each mesh's blend-shape names as glTFast and UniVRM create them: `extras.targetNames`, target order."""
    out = []
    for mesh in doc["meshes"]:
        count = max((len(p.get("targets", [])) for p in mesh["primitives"]), default=0)
        tn = (mesh.get("extras") or {}).get("targetNames") or []
        assert len(tn) == count, f"mesh {mesh.get('name')}: {count} targets, {len(tn)} targetNames"
        out.append(list(tn))
    return out


def vrm_expressions(doc: dict) -> list[str]:
    expr = doc["extensions"]["VRMC_vrm"].get("expressions", {})
    return [*expr.get("preset", {}), *expr.get("custom", {})]


@pytest.fixture(scope="module")
def exports() -> dict[str, dict]:
    dicebear = pytest.importorskip("chibi_meta.data.dicebear")
    img, attrs = dicebear.render(11)
    out = {"glb": gltf_json(build_avatar(img, attrs, fmt="glb", texture_size=256)),
           "vrm": gltf_json(build_avatar(img, attrs, fmt="vrm", texture_size=256))}
    if "morph_targets" in inspect.signature(build_avatar).parameters:
        out["glb_arkit"] = gltf_json(build_avatar(img, attrs, fmt="glb", texture_size=256, morph_targets=["arkit"]))
    return out


@pytest.fixture(scope="module")
def checks(exports, tmp_path_factory) -> dict:
    if shutil.which("mcs") is None or shutil.which("mono") is None:
        pytest.skip("mcs and mono not installed; install Mono with: apt-get install -y mono-devel")
    work = tmp_path_factory.mktemp("expressions")
    facades = uc.FacadeBuilder(tmp_path_factory.getbasetemp() / "unity-facades")
    runtime = facades.runtime()
    exe = facades.build("ExpressionChecks", [HERE / "ExpressionChecks.cs"], [runtime], target="exe")
    for p in (runtime, exe):
        shutil.copy(p, work / p.name)
    cases = {}
    for key, doc in exports.items():
        meshes = target_names(doc)
        queries = sorted({*ALL_NAMES, *(n for m in meshes for n in m)})
        cases[key] = {"meshes": meshes, "vrm_expressions": vrm_expressions(doc) if key == "vrm" else None,
                      "expressions": queries, "visemes": VISEME_QUERIES}
    (work / "input.json").write_text(json.dumps({"cases": cases, "morph_targets": MORPH_VALUES}), "utf-8")
    proc = subprocess.run(["mono", "--debug", str(work / exe.name), str(work / "input.json")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    result["_input"] = cases
    return result


def test_csharp_tables_are_names_py(checks) -> None:
    t = checks["tables"]
    assert t["VRM_PRESETS"] == list(names.VRM_PRESETS)
    assert t["OCULUS_VISEMES"] == list(names.OCULUS_VISEMES)
    assert t["ARKIT"] == list(names.ARKIT)
    assert t["RPM_EXTRA"] == list(names.RPM_EXTRA)
    assert t["MORPH_SETS"] == {k: list(v) for k, v in names.MORPH_SETS.items()}
    assert t["MORPH_SET_ORDER"] == list(names.MORPH_SETS)
    assert t["DEFAULT_MORPH_SETS"] == list(names.DEFAULT_MORPH_SETS)


def test_exports_use_the_names_of_names_py(exports) -> None:
    """What the Unity table is checked against is what the exporter writes (names.py is the one source)."""
    known = set(ALL_NAMES)
    for key, doc in exports.items():
        found = [n for m in target_names(doc) for n in m]
        assert found, f"{key}: no morph targets"
        assert set(found) <= known, (key, sorted(set(found) - known))
    presets = exports["vrm"]["extensions"]["VRMC_vrm"].get("expressions", {}).get("preset", {})
    assert presets and set(presets) <= set(names.VRM_PRESETS)  # custom expressions may be anything


@pytest.mark.parametrize("key", ["glb", "vrm", "glb_arkit"])
def test_every_target_name_resolves_to_its_blend_shape(checks, key) -> None:
    """Each morph target of the real export resolves to its own blend-shape index on every mesh that has it
    (for the VRM, names that are VRM expressions go through UniVRM instead)."""
    if key not in checks["cases"]:
        pytest.fail(f"no {key} export (build_avatar without morph_targets?)")
    case, given = checks["cases"][key], checks["_input"][key]
    vrm = set(given["vrm_expressions"] or [])
    where: dict[str, list[list]] = {}
    for mi, mesh in enumerate(given["meshes"]):
        for index, name in enumerate(mesh):
            where.setdefault(name, [])
            if all(m != mi for m, _, _ in where[name]):
                where[name].append([mi, index, name])
    assert where, key
    for name, shapes in where.items():
        got = case["expressions"][name]
        if name in vrm:
            assert got == {"via": name, "vrm": name, "shapes": []}, (name, got)
        else:
            assert got == {"via": name, "vrm": None, "shapes": shapes}, (name, got)


@pytest.mark.parametrize("key", ["glb", "vrm", "glb_arkit"])
def test_every_vrm_preset_and_set_name_resolves(checks, key) -> None:
    """Names the avatar lacks resolve to an equivalent it has (with every blend shape of it present) or to
    nothing; a VRM's preset expressions resolve to themselves."""
    if key not in checks["cases"]:
        pytest.fail(f"no {key} export")
    case, given = checks["cases"][key], checks["_input"][key]
    present = {n for m in given["meshes"] for n in m}
    vrm = set(given["vrm_expressions"] or [])
    for name in ALL_NAMES:
        got = case["expressions"][name]
        if name in vrm:
            assert got["vrm"] == name, (name, got)
        elif name in present:
            assert got["via"] == name and got["shapes"], (name, got)
        elif got is not None:
            assert got["via"] != name and (got["vrm"] in vrm if got["vrm"] else got["shapes"]), (name, got)
            for mesh, index, shape in got["shapes"]:
                assert given["meshes"][mesh][index] == shape and shape in got["via"].split("+"), (name, got)
    if key == "glb_arkit":  # only ARKit + RPM names in the file: the VRM names still work through them
        assert case["expressions"]["blink"]["via"] == "eyesClosed"
        assert case["expressions"]["happy"]["via"] == "mouthSmile"
        assert case["expressions"]["aa"]["via"] in ("mouthOpen", "jawOpen")


@pytest.mark.parametrize("key", ["glb", "vrm"])
def test_visemes(checks, key) -> None:
    case, given = checks["cases"][key], checks["_input"][key]
    present = {n: (mi, i) for mi, m in enumerate(given["meshes"]) for i, n in enumerate(m)}
    vrm = set(given["vrm_expressions"] or [])
    vowels = {"viseme_aa": "aa", "viseme_I": "ih", "viseme_U": "ou", "viseme_E": "ee", "viseme_O": "oh"}
    for v in names.OCULUS_VISEMES:
        for query in (v, v.removeprefix("viseme_")):
            got = case["visemes"][query]
            if vowels.get(v) in vrm:  # UniVRM's own vowel expression
                assert got == {"via": vowels[v], "vrm": vowels[v], "shapes": []}, (query, got)
            elif v in present:
                assert got["via"] == v and [got["shapes"][0][0], got["shapes"][0][1]] == list(present[v]), (query, got)
    for vowel, oculus in (("aa", "viseme_aa"), ("ih", "viseme_I"), ("ee", "viseme_E")):
        assert case["visemes"][vowel]["via"] == (vowel if vowel in vrm else oculus)
    assert case["visemes"]["happy"] is None and case["visemes"]["blink"] is None and case["visemes"]["nope"] is None


def test_morph_targets_request_field(checks) -> None:
    """GenerateRequest.MorphTargets: sent as given; the cache key uses the server's canonical
    sets (names.check_morph_sets) and leaves the default out, so unset keys stay what they were."""
    from chibi_meta.errors import AttributeValueError

    for case in checks["requests"]["cases"]:
        value = case["value"]
        msg = json.loads(case["message"])
        assert msg.get("morph_targets") == value, case
        assert json.loads(case["png_message"]).get("morph_targets") == value, case  # the server checks it there too
        canon = json.loads(case["canonical"])
        assert case["clone_canonical"] == case["canonical"]
        try:
            want = names.check_morph_sets(value)
        except AttributeValueError:
            assert str(case["targets"]).startswith("error: "), case  # the client refuses what the server refuses
            continue
        assert case["targets"] == [n for s in want for n in names.MORPH_SETS[s]], case
        if want == names.DEFAULT_MORPH_SETS:
            assert "morph_targets" not in canon, case
        else:
            assert canon["morph_targets"] == list(want), case
