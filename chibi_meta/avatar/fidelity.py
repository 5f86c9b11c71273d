"""3D fidelity: does an avatar's 3D head, seen from the front, still read as its own texture?

For N avatars made as the bridge makes them (seed ``seed + i``, every attribute and the outfit drawn
from the seed, the face sheet drawn by the same source, ``build_avatar`` with the bridge's defaults:
GLB, 256 px PNG atlas, every morph target at weight 0), the ``AvatarHead`` node is rendered
orthographic and unlit from the front (``render.render_front_unlit``) framing exactly the world box
of the texture square (``texture_box``), at the texture's resolution, so render pixel (i, j) and
texture pixel (i, j) are the same place on the drawing. The eval classifier of the dataset
(``chibi_meta.gan.metrics``) then reads every attribute from the texture and from the render
(straight-alpha RGBA on a transparent background, as its training images are):

* ``acc_texture/<attr>``, ``acc_3d/<attr>``: the share of avatars whose requested value it reads,
  and ``ratio_3d/<attr>`` = 3D / texture (the issue's target: >= 0.95 for hair style, hair colour,
  skin, glasses; >= 0.90 for eyes and mouth). ``agree/<attr>``: the share where it reads the same
  value on both (whether right or not).
* ``iou_mean`` / ``iou_min`` / ``iou_p5``: silhouette IoU between the render's alpha >= 128 and the
  texture's alpha >= 128 over the whole square (target: mean >= 0.95).
* ``full_iou_*``: the same with the whole avatar drawn (body too), rows above the chin line only:
  what a camera sees of the head on the body.

Why the head node and the whole square (not the whole avatar above the chin): the texture square is
the drawing's own frame; below the chin the drawing has long hair, which the head mesh drapes
behind the neck and the body's neck and shoulders then hide, and the classifier needs the whole
square. The head node alone is exactly the part built from the texture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chibi_meta.avatar import atlas, export, procedural, rig
from chibi_meta.avatar.pack import build_avatar, choose_outfit
from chibi_meta.errors import UsageError

log = logging.getLogger(__name__)

HEAD_NODE = "AvatarHead"
TEXTURE_SIZE = 256  # the bridge's default atlas size (protocol.DEFAULT_TEXTURE_SIZE)
BATCH = 16
MAX_AVATARS = 100_000
TARGETS = {"hair_style": 0.95, "hair_color": 0.95, "skin": 0.95, "glasses": 0.95, "eyes": 0.90, "mouth": 0.90}
IOU_TARGET = 0.95


def check_count(n: object) -> int:
    """The number of avatars: an integer in [1, MAX_AVATARS], else UsageError."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_AVATARS:
        raise UsageError(f"--avatars must be an integer in [1, {MAX_AVATARS}], got {n!r}")
    return n


def texture_box() -> tuple[float, float, float, float]:
    """World (x0, y0, x1, y1) in metres of the texture square on a procedural head (z toward the viewer)."""
    px, cx, cy = procedural.PX, atlas.CHIN_IMG[0] * 128, atlas.CHIN_IMG[1] * 128
    return (-cx * px, rig.CHIN_Y + (cy - 128) * px, (128 - cx) * px, rig.CHIN_Y + cy * px)


