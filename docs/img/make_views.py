"""Regenerate docs/img/avatars_views.png and docs/img/avatars_faces.png with chibi-meta's renderer.

avatars_views.png: 4 avatars (one per row, the shipped model, seeds below, every outfit) x 5 views:
front, three-quarter, side, back, and a walk phase. avatars_faces.png: one avatar's face with each
VRM expression at weight 1 (three-quarter view).

python docs/img/make_views.py     (needs the render extra: pyrender over EGL)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from chibi_meta.avatar import build_avatar
from chibi_meta.avatar.export import face_sheets, open_texture_source, provenance
from chibi_meta.avatar.render import render_views

ROOT = Path(__file__).resolve().parent
AVATARS = ((1, "dress"), (2, "tshirt_shorts"), (8, "hoodie_trousers"), (15, "dress"))
VIEWS = ("front", "three_quarter", "side", "back")
FACES = ("neutral", "blink", "blinkLeft", "happy", "sad", "angry", "surprised", "relaxed", "aa", "oh", "ee")


def _glb(src: object, seed: int, outfit: str) -> bytes:
    attrs = src.resolve(seed)  # type: ignore[attr-defined]
    tex = src.generate([seed], [attrs])[0]  # type: ignore[attr-defined]
    sheet = face_sheets(src, [seed], [attrs])[0]
    full = {**attrs, "outfit": outfit}
    return build_avatar(tex, full, fmt="glb", texture_size=512, provenance=provenance(src, seed, full),
                        face_sheet=sheet)  # fmt: skip


def _tile(rows: list[list[np.ndarray]]) -> Image.Image:
    h, w = rows[0][0].shape[:2]
    out = Image.new("RGB", (w * max(len(r) for r in rows), h * len(rows)), "white")
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            rgba = Image.fromarray(im)
            out.paste(rgba.convert("RGB"), (j * w, i * h))
    return out


def main() -> None:
    src = open_texture_source()
    rows = []
    for seed, outfit in AVATARS:
        shots = render_views(_glb(src, seed, outfit), VIEWS, ("walk2",), size=256)
        rows.append([shots[v] for v in (*VIEWS, "walk2")])
    _tile(rows).save(ROOT / "avatars_views.png", optimize=True)
    glb = _glb(src, *AVATARS[0])
    faces = [render_views(glb, ("front",), size=256, morphs={} if e == "neutral" else {e: 1.0})["front"]
             for e in FACES]  # fmt: skip
    crop = [f[20:150, 48:208] for f in faces]
    _tile([crop]).save(ROOT / "avatars_faces.png", optimize=True)


if __name__ == "__main__":
    main()
