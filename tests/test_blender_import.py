"""Exported files imported by Blender's own glTF importer, headless: armature, skinning, shape keys.

One Blender process for the whole module (its start-up is the slow part) runs
``tests/blender/import_check.py`` on every file and writes a JSON report of what the importer made.
Blender is ``blender`` on PATH (Debian: ``apt-get install blender python3-numpy``) or $BLENDER;
$BPY_PYTHON instead names a Python with the PyPI ``bpy`` module. It runs without a display.

What each file must give is read from the file's own JSON (skin joints, ``extras.targetNames``,
morph targets) and, for our own rig, from ``chibi_meta.avatar.names``; nothing is hard-coded here.
Debian 12's Blender 3.4.1 cannot import ``EXT_texture_webp`` (a required extension in our WebP
files; bpy 4.5 LTS can): such a refusal must carry exactly Blender's message for a missing
extension, and the same file with its WebP texture re-encoded as PNG must pass every check.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chibi_meta.avatar import FORMATS, TEXTURE_FORMATS, build_avatar, load_base_mesh
from chibi_meta.avatar.names import BONE_NAMES

dicebear = pytest.importorskip("chibi_meta.data.dicebear")

SCRIPT = Path(__file__).parent / "blender" / "import_check.py"
# Blender's glTF importer, io/imp/gltf2_io_gltf.py: a required extension it does not implement.
MISSING_EXTENSION = "Error: Extension {} is not available on this addon version"
WEBP = "EXT_texture_webp"
TWIN = ".png-texture.glb"  # suffix of the copy of a WebP file with its texture re-encoded as PNG


def _blender_command(out: Path, files: list[Path]) -> list[str]:
    if os.environ.get("BPY_PYTHON"):
        return [os.environ["BPY_PYTHON"], str(SCRIPT), "--out", str(out), *map(str, files)]
    exe = shutil.which(os.environ.get("BLENDER", "blender"))
    if not exe:
        pytest.skip("needs Blender: apt-get install blender python3-numpy (or $BLENDER, or $BPY_PYTHON with bpy)")
    return [exe, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(SCRIPT),
            "--", "--out", str(out), *map(str, files)]  # fmt: skip


def _webp_as_png(data: bytes) -> bytes:
    """The same GLB with each EXT_texture_webp image re-encoded as PNG and the extension removed."""
    from PIL import Image
    from test_avatar_basemesh import pack_glb, split_glb

    doc, bin_ = split_glb(data)
    buf = bytearray(bin_)
    for tex in doc.get("textures", []):
        ext = tex.get("extensions", {}).pop(WEBP, None)
        if ext is None:
            continue
        if not tex["extensions"]:
            del tex["extensions"]
        img = doc["images"][ext["source"]]
        bv = doc["bufferViews"][img["bufferView"]]
        start = bv.get("byteOffset", 0)
        png = io.BytesIO()
        Image.open(io.BytesIO(bytes(buf[start : start + bv["byteLength"]]))).save(png, "PNG")
        buf += bytes(-len(buf) % 4)
        doc["bufferViews"].append({"buffer": 0, "byteOffset": len(buf), "byteLength": len(png.getvalue())})
        buf += png.getvalue()
        img.update(bufferView=len(doc["bufferViews"]) - 1, mimeType="image/png")
        tex["source"] = ext["source"]
    for key in ("extensionsUsed", "extensionsRequired"):
        kept = [e for e in doc.get(key, []) if e != WEBP]
        if kept:
            doc[key] = kept
        else:
            doc.pop(key, None)
    doc["buffers"][0]["byteLength"] = len(buf)
    return pack_glb(doc, bytes(buf))


def _gltf_json(path: Path) -> dict:
    from test_avatar_basemesh import split_glb

    return split_glb(path.read_bytes())[0]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[dict[str, dict], dict[str, str]]:
    """(files, errors). files: name -> {path, doc (the file's glTF JSON), ours (our procedural rig),
    twin_of}: every format x texture format, an artist's base in both formats, and a PNG-texture twin
    of every WebP file. errors: what failed to export from an artist's base (test_artist_base_exports),
    so that it does not hide the checks of the other files."""
    from test_avatar_basemesh import make_artist_glb

    d = tmp_path_factory.mktemp("blender_avatars")
    files: dict[str, tuple[bytes, bool]] = {}
    for i, (fmt, tf) in enumerate((f, t) for f in FORMATS for t in TEXTURE_FORMATS):
        img, attrs = dicebear.render(300 + i)
        prov = {"seed": 300 + i, "attributes": attrs, "model_id": "dicebear-adventurer", "attribution": "CC BY 4.0"}
        files[f"{tf}.{fmt}"] = (build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf,
                                             provenance=prov), True)  # fmt: skip
    img, attrs = dicebear.render(43)
    errors: dict[str, str] = {}
    try:
        base = load_base_mesh(make_artist_glb(d / "artist-base.glb"))
        for fmt, tf in (("glb", "jpeg"), ("vrm", "webp")):
            data = build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf, base=base)
            files[f"artist.{fmt}"] = (data, False)
    except Exception as e:  # noqa: BLE001 - reported by test_artist_base_exports
        errors["artist"] = f"{type(e).__name__}: {e}"
    out: dict[str, dict] = {}
    for name, (data, ours) in files.items():
        (d / name).write_bytes(data)
        out[name] = {"path": d / name, "ours": ours, "twin_of": None}
        if WEBP in _gltf_json(d / name).get("extensionsRequired", []):
            (d / (name + TWIN)).write_bytes(_webp_as_png(data))
            out[name + TWIN] = {"path": d / (name + TWIN), "ours": ours, "twin_of": name}
    for x in out.values():
        x["doc"] = _gltf_json(x["path"])
    assert any(x["twin_of"] for x in out.values())  # WebP files are exported with the required extension
    return out, errors


@pytest.fixture(scope="module")
def exported(exports) -> dict[str, dict]:
    return exports[0]


def test_artist_base_exports(exports):
    """An artist's base (our own export, handed back as --base-mesh) exports as GLB and VRM for Blender."""
    files, errors = exports
    assert errors == {}
    assert {"artist.glb", "artist.vrm"} <= set(files)


@pytest.fixture(scope="module")
def blender(exported, tmp_path_factory) -> dict:
    """The import report of every file, from one headless Blender process."""
    out = tmp_path_factory.mktemp("blender_report") / "report.json"
    cmd = _blender_command(out, [x["path"] for x in exported.values()])
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}  # no display
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0 and out.exists(), (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    report = json.loads(out.read_text())
    by_path = {str(x["path"]): name for name, x in exported.items()}
    report["by_name"] = {by_path[f["file"]]: f for f in report["files"]}
    return report


def _imported(exported: dict, blender: dict) -> list[tuple[str, dict, dict]]:
    """(name, exported entry, report) of every file the importer took; test_every_file_imports and
    test_webp_refused_only_for_blenders_missing_extension account for the others."""
    got = [(n, exported[n], f) for n, f in blender["by_name"].items() if f["ok"]]
    assert {n for n, _, _ in got} >= {n for n, x in exported.items() if WEBP not in x["doc"].get("extensionsUsed", [])}
    return got


def _only_armature(rep: dict) -> dict:
    arms = rep["armatures"]
    assert len(arms) == 1, [a["name"] for a in arms]
    return arms[0]


def _joint_names(doc: dict, skin: int | None = None) -> list[str]:
    """The joint node names of one skin, or of all skins (in order, each once): Blender makes one
    armature for skins that share their joints."""
    skins = doc["skins"] if skin is None else [doc["skins"][skin]]
    joints = list(dict.fromkeys(j for s in skins for j in s["joints"]))
    return [doc["nodes"][j].get("name") for j in joints]


def _mesh_nodes(doc: dict) -> dict[str, dict]:
    """Blender object name -> glTF node, for every node with a mesh (Blender names the object after
    the node, or after the mesh when the node has no name)."""
    return {n.get("name") or doc["meshes"][n["mesh"]].get("name"): n for n in doc["nodes"] if "mesh" in n}


def _file_meshes(rep: dict, arm: dict) -> list[dict]:
    """The mesh objects made from the file's nodes (not the importer's bone-display helper shapes)."""
    return [m for m in rep["meshes"] if m["name"] not in arm["bone_custom_shapes"]]


def test_blender_runs_headless_on_every_file(exported, blender):
    assert blender["background"] and blender["display"] is None
    assert set(blender["by_name"]) == set(exported)
    for f in blender["files"]:
        assert "Traceback" not in (f["error"] or ""), f["error"]  # a crash, not a refusal


def test_every_file_imports(exported, blender):
    """Everything without WebP imports with no error or warning; VRMC_vrm (used, not required) is ignored."""
    for name, f in blender["by_name"].items():
        if WEBP in exported[name]["doc"].get("extensionsUsed", []) and not f["ok"]:
            continue  # test_webp_refused_only_for_blenders_missing_extension
        assert f["ok"], (name, blender["blender"], f["error"], f["log"][-20:])
        assert f["errors"] == [] and f["warnings"] == [], (name, f["errors"], f["warnings"])
        assert f["images"] and all(im["has_data"] for im in f["images"]), (name, f["images"])  # textures decoded


def test_webp_refused_only_for_blenders_missing_extension(exported, blender):
    """A WebP file either imports, or this Blender's importer lacks EXT_texture_webp: then the refusal
    is exactly its message for that, nothing was created, and the PNG-texture twin imports."""
    for name, x in exported.items():
        if x["twin_of"] is None and WEBP in x["doc"].get("extensionsUsed", []):
            f = blender["by_name"][name]
            twin = blender["by_name"][name + TWIN]
            assert twin["ok"], (name + TWIN, twin["error"])
            if f["ok"]:
                assert [im["file_format"] for im in f["images"]] == ["WEBP"], name
                continue
            assert f["error"] == MISSING_EXTENSION.format(WEBP), (name, blender["blender"], f["error"])
            assert f["objects"] == [] and f["errors"] == [MISSING_EXTENSION.format(WEBP)], (name, f["log"])


def test_armature_bones_are_the_skin_joints(exported, blender):
    """Exactly one armature, whose bones are exactly the skin's joint node names (from the file's JSON)."""
    for name, x, f in _imported(exported, blender):
        arm = _only_armature(f)
        joints = _joint_names(x["doc"])
        assert len(set(joints)) == len(joints), (name, joints)
        assert sorted(arm["bones"]) == sorted(joints), (name, sorted(set(arm["bones"]) ^ set(joints)))


def test_every_mesh_is_skinned_to_the_armature(exported, blender):
    for name, x, f in _imported(exported, blender):
        arm = _only_armature(f)
        doc = x["doc"]
        nodes = _mesh_nodes(doc)
        meshes = _file_meshes(f, arm)
        assert sorted(m["name"] for m in meshes) == sorted(nodes), name
        for m in meshes:
            assert "skin" in nodes[m["name"]], (name, m["name"])  # every mesh node of the file is skinned
            assert m["parent"] == arm["name"] and m["parent_type"] == "OBJECT", (name, m["name"], m["parent"])
            assert m["armature_modifiers"] == [arm["name"]], (name, m["name"], m["modifiers"])
            # one vertex group per joint of its skin: the weights reach Blender's bones
            joints = _joint_names(doc, nodes[m["name"]]["skin"])
            assert m["vertex_groups"] == len(joints), (name, m["name"], m["vertex_groups"], len(joints))
            assert set(m["vertex_group_names"]) == set(joints), (name, m["name"])


def test_shape_keys_are_the_target_names(exported, blender):
    """Every morph target is a shape key named as in meshes[*].extras.targetNames, in order, no more."""
    for name, x, f in _imported(exported, blender):
        arm = _only_armature(f)
        doc = x["doc"]
        by_obj = {m["name"]: m for m in _file_meshes(f, arm)}
        for obj, node in _mesh_nodes(doc).items():
            gm = doc["meshes"][node["mesh"]]
            names = (gm.get("extras") or {}).get("targetNames", [])
            n_targets = {len(p.get("targets", [])) for p in gm["primitives"]}
            assert n_targets == {len(names)}, (name, obj, n_targets, len(names))  # every target is named
            m = by_obj[obj]
            assert m["shape_keys"] == names, (name, obj, sorted(set(m["shape_keys"]) ^ set(names)), m["shape_keys"])
            assert (m["reference_key"] is not None) == bool(names), (name, m["key_blocks"])


def test_armature_has_every_bone_of_names_py(exported, blender):
    """Our own rig (not an artist's base): the armature has a bone for every node of BONE_NAMES."""
    want = [node for node, _ in BONE_NAMES]
    checked = 0
    for name, x, f in _imported(exported, blender):
        if not x["ours"]:
            continue
        bones = set(_only_armature(f)["bones"])
        missing = [b for b in want if b not in bones]
        assert not missing, (name, f"{len(missing)} of {len(want)} bones missing", missing, sorted(bones))
        checked += 1
    assert checked >= len(FORMATS) * (len(TEXTURE_FORMATS) - 1)
