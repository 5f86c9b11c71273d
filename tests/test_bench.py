"""The bench/ scripts run and print their figures (tiny sizes: this checks that they work, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.bridge_support import ROOT, small_model_path


def _bench(*args: str, timeout: int = 300) -> str:
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_train_speed_prints_both_models() -> None:
    out = _bench("bench/train_speed.py", "--res", "32", "--batch", "4", "--steps", "5")
    assert "chibi_meta" in out and "plain DCGAN" in out and "train img/s" in out


def test_export_speed_prints_split_rates_and_ratio() -> None:
    out = _bench("bench/export_speed.py", "--n", "2", "--repeat", "2", "--passes", "2", "--formats", "png,webp",
                 "--sizes", "256", "--outfit", "dress", "--model", str(small_model_path()))
    assert "RATIO head / generator" in out and "issue 8 target <= 1.5" in out
    assert "RATIO with face sheet / neutral" in out and "issue 9 target <= 2.5" in out
    split = next(line for line in out.splitlines() if line.lstrip().startswith("generate "))
    for stage in ("face sheet", "head", "body+rig", "atlas", "encode"):
        assert stage in split
    rows = [line.split() for line in out.splitlines() if line.startswith(("glb ", "vrm "))]
    assert [r[:3] for r in rows] == [["glb", "256", "png"], ["glb", "256", "webp"], ["vrm", "256", "png"],
                                     ["vrm", "256", "webp"]]  # fmt: skip


def test_load_prints_offline_median_and_summary_lines(tmp_path: Path) -> None:
    out = _bench("bench/load.py", "--model", str(small_model_path()), "--scenarios", "offline,miss1,hit",
                 "--requests", "3", "--repeat", "2", "--offline-n", "4", "--offline-single", "2",
                 "--json", str(tmp_path / "r.json"), "--server-log", str(tmp_path / "srv.log"))
    assert out.count("MEDIAN of 2") == 3 and "conditions:" in out
    assert "SUMMARY" in out and "miss1 p50 / offline one-at-a-time p50" in out and "cache hit p50" in out
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [r["scenario"] for r in results].count("offline") == 2


def test_face_choice_prints_a_row_per_value_and_marks_the_one_in_use() -> None:
    from chibi_meta.avatar import faces

    out = _bench("bench/face_choice.py", "--seeds", "20000:20003", "--states", "lookUp,aa")
    rows = [line.split() for line in out.splitlines() if line.startswith(("lookUp ", "aa "))]
    assert {r[2].rstrip(":") for r in rows if r[0] == "aa"} == set(faces.READS_AS["aa"]["mouth"])
    in_use = faces.VARIANTS[faces.STATES["mouthAa"]["mouth"]]["mouth"]
    assert [r[2].rstrip(":") for r in rows if r[-1] == "*" and r[0] == "aa"] == [in_use]
    assert rows and all("reads as the state" in " ".join(r) for r in rows)
