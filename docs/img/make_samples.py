"""Regenerate docs/img/samples_64.png and docs/img/hair_colors.png from the shipped model.

python docs/img/make_samples.py [--model PATH]

samples_64.png: 64 random samples (seeds 0..63, every attribute sampled from the data).
hair_colors.png: 4 seeds (rows) x 8 hair colours (columns): the rest of each avatar stays.
glasses.png: 4 seeds (rows) x the 6 glasses values (columns, none first).
skins.png: 4 seeds (rows) x the 4 skin tones (columns).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from chibi_meta.gan.api import TextureGenerator

OUT = Path(__file__).resolve().parent


def grid(imgs: np.ndarray, cols: int, bg: int = 255) -> Image.Image:
    n, h, w, _ = imgs.shape
    rows = (n + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h), (bg, bg, bg))
    for i, im in enumerate(imgs):
        tile = Image.new("RGB", (w, h), (bg, bg, bg))
        tile.paste(Image.fromarray(im, "RGBA"), (0, 0), Image.fromarray(im, "RGBA"))
        sheet.paste(tile, ((i % cols) * w, (i // cols) * h))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    args = ap.parse_args()
    gen = TextureGenerator.load(args.model)
    grid(gen.generate(list(range(64))), 8).save(OUT / "samples_64.png", optimize=True)
    colours = ["black", "blonde", "teal", "brown", "green", "pink", "plum", "red"]
    seeds = [3, 10, 21, 42]
    imgs = gen.generate([s for s in seeds for _ in colours], [{"hair_color": c} for _ in seeds for c in colours])
    grid(imgs, len(colours)).save(OUT / "hair_colors.png", optimize=True)
    for attr, name in (("glasses", "glasses.png"), ("skin", "skins.png")):
        values = gen.schema.attributes[gen.schema.names.index(attr)].values
        imgs = gen.generate([s for s in seeds for _ in values], [{attr: v} for _ in seeds for v in values])
        grid(imgs, len(values)).save(OUT / name, optimize=True)


if __name__ == "__main__":
    main()
