"""The bench/ scripts run and print their figures (tiny sizes: this checks that they work, not speed)."""

from __future__ import annotations

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


def test_export_speed_prints_rates() -> None:
    out = _bench("bench/export_speed.py", "--n", "4", "--formats", "png", "--model", str(small_model_path()))
    assert "/s" in out and "KB" in out


def test_load_prints_median_lines(tmp_path: Path) -> None:
    out = _bench("bench/load.py", "--model", str(small_model_path()), "--scenarios", "miss1,hit", "--requests", "3",
                 "--repeat", "2", "--json", str(tmp_path / "r.json"), "--server-log", str(tmp_path / "srv.log"))
    assert out.count("MEDIAN of 2") == 2 and "conditions:" in out
    assert (tmp_path / "r.json").stat().st_size > 0
