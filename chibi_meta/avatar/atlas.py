"""The texture atlas: one image holding the face and the flat colours of hair, skin and clothes.

Layout in UV (origin top-left, v down), the same at every texture size::

    +---------------------------+-------+
    |                           | hair  |
    |         face window       +-------+
    |      (0..3/4 x 0..3/4)    | skin  |
    |                           +-------+
    |                           |clothes|
    |                           +-------+
    |                           | pants |
    +--------+--------+---------+-------+
    | shoes  | blush  |  white  |       |
    +--------+--------+---------+-------+

The face window is a square crop of the generated texture centred on the face (between the eyes,
above the mouth), composited over the hair colour (hair frames a chibi's face), so the atlas is
opaque and the material needs no alpha blending. Colours come from the attribute names when they
are known and are measured on the texture otherwise. Encoding uses fixed settings, so the same
request always gives the same bytes.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Mapping

import numpy as np

from chibi_meta.avatar.png import encode_png
from chibi_meta.data.attributes import hair_rgb, skin_rgb
from chibi_meta.errors import UsageError

TEXTURE_SIZES = (256, 512, 1024)
TEXTURE_FORMATS = ("png", "jpeg", "webp")
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

FACE_REGION = 0.75  # the face window occupies [0, FACE_REGION]^2 of the atlas
# Where the face sits in the generated texture (fractions of its width/height, y down), measured on
# the DiceBear `adventurer` layout the generator learns: eyes' centres, their half extents, the crop.
EYE_LEFT_IMG = (36.5 / 128, 69.0 / 128)  # the eye on the image's left (the avatar's right eye)
EYE_RIGHT_IMG = (67.0 / 128, 69.0 / 128)
EYE_HALF_IMG = (13.0 / 128, 12.0 / 128)
FACE_CENTER_IMG = (53.0 / 128, 66.0 / 128)
WINDOW_HALF_IMG = 50.0 / 128

_SWATCHES = {  # name -> (u0, v0) of a quarter-size block
    "hair": (0.75, 0.0),
    "skin": (0.75, 0.25),
    "clothes": (0.75, 0.5),
    "pants": (0.75, 0.75),
    "shoes": (0.0, 0.75),
    "blush": (0.25, 0.75),
    "white": (0.5, 0.75),
}
# cute pastel clothes, picked per avatar from its attributes
CLOTHES_PALETTE = (
    (255, 170, 190), (170, 210, 255), (190, 235, 190), (255, 220, 150), (215, 190, 250),
    (150, 225, 220), (255, 190, 150), (245, 245, 245), (120, 150, 220), (230, 120, 130),
)  # fmt: skip
SHOES = (92, 62, 58)
BLUSH = (255, 135, 150)


def check_texture_options(texture_size: object, texture_format: object) -> None:
    if isinstance(texture_size, bool) or texture_size not in TEXTURE_SIZES:
        raise UsageError(f"texture size {texture_size!r} is not allowed; allowed: {', '.join(map(str, TEXTURE_SIZES))}")
    if texture_format not in TEXTURE_FORMATS:
        raise UsageError(f"unknown texture format {texture_format!r}; allowed: {', '.join(TEXTURE_FORMATS)}")


def swatch_uv(name: str) -> np.ndarray:
    u0, v0 = _SWATCHES[name]
    return np.array([u0 + 0.125, v0 + 0.125])


def face_uv(window_uv: np.ndarray) -> np.ndarray:
    """Face-window coordinates (0..1) -> atlas UV, kept half a texel inside the region."""
    return np.clip(window_uv, 0.004, 0.996) * FACE_REGION


def face_image_to_window(px: float, py: float) -> tuple[float, float]:
    """Texture fractions -> face-window fractions."""
    return (
        (px - FACE_CENTER_IMG[0] + WINDOW_HALF_IMG) / (2 * WINDOW_HALF_IMG),
        (py - FACE_CENTER_IMG[1] + WINDOW_HALF_IMG) / (2 * WINDOW_HALF_IMG),
    )


def check_texture(texture: object) -> np.ndarray:
    if not isinstance(texture, np.ndarray) or texture.dtype != np.uint8 or texture.ndim != 3:
        raise UsageError("texture must be an (H, W, 4) uint8 RGBA array")
    h, w, c = texture.shape
    if c != 4 or h != w or h < 32 or h > 4096:
        raise UsageError(f"texture must be square RGBA between 32 and 4096 pixels, got {h}x{w}x{c}")
    return texture


def _median_rgb(px: np.ndarray) -> tuple[int, int, int] | None:
    if len(px) < 8:
        return None
    m = np.median(px[:, :3].astype(np.float64), axis=0)
    return int(m[0]), int(m[1]), int(m[2])


def colours(texture: np.ndarray, attributes: Mapping[str, str]) -> dict[str, tuple[int, int, int]]:
    """Hair, skin, clothes, pants, shoes and blush colours for one avatar."""
    h = texture.shape[0]
    hair = hair_rgb(attributes)
    if hair is None:  # opaque, not-too-dark pixels of the top band (the outline is near black)
        band = texture[int(0.12 * h) : int(0.35 * h)].reshape(-1, 4)
        lum = band[:, :3].astype(np.int32).sum(1)
        hair = _median_rgb(band[(band[:, 3] > 200) & (lum > 90)]) or (90, 60, 40)
    skin = skin_rgb(attributes)
    if skin is None:  # the cheeks, between eyes and mouth level, beside the nose
        y0, y1 = int(0.62 * h), int(0.70 * h)
        x0, x1 = int(0.22 * h), int(0.30 * h)
        patch = texture[y0:y1, x0:x1].reshape(-1, 4)
        skin = _median_rgb(patch[patch[:, 3] > 200]) or (242, 211, 177)
    key = ",".join(f"{k}={attributes[k]}" for k in sorted(attributes)).encode()
    clothes = CLOTHES_PALETTE[zlib.crc32(key) % len(CLOTHES_PALETTE)]
    pants = tuple(int(c * 0.55) for c in clothes)
    blush = tuple(int(0.55 * b + 0.45 * s) for b, s in zip(BLUSH, skin, strict=True))
    return {
        "hair": hair,
        "skin": skin,
        "clothes": clothes,
        "pants": pants,  # type: ignore[dict-item]
        "shoes": SHOES,
        "blush": blush,  # type: ignore[dict-item]
        "white": (250, 250, 250),
    }


def face_window(texture: np.ndarray, hair: tuple[int, int, int]) -> np.ndarray:
    """The square crop of the texture shown on the head, composited opaque (RGB uint8)."""
    h = texture.shape[0]
    x0 = int(round((FACE_CENTER_IMG[0] - WINDOW_HALF_IMG) * h))
    y0 = int(round((FACE_CENTER_IMG[1] - WINDOW_HALF_IMG) * h))
    n = int(round(2 * WINDOW_HALF_IMG * h))
    crop = texture[y0 : y0 + n, x0 : x0 + n].astype(np.float32)
    bg = np.asarray(hair, np.float32)  # around the drawn head: hair, as behind a chibi's face
    a = crop[..., 3:4] / 255.0
    return np.rint(crop[..., :3] * a + bg * (1.0 - a)).astype(np.uint8)


def compose(texture: np.ndarray, attributes: Mapping[str, str], size: int) -> np.ndarray:
    """The (size, size, 3) uint8 atlas for one avatar."""
    from PIL import Image

    cols = colours(texture, attributes)
    out = np.empty((size, size, 3), np.uint8)
    q = size // 4
    for name, (u0, v0) in _SWATCHES.items():
        x, y = int(u0 * size), int(v0 * size)
        out[y : y + q, x : x + q] = cols[name]
    face = face_window(texture, cols["hair"])
    fs = 3 * q
    out[:fs, :fs] = np.asarray(Image.fromarray(face).resize((fs, fs), Image.Resampling.BICUBIC))
    return out


def compose_region(background: np.ndarray, texture: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    """Paste the face window (with its alpha) into ``rect`` (u0, v0, u1, v1) of an RGBA background."""
    from PIL import Image

    size = background.shape[0]
    h = texture.shape[0]
    x0 = int(round((FACE_CENTER_IMG[0] - WINDOW_HALF_IMG) * h))
    y0 = int(round((FACE_CENTER_IMG[1] - WINDOW_HALF_IMG) * h))
    n = int(round(2 * WINDOW_HALF_IMG * h))
    crop = Image.fromarray(np.ascontiguousarray(texture[y0 : y0 + n, x0 : x0 + n]))
    px0, py0 = int(round(rect[0] * size)), int(round(rect[1] * size))
    px1, py1 = int(round(rect[2] * size)), int(round(rect[3] * size))
    w, hh = max(px1 - px0, 1), max(py1 - py0, 1)
    crop = crop.resize((w, hh), Image.Resampling.BICUBIC)
    bg = Image.fromarray(background)
    bg.alpha_composite(crop, (px0, py0))
    return np.asarray(bg)


def encode(image: np.ndarray, fmt: str) -> bytes:
    """PNG / JPEG / WebP bytes with fixed settings (deterministic). RGBA is kept for PNG and WebP only."""
    if fmt == "png":
        return encode_png(image)
    from PIL import Image

    im = Image.fromarray(image)
    buf = io.BytesIO()
    if fmt == "jpeg":
        im.convert("RGB").save(buf, format="JPEG", quality=92, subsampling=0, optimize=False)
    elif fmt == "webp":
        im.save(buf, format="WEBP", quality=90, method=2, exact=False)
    else:
        raise UsageError(f"unknown texture format {fmt!r}; allowed: {', '.join(TEXTURE_FORMATS)}")
    return buf.getvalue()


def thumbnail(texture: np.ndarray, attributes: Mapping[str, str], size: int = 128) -> np.ndarray:
    """A square portrait for the VRM meta: the texture over a light clothes-coloured background."""
    from PIL import Image

    cols = colours(texture, attributes)
    bg = np.asarray([int(0.5 * c + 127.5) for c in cols["clothes"]], np.float32)
    t = texture.astype(np.float32)
    a = t[..., 3:4] / 255.0
    rgb = np.rint(t[..., :3] * a + bg * (1.0 - a)).astype(np.uint8)
    im = Image.fromarray(rgb)
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(im)
