"""The texture atlas: one image holding the head's front and back and the body's colours.

Layout in UV (origin top-left, v down), in pixels at S = 256 (larger sizes scale it)::

    +---------------------+----------+----------+
    |                     | back     | swatches |   front: the drawing (128 px = its native size)
    |   front 128 x 128   | 64 x 64  | 8 colours|   back: the back of the head (mostly flat hair)
    |                     +----------+----------+   swatches: skin, top, bottom, shoes, sole,
    |                     |     (free)          |             accent, hair, white (32 x 16 each)
    +---------------------+---------------------+
    |   eye patches 32 x 28, 8 per row, 3 rows  |   face states (chibi_meta.avatar.faces), each
    +-------------------------------------------+   at the drawing's own scale (its PARTS box)
    |   mouth patches 48 x 22, 5 per row, 2 rows|
    +-------------------------------------------+

The front is the generated texture itself (at S = 256 its native 128 px), its colours bled outward
past the silhouette so the rim samples the drawing's outline. The back is made from the front:
hair where the front shows hair, the nearest hair pixel (strands continue) where the front shows
the face above the hairline, skin at the nape below it, no outline of its own (see
``back_image``). Colours come from the attribute names when they are known and are measured on the
texture otherwise. Encoding uses fixed settings, so the same request always gives the same bytes.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from chibi_meta.avatar.png import encode_png
from chibi_meta.data.attributes import hair_rgb, skin_rgb
from chibi_meta.errors import UsageError

TEXTURE_SIZES = (256, 512, 1024)
TEXTURE_FORMATS = ("png", "jpeg", "webp")
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

FACE_REGION = 0.75  # artist bases: the face window's share of their own layout (compose_region)
# Where the face sits in the generated texture (fractions of its width/height, y down), measured on
# the DiceBear `adventurer` layout the generator learns: eyes' centres, their half extents, the crop.
EYE_LEFT_IMG = (36.5 / 128, 69.0 / 128)  # the eye on the image's left (the avatar's right eye)
EYE_RIGHT_IMG = (67.0 / 128, 69.0 / 128)
EYE_HALF_IMG = (13.0 / 128, 12.0 / 128)
FACE_CENTER_IMG = (53.0 / 128, 66.0 / 128)
WINDOW_HALF_IMG = 50.0 / 128
CHIN_IMG = (62.0 / 128, 102.0 / 128)  # the chin: where the head meets the neck
NAPE_IMG = 86.0 / 128  # the back's hairline for short hair (about the ears' lower end)
MIN_HAIR_PX = 24  # hair-coloured islands smaller than this (eyebrows, freckles) are not hair
STRAND_FADE = 5.0  # px (at 128): how far the front's strands carry on over the back

SWATCHES = ("skin", "top", "bottom", "shoes", "sole", "accent", "hair", "white")
_SWATCH_ORIGIN, _SWATCH_SIZE = (0.75, 0.0), (1 / 8, 1 / 16)  # 2 columns x 4 rows
_EYE_SLOTS = ((0.0, 0.5), (32 / 256, 28 / 256), 8)  # origin, size, per row (faces.PARTS at S / 128)
_MOUTH_SLOTS = ((0.0, 0.5 + 84 / 256), (48 / 256, 22 / 256), 5)
MAX_EYE_PATCHES, MAX_MOUTH_PATCHES = 24, 10


def swatch_uv(name: str) -> np.ndarray:
    """UV of the centre of a flat colour block."""
    k = SWATCHES.index(name)
    return np.array([_SWATCH_ORIGIN[0] + (k % 2 + 0.5) * _SWATCH_SIZE[0],
                     _SWATCH_ORIGIN[1] + (k // 2 + 0.5) * _SWATCH_SIZE[1]])  # fmt: skip


def head_uv(uv: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Texture coordinates of the drawing (0..1) -> atlas UV of the front (or the half-size back)."""
    u = np.clip(uv, 0.5 / 128, 1 - 0.5 / 128)
    back_uv = np.stack([0.5 + 0.25 * u[:, 0], 0.25 * u[:, 1]], 1)
    return np.where(back[:, None], back_uv, 0.5 * u)


