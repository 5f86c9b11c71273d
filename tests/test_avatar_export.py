"""`chibi-meta export`: batch + manifest, resume after a real kill, shards, one file, bad input -> exit 2."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chibi_meta.avatar import build_avatar
from chibi_meta.avatar.export import face_sheets, open_texture_source, provenance
from chibi_meta.avatar.pack import choose_outfit
from chibi_meta.cli import main

pytest.importorskip("chibi_meta.data.dicebear")
FAST = ["--texture-size", "256", "--texture-format", "jpeg", "--no-progress"]


def manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_dir(out: Path, records: list[dict]) -> None:
    files = sorted(p.name for p in out.iterdir() if p.suffix in (".glb", ".vrm"))
    assert files == sorted(r["file"] for r in records)
    assert len({r["seed"] for r in records}) == len(records)  # no duplicates
    for r in records:
        data = (out / r["file"]).read_bytes()
        assert len(data) == r["bytes"] and hashlib.sha256(data).hexdigest() == r["sha256"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_batch_manifest_and_attrs(tmp_path):
    out = tmp_path / "out"
    rc = main(["export", "--count", "5", "--format", "vrm", "--seed-start", "10", "--attr", "hair_color=pink",
               "--out", str(out), *FAST])  # fmt: skip
    assert rc == 0
    recs = manifest(out / "manifest.jsonl")
    assert [r["seed"] for r in recs] == [10, 11, 12, 13, 14]
    assert all(r["attributes"]["hair_color"] == "pink" and r["file"].endswith(".vrm") for r in recs)
    check_dir(out, recs)
    # the file is exactly what build_avatar gives for that seed, with the texture source export used
    src = open_texture_source()
    attrs = src.resolve(12, {"hair_color": "pink"})
    tex = src.generate([12], [attrs])[0]
    sheet = face_sheets(src, [12], [attrs])[0]  # export draws each avatar's face sheet too
    want = build_avatar(tex, attrs, fmt="vrm", texture_size=256, texture_format="jpeg",
                        provenance=provenance(src, 12, attrs), face_sheet=sheet)  # fmt: skip
    assert (out / "chibi-12.vrm").read_bytes() == want
    # rerun: nothing to do; other settings into the same folder: refused
    assert main(["export", "--count", "5", "--format", "vrm", "--seed-start", "10", "--attr", "hair_color=pink",
                 "--out", str(out), *FAST]) == 0  # fmt: skip
    assert manifest(out / "manifest.jsonl") == recs
    assert main(["export", "--count", "5", "--format", "glb", "--out", str(out), *FAST]) == 2


def test_shards_split_the_work(tmp_path):
    out = tmp_path / "out"
    for i in range(3):
        assert main(["export", "--count", "7", "--shard", f"{i}/3", "--out", str(out), *FAST]) == 0
    recs = [r for i in range(3) for r in manifest(out / f"manifest.shard{i}of3.jsonl")]
    assert sorted(r["seed"] for r in recs) == list(range(7))
    check_dir(out, recs)


def test_resume_after_kill(tmp_path):
    """Kill a real export mid-way (SIGKILL), then resume: complete, no duplicates, no half files."""
    out = tmp_path / "out"
    n = 100  # enough that the kill lands mid-way (after 20 files), few enough for a loaded 2-core machine
    cmd = [sys.executable, "-m", "chibi_meta", "export", "--count", str(n), "--out", str(out), *FAST]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    m = out / "manifest.jsonl"
    deadline = time.time() + 180  # generous: a busy machine may take long to import torch
    while time.time() < deadline and (not m.exists() or m.read_text().count("\n") < 20):
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    n_before = m.read_text().count("\n")
    assert 0 < n_before < n
    # also simulate the worst moments of a kill: a torn manifest line and a stale temp file
    with open(m, "a") as f:
        f.write('{"file":"chibi-9999.glb","se')
    (out / ".chibi-9999.glb.abcd.tmp").write_bytes(b"half")
    assert main([*cmd[3:]]) == 0
    recs = manifest(m)
    assert sorted(r["seed"] for r in recs) == list(range(n))
    check_dir(out, recs)


def test_outfit_attribute(tmp_path):
    """``--attr outfit=X`` dresses every avatar of the batch in X, recorded in the manifest and the files."""
    out = tmp_path / "out"
    assert main(["export", "--count", "3", "--attr", "outfit=hoodie_trousers", "--out", str(out), *FAST]) == 0
    recs = manifest(out / "manifest.jsonl")
    assert [r["attributes"]["outfit"] for r in recs] == ["hoodie_trousers"] * 3
    check_dir(out, recs)
    for r in recs:
        data = (out / r["file"]).read_bytes()
        doc = json.loads(data[20 : 20 + int.from_bytes(data[12:16], "little")])
        assert doc["asset"]["extras"]["chibi_meta"]["attributes"]["outfit"] == "hoodie_trousers"
        assert doc["asset"]["extras"]["chibi_meta"]["base_mesh"] == "procedural:hoodie_trousers"
    # without the attribute each seed draws its own outfit, the same one every time
    out2 = tmp_path / "drawn"
    assert main(["export", "--count", "3", "--out", str(out2), *FAST]) == 0
    drawn = [r["attributes"]["outfit"] for r in manifest(out2 / "manifest.jsonl")]
    assert drawn == [choose_outfit(s) for s in range(3)]


def test_single_file(tmp_path):
    f = tmp_path / "one.vrm"
    assert main(["export", "--seed", "5", "--out", str(f), "--texture-size", "256"]) == 0
    data = f.read_bytes()
    assert data[:4] == b"glTF" and b"VRMC_vrm" in data
    assert main(["export", "--seed", "5", "--out", str(tmp_path / "again.vrm"), "--texture-size", "256"]) == 0
    assert (tmp_path / "again.vrm").read_bytes() == data


def _target_names(data: bytes) -> list[str]:
    doc = json.loads(data[20:20 + int.from_bytes(data[12:16], "little")])
    return [n for m in doc["meshes"] for n in (m.get("extras") or {}).get("targetNames") or []]


def test_morph_targets_option(tmp_path):
    from chibi_meta.avatar import names

    one = tmp_path / "none.glb"
    assert main(["export", "--seed", "5", "--morph-targets", "none", "--out", str(one), *FAST[:4]]) == 0
    assert _target_names(one.read_bytes()) == []
    vis = tmp_path / "oculus.glb"
    assert main(["export", "--seed", "5", "--morph-targets", "oculus", "--out", str(vis), *FAST[:4]]) == 0
    assert set(_target_names(vis.read_bytes())) == set(names.OCULUS_VISEMES)
    src = open_texture_source()
    attrs = src.resolve(5, None)
    tex = src.generate([5], [attrs])[0]
    full = {**attrs, "outfit": choose_outfit(5)}
    sheet = face_sheets(src, [5], [attrs])[0]
    want = build_avatar(tex, full, fmt="glb", texture_size=256, texture_format="jpeg",
                        provenance=provenance(src, 5, full), face_sheet=sheet, morph_targets=["oculus"])  # fmt: skip
    assert vis.read_bytes() == want
    # a batch records its choice; a rerun must make the same one (in any order), else it is refused
    out = tmp_path / "batch"
    assert main(["export", "--count", "2", "--morph-targets", "arkit,vrm", "--out", str(out), *FAST]) == 0
    assert json.loads((out / "export.json").read_text())["morph_targets"] == ["vrm", "arkit"]
    recs = manifest(out / "manifest.jsonl")
    assert all(set(_target_names((out / r["file"]).read_bytes())) == set(names.MORPH_SETS["vrm"])
               | set(names.MORPH_SETS["arkit"]) for r in recs)  # fmt: skip
    assert main(["export", "--count", "2", "--morph-targets", "vrm,arkit", "--out", str(out), *FAST]) == 0
    assert manifest(out / "manifest.jsonl") == recs
    for other in ([], ["--morph-targets", "none"], ["--morph-targets", "vrm"]):
        assert main(["export", "--count", "2", *other, "--out", str(out), *FAST]) == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--count", "3", "--format", "fbx"], "allowed: glb, vrm"),
        (["--count", "3", "--texture-size", "300"], "allowed: 256, 512, 1024"),
        (["--count", "3", "--texture-format", "gif"], "allowed: png, jpeg, webp"),
        (["--count", "3", "--shard", "3/3"], "malformed shard"),
        (["--count", "3", "--shard", "a/b"], "malformed shard"),
        (["--count", "0"], "--count"),
        (["--count", "3", "--attr", "hair_color"], "key=value"),
        (["--count", "3", "--attr", "hat=red"], "unknown attribute"),
        (["--count", "3", "--attr", "outfit=cape"], "allowed: tshirt_shorts, hoodie_trousers, dress"),
        (["--seed", "2", "--attr", "outfit=Dress"], "allowed: tshirt_shorts, hoodie_trousers, dress"),
        (["--seed", "-1"], "seed"),
        (["--count", "3", "--seed", "1"], "either"),
        (["--count", "3", "--morph-targets", "visemes"], "allowed: vrm, oculus, arkit, none"),
        (["--seed", "1", "--morph-targets", "vrm,none"], "allowed: vrm, oculus, arkit, none"),
        (["--seed", "1", "--morph-targets", ","], "allowed: vrm, oculus, arkit, none"),
    ],
)
def test_bad_input_exit_2(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    if "--seed" in args and "--count" not in args:
        out = tmp_path / "out.glb"
    assert main(["export", *args, "--out", str(out), "--no-progress"]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()  # nothing half-written


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", "--count", "2", "--out", str(blocker / "sub"), *FAST]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["export", "--count", "2", "--out", str(blocker), *FAST]) == 2
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # as root, permissions do not stop us: the cases above cover it
            assert main(["export", "--count", "2", "--out", str(ro), *FAST]) == 2
            assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_bad_base_mesh_exit_2(tmp_path, capsys):
    from test_avatar_basemesh import make_artist_glb

    def no_skin(doc):
        doc.pop("skins")
        for n in doc["nodes"]:
            n.pop("skin", None)

    bad = make_artist_glb(tmp_path / "bad.glb", no_skin)
    out = tmp_path / "out"
    assert main(["export", "--count", "2", "--base-mesh", str(bad), "--out", str(out), *FAST]) == 2
    assert "no skin" in capsys.readouterr().err
    assert not out.exists()
    good = make_artist_glb(tmp_path / "good.glb", extras=False)
    assert main(["export", "--count", "2", "--base-mesh", str(good), "--out", str(out), *FAST]) == 2
    assert "face's UV rectangle" in capsys.readouterr().err
    assert not out.exists()
    good = make_artist_glb(tmp_path / "good2.glb")
    assert main(["export", "--count", "2", "--base-mesh", str(good), "--out", str(out), *FAST]) == 0
    assert len(manifest(out / "manifest.jsonl")) == 2


def test_generator_is_preferred_when_its_model_exists(tmp_path):
    """With a generator model file, textures come from TextureGenerator (a tiny untrained one here)."""
    torch = pytest.importorskip("torch")
    api = pytest.importorskip("chibi_meta.gan.api")
    from chibi_meta.data.attributes import ADVENTURER
    from chibi_meta.gan.networks import Generator, NetConfig

    torch.manual_seed(0)
    cfg = NetConfig(resolution=128, z_dim=16, emb_dim=8, w_dim=32, g_channels=(32, 32, 16, 16, 8, 8),
                    d_channels=(8, 8, 16, 16, 32, 32), attr_sizes=ADVENTURER.sizes)  # fmt: skip
    model = tmp_path / "tiny.safetensors"
    api.export_generator(model, Generator(cfg), ADVENTURER, {"attribution": "tiny test model", "name": "tiny"})
    out = tmp_path / "out"
    assert main(["export", "--count", "2", "--model", str(model), "--out", str(out), *FAST]) == 0
    settings = json.loads((out / "export.json").read_text())
    assert settings["model_id"].startswith("chibi-")
    check_dir(out, manifest(out / "manifest.jsonl"))
    assert main(["export", "--count", "2", "--model", str(tmp_path / "nope.safetensors"), "--out",
                 str(tmp_path / "o2"), *FAST]) == 2  # fmt: skip


def test_resume_redoes_deleted_files_without_duplicates(tmp_path):
    out = tmp_path / "out"
    args = ["export", "--count", "4", "--out", str(out), *FAST]
    assert main(args) == 0
    (out / "chibi-1.glb").unlink()
    assert main(args) == 0
    recs = manifest(out / "manifest.jsonl")
    assert sorted(r["seed"] for r in recs) == [0, 1, 2, 3]
    check_dir(out, recs)
