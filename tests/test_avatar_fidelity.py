"""chibi_meta.avatar.fidelity (``chibi-meta eval --avatars N``): the unlit front of the head is framed
pixel for pixel onto the texture, the figures are computed from the eval classifier's readings, and
bad arguments are one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from chibi_meta.avatar import fidelity
from chibi_meta.errors import UsageError
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = ROOT / "tests" / "data" / "eval_classifier.safetensors"


def _classifier() -> object:
    from chibi_meta.gan import checkpoint
    from chibi_meta.gan.metrics import Classifier

    tensors, meta = checkpoint.load(CLASSIFIER)
    clf = Classifier(tuple(meta["sizes"]))
    clf.load_state_dict(tensors)
    return clf.eval()


def test_iou_and_box() -> None:
    a = np.zeros((2, 4, 4), bool)
    b = a.copy()
    a[0, :2], b[0, :, :2] = True, True  # 4 shared of 12
    assert fidelity.iou(a, b).tolist() == [pytest.approx(4 / 12), 1.0]  # both empty: 1
    x0, y0, x1, y1 = fidelity.texture_box()
    assert x1 - x0 == pytest.approx(0.5) and y1 - y0 == pytest.approx(0.5)  # 128 px at PX
    assert fidelity.chin_row(128) == 102
    with pytest.raises(UsageError, match=r"\[1, "):
        fidelity.check_count(0)


def test_dicebear_avatars_are_their_textures(tmp_path: Path) -> None:
    """Real DiceBear art through the bridge's packaging: the head's unlit front has the texture's
    silhouette and colours at the same pixels, and the classifier reads it as it reads the texture."""
    from chibi_meta.avatar import atlas
    from chibi_meta.avatar.export import DicebearSource
    from chibi_meta.data import attributes

    source = DicebearSource()
    ds = SimpleNamespace(schema=attributes.ADVENTURER, root=str(tmp_path))
    res = fidelity.evaluate_avatars(source, ds, 6, seed=3, classifier=_classifier(), save_dir=tmp_path, save=2)
    assert res["avatars"] == 6
    assert res["iou_mean"] >= 0.97 and res["iou_min"] >= 0.95, res
    for a in ("hair_color", "hair_style", "skin", "eyes", "mouth", "glasses"):
        assert {f"acc_texture/{a}", f"acc_3d/{a}", f"ratio_3d/{a}", f"agree/{a}"} <= set(res)
    assert res["agree/skin"] == 1.0 and res["agree/hair_color"] >= 5 / 6, res
    assert sorted(p.name for p in tmp_path.glob("seed-*.png"))  # side-by-side PNGs written
    json.dumps(res)  # the CLI prints it
    # pixel for pixel: the render's colours are the texture's front image where both are solid
    fr = fidelity.render_fronts(source, [3])
    tex, head = fr.textures[0], fr.heads[0]
    solid = (tex[..., 3] >= 250) & (head[..., 3] >= 250)
    diff = np.abs(head[..., :3].astype(int) - atlas.front_image(tex).astype(int))[solid].mean()
    assert diff < 12, diff
    shifted = np.abs(head[:, 1:, :3].astype(int) - atlas.front_image(tex)[:, :-1].astype(int))[solid[:, 1:]].mean()
    assert shifted > diff * 1.5, (diff, shifted)  # a one-pixel shift is clearly worse: the framing is exact


def test_cli_bad_arguments_exit_2(tmp_path: Path) -> None:
    r = run_cli("eval", "--avatars", "0", "--data", str(tmp_path))
    assert r.returncode == 2 and "--avatars" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = run_cli("eval", "--renders", str(tmp_path / "r"), "--data", str(tmp_path))
    assert r.returncode == 2 and "--renders needs --avatars" in r.stderr, r.stderr
