"""`chibi-meta render` and chibi_meta.avatar.render on real exported avatars, headless (pyrender over EGL).

Turntable views are non-blank and differ, the back is not the front mirrored, posed views move,
the unlit front is the texture's own colours with an alpha silhouette and an exact frame, alpha MASK
cuts, a rig with other rest axes renders the same, `export --thumbnails` resumes, bad input exits 2.
"""

from __future__ import annotations

import io
import json
import re
import sys

import numpy as np
import pytest
from PIL import Image
from test_avatar_deform import add_accessor, add_blob, rotated_rig, write_glb

from chibi_meta.avatar import render
from chibi_meta.avatar.skinning import Avatar
from chibi_meta.cli import main
from chibi_meta.errors import MissingDependency, UsageError

SIZE = 128


@pytest.fixture(scope="module")
def renderer():
    with render.Renderer() as r:
        yield r


@pytest.fixture(scope="module")
def glb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("render") / "chibi-11.glb"
    assert main(["export", "--seed", "11", "--out", str(path), "--texture-size", "256"]) == 0
    return path.read_bytes()


def silhouette(img: np.ndarray) -> np.ndarray:
    bg = np.round(np.asarray(render.BACKGROUND[:3]) * 255)
    return np.abs(img[..., :3].astype(int) - bg).sum(-1) > 12


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a[..., :3].astype(int) - b[..., :3].astype(int)).mean())


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# --- views -------------------------------------------------------------------------------------
def test_turntable_views(renderer, glb):
    imgs = renderer.render_views(glb, size=SIZE)
    assert list(imgs) == ["front", "three_quarter", "side", "back"]
    for name, img in imgs.items():
        assert img.shape == (SIZE, SIZE, 4) and img.dtype == np.uint8
        assert 0.05 < silhouette(img).mean() < 0.8, name  # something drawn, and framed inside the image
        assert img[..., :3].std() > 10, name
    names = list(imgs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert diff(imgs[a], imgs[b]) > 2, (a, b)
    front, back = imgs["front"], imgs["back"]
    mirrored = front[:, ::-1]
    # the camera went round: the back's outline is the mirrored front's, but what is drawn is not
    assert iou(silhouette(back), silhouette(mirrored)) > 0.8
    both = silhouette(back) & silhouette(mirrored)
    assert np.abs(back[both][:, :3].astype(int) - mirrored[both][:, :3].astype(int)).mean() > 8
    # the side is narrower than the T-posed front
    assert silhouette(imgs["side"]).any(0).sum() < 0.7 * silhouette(front).any(0).sum()


def test_posed_views(renderer, glb):
    rest = renderer.render_views(glb, ["three_quarter"], size=SIZE)["three_quarter"]
    posed = renderer.render_views(glb, [], ["a", "arms_up", "sit", "walk0", "head_left60"], size=SIZE)
    assert list(posed) == ["a", "arms_up", "sit", "walk0", "head_left60"]
    for name, img in posed.items():
        assert silhouette(img).mean() > 0.05, name
        assert diff(img, rest) > 1, name
    assert diff(posed["a"], posed["arms_up"]) > 1
    side = renderer.render_views(glb, [], ["sit"], size=SIZE, pose_view="side")["sit"]
    assert diff(side, posed["sit"]) > 1


def test_other_rest_axes_render_the_same(renderer, glb):
    a = renderer.render_views(glb, ["front"], ["a"], size=SIZE)
    b = renderer.render_views(rotated_rig(glb, 3), ["front"], ["a"], size=SIZE)
    for k in a:
        assert (np.abs(a[k].astype(int) - b[k].astype(int)).max(-1) > 8).mean() < 0.002, k


def test_unlit_front(renderer, glb):
    av = Avatar(glb)
    head = [n for n in av.mesh_labels.values() if n == "AvatarHead"] or None
    pts = np.concatenate([p.positions for ps in av.skin(nodes=head).values() for p in ps])
    lo, hi = pts.min(0), pts.max(0)
    box = (lo[0] - 0.02, lo[1] - 0.02, hi[0] + 0.02, hi[1] + 0.02)
    img = renderer.render_front_unlit(av, (192, 128), box, nodes=head)
    assert img.shape == (128, 192, 4)
    alpha = img[..., 3]
    assert 0.2 < (alpha > 127).mean() < 0.95
    assert (alpha[0] == 0).all() and (alpha[-1] == 0).all()  # the box has a margin all round: transparent there
    # unlit: flat texture colours, so most drawn pixels have a colour of the texture, not a shaded variant
    tex = next(p.material.image for ps in av.skin(nodes=head).values() for p in ps)[..., :3].reshape(-1, 3)
    palette = {tuple(c) for c in np.unique(tex // 8, axis=0)}
    drawn = img[alpha == 255][:, :3] // 8
    unlit_share = np.mean([tuple(c) in palette for c in drawn])
    assert unlit_share > 0.6
    lit = renderer.render_views(av, ["front"], size=SIZE)["front"]  # shading makes colours of its own
    lit_drawn = lit[silhouette(lit)][:, :3] // 8
    assert np.mean([tuple(c) in palette for c in lit_drawn]) < unlit_share - 0.3


def _quad_glb() -> tuple[bytes, np.ndarray]:
    """A 1 m quad facing +Z, textured 8x8 RGBA (nearest), alpha MASK: the top-left 4x4 texels are cut."""
    rng = np.random.default_rng(5)
    tex = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    tex[..., 3] = 255
    tex[:4, :4, 3] = 40  # below the 0.5 cutoff
    tex[4:, 4:, 3] = 140  # above it: drawn, opaque
    buf = io.BytesIO()
    Image.fromarray(tex, "RGBA").save(buf, "PNG")
    gltf: dict = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
                  "nodes": [{"name": "Quad", "mesh": 0}]}  # fmt: skip
    binary = b""
    pos = np.float32([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]])
    binary, p = add_accessor(gltf, binary, pos, "VEC3", 5126, min=[-0.5, -0.5, 0], max=[0.5, 0.5, 0])
    binary, n = add_accessor(gltf, binary, np.tile(np.float32([0, 0, 1]), (4, 1)), "VEC3", 5126)
    binary, t = add_accessor(gltf, binary, np.float32([[0, 1], [1, 1], [1, 0], [0, 0]]), "VEC2", 5126)
    binary, i = add_accessor(gltf, binary, np.uint16([0, 1, 2, 0, 2, 3]), "SCALAR", 5123)
    binary, img = add_blob(gltf, binary, buf.getvalue())
    gltf["images"] = [{"bufferView": img, "mimeType": "image/png"}]
    gltf["samplers"] = [{"magFilter": 9728, "minFilter": 9728}]
    gltf["textures"] = [{"source": 0, "sampler": 0}]
    gltf["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}, "alphaMode": "MASK",
                          "alphaCutoff": 0.5, "doubleSided": True}]  # fmt: skip
    gltf["meshes"] = [{"primitives": [{"attributes": {"POSITION": p, "NORMAL": n, "TEXCOORD_0": t}, "indices": i,
                                       "material": 0}]}]  # fmt: skip
    return write_glb(gltf, binary), tex


