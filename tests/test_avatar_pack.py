"""build_avatar: structure, determinism, bad options, outfits, the atlas, and the head and body in the file."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from chibi_meta.avatar import FORMATS, TEXTURE_FORMATS, TEXTURE_SIZES, atlas, build_avatar, names, procedural, rig
from chibi_meta.avatar.body import OUTFITS, REGIONS, body_mesh
from chibi_meta.avatar.cli import _FORMATS, _TEXTURE_FORMATS, _TEXTURE_SIZES
from chibi_meta.avatar.pack import choose_outfit
from chibi_meta.errors import UsageError

dicebear = pytest.importorskip("chibi_meta.data.dicebear")
ALLOWED_OUTFITS = "allowed: tshirt_shorts, hoodie_trousers, dress"


def split_glb(data: bytes) -> tuple[dict, bytes]:
    magic, version, total = struct.unpack_from("<III", data, 0)
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A and jlen % 4 == 0
    doc = json.loads(data[20 : 20 + jlen])
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942 and blen % 4 == 0
    return doc, data[28 + jlen : 28 + jlen + blen]


_DTYPE = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def read_accessor(doc: dict, bin_: bytes, i: int) -> np.ndarray:
    """The values of a tightly packed (our writer's) accessor, as (count, width); normalized ints to [0, 1]."""
    a = doc["accessors"][i]
    dt, w = _DTYPE[a["componentType"]], _WIDTH[a["type"]]
    if "bufferView" not in a:
        out = np.zeros((a["count"], w), dt)
    else:
        v = doc["bufferViews"][a["bufferView"]]
        assert "byteStride" not in v
        out = np.frombuffer(bin_, dt, a["count"] * w, v.get("byteOffset", 0) + a.get("byteOffset", 0))
        out = out.reshape(a["count"], w)
    if a.get("normalized"):
        out = out / float(np.iinfo(dt).max)
    return out


def mesh_named(doc: dict, name: str) -> dict:
    (m,) = [m for m in doc["meshes"] if m["name"] == name]
    return m


@pytest.fixture(scope="module")
def face():
    return dicebear.render(7)


def prov(seed, attrs):
    return {"seed": seed, "attributes": attrs, "model_id": "dicebear-adventurer", "attribution": "CC BY 4.0 test"}


def test_constants_match_cli():
    assert FORMATS == _FORMATS == ("glb", "vrm")
    assert TEXTURE_SIZES == _TEXTURE_SIZES == (256, 512, 1024)
    assert TEXTURE_FORMATS == _TEXTURE_FORMATS == ("png", "jpeg", "webp")
    assert OUTFITS == ("tshirt_shorts", "hoodie_trousers", "dress")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("tf", TEXTURE_FORMATS)
def test_same_request_same_bytes(face, fmt, tf):
    img, attrs = face
    a = build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf, provenance=prov(7, attrs))
    b = build_avatar(img.copy(), dict(attrs), fmt=fmt, texture_size=256, texture_format=tf, provenance=prov(7, attrs))
    assert a == b
    c = build_avatar(img, attrs, fmt=fmt, texture_size=256, texture_format=tf, provenance=prov(8, attrs))
    assert c != a


