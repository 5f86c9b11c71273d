"""Offline rendering of the DiceBear `adventurer` style (optional dependency group ``data``).

``render(seed, attrs)`` resolves a full attribute set for ``seed`` (see AttributeSchema.resolve),
asks DiceBear for the SVG with exactly those options, and rasterises it with resvg.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping

import numpy as np

from chibi_meta.data.attributes import ADVENTURER, NONE
from chibi_meta.errors import MissingDependency

STYLE_NAME = "adventurer"
FIX = "pip install 'chibi-meta[data]'  (dicebear-core, dicebear-styles, resvg-py)"


def _require() -> tuple:
    try:
        import resvg_py
        from dicebear import Avatar, Style
    except ImportError as e:
        raise MissingDependency(f"rendering DiceBear avatars needs {e.name!r}; install it with: {FIX}") from None
    return Avatar, Style, resvg_py


@functools.lru_cache(maxsize=1)
def style_definition() -> dict:
    """The `adventurer` style JSON shipped by dicebear-styles."""
    _require()
    from importlib.resources import files

    return json.loads(files("dicebear_styles").joinpath(f"{STYLE_NAME}.json").read_text("utf-8"))


@functools.lru_cache(maxsize=1)
def _style():
    _, Style, _ = _require()
    return Style(style_definition())


def license_info() -> dict:
    """The style's licence and attribution, as DiceBear ships them."""
    meta = style_definition()["meta"]
    return {
        "style": STYLE_NAME,
        "license": meta["license"]["name"],
        "license_url": meta["license"]["url"],
        "attribution": meta["license"]["text"],
        "creator": meta.get("creator", {}),
        "source": meta.get("source", {}),
        "renderer": "DiceBear (dicebear-core, MIT) rasterised with resvg",
    }


def dicebear_options(seed: int, attrs: Mapping[str, str], size: int) -> dict:
    """DiceBear options that pin every attribute of ``attrs`` (a resolved, full set)."""
    opts: dict = {"seed": f"chibi-{seed}", "size": size}
    for a in ADVENTURER.attributes:
        v = a.dicebear[a.values.index(attrs[a.name])] if a.dicebear else attrs[a.name]
        if a.name == "glasses":
            opts["glassesProbability"] = 0 if attrs[a.name] == NONE else 100
            if v:
                opts["glassesVariant"] = [v]
        else:
            opts[a.option] = [v]
    return opts


def avatar(seed: int, full: Mapping[str, str], size: int) -> object:
    """The DiceBear Avatar with every attribute of the resolved set ``full`` pinned."""
    Avatar, _, _ = _require()
    return Avatar(_style(), dicebear_options(seed, full, size))


def rasterise(svg: str, size: int) -> np.ndarray:
    """SVG text -> (size, size, 4) uint8 RGBA, through resvg."""
    from PIL import Image

    _, _, resvg_py = _require()
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg))
    img = Image.open(io.BytesIO(png)).convert("RGBA")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def render_svg(seed: int, attrs: Mapping[str, str] | None = None, size: int = 128) -> tuple[str, dict]:
    """SVG text and the full attribute set used. ``attrs`` may be partial; the rest is resolved."""
    full = ADVENTURER.resolve(seed, attrs)
    return avatar(seed, full, size).to_string(), full  # type: ignore[attr-defined]


def render(seed: int, attrs: Mapping[str, str] | None = None, size: int = 128) -> tuple[np.ndarray, dict]:
    """An (size, size, 4) uint8 RGBA image and the full attribute set it shows."""
    svg, full = render_svg(seed, attrs, size)
    return rasterise(svg, size), full
