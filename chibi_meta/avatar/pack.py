"""``build_avatar``: one generated texture -> the bytes of a rigged chibi GLB or VRM 1.0 file.

Per avatar this builds the head from the texture (``procedural``), composes and encodes the atlas
(and the VRM thumbnail) and assembles the GLB; the skeleton and the outfit's body are packed once
per process and reused. An artist's base mesh keeps its own head (no inflation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chibi_meta.avatar import atlas, faces, gltf, procedural, vrm
from chibi_meta.avatar.atlas import TEXTURE_FORMATS, TEXTURE_SIZES
from chibi_meta.avatar.basemesh import BaseMesh
from chibi_meta.avatar.body import OUTFITS, check_outfit
from chibi_meta.avatar.faces import FaceSheet
from chibi_meta.avatar.names import MORPH_SETS, check_morph_sets
from chibi_meta.errors import UsageError

FORMATS = ("glb", "vrm")
PACKAGING_ATTRIBUTES = {"outfit": OUTFITS}  # attributes that the packer, not the generator, draws
THUMBNAIL_SIZE = 128

__all__ = [
    "FORMATS", "OUTFITS", "PACKAGING_ATTRIBUTES", "TEXTURE_FORMATS", "TEXTURE_SIZES",
    "build_avatar", "check_options", "choose_outfit", "split_packaging",
]  # fmt: skip


def check_options(fmt: object, texture_size: object, texture_format: object) -> None:
    """Raise UsageError naming the allowed values when an option is not one of them."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    atlas.check_texture_options(texture_size, texture_format)


def split_packaging(attributes: Mapping[str, object] | None) -> tuple[dict[str, object], dict[str, object]]:
    """(the generator's attributes, the packaging attributes: ``outfit``) of a request's attributes."""
    gan = dict(attributes or {})
    pkg = {k: gan.pop(k) for k in PACKAGING_ATTRIBUTES if k in gan}
    return gan, pkg


def choose_outfit(seed: int, attributes: Mapping[str, object] | None = None) -> str:
    """The requested outfit (validated), else one drawn from the seed (uniform over OUTFITS)."""
    if attributes and "outfit" in attributes:
        return check_outfit(attributes["outfit"])
    rng = np.random.default_rng([int(seed), 0x0F17])
    return OUTFITS[int(rng.integers(len(OUTFITS)))]


def _procedural(texture: np.ndarray, attrs: Mapping[str, str], size: int, sheet: FaceSheet,
                names: tuple[str, ...]) -> tuple[BaseMesh, np.ndarray]:  # fmt: skip
    """The procedural avatar's base (head, face patches, targets) and atlas."""
    head = procedural.avatar_head(texture)
    keys = faces.needed_keys(names, set(sheet.parts)) if len(sheet.images) else ()
    patches = faces.build_patches(head, keys, procedural.PX) if keys else None
    slots = procedural.slot_index(keys)
    front = atlas.front_image(texture)
    imgs = faces.patch_images(texture, sheet, keys, front)
    image = atlas.compose_head(texture, attrs, size, head.mask,
                               [(k[0], slots[k], im) for k, im in zip(keys, imgs, strict=True)], front)  # fmt: skip
    base = procedural.with_head(procedural.outfit_base(attrs["outfit"]), head, patches, names)
    return base, image


def _atlas_image(base: BaseMesh, texture: np.ndarray, attributes: Mapping[str, str], size: int) -> np.ndarray:
    from PIL import Image

    bg = base.background
    if bg is None:
        bg = np.zeros((size, size, 4), np.uint8)
        bg[..., :3] = atlas.colours(texture, attributes)["skin"]
        bg[..., 3] = 255
    elif bg.shape[0] != size:
        bg = np.asarray(Image.fromarray(bg).resize((size, size), Image.Resampling.BICUBIC))
    img = atlas.compose_region(np.ascontiguousarray(bg), texture, base.face_rect)
    return img[..., :3] if base.alpha_mode == "OPAQUE" else img


def _json_safe(v: object) -> object:
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def build_avatar(
    texture: np.ndarray,
    attributes: Mapping[str, str],
    *,
    fmt: str = "glb",
    texture_size: int = 512,
    texture_format: str = "png",
    provenance: Mapping[str, object] | None = None,
    base: BaseMesh | None = None,
    face_sheet: FaceSheet | None = None,
    morph_targets: Sequence[str] | None = None,
) -> bytes:
    """The bytes of a rigged chibi avatar wearing ``texture`` ((H, W, 4) uint8 RGBA, square).

    ``fmt`` is "glb" or "vrm"; ``texture_size`` one of TEXTURE_SIZES; ``texture_format`` one of
    TEXTURE_FORMATS. ``provenance`` (seed, attributes, model_id, attribution, ...) is written to
    ``asset.extras.chibi_meta`` (and the VRM meta). ``face_sheet``: the face states drawn for this
    avatar (chibi_meta.avatar.faces; without one every morph target is all-zero). ``morph_targets``:
    which name sets the file carries (names.MORPH_SETS; None = all, ["none"] = none). The same
    arguments give the same bytes.
    """
    check_options(fmt, texture_size, texture_format)
    atlas.check_texture(texture)
    if not isinstance(attributes, Mapping):
        raise UsageError(f"attributes must be a mapping of name -> value, got {type(attributes).__name__}")
    attrs = {str(k): str(v) for k, v in attributes.items()}
    prov = _json_safe(dict(provenance or {}))
    sets = check_morph_sets(morph_targets)
    if base is None:
        attrs["outfit"] = choose_outfit(int(prov.get("seed") or 0), attrs)  # type: ignore[union-attr]
        names = tuple(dict.fromkeys(n for s in sets for n in MORPH_SETS[s]))
        base, image = _procedural(texture, attrs, texture_size, face_sheet or FaceSheet.empty(), names)
    else:
        image = _atlas_image(base, texture, attrs, texture_size)
    prov["attributes"] = dict(sorted(attrs.items()))  # type: ignore[index]
    prov.setdefault("base_mesh", base.source)  # type: ignore[union-attr]
    seed = prov.get("seed")  # type: ignore[union-attr]
    name = f"chibi-{seed}" if seed is not None else "chibi"
    images = [(atlas.encode(image, texture_format), texture_format)]
    extensions = None
    if fmt == "vrm":
        thumb_fmt = "jpeg" if texture_format == "jpeg" else "png"
        images.append((atlas.encode(atlas.thumbnail(texture, attrs, THUMBNAIL_SIZE), thumb_fmt), thumb_fmt))
        extensions = {"VRMC_vrm": vrm.vrmc_vrm(base, name=name, thumbnail_image=1, provenance=prov)}
    alpha = "OPAQUE" if image.shape[2] == 3 else base.alpha_mode
    return gltf.write_glb(
        base,
        images,
        texture_format=texture_format,
        alpha_mode=alpha,
        extras={"chibi_meta": prov},
        name=name,
        extensions=extensions,
    )