def chin_row(resolution: int) -> int:
    """The first texture row at or below the chin line (rig.CHIN_Y) at ``resolution`` px."""
    return int(round(atlas.CHIN_IMG[1] * resolution))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image IoU of two boolean stacks (N, H, W); 1.0 where both are empty."""
    inter = (a & b).sum((1, 2))
    union = (a | b).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


@dataclass
class Fronts:
    """What the metric compares: per avatar its seed, attributes, texture and unlit front renders."""

    seeds: list[int]
    attributes: list[dict[str, str]]
    textures: np.ndarray  # (N, R, R, 4) uint8, the generated textures
    heads: np.ndarray  # (N, R, R, 4) uint8, the AvatarHead node rendered onto the texture square
    fulls: np.ndarray  # (N, R, R, 4) uint8, the whole avatar (head and body), same framing
    seconds: dict[str, float]


def make_avatars(source: object, seeds: Sequence[int], *, texture_size: int = TEXTURE_SIZE, batch: int = BATCH,
                 fmt: str = "glb") -> tuple[list[dict[str, str]], np.ndarray, list[bytes]]:  # fmt: skip
    """(attributes, textures, file bytes) of ``seeds`` as the bridge makes them (face sheets included,
    every morph-target set, ``fmt`` "glb" or "vrm")."""
    attrs_all: list[dict[str, str]] = []
    texs, files = [], []
    for i in range(0, len(seeds), batch):
        chunk = [int(s) for s in seeds[i : i + batch]]
        drawn = [source.resolve(s, None) for s in chunk]  # type: ignore[attr-defined]
        tex = np.asarray(source.generate(chunk, drawn))  # type: ignore[attr-defined]
        sheets = export.face_sheets(source, chunk, drawn)
        for s, a, t, sheet in zip(chunk, drawn, tex, sheets, strict=True):
            full = {**a, "outfit": choose_outfit(s, None)}
            files.append(build_avatar(np.ascontiguousarray(t), full, fmt=fmt, texture_size=texture_size,
                                      provenance=export.provenance(source, s, full), face_sheet=sheet))  # fmt: skip
            attrs_all.append(full)
            texs.append(t)
    return attrs_all, np.stack(texs) if texs else np.zeros((0, 128, 128, 4), np.uint8), files


def render_fronts(source: object, seeds: Sequence[int], *, texture_size: int = TEXTURE_SIZE,
                  batch: int = BATCH) -> Fronts:  # fmt: skip
    """Build each avatar and render its head (and whole body) from the front onto the texture square."""
    from chibi_meta.avatar.render import shared_renderer
    from chibi_meta.avatar.skinning import Avatar

    renderer = shared_renderer().start()
    box = texture_box()
    attrs_all: list[dict[str, str]] = []
    texs, heads, fulls = [], [], []
    t_build = t_render = 0.0
    for i in range(0, len(seeds), batch):
        chunk = list(seeds[i : i + batch])
        t0 = time.perf_counter()
        attrs, tex, files = make_avatars(source, chunk, texture_size=texture_size, batch=batch)
        t1 = time.perf_counter()
        for data, t in zip(files, tex, strict=True):
            av = Avatar(data)
            res = int(t.shape[0])
            heads.append(renderer.render_front_unlit(av, res, box, nodes=[HEAD_NODE]))
            fulls.append(renderer.render_front_unlit(av, res, box))
        t2 = time.perf_counter()
        t_build += t1 - t0
        t_render += t2 - t1
        attrs_all += attrs
        texs.append(tex)
        log.info("3D fidelity: %d/%d avatars (build %.2f s, render %.2f s per avatar)", len(heads), len(seeds),
                 t_build / len(heads), t_render / len(heads))  # fmt: skip
    n = max(len(seeds), 1)
    return Fronts([int(s) for s in seeds], attrs_all, np.concatenate(texs), np.stack(heads), np.stack(fulls),
                  {"build_per_avatar": t_build / n, "render_per_avatar": t_render / n})  # fmt: skip


def label_indices(schema: object, attributes: Sequence[Mapping[str, str]]) -> np.ndarray:
    """(N, A) indices of each avatar's values in the dataset's schema (-1 where it has none)."""
    attrs = schema.attributes  # type: ignore[attr-defined]
    out = -np.ones((len(attributes), len(attrs)), np.int64)
    for j, a in enumerate(attrs):
        index = {v: k for k, v in enumerate(a.values)}
        for i, av in enumerate(attributes):
            out[i, j] = index.get(av.get(a.name, ""), -1)
    return out


def summarise(fronts: Fronts, labels: np.ndarray, p_tex: np.ndarray, p_3d: np.ndarray,
              names: Sequence[str], values: Sequence[Sequence[str]]) -> dict:  # fmt: skip
    """The figures of the module docstring from the classifier's predictions."""
    res: dict = {"avatars": len(fronts.seeds)}
    for j, name in enumerate(names):
        known = labels[:, j] >= 0
        if not known.any():
            continue
        y = labels[known, j]
        at = float((p_tex[known, j] == y).mean())
        a3 = float((p_3d[known, j] == y).mean())
        res[f"acc_texture/{name}"] = round(at, 4)
        res[f"acc_3d/{name}"] = round(a3, 4)
        res[f"ratio_3d/{name}"] = round(a3 / max(at, 1e-9), 4)
        res[f"agree/{name}"] = round(float((p_tex[known, j] == p_3d[known, j]).mean()), 4)
        # what the 3D front is read as where the texture is read right and the front is not
        lost = (p_tex[known, j] == y) & (p_3d[known, j] != y)
        pairs: dict[str, int] = {}
        for t, p in zip(y[lost], p_3d[known, j][lost], strict=True):
            k = f"{values[j][t]}->{values[j][p]}"
            pairs[k] = pairs.get(k, 0) + 1
        res[f"lost_3d/{name}"] = dict(sorted(pairs.items(), key=lambda kv: -kv[1])[:8])
    r = fronts.textures.shape[1]
    tex_a = fronts.textures[..., 3] >= 128
    ious = iou(fronts.heads[..., 3] >= 128, tex_a)
    chin = chin_row(r)
    full = iou(fronts.fulls[:, :chin, :, 3] >= 128, tex_a[:, :chin])
    for prefix, v in (("iou", ious), ("full_iou", full)):
        res[f"{prefix}_mean"] = round(float(v.mean()), 4)
        res[f"{prefix}_min"] = round(float(v.min()), 4)
        res[f"{prefix}_p5"] = round(float(np.percentile(v, 5)), 4)
    res["iou_worst_seeds"] = [fronts.seeds[int(k)] for k in np.argsort(ious)[:5]]
    res["seconds_per_avatar"] = {k: round(v, 4) for k, v in fronts.seconds.items()}
    res["targets_met"] = all(res.get(f"ratio_3d/{a}", 1.0) >= t for a, t in TARGETS.items()) and (
        res["iou_mean"] >= IOU_TARGET)  # fmt: skip
    return res


