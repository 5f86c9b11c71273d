"""`chibi-meta tune`: only the chosen values' embedding rows change; bad options fail by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from chibi_meta.gan.api import TextureGenerator, export_generator
from chibi_meta.gan.tune import keep_decision, tuned_rows
from tests.conftest import run_cli

TINY = {"z_dim": 16, "emb_dim": 4, "w_dim": 32, "g_channels": (32, 32, 16, 8), "d_channels": (8, 16, 32, 32)}


@pytest.fixture(scope="module")
def tiny(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chibi_meta.data.store import load_dataset
    from chibi_meta.gan.networks import Generator, NetConfig

    ds = load_dataset(small_dataset)
    torch.manual_seed(0)
    G = Generator(NetConfig.for_resolution(32, ds.schema.sizes, **TINY))
    path = tmp_path_factory.mktemp("m") / "g.safetensors"
    export_generator(path, G, ds.schema, {"attribution": "test"}, half=False)
    return path


def test_tune_moves_only_the_chosen_rows(tiny: Path, small_dataset: Path, tmp_path: Path) -> None:
    before = TextureGenerator.load(tiny)
    eyes = before.schema.names.index("eyes")
    value = before.schema.attributes[eyes].values[3]
    run = tmp_path / "run"
    r = run_cli("tune", "--model", str(tiny), "--data", str(small_dataset), "--values", f"eyes={value}",
                "--out", str(run), "--steps", "3", "--batch", "4", "--classifier-epochs", "0.2",
                "--keep-gain", "-1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    after = TextureGenerator.load(run / "generator.safetensors")
    assert tuned_rows(after.G.state_dict(), before.G.state_dict()) == [(f"embed.tables.{eyes}.weight", 3)]
    report = json.loads((run / "report.json").read_text())
    assert set(report) == {f"eyes={value}"} and report[f"eyes={value}"]["kept"]
    assert all(0 <= report[f"eyes={value}"][k] <= 1 for k in ("tuning_before", "tuning_after", "check_before"))
    others = [n for n in before.schema.names if n != "eyes"]
    assert sorted(report[f"eyes={value}"]["check_others_drop"]) == sorted(others)
    assert json.loads((run / "options.json").read_text())["steps"] == 3
    assert after.meta["tuned_values"] == [f"eyes={value}"] and after.meta["tuned_from"] == before.model_id
    other = before.schema.attributes[eyes].values[4]  # a value that was not tuned draws the same bytes
    seeds = [1, 2, 3]
    for gen_a, gen_b in ((before, after),):
        a = gen_a.generate(seeds, [{"eyes": other}] * 3)
        b = gen_b.generate(seeds, [{"eyes": other}] * 3)
        assert np.array_equal(a, b)
        assert not np.array_equal(gen_a.generate(seeds, [{"eyes": value}] * 3),
                                  gen_b.generate(seeds, [{"eyes": value}] * 3))  # fmt: skip


def test_a_value_the_check_classifier_does_not_confirm_is_reverted(tiny: Path, small_dataset: Path,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    before = TextureGenerator.load(tiny)
    value = before.schema.attributes[before.schema.names.index("mouth")].values[2]
    run = tmp_path / "run"
    r = run_cli("tune", "--model", str(tiny), "--data", str(small_dataset), "--values", f"mouth={value}",
                "--out", str(run), "--steps", "3", "--batch", "4", "--classifier-epochs", "0.2",
                "--keep-gain", "1")  # fmt: skip  (a gain of 100 points: never met)
    assert r.returncode == 0, r.stderr
    assert not json.loads((run / "report.json").read_text())[f"mouth={value}"]["kept"]
    after = TextureGenerator.load(run / "generator.safetensors")
    assert tuned_rows(after.G.state_dict(), before.G.state_dict()) == [] and after.meta["tuned_values"] == []


def test_a_value_that_wins_by_changing_another_attribute_is_reverted() -> None:
    """eyes17 read 4 points more often, but glasses 3.5 points less (the tuned eyes dropped the
    sunglasses that hid them: measured on the shipped model): reverted; within 1 point: kept."""
    names = ["hair_color", "eyes", "glasses"]
    kept, drops = keep_decision([0.99, 0.955, 0.9], [0.99, 0.992, 0.865], 1, names, 0.01, 0.01)
    assert not kept and drops == {"hair_color": 0.0, "glasses": 0.035}
    assert keep_decision([0.99, 0.955, 0.9], [0.985, 0.992, 0.895], 1, names, 0.01, 0.01)[0]
    assert not keep_decision([0.99, 0.955, 0.9], [0.99, 0.96, 0.9], 1, names, 0.01, 0.01)[0]  # gain too small


@pytest.mark.parametrize("args,needle", [
    (["--values", "eyes=eyes01", "--check-images", "0"], "--check-images must be"),
    (["--values", "eyes=eyes99"], "not a value of eyes"),
    (["--values", "ears=x"], "unknown attribute 'ears'"),
    (["--values", "eyes=eyes01", "--steps", "0"], "--steps must be"),
    (["--values", "eyes=eyes01", "--keep-gain", "3"], "--keep-gain must be"),
    (["--values", "eyes=eyes01", "--keep-others", "-0.5"], "--keep-others must be"),
    (["--values", "eyes=eyes01", "--hold", "-1"], "--hold in [0, 100]"),
])  # fmt: skip
def test_tune_refuses_bad_options(tiny: Path, small_dataset: Path, tmp_path: Path, args: list, needle: str) -> None:
    r = run_cli("tune", "--model", str(tiny), "--data", str(small_dataset), "--out", str(tmp_path / "r"), *args)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "r" / "generator.safetensors").exists()