def patch_slot(part: str, index: int) -> tuple[float, float, float, float]:
    """(u0, v0, du, dv) of the ``index``-th patch slot of a part ("mouth" or an eye)."""
    (u0, v0), (du, dv), per_row = _MOUTH_SLOTS if part == "mouth" else _EYE_SLOTS
    if not 0 <= index < (MAX_MOUTH_PATCHES if part == "mouth" else MAX_EYE_PATCHES):
        raise ValueError(f"no atlas slot {index} for {part} patches")
    return u0 + (index % per_row) * du, v0 + (index // per_row) * dv, du, dv


# cute pastel clothes, picked per avatar from its attributes
CLOTHES_PALETTE = (
    (255, 170, 190), (170, 210, 255), (190, 235, 190), (255, 220, 150), (215, 190, 250),
    (150, 225, 220), (255, 190, 150), (245, 245, 245), (120, 150, 220), (230, 120, 130),
)  # fmt: skip
SHOES = (92, 62, 58)
SOLE = (240, 236, 228)
BOTTOMS = ((70, 96, 150), (60, 62, 72), (170, 150, 110), (40, 50, 90), (120, 80, 60), (90, 120, 90))
BLUSH = (255, 135, 150)


def check_texture_options(texture_size: object, texture_format: object) -> None:
    if isinstance(texture_size, bool) or texture_size not in TEXTURE_SIZES:
        raise UsageError(f"texture size {texture_size!r} is not allowed; allowed: {', '.join(map(str, TEXTURE_SIZES))}")
    if texture_format not in TEXTURE_FORMATS:
        raise UsageError(f"unknown texture format {texture_format!r}; allowed: {', '.join(TEXTURE_FORMATS)}")


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
    """The flat colours of one avatar: hair, skin, top, bottom, shoes, sole, accent, blush, white."""
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
    crc = zlib.crc32(key)
    top = CLOTHES_PALETTE[crc % len(CLOTHES_PALETTE)]
    bottom = BOTTOMS[(crc // len(CLOTHES_PALETTE)) % len(BOTTOMS)]
    if attributes.get("outfit") == "dress":
        bottom = top
    accent = tuple(int(0.8 * c) if sum(top) > 500 else min(255, int(c * 0.5 + 140)) for c in top)
    blush = tuple(int(0.55 * b + 0.45 * s) for b, s in zip(BLUSH, skin, strict=True))
    return {
        "hair": hair,
        "skin": skin,
        "top": top,
        "bottom": bottom,
        "shoes": SHOES,
        "sole": SOLE,
        "accent": accent,  # type: ignore[dict-item]
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
    """A square portrait for the VRM meta: the texture over a light background of the top's colour."""
    from PIL import Image

    cols = colours(texture, attributes)
    bg = np.asarray([int(0.5 * c + 127.5) for c in cols["top"]], np.float32)
    t = texture.astype(np.float32)
    a = t[..., 3:4] / 255.0
    rgb = np.rint(t[..., :3] * a + bg * (1.0 - a)).astype(np.uint8)
    im = Image.fromarray(rgb)
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(im)


def _bleed(rgb: np.ndarray, solid: np.ndarray) -> np.ndarray:
    """Copy each pixel outside ``solid`` from the nearest pixel inside it."""
    from scipy import ndimage

    if solid.all() or not solid.any():
        return rgb
    _, (iy, ix) = ndimage.distance_transform_edt(~solid, return_indices=True)
    return rgb[iy, ix]


def front_image(texture: np.ndarray) -> np.ndarray:
    """The drawing as the head's front shows it (RGB at the texture's size): semi-transparent edge
    pixels over the outline colour, colours bled outward past the silhouette."""
    t = texture.astype(np.float32)
    a = t[..., 3:4] / 255.0
    solid = texture[..., 3] >= 128
    under = _bleed(t[..., :3], solid)
    return np.rint(t[..., :3] * a + under * (1.0 - a)).astype(np.uint8)


def back_image(texture: np.ndarray, mask: np.ndarray, hair: tuple[int, int, int],
               skin: tuple[int, int, int], front: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The back of the head (RGB at the texture's size) made from the front drawing.

    Inside the silhouette ``mask`` (128x128): front pixels of the hair colour stay (strands go on);
    above the hairline the rest takes the nearest hair pixel; below it (the nape, for hair that ends
    above the chin; a bald head everywhere) skin. The hairline of a column is the lowest hair within
    +-20 px, capped at NAPE_IMG unless hair reaches the chin nearby (long hair); between long strands
    on both sides it is interpolated between them (the hair hangs behind the face as one curtain).
    The outline is not drawn on the back: the front's flat lip carries it, and a second dark ring on the back made a
    dotted rim in back views and a thick stripe in side views.
    """
    from scipy import ndimage

    r = texture.shape[0]
    if mask.shape[0] != r:
        from PIL import Image

        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((r, r), Image.Resampling.NEAREST)) > 0
    rgb = (front_image(texture) if front is None else front).astype(np.float32)
    hair_c, skin_c = np.asarray(hair, np.float32), np.asarray(skin, np.float32)
    dh = np.minimum(np.abs(rgb - hair_c).sum(-1), np.abs(rgb - 0.72 * hair_c).sum(-1))
    ds = np.abs(rgb - skin_c).sum(-1)
    is_hair = mask & (dh < 70) & (dh < ds)
    lab, n = ndimage.label(ndimage.binary_opening(is_hair))
    if n:
        sizes = np.bincount(lab.ravel())
        is_hair = (sizes >= MIN_HAIR_PX * (r / 128) ** 2)[lab] & (lab > 0)
    yy = np.arange(r)[:, None].repeat(r, 1)
    low = np.where(is_hair, yy, -1).max(0)  # lowest hair pixel per column
    win = max(1, int(round(20 * r / 128)))
    hb = ndimage.maximum_filter1d(low, 2 * win + 1, mode="nearest")
    chin, nape = CHIN_IMG[1] * r, NAPE_IMG * r
    long_y = chin - 4 * r / 128  # hair this low reaches the chin
    line = np.where(hb >= long_y, hb, np.minimum(hb, nape))
    # Long hair (reaching the chin) on both sides of the face hangs as one curtain behind it: the
    # columns between take the hairline interpolated between those strands, not the face's own
    # (which left a stripe of skin down the middle of long-hair backs where the face is as wide as
    # the window).
    long_cols = np.flatnonzero(low >= long_y)
    if len(long_cols) >= 2:
        c = np.arange(r)
        between = (c > long_cols[0]) & (c < long_cols[-1])
        line = np.where(between, np.maximum(line, np.interp(c, long_cols, low[long_cols])), line)
    back_hair = mask & ((yy <= line[None, :]) | is_hair)
    out = np.empty_like(rgb)
    out[:] = skin_c
    if is_hair.any():
        # the drawing's own hair near the hair it continues, fading within STRAND_FADE px into a
        # flat colour (its median), softly shaded toward the nape
        dist, (iy, ix) = ndimage.distance_transform_edt(~is_hair, return_indices=True)
        flat = np.median(rgb[is_hair], axis=0)
        shade = (1.0 - 0.18 * np.clip((yy - 0.2 * r) / (0.8 * r), 0.0, 1.0))[..., None]
        w = np.clip(1.0 - dist / (STRAND_FADE * r / 128), 0.0, 1.0)
        w[(rgb[iy, ix].sum(-1) < 200) & ~is_hair] = 0.0  # the face's outline does not carry over
        hairs = rgb[iy, ix] * w[..., None] + flat * shade * (1.0 - w[..., None])
        out[back_hair] = hairs[back_hair]
    return _bleed(out, mask).astype(np.uint8)


def compose_head(texture: np.ndarray, attributes: Mapping[str, str], size: int, mask: np.ndarray,
                 patches: Sequence[tuple[str, int, np.ndarray]] = (),
                 front: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The (size, size, 3) uint8 atlas of a procedural avatar (see the layout). ``patches``:
    (part, slot index, RGB image) of the face states; ``front``: ``front_image(texture)`` if the
    caller has it already."""
    from PIL import Image

    def put(img: np.ndarray, u0: float, v0: float, du: float, dv: float) -> None:
        x0, y0 = int(round(u0 * size)), int(round(v0 * size))
        w, h = int(round(du * size)), int(round(dv * size))
        if img.shape[:2] != (h, w):
            img = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC))
        out[y0 : y0 + h, x0 : x0 + w] = img

    cols = colours(texture, attributes)
    out = np.empty((size, size, 3), np.uint8)
    out[:] = cols["skin"]
    front = front_image(texture) if front is None else front
    put(front, 0.0, 0.0, 0.5, 0.5)
    put(back_image(texture, mask, cols["hair"], cols["skin"], front), 0.5, 0.0, 0.25, 0.25)
    for k, name in enumerate(SWATCHES):
        u0 = _SWATCH_ORIGIN[0] + (k % 2) * _SWATCH_SIZE[0]
        v0 = _SWATCH_ORIGIN[1] + (k // 2) * _SWATCH_SIZE[1]
        x0, y0 = int(round(u0 * size)), int(round(v0 * size))
        out[y0 : y0 + int(_SWATCH_SIZE[1] * size), x0 : x0 + int(_SWATCH_SIZE[0] * size)] = cols[name]
    for part, index, img in patches:
        put(img, *patch_slot(part, index))
    return out