def side_by_side(texture: np.ndarray, head: np.ndarray, full: np.ndarray, scale: int = 3) -> np.ndarray:
    """texture | head render | whole avatar | silhouette difference (red: texture only, blue: render only),
    on a light grey background, ``scale`` times enlarged (RGB uint8)."""
    def flat(img: np.ndarray) -> np.ndarray:
        a = img[..., 3:4].astype(np.float32) / 255
        return (img[..., :3] * a + np.array([232.0, 234, 238]) * (1 - a)).astype(np.uint8)

    ta, ha = texture[..., 3] >= 128, head[..., 3] >= 128
    diff = np.full(texture.shape[:2] + (3,), 255, np.uint8)
    diff[ta & ha] = (200, 200, 200)
    diff[ta & ~ha] = (220, 30, 30)
    diff[ha & ~ta] = (30, 60, 220)
    row = np.concatenate([flat(texture), flat(head), flat(full), diff], 1)
    return np.kron(row, np.ones((scale, scale, 1), np.uint8))


def save_examples(fronts: Fronts, out: str | Path, indices: Sequence[int]) -> list[Path]:
    """Write ``side_by_side`` PNGs of the avatars at ``indices`` into ``out`` (seed-<s>.png)."""
    from chibi_meta.avatar.render import write_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in indices:
        p = out / f"seed-{fronts.seeds[k]}.png"
        write_png(p, side_by_side(fronts.textures[k], fronts.heads[k], fronts.fulls[k]))
        paths.append(p)
    return paths


def evaluate_avatars(source: object, ds: object, n: int, seed: int = 0, *, texture_size: int = TEXTURE_SIZE,
                     classifier: object | None = None, train_if_missing: bool = True,
                     save_dir: str | Path | None = None, save: int = 8) -> dict:  # fmt: skip
    """The 3D fidelity figures (module docstring) of ``n`` avatars with seeds ``seed .. seed + n - 1``.

    ``source``: a texture source (``TextureGenerator`` or ``export.DicebearSource``); ``ds``: the
    dataset whose eval classifier judges (trained and cached beside it if missing and
    ``train_if_missing``). ``save_dir``: also write side-by-side PNGs of the first ``save`` avatars
    and of the ``save`` with the lowest IoU there.
    """
    from chibi_meta.gan import metrics

    check_count(n)
    clf = classifier if classifier is not None else metrics.load_classifier(ds, train_if_missing)  # type: ignore[arg-type]
    if clf is None:
        raise UsageError(f"no eval classifier is cached in {ds.root}; run chibi-meta eval once")  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    fronts = render_fronts(source, list(range(seed, seed + n)), texture_size=texture_size)
    schema = ds.schema  # type: ignore[attr-defined]
    labels = label_indices(schema, fronts.attributes)
    p_tex, _ = metrics.predict(clf, fronts.textures)  # type: ignore[arg-type]
    p_3d, _ = metrics.predict(clf, fronts.heads)  # type: ignore[arg-type]
    res = summarise(fronts, labels, p_tex, p_3d, schema.names, [a.values for a in schema.attributes])
    res["seconds_per_avatar"]["total"] = round((time.perf_counter() - t0) / n, 4)
    if save_dir is not None:
        ious = iou(fronts.heads[..., 3] >= 128, fronts.textures[..., 3] >= 128)
        pick = list(dict.fromkeys([*range(min(save, n)), *np.argsort(ious)[:save].tolist()]))
        save_examples(fronts, save_dir, pick)
    return res
