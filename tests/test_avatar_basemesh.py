"""An artist's own base mesh: loaded as untrusted input, with clear errors for what is missing."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from chibi_meta.avatar import build_avatar, load_base_mesh
from chibi_meta.errors import LimitExceeded, MeshError

dicebear = pytest.importorskip("chibi_meta.data.dicebear")


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


def make_artist_glb(path: Path, mutate=None, extras: bool = True) -> Path:
    """A rigged chibi as an artist would hand it in: our own export, with the face UV rect declared."""
    img, attrs = dicebear.render(21)
    doc, bin_ = split_glb(build_avatar(img, attrs, texture_size=256))
    if extras:
        doc["asset"]["extras"] = {"chibi_meta": {"face_uv_rect": [0.0, 0.0, 0.75, 0.75]}}
    else:
        doc["asset"].pop("extras", None)
    if mutate:
        mutate(doc)
    path.write_bytes(pack_glb(doc, bin_))
    return path


def test_artist_base_roundtrip(tmp_path):
    base = load_base_mesh(make_artist_glb(tmp_path / "artist.glb"))
    assert base.face_rect == (0.0, 0.0, 0.75, 0.75)
    assert {"blink", "happy"} <= set(base.expressions)
    assert base.source.startswith("sha256:")
    img, attrs = dicebear.render(3)
    a = build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base)
    assert a == build_avatar(img, attrs, fmt="vrm", texture_size=256, base=base)
    doc, _ = split_glb(a)
    assert doc["asset"]["extras"]["chibi_meta"]["base_mesh"] == base.source
    assert len(doc["materials"]) == 1


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
        if n.get("name") == "leftFoot":
            n["name"] = "foot"


def _external_uri(doc):
    doc["buffers"][0]["uri"] = "https://example.com/evil.bin"


def _bad_accessor(doc):
    doc["accessors"][0]["count"] = 3000


def _bad_rect(doc):
    doc["asset"]["extras"]["chibi_meta"]["face_uv_rect"] = [0.5, 0.5, 0.2, 2]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (_drop_skin, "no skin"),
        (_drop_uv, "UVs"),
        (_rename_bone, "leftFoot"),
        (_external_uri, "no external"),
        (_bad_accessor, "past the end"),
        (_bad_rect, "face_uv_rect"),
    ],
)
def test_bad_base_meshes(tmp_path, mutate, needle):
    with pytest.raises(MeshError, match=needle):
        load_base_mesh(make_artist_glb(tmp_path / "bad.glb", mutate))


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
