"""Regenerate docs/img/face_values.png: every DiceBear adventurer eyes and mouth value drawn by
DiceBear itself on one face (seed 11, light skin, no glasses), cropped to the eyes / the mouth.
``faces.READS_AS`` (which values show which expression state) was read off this sheet.

python docs/img/make_face_values.py     (needs the data extra: dicebear-core, dicebear-styles)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from chibi_meta.data import attributes, dicebear

ROOT = Path(__file__).resolve().parent
SEED = 11
CROPS = {"eyes": (52, 84, 18, 88), "mouth": (78, 104, 30, 86)}  # rows, columns at 128 px
PER_ROW = 6


def sheet(key: str) -> np.ndarray:
    schema = attributes.ADVENTURER
    base = schema.resolve(SEED, {"glasses": "none", "skin": "light"})
    y0, y1, x0, x1 = CROPS[key]
    tiles = []
    for value in next(a.values for a in schema.attributes if a.name == key):
        im, _ = dicebear.render(SEED, {**base, key: value}, 256)
        a = im[..., 3:4] / 255.0
        rgb = (im[..., :3] * a + 255 * (1 - a)).astype(np.uint8)[2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
        tile = Image.new("RGB", (rgb.shape[1], rgb.shape[0] + 14), "white")
        tile.paste(Image.fromarray(rgb), (0, 14))
        ImageDraw.Draw(tile).text((3, 1), value, fill=(200, 0, 0))
        tiles.append(np.asarray(tile))
    while len(tiles) % PER_ROW:
        tiles.append(np.full_like(tiles[0], 255))
    return np.concatenate([np.concatenate(tiles[i : i + PER_ROW], 1) for i in range(0, len(tiles), PER_ROW)], 0)


def main() -> None:
    parts = [sheet("eyes"), sheet("mouth")]
    w = max(p.shape[1] for p in parts)
    parts = [np.pad(p, ((0, 8), (0, w - p.shape[1]), (0, 0)), constant_values=255) for p in parts]
    Image.fromarray(np.concatenate(parts, 0)).save(ROOT / "face_values.png", optimize=True)


if __name__ == "__main__":
    main()
