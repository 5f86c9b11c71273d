"""Issue 9, expressions on the 3D head: every VRM preset expression at weight 1 changes pixels only
inside its own eye/mouth regions of the front view, and the eval classifier reads the intended
state there (closed eyes for blink, the matching wink for blinkLeft/blinkRight, an open mouth for
aa, ...): a value of ``faces.READS_AS[expression]`` for each of its attributes. The share that reads
as the exact variant value drawn is printed beside it.

Over N_AVATARS avatars of the shipped model, made as the bridge makes them (face sheets, every
morph-target set, VRM), each loaded by three-vrm in headless Chromium (``tests/js/expressions.mjs``):
the head node rendered unlit and orthographic onto the texture square, once neutral and once per
expression set to 1 through ``expressionManager.setValue`` (three-vrm applies the file's own
VRMC_vrm morphTargetBinds). three-vrm's neutral view is the drawing itself (mean difference 0.3 /
255); the Python renderer is checked against it on PYTHON_AVATARS of them.

The eval classifier is the one ``chibi-meta eval --data data/adventurer128`` trains and caches
(``data/adventurer128/classifier.safetensors``), shipped as ``tests/data/eval_classifier.safetensors``
so that the test does not need the 40 000-image dataset (refresh it by copying that file after
retraining). The shares per expression are printed (run with ``-s``) and are in docs/avatar.md.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chibi_meta.avatar import faces, fidelity
from chibi_meta.avatar.names import VRM_PRESETS

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = ROOT / "tests" / "data" / "eval_classifier.safetensors"
JS = ROOT / "tests" / "js"
N_AVATARS = 100
SEED0 = 9000  # seeds SEED0 .. SEED0 + N_AVATARS - 1
PYTHON_AVATARS = 3
TARGET = 0.90  # the target per expression
# Expressions measured below it are held to FLOOR instead (none since model chibi-5f566141495c;
# chibi-5f95cd5cbd5c, seeds 9000-9099: all 17 read 93-100 %; angry was 89 % before the redraw
# fine-tune, docs/avatar.md).
BELOW_TARGET: frozenset[str] = frozenset()
FLOOR = 0.85
# The DiceBear art of the same seeds, made into avatars the same way, reads as each state on 92-100 %
# of them (the misses: the 5 avatars in opaque sunglasses, glasses01; for blink 4 more, 3 of them in
# long20, whose hair covers one eye); below this the pipeline broke.
REAL_MIN = 0.90
# A shown patch sits exactly on its faces.PARTS box in the front view (it moves along +Z); the 1 px
# ring around the boxes is still allowed to change (antialiasing of the patch's edge).
MARGIN_PX = 1
EXPRESSIONS = tuple(e for e in VRM_PRESETS if e != "neutral")
# DiceBear adventurer eyes21 closes the drawing's right-hand eye (the avatar's left, faces.PARTS
# "eyeL") and eyes22 the other one (rendered and looked at); eyes20 closes both.
CLOSES = {"eyeL": "eyes21", "eyeR": "eyes22"}
CLOSED = "eyes20"


def drawn(expression: str) -> dict[str, str]:
    """The exact eyes / mouth values an expression's patches come from (faces): eyes drawn from one
    variant are its eyes value (a wink: the wink variant's pair of eyes); eyes from two variants
    that each close that eye are both closed (eyes20)."""
    uses: dict[str, int] = {p: v for p, v, _ in faces.TARGETS[expression]}
    out = {}
    if "mouth" in uses:
        out["mouth"] = faces.VARIANTS[uses["mouth"]]["mouth"]
    eyes = {p: faces.VARIANTS[v]["eyes"] for p, v in uses.items() if p != "mouth"}
    if len(set(eyes.values())) == 1:
        out["eyes"] = next(iter(eyes.values()))
    elif eyes:
        assert all(value in (CLOSED, CLOSES[p]) for p, value in eyes.items()), f"{expression}: {eyes}"
        out["eyes"] = CLOSED
    return out


def region_mask(expression: str, margin: int = 0) -> np.ndarray:
    """(128, 128) True inside the faces.PARTS boxes of the parts ``expression``'s targets use, each
    grown by ``margin`` pixels."""
    m = np.zeros((128, 128), bool)
    for part in {p for p, _, _ in faces.TARGETS[expression]}:
        y0, y1, x0, x1 = faces.PARTS[part]
        m[max(y0 - margin, 0) : y1 + margin, max(x0 - margin, 0) : x1 + margin] = True
    return m


def expression_morphs(data: bytes) -> dict[str, dict[str, float]]:
    """Per VRM preset expression of a VRM file: {morph target name: weight} from its morphTargetBinds."""
    from chibi_meta.avatar.skinning import split_glb

    doc, _ = split_glb(data)
    out = {}
    for name, e in doc["extensions"]["VRMC_vrm"]["expressions"]["preset"].items():
        w = {}
        for b in e.get("morphTargetBinds", []):
            mesh = doc["meshes"][doc["nodes"][b["node"]]["mesh"]]
            w[mesh["extras"]["targetNames"][b["index"]]] = float(b["weight"])
        out[name] = w
    return out


def load_eval_classifier(path: Path = CLASSIFIER) -> object:
    from chibi_meta.gan import checkpoint
    from chibi_meta.gan.metrics import Classifier

    tensors, meta = checkpoint.load(path)
    clf = Classifier(tuple(meta["sizes"]))
    clf.load_state_dict(tensors)
    return clf.eval()


def render_three_vrm(files: list[bytes], out_dir: Path, names: tuple[str, ...]) -> np.ndarray:
    """(len(names), N, 128, 128, 4) straight-alpha RGBA: each VRM file's head rendered by three-vrm
    in headless Chromium (``tests/js/expressions.mjs``), neutral (``names[0]``) and with each
    expression of ``names[1:]`` set to 1 through ``expressionManager.setValue``."""
    from chibi_meta.avatar.render import _unpremultiply

    assert shutil.which("node"), "node is not installed (.ci/run installs it)"
    assert (JS / "node_modules" / "@pixiv" / "three-vrm").is_dir(), "npm ci --prefix tests/js first"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, data in enumerate(files):
        p = out_dir / f"a{i}.vrm"
        p.write_bytes(data)
        paths[p.name] = str(p)
    spec = {"files": paths, "out_dir": str(out_dir), "size": 128, "box": list(fidelity.texture_box()),
            "exprs": list(names[1:])}  # fmt: skip
    (out_dir / "spec.json").write_text(json.dumps(spec))
    r = subprocess.run(["node", str(JS / "expressions.mjs"), str(out_dir / "spec.json")], capture_output=True,
                       text=True, timeout=900, cwd=JS)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    for line in r.stdout.splitlines():
        info = json.loads(line)
        assert info["ok"] and not info["errors"], info
        assert set(names[1:]) <= set(info["expressions"]), info["expressions"]
    out = np.zeros((len(names), len(files), 128, 128, 4), np.uint8)
    for k, e in enumerate(names):
        for i in range(len(files)):
            raw = (out_dir / f"a{i}.vrm.{e}.rgba").read_bytes()
            out[k, i] = _unpremultiply(np.frombuffer(raw, np.uint8).reshape(128, 128, 4))
    return out


def measure(source: object, out_dir: Path) -> dict:
    """Avatars of ``source`` (seeds SEED0..), their neutral and per-expression three-vrm renders and
    the classifier's readings."""
    from chibi_meta.data import attributes
    from chibi_meta.gan.metrics import predict

    seeds = list(range(SEED0, SEED0 + N_AVATARS))
    attrs, textures, files = fidelity.make_avatars(source, seeds, fmt="vrm")
    names = ("neutral", *EXPRESSIONS)
    renders = render_three_vrm(files, out_dir, names)
    clf = load_eval_classifier()
    preds, _ = predict(clf, renders.reshape(-1, 128, 128, 4))
    schema = attributes.ADVENTURER
    col = {a.name: j for j, a in enumerate(schema.attributes)}
    values = {a.name: a.values for a in schema.attributes}
    read = {n: {a: [values[a][p] for p in preds.reshape(len(names), N_AVATARS, -1)[k, :, col[a]]]
                for a in ("eyes", "mouth")} for k, n in enumerate(names)}  # fmt: skip
    return {"seeds": seeds, "attrs": attrs, "files": files, "names": names, "renders": renders, "read": read,
            "textures": textures}  # fmt: skip


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shipped generator's avatars."""
    from chibi_meta.gan.api import TextureGenerator

    return measure(TextureGenerator.load(None), tmp_path_factory.mktemp("gan"))


@pytest.fixture(scope="module")
def measured_real(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same seeds and attributes with DiceBear's own drawings as texture and face sheet (the
    DiceBear texture source): where the eval classifier cannot read a state on these, the art itself
    hides it (the opaque sunglasses glasses01 cover both eyes: real art reads eyes under them 6 % of
    the time), and no generator can be expected to show it."""
    from chibi_meta.avatar.export import DicebearSource

    return measure(DicebearSource(), tmp_path_factory.mktemp("real"))


def reads(m: dict, exact: bool = False) -> dict[str, np.ndarray]:
    """Per expression, (N,) True where the classifier reads each attribute as a value that shows
    the state (faces.READS_AS), or with ``exact`` as the very value drawn."""
    out = {}
    for e in EXPRESSIONS:
        want = {a: {v} for a, v in drawn(e).items()} if exact else faces.READS_AS[e]
        ok = np.ones(N_AVATARS, bool)
        for attr, values in want.items():
            ok &= np.isin(np.array(m["read"][e][attr]), sorted(values))
        out[e] = ok
    return out


def shares(m: dict, exact: bool = False) -> dict[str, float]:
    """Per expression, the share of all avatars that :func:`reads` as intended."""
    return {e: float(ok.mean()) for e, ok in reads(m, exact).items()}


def test_states_cover_the_drawn_values() -> None:
    assert drawn("blink") == {"eyes": "eyes20"}
    assert drawn("blinkLeft") == {"eyes": "eyes21"} and drawn("blinkRight") == {"eyes": "eyes22"}
    assert drawn("aa") == {"mouth": faces.VARIANTS[faces.STATES["mouthAa"]["mouth"]]["mouth"]}
    assert set(faces.READS_AS) == set(EXPRESSIONS)
    for e in EXPRESSIONS:  # each expression's own drawing is one of the values that show its state
        d = drawn(e)
        assert set(d) == set(faces.READS_AS[e]), e
        assert all(v in faces.READS_AS[e][a] for a, v in d.items()), (e, d, faces.READS_AS[e])


def test_each_expression_changes_only_its_own_region(measured: dict) -> None:
    neutral = measured["renders"][0].astype(np.int16)
    bad, ring = {}, {}
    for k, e in enumerate(EXPRESSIONS, start=1):
        changed = np.abs(measured["renders"][k].astype(np.int16) - neutral).max(-1) > 0  # (N, 128, 128)
        outside = (changed & ~region_mask(e, MARGIN_PX)).sum((1, 2))
        if outside.any():
            bad[e] = {measured["seeds"][i]: int(outside[i]) for i in np.flatnonzero(outside)[:5]}
        ring[e] = float((changed & region_mask(e, MARGIN_PX) & ~region_mask(e)).sum((1, 2)).mean())
        # and it does change something inside, on every avatar
        assert (changed & region_mask(e)).sum((1, 2)).min() > 0, f"{e} changes nothing on some avatar"
    print("\npixels changed in the 1 px ring around the regions, mean per avatar:",
          ", ".join(f"{e} {v:.0f}" for e, v in ring.items()))
    assert not bad, f"pixels changed outside the expression's own region (seed: pixels): {bad}"


def test_each_expression_reads_as_intended(measured: dict, measured_real: dict) -> None:
    """Each expression reads as its state on >= TARGET of the avatars whose real art shows it (the
    same seed and attributes drawn by DiceBear, through the same face sheet, head and render)."""
    ok, exact, real = reads(measured), shares(measured, exact=True), reads(measured_real)
    got = {e: float(ok[e][real[e]].mean()) for e in EXPRESSIONS}
    lines = [f"{e:11s} drawn {drawn(e)}: reads as the state {got[e]:.0%} of {real[e].sum()} avatars whose real "
             f"art shows it ({ok[e].mean():.0%} of all {N_AVATARS}, real art {real[e].mean():.0%}), as the exact "
             f"value {exact[e]:.0%}" for e in EXPRESSIONS]  # fmt: skip
    print("\n".join(["", f"expressions over {N_AVATARS} avatars (seeds {SEED0}..):", *lines]))
    hidden = {e: [measured_real["seeds"][i] for i in np.flatnonzero(~r)] for e, r in real.items() if not r.all()}
    print("real art does not show the state on (seeds):", hidden)
    # what the real art hides must be the art (sunglasses), not a broken face sheet or head
    assert min(r.mean() for r in real.values()) >= REAL_MIN, f"real art reads below {REAL_MIN:.0%}: {hidden}"
    low = {e: s for e, s in got.items() if s < (FLOOR if e in BELOW_TARGET else TARGET)}
    assert not low, f"below the target (FLOOR for BELOW_TARGET): {low}\n" + "\n".join(lines)
    print(f"below the issue's {TARGET:.0%}:", {e: s for e, s in got.items() if s < TARGET})


def test_three_vrm_shows_the_drawing(measured: dict) -> None:
    """three-vrm's neutral front view is the texture's drawing itself (the head's front as
    ``atlas.front_image`` makes it), so what the classifier reads there is what the generator drew."""
    from chibi_meta.avatar.atlas import front_image

    web = measured["renders"][0]
    front = np.stack([front_image(t) for t in measured["textures"]])
    solid = web[..., 3] == 255
    mad = np.abs(web[..., :3].astype(np.int16) - front)[solid].mean()
    assert mad < 2, f"three-vrm's front view differs from the drawing by {mad:.1f} / 255"  # measured 0.3


def test_the_python_render_is_close_to_three_vrm(measured: dict) -> None:
    """The Python renderer (pyrender; docs/img and ``eval --avatars``) on the same files: the same
    silhouette and nearly the same colours. It is softer (mean colour difference 7.7 from the drawing,
    three-vrm 0.3): Mesa's llvmpipe interpolates texture coordinates with 0.25-texel errors in a 2 x 2
    pattern (measured with a one-texel checker texture), so small drawn features blur a little, which
    is why the shares above are read on three-vrm's renders."""
    from chibi_meta.avatar.render import shared_renderer
    from chibi_meta.avatar.skinning import Avatar

    renderer = shared_renderer().start()
    box = fidelity.texture_box()
    morphs = [expression_morphs(d) for d in measured["files"][:PYTHON_AVATARS]]
    py = np.stack([np.stack([renderer.render_front_unlit(Avatar(d), 128, box, nodes=[fidelity.HEAD_NODE],
                                                         morphs=m.get(e) if k else None)
                             for d, m in zip(measured["files"][:PYTHON_AVATARS], morphs, strict=True)])
                   for k, e in enumerate(measured["names"])])  # fmt: skip
    web = measured["renders"][:, :PYTHON_AVATARS]
    sil = ((web[..., 3] >= 128) != (py[..., 3] >= 128)).mean()
    assert sil < 0.005, f"silhouettes differ on {sil:.2%} of pixels"
    both = (web[..., 3] >= 128) & (py[..., 3] >= 128)
    mad = np.abs(web[..., :3].astype(np.int16) - py[..., :3])[both].mean()
    assert mad < 12, f"mean colour difference {mad:.1f} / 255"  # measured 8.5
    for k, e in enumerate(EXPRESSIONS, start=1):  # the Python render changes only the region too
        changed = np.abs(py[k].astype(np.int16) - py[0]).max(-1) > 0
        outside = (changed & ~region_mask(e, MARGIN_PX)).sum((1, 2))
        assert outside.max() == 0, f"Python render: {e} changes {outside.tolist()} pixels outside its region"