@pytest.mark.parametrize("outfit", OUTFITS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_outfit_same_bytes_and_recorded(face, outfit, fmt):
    img, attrs = face
    want = {**attrs, "outfit": outfit}
    a = build_avatar(img, want, fmt=fmt, texture_size=256, provenance=prov(7, attrs))
    assert a == build_avatar(img.copy(), dict(want), fmt=fmt, texture_size=256, provenance=prov(7, attrs))
    doc, _ = split_glb(a)
    p = doc["asset"]["extras"]["chibi_meta"]
    assert p["attributes"] == dict(sorted(want.items()))
    assert p["base_mesh"] == f"procedural:{outfit}"
    if fmt == "vrm":
        assert doc["extensions"]["VRMC_vrm"]["meta"]["extras"]["chibi_meta"]["attributes"]["outfit"] == outfit


def test_outfits_give_different_bodies(face):
    img, attrs = face
    bodies = {}
    for o in OUTFITS:
        doc, bin_ = split_glb(build_avatar(img, {**attrs, "outfit": o}, texture_size=256))
        prim = mesh_named(doc, "AvatarBody")["primitives"][0]
        bodies[o] = read_accessor(doc, bin_, prim["attributes"]["POSITION"])
        # the head is the same whatever the outfit: it is made from the texture only
        head = mesh_named(doc, "AvatarHead")["primitives"][0]["attributes"]["POSITION"]
        bodies[o, "head"] = read_accessor(doc, bin_, head)
    assert len({bodies[o].tobytes() for o in OUTFITS}) == 3
    assert len({bodies[o, "head"].tobytes() for o in OUTFITS}) == 1


def test_outfit_drawn_from_the_seed_when_not_requested(face):
    img, attrs = face
    drawn = [choose_outfit(s) for s in range(60)]
    assert set(drawn) == set(OUTFITS)  # every outfit occurs
    assert drawn == [choose_outfit(s) for s in range(60)]  # and the same seed draws the same one
    for seed in (0, 1, 2):
        doc, _ = split_glb(build_avatar(img, attrs, texture_size=256, provenance=prov(seed, attrs)))
        assert doc["asset"]["extras"]["chibi_meta"]["attributes"]["outfit"] == choose_outfit(seed)
    assert choose_outfit(5, {"outfit": "dress"}) == "dress"


@pytest.mark.parametrize("bad", ["cape", "", "Dress", 3, None])
def test_unknown_outfit(face, bad):
    img, attrs = face
    with pytest.raises(UsageError, match=ALLOWED_OUTFITS) as e:
        build_avatar(img, {**attrs, "outfit": bad}, texture_size=256)
    assert "outfit" in str(e.value)
    with pytest.raises(UsageError, match=ALLOWED_OUTFITS):
        choose_outfit(1, {"outfit": bad})


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


def test_bad_attributes(face):
    with pytest.raises(UsageError, match="attributes must be a mapping"):
        build_avatar(face[0], ["outfit=dress"])  # type: ignore[arg-type]


def test_glb_structure_and_provenance(face):
    img, attrs = face
    doc, bin_ = split_glb(build_avatar(img, attrs, texture_size=256, provenance=prov(7, attrs)))
    assert doc["asset"]["version"] == "2.0"
    p = doc["asset"]["extras"]["chibi_meta"]
    assert p["seed"] == 7 and p["model_id"] == "dicebear-adventurer" and p["attribution"]
    assert p["attributes"] == {**attrs, "outfit": choose_outfit(7)}
    # two meshes (the outfit's body, this avatar's head), one primitive each, one material and texture
    assert [m["name"] for m in doc["meshes"]] == ["AvatarBody", "AvatarHead"]
    assert all(len(m["primitives"]) == 1 and m["primitives"][0]["material"] == 0 for m in doc["meshes"])
    assert len(doc["materials"]) == 1 and len(doc["textures"]) == 1 and len(doc["images"]) == 1
    assert doc["images"][0]["mimeType"] == "image/png"
    assert "alphaMode" not in doc["materials"][0]  # opaque: the atlas has no transparency
    acc = doc["accessors"]
    for m in doc["meshes"]:
        att = m["primitives"][0]["attributes"]
        assert set(att) >= {"POSITION", "NORMAL", "TEXCOORD_0", "JOINTS_0", "WEIGHTS_0"}
        assert acc[att["JOINTS_0"]]["componentType"] == 5121
        assert acc[att["WEIGHTS_0"]]["normalized"] is True
        pos = read_accessor(doc, bin_, att["POSITION"])
        assert np.allclose(acc[att["POSITION"]]["min"], pos.min(0)) and np.allclose(
            acc[att["POSITION"]]["max"], pos.max(0)
        )
        nrm = read_accessor(doc, bin_, att["NORMAL"])
        assert np.allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-5)
        uv = read_accessor(doc, bin_, att["TEXCOORD_0"])
        assert (uv >= 0).all() and (uv <= 1).all()
    (skin,) = doc["skins"]
    assert [doc["nodes"][j]["name"] for j in skin["joints"]] == list(rig.NAMES)
    assert doc["nodes"][skin["skeleton"]]["name"] == "Hips"
    for j in skin["joints"]:  # no scale anywhere in the rig: bone axes are rotations only
        assert "scale" not in doc["nodes"][j] and "matrix" not in doc["nodes"][j]
    assert doc["buffers"][0]["byteLength"] == len(bin_)