def test_unlit_is_the_texture_exactly_and_mask_cuts(renderer):
    data, tex = _quad_glb()
    img = renderer.render_front_unlit(data, 64, (-0.5, -0.5, 0.5, 0.5))
    centres = img[4::8, 4::8]  # the centre pixel of each texel
    keep = tex[..., 3] >= 128
    assert (centres[..., 3][~keep] == 0).all() and (centres[..., 3][keep] == 255).all()
    assert np.array_equal(centres[keep][:, :3], tex[keep][:, :3])  # UV orientation, framing, flat colours
    # half the box: the quad's top-right quarter fills the image
    quarter = renderer.render_front_unlit(data, 32, (0.0, 0.0, 0.5, 0.5))
    assert np.array_equal(quarter[4::8, 4::8][..., :3], tex[:4, 4:, :3])
    lit = renderer.render_views(data, ["front"], size=SIZE)["front"]
    bg = np.round(np.asarray(render.BACKGROUND[:3]) * 255)
    cut = lit[SIZE // 2 - 20 : SIZE // 2 - 8, SIZE // 2 - 20 : SIZE // 2 - 8, :3]
    drawn = lit[SIZE // 2 + 8 : SIZE // 2 + 20, SIZE // 2 + 8 : SIZE // 2 + 20, :3]
    assert (np.abs(cut.astype(int) - bg).max(-1) <= 2).all()  # the masked quarter shows the background
    assert (np.abs(drawn.astype(int) - bg).max(-1) > 2).mean() > 0.5


def test_bad_arguments(renderer, glb):
    with pytest.raises(UsageError, match="allowed: front, three_quarter, side, back"):
        renderer.render_views(glb, ["top"])
    with pytest.raises(UsageError, match="unknown pose 'fly'"):
        renderer.render_views(glb, [], ["fly"])
    with pytest.raises(UsageError, match=r"\[16, 4096\]"):
        renderer.render_views(glb, size=8)
    with pytest.raises(UsageError, match="x1 > x0"):
        renderer.render_front_unlit(glb, 32, (0, 0, 0, 1))


def test_missing_pyrender_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrender", None)
    with pytest.raises(MissingDependency, match=r"pip install 'chibi-meta\[render\]'.*libegl1"):
        render.Renderer().start()


# --- the CLI -----------------------------------------------------------------------------------
def test_cli_names_match_the_renderer():
    from chibi_meta.avatar import cli

    assert cli._VIEWS == tuple(render.VIEWS)


def test_cli_render_file_and_seed(tmp_path, glb):
    f = tmp_path / "me.vrm"
    f.write_bytes(glb)
    out = tmp_path / "out"
    args = ["--views", "front,back", "--poses", "a,walk3", "--size", "64", "--out", str(out)]
    assert main(["render", str(f), *args]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["me_a.png", "me_back.png", "me_front.png", "me_walk3.png"]
    for p in out.iterdir():
        with Image.open(p) as im:
            assert im.size == (64, 64)
    assert main(["render", "--seed", "11", "--views", "side", "--size", "32", "--out", str(out)]) == 0
    with Image.open(out / "chibi-11_side.png") as im:
        assert im.size == (32, 32)
    assert main(["render", str(f), "--views", "none", "--poses", "all", "--size", "16", "--out", str(out)]) == 0
    from chibi_meta.avatar.poses import pose_set

    assert {f"me_{k}.png" for k in pose_set()} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "args, match",
    [
        (["--views", "top"], "unknown view 'top'; allowed: front, three_quarter, side, back"),
        (["--poses", "fly"], "unknown pose 'fly'; allowed: t, a, arms_up, sit"),
        (["--size", "0"], r"size must be an integer in \[16, 4096\]"),
        (["--size", "99999"], r"size must be an integer in \[16, 4096\]"),
        (["--pose-view", "up"], "unknown view 'up'"),
        (["--views", "none"], "nothing to render"),
        (["--seed", "3"], "either a FILE"),
        (["--attr", "hair_color=pink"], "with --seed only"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2(tmp_path, glb, capsys, args, match):
    f = tmp_path / "me.glb"
    f.write_bytes(glb)
    assert main(["render", str(f), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chibi-meta render: error: ")
    assert re.search(match, err[0]), err[0]
    assert not (tmp_path / "o").exists()


def test_cli_unreadable_files_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.glb"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n not a model")
    for path, match in ((tmp_path / "missing.glb", "cannot read"), (junk, "not a GLB or glTF file"),
                        (tmp_path, "cannot read")):  # fmt: skip
        assert main(["render", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    assert main(["render", "--seed", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--seed must be" in capsys.readouterr().err


def test_export_thumbnails_resume(tmp_path):
    out = tmp_path / "batch"
    args = ["export", "--count", "2", "--out", str(out), "--texture-size", "256", "--no-progress", "--thumbnails"]
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("chibi-*")) == ["chibi-0.glb", "chibi-0.png", "chibi-1.glb", "chibi-1.png"]
    manifest = (out / "manifest.jsonl").read_text()
    first = (out / "chibi-1.png").read_bytes()
    with Image.open(out / "chibi-1.png") as im:
        assert im.size == (render.THUMBNAIL_SIZE, render.THUMBNAIL_SIZE)
    (out / "chibi-1.png").unlink()
    assert main(args) == 0  # a rerun: nothing to export, the missing thumbnail is made again
    assert (out / "manifest.jsonl").read_text() == manifest
    assert (out / "chibi-1.png").read_bytes() == first
    assert json.loads(manifest.splitlines()[0])["file"] == "chibi-0.glb"
    one = tmp_path / "one.vrm"
    assert main(["export", "--seed", "4", "--out", str(one), "--texture-size", "256", "--thumbnails"]) == 0
    with Image.open(tmp_path / "one.png") as im:
        assert im.size == (render.THUMBNAIL_SIZE, render.THUMBNAIL_SIZE)


def test_first_render_of_a_fresh_renderer_cuts_mask() -> None:
    """The shaders are patched when the context opens; a MASK material built before that was drawn
    opaque on a new renderer's first image."""
    data, tex = _quad_glb()
    with render.Renderer() as r:
        centres = r.render_front_unlit(data, 64, (-0.5, -0.5, 0.5, 0.5))[4::8, 4::8]
    keep = tex[..., 3] >= 128
    assert (centres[..., 3][~keep] == 0).all() and (centres[..., 3][keep] == 255).all()


def test_shared_renderer_survives_other_renderers_and_threads() -> None:
    """Closing another renderer must not terminate the process's one EGL display, and a draw from
    another thread must not leave the shared context current there (EGL_BAD_ACCESS afterwards)."""
    import threading

    data, _ = _quad_glb()
    box = (-0.5, -0.5, 0.5, 0.5)
    first = render.render_front_unlit(data, 32, box)
    with render.Renderer() as other:
        other.render_front_unlit(data, 32, box)
    out: list[np.ndarray] = []
    t = threading.Thread(target=lambda: out.append(render.render_front_unlit(data, 32, box)))
    t.start()
    t.join()
    assert np.array_equal(out[0], first) and np.array_equal(render.render_front_unlit(data, 32, box), first)
