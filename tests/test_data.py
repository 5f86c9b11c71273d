"""The data stage: built-in DiceBear dataset, the user's own art, attribute schemas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chibi_meta.data import store
from chibi_meta.data.attributes import ADVENTURER
from chibi_meta.data.build_dicebear import build
from chibi_meta.data.folder import build_from_folder
from chibi_meta.errors import AttributeNameError, AttributeValueError, DataError
from tests.conftest import run_cli


def test_build_is_labelled_licensed_and_loads(small_dataset: Path) -> None:
    ds = store.load_dataset(small_dataset)
    assert ds.images.shape == (60, 32, 32, 4) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (60, len(ADVENTURER.attributes))
    alpha = ds.images[..., 3]
    assert (alpha == 0).mean() > 0.2 and (alpha == 255).mean() > 0.2  # transparent background, opaque avatar
    assert "Lisa Wischofsky" in (small_dataset / "LICENSE.txt").read_text()
    assert "CC BY 4.0" in ds.meta["license"]["license"]
    # the label is what was drawn: re-rendering image 5 with its label gives the same pixels
    from chibi_meta.data import dicebear

    full = ds.schema.decode(ds.labels[5])
    img, _ = dicebear.render(5, full, size=32)
    assert np.array_equal(img, ds.images[5])


def test_build_is_deterministic_and_resumable(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    build(a, 25, size=32, workers=1, progress=False)
    build(b, 25, size=32, workers=2, progress=False)
    assert (a / "shard-00000.npz").read_bytes() == (b / "shard-00000.npz").read_bytes()
    # a "killed" build: the shard is missing; the rerun renders only that one
    before = json.loads((a / "dataset.json").read_text())["fingerprint"]
    (a / "shard-00000.npz").unlink()
    meta = build(a, 25, size=32, workers=1, progress=False)
    assert meta["fingerprint"] == before
    assert not list(a.glob("*.tmp"))


def test_cli_build_small(tmp_path: Path) -> None:
    r = run_cli("dataset", "build", "--count", "12", "--size", "32", "--out", str(tmp_path / "d"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["count"] == 12
    r = run_cli("dataset", "build", "--style", "nope", "--out", str(tmp_path / "e"))
    assert r.returncode == 2 and "allowed: adventurer" in r.stderr


def _art_folder(tmp_path: Path) -> Path:
    d = tmp_path / "art"
    d.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        Image.new("RGBA", (64, 48), colour + (255,)).save(d / f"ok{i}.png")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(d / "ok3.jpg")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(d / "ok4.webp")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    good = (d / "ok0.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    Image.new("RGBA", (8, 8)).save(d / "tiny.png")
    Image.new("RGBA", (200, 40)).save(d / "banner.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_folder_skips_bad_images_by_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = _art_folder(tmp_path)
    meta = build_from_folder(d, tmp_path / "out", size=32, progress=False)
    assert meta["count"] == 5
    skipped = {s["file"]: s["reason"] for s in json.loads((tmp_path / "out" / "skipped.json").read_text())}
    assert set(skipped) == {"broken.png", "truncated.png", "tiny.png", "banner.png"}
    assert "tiny" in skipped["tiny.png"] and "oddly shaped" in skipped["banner.png"]
    assert "unreadable or truncated" in skipped["truncated.png"]
    assert "broken.png" in caplog.text
    ds = store.load_dataset(tmp_path / "out")
    assert ds.images.shape == (5, 32, 32, 4)
    assert ds.images[0, 0, 16, 3] == 0 and ds.images[0, 16, 16, 3] == 255  # 64x48 padded to a square


def test_folder_labels_csv_and_json(tmp_path: Path) -> None:
    d = _art_folder(tmp_path)
    csv = tmp_path / "labels.csv"
    csv.write_text("file,hair_color,mood\nok0.png,pink,happy\nok1.png,black,sad\nok2.png,pink,sad\n")
    meta = build_from_folder(d, tmp_path / "o1", size=32, labels=csv, progress=False)
    ds = store.load_dataset(tmp_path / "o1")
    assert ds.schema.names == ("hair_color", "mood") and meta["count"] == 3
    assert ds.schema.get("hair_color").values == ADVENTURER.get("hair_color").values  # built-in vocabulary
    js = tmp_path / "labels.json"
    js.write_text(json.dumps({"attributes": {"mood": ["happy", "sad", "calm"]},
                              "labels": {"ok0.png": {"mood": "calm"}, "ok3.jpg": {"mood": "happy"}}}))
    build_from_folder(d, tmp_path / "o2", size=32, labels=js, progress=False)
    assert store.load_dataset(tmp_path / "o2").schema.get("mood").values == ("happy", "sad", "calm")


@pytest.mark.parametrize("content, needle", [
    ("file,hair_color\nmissing.png,pink\n", "not in the folder"),
    ("file,hair_color\nok0.png,chartreuse\n", "unknown hair_color value 'chartreuse'; allowed: black"),
    ("file,mood\nok0.png,\n", "has no value for 'mood'"),
])
def test_folder_bad_labels_fail_at_once(tmp_path: Path, content: str, needle: str) -> None:
    d = _art_folder(tmp_path)
    lab = tmp_path / "labels.csv"
    lab.write_text(content)
    with pytest.raises(DataError, match=needle.replace("(", r"\(")):
        build_from_folder(d, tmp_path / "out", size=32, labels=lab, progress=False)
    assert not (tmp_path / "out" / "dataset.json").exists()
    r = run_cli("dataset", "build", "--images", str(d), "--labels", str(lab), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = run_cli("dataset", "build", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "no usable images" in r.stderr


def test_schema_resolve_is_deterministic_and_independent_per_attribute() -> None:
    a = ADVENTURER.resolve(42)
    assert a == ADVENTURER.resolve(42)
    b = ADVENTURER.resolve(42, {"hair_color": "pink" if a["hair_color"] != "pink" else "black"})
    assert {k: v for k, v in a.items() if k != "hair_color"} == {k: v for k, v in b.items() if k != "hair_color"}
    many = [ADVENTURER.resolve(s)["glasses"] for s in range(2000)]
    assert 0.65 < many.count("none") / 2000 < 0.85


@pytest.mark.parametrize("attrs, exc, needle", [
    ({"hat": "red"}, AttributeNameError, "unknown attribute 'hat'; allowed: hair_color, hair_style"),
    ({"hair_color": "chartreuse"}, AttributeValueError, "allowed: black, blonde"),
    ({"skin": 3}, AttributeValueError, "takes a string, got int"),
])
def test_attribute_errors_name_allowed_values(attrs: dict, exc: type, needle: str) -> None:
    with pytest.raises(exc, match=needle):
        ADVENTURER.resolve(1, attrs)


@pytest.mark.parametrize("seed", [-1, 2**32, "7", 1.5, True])
def test_seed_out_of_range(seed: object) -> None:
    with pytest.raises(AttributeValueError, match=r"seed"):
        ADVENTURER.resolve(seed)  # type: ignore[arg-type]


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset.json is missing"):
        store.load_dataset(tmp_path)