def test_head_in_the_file_is_the_head_of_the_texture(face):
    """The head mesh is this texture's head (procedural.avatar_head) placed by head_world: seen from
    the front exactly (x, y), with the drawing's planar UVs mapped into the atlas; only the lower
    part (hair hanging by the neck) may be moved back (-Z, clear of the body), never forward. The
    top of the head (above the eyes) is untouched and moves with Head."""
    img, attrs = face
    doc, bin_ = split_glb(build_avatar(img, attrs, texture_size=256))
    h = procedural.avatar_head(img)
    want_pos, _ = procedural.head_world(h)
    att = mesh_named(doc, "AvatarHead")["primitives"][0]["attributes"]
    n = len(h.positions)
    pos = read_accessor(doc, bin_, att["POSITION"])
    assert len(pos) >= n  # (face-state patches may follow the head's own vertices)
    pos = pos[:n]
    assert np.allclose(pos[:, :2], want_pos[:, :2], atol=1e-6)
    dz = pos[:, 2] - want_pos[:, 2]
    assert dz.max() < 1e-6  # never pushed forward
    eyes = rig.POSITIONS["LeftEye"][1]
    assert (np.abs(dz[want_pos[:, 1] > eyes]) < 1e-6).all()
    uv = read_accessor(doc, bin_, att["TEXCOORD_0"])[:n]
    assert np.abs(uv - atlas.head_uv(h.uvs, h.back)).max() <= 1 / 65535 + 1e-9
    joints, weights = read_accessor(doc, bin_, att["JOINTS_0"]), read_accessor(doc, bin_, att["WEIGHTS_0"])
    assert np.allclose(weights.sum(1), 1.0, atol=1e-6) and (joints < len(rig.NAMES)).all()
    above = want_pos[:, 1] > eyes
    assert (joints[above, 0] == rig.INDEX["Head"]).all() and np.allclose(weights[above, 0], 1.0)


def test_body_in_the_file_is_the_outfit_body(face):
    img, attrs = face
    for o in OUTFITS:
        doc, bin_ = split_glb(build_avatar(img, {**attrs, "outfit": o}, texture_size=256))
        b = body_mesh(o)
        att = mesh_named(doc, "AvatarBody")["primitives"][0]["attributes"]
        assert np.array_equal(read_accessor(doc, bin_, att["POSITION"]), b.positions)
        assert np.array_equal(read_accessor(doc, bin_, att["JOINTS_0"]), b.joints)
        w = read_accessor(doc, bin_, att["WEIGHTS_0"])
        assert np.allclose(w.sum(1), 1.0, atol=1e-6)
        # every body vertex samples the flat colour swatch of its region
        uv = read_accessor(doc, bin_, att["TEXCOORD_0"])
        want = np.stack([atlas.swatch_uv(r) for r in REGIONS])[b.regions]
        assert np.abs(uv - want).max() <= 1 / 65535 + 1e-9, o


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
    assert "VRMC_vrm" not in doc.get("extensionsRequired", [])  # a plain glTF loader still opens it
    v = doc["extensions"]["VRMC_vrm"]
    assert v["specVersion"] == "1.0"
    meta = v["meta"]
    assert meta["name"] == "chibi-7" and meta["authors"] and meta["licenseUrl"] == "https://vrm.dev/licenses/1.0/"
    assert meta["creditNotation"] == "required" and "CC BY 4.0" in meta["thirdPartyLicenses"]
    assert meta["extras"]["chibi_meta"]["seed"] == 7
    assert doc["images"][meta["thumbnailImage"]]["mimeType"] == "image/png"
    bones = v["humanoid"]["humanBones"]
    assert set(bones) == set(names.HUMANOID)
    for b, ref in bones.items():
        assert doc["nodes"][ref["node"]]["name"] == names.HUMANOID[b]
    # expressions (whatever this stage provides) bind existing morph targets of mesh nodes
    for e in v["expressions"]["preset"].values():
        for bind in e["morphTargetBinds"]:
            node = doc["nodes"][bind["node"]]
            targets = doc["meshes"][node["mesh"]]["primitives"][0].get("targets", [])
            assert 0 <= bind["index"] < len(targets)
    assert v["lookAt"]["type"] == "expression"
    fp = {a["node"]: a["type"] for a in v["firstPerson"]["meshAnnotations"]}
    by_name = {doc["nodes"][n]["name"]: t for n, t in fp.items()}
    assert by_name == {"AvatarBody": "auto", "AvatarHead": "thirdPersonOnly"}  # the head is hidden in first person


