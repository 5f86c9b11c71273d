"""`chibi-meta redraw`: DiceBear pairs show only the value's own pixels; a run changes the weights,
checks them, resumes after a kill; bad options and datasets fail by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from chibi_meta.data.attributes import ADVENTURER
from chibi_meta.data.store import load_dataset
from chibi_meta.gan.api import TextureGenerator
from chibi_meta.gan.metrics import off_hue_pixels
from chibi_meta.gan.modelcard import model_card
from chibi_meta.gan.redraw import PAIR_DIFF, dicebear_pair, parse_weights, render_pairs, sample_pairs
from tests.conftest import run_cli
from tests.test_gan_tune import tiny  # noqa: F401  (the fixture: a small untrained generator)

FAST = ("--pairs", "12", "--batch", "2", "--classifier-epochs", "0.2", "--check-images", "8", "--workers", "1")


def test_pairs_differ_from_the_image_only_inside_the_mask(small_dataset: Path) -> None:
    ds = load_dataset(small_dataset)
    p = render_pairs(ds, ("eyes", "mouth", "glasses"), 24, seed=3, workers=1)
    assert p["image"].shape == (24, ds.size, ds.size, 4) and p["mask"].shape == (24, ds.size, ds.size)
    cols = {ds.schema.names.index(a) for a in ("eyes", "mouth", "glasses")}
    assert set(p["col"].tolist()) == cols and (p["row"] < len(ds) - len(ds) // 5).all()  # training rows only
    changed = 0
    for k in range(24):
        own = ds.images[p["row"][k]].astype(int)
        diff = np.abs(p["image"][k].astype(int) - own).max(-1)
        assert (diff[~p["mask"][k]] <= PAIR_DIFF).all()  # outside the footprint: the same drawing
        if ds.labels[p["row"][k], p["col"][k]] != p["value"][k]:
            assert p["mask"][k].any() and diff[p["mask"][k]].max() > PAIR_DIFF
            changed += 1
    assert changed >= 12


def test_off_hue_counts_a_tint_the_drawing_lacks_and_nothing_else() -> None:
    """mouth10 (pressed lips: a dark brown line) in its footprint: the drawing itself, a darker copy
    and a cooler white have no off-hue pixel, nor has a one-pixel fringe; a green blob on the line
    counts, every pixel of it."""
    mouths = next(a.values for a in ADVENTURER.attributes if a.name == "mouth")
    real, mask = dicebear_pair((128, 5, "mouth", mouths.index("mouth10"), 0, 29))
    assert mask.sum() > 50 and off_hue_pixels(real, real, mask) == 0
    assert off_hue_pixels((real * 0.7).astype(np.uint8), real, mask) == 0  # shading keeps the hue
    cool = real.astype(int)
    cool[..., 2] += 6  # bluish greys and whites: too little saturation to count
    assert off_hue_pixels(np.clip(cool, 0, 255).astype(np.uint8), real, mask) == 0
    ys, xs = np.nonzero(mask & (real[..., :3].astype(int).sum(-1) < 200))  # the line's dark pixels
    y, x = ys[len(ys) // 2], xs[len(xs) // 2]
    green = (60, 120, 70)  # the green the shipped generator drew on that line (docs/gan.md)
    fringe = real.copy()
    fringe[y, x, :3] = green
    assert off_hue_pixels(fringe, real, mask) == 0
    blob = real.copy()
    blob[y - 1 : y + 2, x - 1 : x + 2, :3] = green  # 3 x 3
    assert off_hue_pixels(blob, real, mask) == int(mask[y - 1 : y + 2, x - 1 : x + 2].sum()) >= 3


def test_weights_oversample_the_named_values(small_dataset: Path) -> None:
    ds = load_dataset(small_dataset)
    eyes = ds.schema.attributes[ds.schema.names.index("eyes")]
    w = parse_weights(f"eyes={eyes.values[3]}:{len(eyes.values) - 1}", ds.schema)
    assert w == {("eyes", 3): len(eyes.values) - 1}
    jobs = sample_pairs(ds, ("eyes", "mouth"), 4000, seed=1, weights=w)
    picked = [j[3] for j in jobs if j[2] == "eyes"]
    share = picked.count(3) / len(picked)  # weight k-1 among k-1 others of weight 1: one half
    assert 0.45 < share < 0.55 and 1700 < len(picked) < 2300
    plain = [j[3] for j in sample_pairs(ds, ("eyes",), 4000, seed=1) if j[2] == "eyes"]
    assert 0.5 / len(eyes.values) < plain.count(3) / len(plain) < 2 / len(eyes.values)
    assert sample_pairs(ds, ("eyes",), 50, seed=2, weights=w) == sample_pairs(ds, ("eyes",), 50, seed=2, weights=w)


def test_redraw_changes_the_weights_reports_and_resumes(tiny: Path, small_dataset: Path,  # noqa: F811
                                                        tmp_path: Path) -> None:  # fmt: skip
    run = tmp_path / "run"
    r = run_cli("redraw", "--model", str(tiny), "--data", str(small_dataset), "--out", str(run), "--steps", "2",
                "--checkpoint-every", "1", *FAST)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads((run / "report.json").read_text())
    names = TextureGenerator.load(tiny).schema.names
    assert report["steps"] == 2 and sorted(report["check_drop"]) == sorted(names)
    assert all(0 <= report["check_before"][n] <= 1 and 0 <= report["check_after"][n] <= 1 for n in names)
    assert isinstance(report["accepted"], bool)
    assert json.loads((run / "options.json").read_text())["steps"] == 2
    before, after = TextureGenerator.load(tiny), TextureGenerator.load(run / "generator.safetensors")
    assert after.meta["redrawn_from"] == before.model_id and after.meta["attribution"] == "test"
    changed = [k for k, v in after.G.state_dict().items() if not torch.equal(v, before.G.state_dict()[k])]
    assert any(k.startswith("blocks.") for k in changed)  # the network itself, not only embeddings
    # Again without --resume: refused (a run is there); with it: goes on from step 2, same pairs.
    again = run_cli("redraw", "--model", str(tiny), "--data", str(small_dataset), "--out", str(run), *FAST)
    assert again.returncode == 2 and "--resume" in again.stderr
    pairs = (run / "pairs.npz").read_bytes()
    r = run_cli("redraw", "--model", str(tiny), "--data", str(small_dataset), "--out", str(run), "--steps", "3",
                "--resume", *FAST)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "report.json").read_text())["steps"] == 3 and (run / "pairs.npz").read_bytes() == pairs
    # A redraw of the redrawn model: its metadata (and card) lists both runs, in order.
    first = TextureGenerator.load(run / "generator.safetensors")
    r = run_cli("redraw", "--model", str(run / "generator.safetensors"), "--data", str(small_dataset),
                "--out", str(tmp_path / "run2"), "--steps", "1", "--weights", "eyes=eyes11:3", "--inside", "4",
                *FAST)  # fmt: skip
    assert r.returncode == 0, r.stderr
    second = TextureGenerator.load(tmp_path / "run2" / "generator.safetensors")
    assert second.meta["redraw_history"] == [
        {"from": before.model_id, "attrs": ["eyes", "mouth"], "steps": 3, "pairs": 12},
        {"from": first.model_id, "attrs": ["eyes", "mouth"], "steps": 1, "pairs": 12, "weights": "eyes=eyes11:3",
         "inside": 4.0}]
    card = model_card(second, {})
    assert card.count("- Then `chibi-meta redraw`") == 2 and "pairs weighted eyes=eyes11:3, inside weight 4" in card


@pytest.mark.parametrize(("args", "needle"), [
    (["--attrs", "hair_color"], "allowed: eyes, mouth"),
    (["--attrs", ""], "allowed: eyes, mouth"),
    (["--steps", "0"], "--steps must be an integer in [1, "),
    (["--lr", "0"], "--lr must be in [0, 1] and > 0"),
    (["--anchor", "-1"], "--anchor must be in [0, 100]"),
    (["--inside", "0"], "--inside must be in [0, 100] and > 0"),
    (["--keep-others", "2"], "--keep-others must be in [0, 1]"),
    (["--model", "/nonexistent.safetensors"], "no such file"),
    (["--weights", "eyes=eyes11"], "takes ATTR=VALUE:WEIGHT with a weight in (0, 100]"),
    (["--weights", "eyes=eyes11:0"], "takes ATTR=VALUE:WEIGHT with a weight in (0, 100]"),
    (["--weights", "eyes=eyes11:nan"], "takes ATTR=VALUE:WEIGHT with a weight in (0, 100]"),
    (["--weights", "hair_color=blonde:2"], "'hair_color' is not redrawn; allowed: eyes, mouth"),
    (["--weights", "eyes=eyes99:2"], "'eyes99' is not a value of eyes; allowed: eyes01"),
    (["--attrs", "eyes", "--weights", "mouth=mouth10:2"], "--weights names mouth, which --attrs eyes does not"),
])  # fmt: skip
def test_redraw_refuses_bad_options(tiny: Path, small_dataset: Path, tmp_path: Path,  # noqa: F811
                                    args: list, needle: str) -> None:  # fmt: skip
    base = ["redraw", "--model", str(tiny), "--data", str(small_dataset), "--out", str(tmp_path / "r")]
    r = run_cli(*base, *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert not (tmp_path / "r").exists()


def test_redraw_refuses_a_dataset_without_a_renderer(tiny: Path, small_dataset: Path,  # noqa: F811
                                                     tmp_path: Path) -> None:  # fmt: skip
    own = tmp_path / "own"
    shutil.copytree(small_dataset, own)
    meta = json.loads((own / "dataset.json").read_text())
    meta["source"] = "folder"
    (own / "dataset.json").write_text(json.dumps(meta))
    r = run_cli("redraw", "--model", str(tiny), "--data", str(own), "--out", str(tmp_path / "r"), "--steps", "1",
                *FAST)  # fmt: skip
    assert r.returncode == 2 and "only a DiceBear adventurer dataset" in r.stderr, r.stderr
