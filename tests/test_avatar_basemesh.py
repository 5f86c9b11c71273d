"""An artist's own base mesh: loaded as untrusted input, with clear errors for what is missing.

The artist base of these tests is our own procedural export handed back in, as an artist would:
its nodes carry the Mixamo / Ready Player Me names (``Hips``, ``LeftArm``, ...), which the loader
maps to the VRM humanoid through ``names.HUMANOID``; rigs named after the VRM bones, with a
``mixamorig:`` prefix, or mapped explicitly keep working. The base keeps its own head (no inflation).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from chibi_meta.avatar import build_avatar, load_base_mesh, names
from chibi_meta.avatar.basemesh import REQUIRED_BONES
from chibi_meta.errors import LimitExceeded, MeshError

dicebear = pytest.importorskip("chibi_meta.data.dicebear")
FRONT_RECT = [0.0, 0.0, 0.5, 0.5]  # where the procedural atlas keeps the drawing's front


def split_glb(data: bytes) -> tuple[dict, bytes]:
    jlen = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20 : 20 + jlen])
    blen = struct.unpack_from("<I", data, 20 + jlen)[0]
    return doc, data[28 + jlen : 28 + jlen + blen]


def pack_glb(doc: dict, bin_: bytes) -> bytes:
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    bin_ += bytes(-len(bin_) % 4)
    total = 28 + len(js) + len(bin_)
    return struct.pack("<IIIII", 0x46546C67, 2, total, len(js), 0x4E4F534A) + js + struct.pack(
        "<II", len(bin_), 0x004E4942
    ) + bin_  # fmt: skip


def make_artist_glb(path: Path, mutate=None, extras: bool = True, fmt: str = "glb") -> Path:
    """A rigged chibi as an artist would hand it in: our own export, with the face UV rect declared."""
    img, attrs = dicebear.render(21)
    doc, bin_ = split_glb(build_avatar(img, {**attrs, "outfit": "hoodie_trousers"}, fmt=fmt, texture_size=256))
    if extras:
        doc["asset"]["extras"] = {"chibi_meta": {"face_uv_rect": FRONT_RECT}}
    else:
        doc["asset"].pop("extras", None)
    if mutate:
        mutate(doc)
    path.write_bytes(pack_glb(doc, bin_))
    return path


def _node_names(base) -> dict[str, str]:
    return {bone: base.doc["nodes"][i]["name"] for bone, i in base.humanoid.items()}


def test_artist_base_roundtrip(tmp_path):
    base = load_base_mesh(make_artist_glb(tmp_path / "artist.glb"))
    assert base.face_rect == tuple(FRONT_RECT)
    assert base.source.startswith("sha256:")
    # every humanoid bone found by its Mixamo / RPM node name
    assert _node_names(base) == names.HUMANOID
    assert set(REQUIRED_BONES) <= set(base.humanoid)
    img, attrs = dicebear.render(3)
    a = build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base)
    assert a == build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base)
    doc, _ = split_glb(a)
    assert doc["asset"]["extras"]["chibi_meta"]["base_mesh"] == base.source
    assert len(doc["materials"]) == 1
    bones = doc["extensions"]["VRMC_vrm"]["humanoid"]["humanBones"]
    assert {b: doc["nodes"][r["node"]]["name"] for b, r in bones.items()} == names.HUMANOID


def test_artist_base_keeps_its_own_head(tmp_path):
    """No inflation for an artist's base: every avatar made from it has the base's geometry, only
    the texture differs (two textures with different silhouettes give the same meshes)."""
    base = load_base_mesh(make_artist_glb(tmp_path / "artist.glb"))
    docs = []
    for seed in (3, 4):
        img, attrs = dicebear.render(seed, {"hair_style": "long01" if seed == 3 else "short01"})
        docs.append(split_glb(build_avatar(img, attrs, texture_size=256, base=base)))
    (d1, b1), (d2, b2) = docs
    assert d1["meshes"] == d2["meshes"] == base.doc["meshes"]
    n = len(base.bin)
    assert b1[:n] == b2[:n] == base.bin
    assert b1 != b2  # the atlas differs


def _vrm_names(doc):
    node_of = {n: v for v, n in names.HUMANOID.items()}
    for n in doc["nodes"]:
        n["name"] = node_of.get(n["name"], n["name"])


def _mixamo_prefix(doc):
    for n in doc["nodes"]:
        if n["name"] in names.HUMANOID.values():
            n["name"] = "mixamorig:" + n["name"]


def _other_names_mapped(doc):
    for n in doc["nodes"]:
        if n["name"] in names.HUMANOID.values():
            n["name"] = "bone_" + n["name"].lower()
    doc["asset"]["extras"]["chibi_meta"]["human_bones"] = {v: "bone_" + n.lower() for v, n in names.HUMANOID.items()}


@pytest.mark.parametrize("rename", [_vrm_names, _mixamo_prefix, _other_names_mapped])
def test_artist_base_bone_naming_conventions(tmp_path, rename):
    base = load_base_mesh(make_artist_glb(tmp_path / "named.glb", rename))
    # the same nodes are found, whatever they are called
    ref = load_base_mesh(make_artist_glb(tmp_path / "ref.glb"))
    assert base.humanoid == ref.humanoid
    img, attrs = dicebear.render(3)
    doc, _ = split_glb(build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base))
    assert set(doc["extensions"]["VRMC_vrm"]["humanoid"]["humanBones"]) == set(names.HUMANOID)


def test_artist_vrm_base(tmp_path):
    """A VRM handed in as a base (its VRMC_vrm is dropped and rebuilt) works like a GLB."""
    base = load_base_mesh(make_artist_glb(tmp_path / "artist.vrm", fmt="vrm"))
    assert _node_names(base) == names.HUMANOID
    img, attrs = dicebear.render(3)
    doc, _ = split_glb(build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base))
    assert doc["extensions"]["VRMC_vrm"]["meta"]["name"] == "chibi"


def test_sidecar_file(tmp_path):
    p = make_artist_glb(tmp_path / "art.glb", extras=False)
    with pytest.raises(MeshError, match="face's UV rectangle"):
        load_base_mesh(p)
    (tmp_path / "art.chibi.json").write_text(json.dumps({"face_uv_rect": [0.1, 0.1, 0.6, 0.6]}))
    assert load_base_mesh(p).face_rect == (0.1, 0.1, 0.6, 0.6)


def _drop_skin(doc):
    doc.pop("skins")
    for n in doc["nodes"]:
        n.pop("skin", None)


def _drop_uv(doc):
    del doc["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_0"]


def _rename_bone(doc):
    for n in doc["nodes"]:
        if n.get("name") == "LeftFoot":
            n["name"] = "foot"


def _unmap_bone(doc):
    for n in doc["nodes"]:
        if n.get("name") == "RightForeArm":
            n["name"] = "forearm.R"
    doc["asset"]["extras"]["chibi_meta"]["human_bones"] = {"rightLowerArm": "no such node"}


def _bone_not_a_joint(doc):
    doc["skins"][0]["joints"].remove(next(i for i, n in enumerate(doc["nodes"]) if n["name"] == "Head"))


def _external_uri(doc):
    doc["buffers"][0]["uri"] = "https://example.com/evil.bin"


def _bad_accessor(doc):
    doc["accessors"][0]["count"] += 1000


def _bad_rect(doc):
    doc["asset"]["extras"]["chibi_meta"]["face_uv_rect"] = [0.5, 0.5, 0.2, 2]


def _unskinned_mesh(doc):
    doc["nodes"][-1].pop("skin")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (_drop_skin, "no skin"),
        (_drop_uv, "UVs"),
        (_rename_bone, "lacks humanoid bones: leftFoot"),
        (_unmap_bone, "lacks humanoid bones: rightLowerArm"),
        (_bone_not_a_joint, "joints of its skin"),
        (_external_uri, "no external"),
        (_bad_accessor, "past the end"),
        (_bad_rect, "face_uv_rect"),
        (_unskinned_mesh, "is not skinned"),
    ],
)
def test_bad_base_meshes(tmp_path, mutate, needle):
    with pytest.raises(MeshError, match=needle) as e:
        load_base_mesh(make_artist_glb(tmp_path / "bad.glb", mutate))
    if "humanoid" in needle:  # the message says how to name the bones
        assert "Mixamo / Ready Player Me" in str(e.value) and "VRM" in str(e.value)


def test_not_a_glb_and_size_cap(tmp_path, monkeypatch):
    p = tmp_path / "x.glb"
    p.write_bytes(b"not a glb at all")
    with pytest.raises(MeshError, match="not a binary glTF"):
        load_base_mesh(p)
    with pytest.raises(MeshError, match="cannot read"):
        load_base_mesh(tmp_path / "missing.glb")
    from chibi_meta import limits

    good = make_artist_glb(tmp_path / "ok.glb")
    monkeypatch.setattr(limits, "MAX_BASE_MESH_BYTES", 1000)
    with pytest.raises(LimitExceeded):
        load_base_mesh(good)
