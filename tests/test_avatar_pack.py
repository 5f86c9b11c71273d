"""build_avatar: structure, determinism, bad options, the chibi base's geometry and rig."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from chibi_meta.avatar import FORMATS, TEXTURE_FORMATS, TEXTURE_SIZES, atlas, build_avatar, mesh
from chibi_meta.avatar.basemesh import REQUIRED_BONES
from chibi_meta.avatar.cli import _FORMATS, _TEXTURE_FORMATS, _TEXTURE_SIZES
from chibi_meta.errors import UsageError

dicebear = pytest.importorskip("chibi_meta.data.dicebear")


def split_glb(data: bytes) -> tuple[dict, bytes]:
    magic, version, total = struct.unpack_from("<III", data, 0)
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    doc = json.loads(data[20 : 20 + jlen])
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942 and blen % 4 == 0
    return doc, data[28 + jlen : 28 + jlen + blen]


@pytest.fixture(scope="module")
def face():
    return dicebear.render(7)


def prov(seed, attrs):
    return {"seed": seed, "attributes": attrs, "model_id": "dicebear-adventurer", "attribution": "CC BY 4.0 test"}


def test_constants_match_cli():
    assert FORMATS == _FORMATS == ("glb", "vrm")
    assert TEXTURE_SIZES == _TEXTURE_SIZES == (256, 512, 1024)
    assert TEXTURE_FORMATS == _TEXTURE_FORMATS == ("png", "jpeg", "webp")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("tf", TEXTURE_FORMATS)
def test_same_request_same_bytes(face, fmt, tf):
    img, attrs = face
    a = build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf, provenance=prov(7, attrs))
    b = build_avatar(img.copy(), dict(attrs), fmt=fmt, texture_size=256, texture_format=tf, provenance=prov(7, attrs))
    assert a == b
    c = build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf, provenance=prov(8, attrs))
    assert c != a


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"fmt": "gltf"}, "allowed: glb, vrm"),
        ({"texture_size": 300}, "allowed: 256, 512, 1024"),
        ({"texture_size": True}, "allowed: 256, 512, 1024"),
        ({"texture_format": "gif"}, "allowed: png, jpeg, webp"),
    ],
)
def test_bad_options(face, kw, needle):
    img, attrs = face
    with pytest.raises(UsageError, match=needle):
        build_avatar(img, attrs, **kw)


@pytest.mark.parametrize("tex", [np.zeros((128, 128, 3), np.uint8), np.zeros((128, 64, 4), np.uint8), "x"])
def test_bad_texture(face, tex):
    with pytest.raises(UsageError, match="texture"):
        build_avatar(tex, face[1])


def test_glb_structure_and_provenance(face):
    img, attrs = face
    doc, bin_ = split_glb(build_avatar(img, attrs, texture_size=256, provenance=prov(7, attrs)))
    assert doc["asset"]["version"] == "2.0"
    p = doc["asset"]["extras"]["chibi_meta"]
    assert p["seed"] == 7 and p["attributes"] == attrs and p["model_id"] == "dicebear-adventurer"
    assert p["attribution"]
    # one mesh, one primitive, one material, one texture: a single draw call
    assert len(doc["meshes"]) == 1 and len(doc["meshes"][0]["primitives"]) == 1
    assert len(doc["materials"]) == 1 and len(doc["textures"]) == 1 and len(doc["images"]) == 1
    assert doc["images"][0]["mimeType"] == "image/png"
    assert "alphaMode" not in doc["materials"][0]  # opaque: the atlas has no transparency
    prim = doc["meshes"][0]["primitives"][0]
    assert doc["meshes"][0]["extras"]["targetNames"] == ["blinkLeft", "blinkRight", "happy"]
    assert len(prim["targets"]) == 3
    acc = doc["accessors"]
    assert acc[prim["attributes"]["JOINTS_0"]]["componentType"] == 5121
    assert acc[prim["attributes"]["WEIGHTS_0"]]["normalized"] is True
    skin = doc["skins"][0]
    assert len(skin["joints"]) == 17
    names = {doc["nodes"][j]["name"] for j in skin["joints"]}
    assert set(REQUIRED_BONES) | {"chest", "neck"} == names
    for j in skin["joints"]:  # VRM 1.0 rest pose: no rotation on joints
        assert "rotation" not in doc["nodes"][j] and "scale" not in doc["nodes"][j]
    assert doc["buffers"][0]["byteLength"] == len(bin_)


def test_texture_formats_and_sizes(face):
    img, attrs = face
    doc, _ = split_glb(build_avatar(img, attrs, texture_size=256, texture_format="webp"))
    assert doc["extensionsRequired"] == ["EXT_texture_webp"]
    assert doc["textures"][0]["extensions"]["EXT_texture_webp"]["source"] == 0
    assert doc["images"][0]["mimeType"] == "image/webp"
    doc, bin_ = split_glb(build_avatar(img, attrs, texture_size=1024, texture_format="jpeg"))
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    from io import BytesIO

    from PIL import Image

    im = Image.open(BytesIO(bin_[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]))
    assert im.format == "JPEG" and im.size == (1024, 1024)


def test_vrm_extension(face):
    img, attrs = face
    doc, _ = split_glb(build_avatar(img, attrs, fmt="vrm", texture_size=256, provenance=prov(7, attrs)))
    assert "VRMC_vrm" in doc["extensionsUsed"]
    v = doc["extensions"]["VRMC_vrm"]
    assert v["specVersion"] == "1.0"
    meta = v["meta"]
    assert meta["name"] == "chibi-7" and meta["authors"] and meta["licenseUrl"] == "https://vrm.dev/licenses/1.0/"
    assert meta["creditNotation"] == "required" and "CC BY 4.0" in meta["thirdPartyLicenses"]
    assert meta["extras"]["chibi_meta"]["seed"] == 7
    assert doc["images"][meta["thumbnailImage"]]["mimeType"] == "image/png"
    bones = v["humanoid"]["humanBones"]
    assert set(REQUIRED_BONES) <= set(bones)
    for b, ref in bones.items():
        assert doc["nodes"][ref["node"]]["name"] == b
    ex = v["expressions"]["preset"]
    assert {"blink", "happy", "blinkLeft", "blinkRight"} <= set(ex)
    n_targets = len(doc["meshes"][0]["primitives"][0]["targets"])
    for e in ex.values():
        for bind in e["morphTargetBinds"]:
            assert "mesh" in doc["nodes"][bind["node"]] and 0 <= bind["index"] < n_targets
    assert v["lookAt"]["type"] == "expression" and v["firstPerson"]["meshAnnotations"]


def test_file_size_budget(face):
    img, attrs = face
    assert len(build_avatar(img, attrs, texture_size=256, texture_format="png")) <= 200 * 1024


def test_chibi_geometry():
    g = mesh.chibi_geometry()
    pos = g.positions
    height = pos[:, 1].max()
    assert pos[:, 1].min() == 0.0  # feet on the floor
    head = mesh.HEAD_CENTER[1] - mesh.HEAD_RADII[1]
    assert 0.4 <= (height - head) / height <= 0.6  # the head is about half the height
    # T-pose: arms along X at shoulder height, wider than the legs
    assert mesh.bone_world("leftHand")[1] == mesh.bone_world("leftUpperArm")[1]
    assert mesh.bone_world("leftHand")[0] > 0.25 and mesh.bone_world("rightHand")[0] < -0.25
    # skin weights: 4 influences, bytes summing to 255, unused slots zero
    w = g.weights.astype(int)
    assert (w.sum(1) == 255).all()
    assert ((g.joints == 0) | (w > 0)).all()
    assert len(g.indices) % 3 == 0 and g.indices.max() < len(pos)
    # the face is on the front (+Z): the front-most head vertex shows the face's centre
    front = np.argmax(np.where(pos[:, 1] > 0.6, pos[:, 2], -1))
    uv = g.uvs[front] / 65535.0
    assert uv[0] < atlas.FACE_REGION and uv[1] < atlas.FACE_REGION
    assert abs(uv[0] - 0.5 * atlas.FACE_REGION) < 0.03
    # morph targets are sparse and only move head-lid vertices outward
    for ids, d in g.targets.values():
        assert (np.diff(ids.astype(int)) > 0).all() and np.abs(d).max() < 0.05


def test_atlas_is_opaque_and_uses_attribute_colours(face):
    img, attrs = face
    a = atlas.compose(img, attrs, 256)
    assert a.shape == (256, 256, 3)
    from chibi_meta.data.attributes import hair_rgb, skin_rgb

    assert tuple(a[32, 224]) == hair_rgb(attrs)
    assert tuple(a[96, 224]) == skin_rgb(attrs)
    # without known attribute names the colours are measured on the texture
    c = atlas.colours(img, {})
    assert np.abs(np.subtract(c["skin"], skin_rgb(attrs))).max() < 40