def test_file_size_budget(face):
    img, attrs = face
    sizes = [len(build_avatar(img, {**attrs, "outfit": o}, texture_size=256, texture_format="png")) for o in OUTFITS]
    print(f"GLB at 256 px PNG: {[s // 1024 for s in sizes]} KiB")
    assert max(sizes) <= 768 * 1024  # body ~300 KiB + head ~200 KiB + atlas


def _sample(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    s = img.shape[0]
    return img[np.clip((uv[..., 1] * s).astype(int), 0, s - 1), np.clip((uv[..., 0] * s).astype(int), 0, s - 1)]


def test_atlas_regions(face):
    """What each part of the mesh samples: the swatches carry the flat colours, the front region is
    the drawing itself, the back region is hair at the crown."""
    from chibi_meta.data.attributes import hair_rgb, skin_rgb

    img, attrs = face
    h = procedural.avatar_head(img)
    a = atlas.compose_head(img, attrs, 256, h.mask)
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    cols = atlas.colours(img, attrs)
    for name in atlas.SWATCHES:
        assert tuple(_sample(a, atlas.swatch_uv(name))) == tuple(cols[name]), name
    assert cols["hair"] == hair_rgb(attrs) and cols["skin"] == skin_rgb(attrs)
    # front: at 256 px the drawing at its native 128 px, opaque pixels unchanged
    yy, xx = np.mgrid[0:128, 0:128]
    uv = np.stack([(xx.ravel() + 0.5) / 128, (yy.ravel() + 0.5) / 128], 1)
    front = _sample(a, atlas.head_uv(uv, np.zeros(len(uv), bool))).reshape(128, 128, 3)
    solid = img[..., 3] == 255
    assert np.array_equal(front[solid], img[..., :3][solid])
    # back: mostly the hair colour at the top of the head
    back = _sample(a, atlas.head_uv(uv, np.ones(len(uv), bool))).reshape(128, 128, 3).astype(int)
    crown = h.mask & (yy < 40) & (np.abs(xx - 64) < 20)
    assert crown.sum() > 50
    near_hair = np.abs(back[crown] - np.array(cols["hair"])).sum(1) < 90
    assert near_hair.mean() > 0.7, near_hair.mean()
    # without known attribute names the colours are measured on the texture
    c = atlas.colours(img, {})
    assert np.abs(np.subtract(c["skin"], skin_rgb(attrs))).max() < 40


@pytest.mark.parametrize("seed", [15, 40004, 40007])
def test_long_hair_hangs_behind_the_face_as_one_curtain(seed):
    """Long hair (reaching the chin on both sides of the face) covers the whole back of the head down
    to its strands' length: no column of skin down the middle (as before, where the face was as wide
    as the hairline window); short hair keeps skin at the nape."""
    from chibi_meta.gan.api import TextureGenerator

    gen = TextureGenerator.load()
    attrs = gen.resolve(seed, {"hair_style": "long05"} if seed != 15 else None)
    assert attrs["hair_style"].startswith("long")
    tex = gen.generate([seed], [attrs])[0]
    h = procedural.avatar_head(tex)
    cols = atlas.colours(tex, attrs)
    back = atlas.back_image(tex, h.mask, cols["hair"], cols["skin"]).astype(int)
    skin = h.mask & (np.abs(back - np.array(cols["skin"])).sum(-1) < 40)
    rows = slice(int(atlas.NAPE_IMG * 128) - 20, int(atlas.CHIN_IMG[1] * 128) - 4)  # around the nape, to the chin
    assert skin[rows, 44:84].sum() == 0, np.flatnonzero(skin[rows, 44:84].any(0)) + 44
    short = gen.resolve(seed, {"hair_style": "short01"})
    tex = gen.generate([seed], [short])[0]
    h = procedural.avatar_head(tex)
    cols = atlas.colours(tex, short)
    back = atlas.back_image(tex, h.mask, cols["hair"], cols["skin"]).astype(int)
    nape = h.mask & (np.abs(back - np.array(cols["skin"])).sum(-1) < 40)
    assert nape[int(atlas.NAPE_IMG * 128) :, 44:84].sum() > 200  # skin below the hairline of short hair


def test_dress_colours_top_and_bottom_alike(face):
    img, attrs = face
    c = atlas.colours(img, {**attrs, "outfit": "dress"})
    assert c["top"] == c["bottom"]
