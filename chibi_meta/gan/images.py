"""Deterministic PNG encoding of RGBA textures."""

from __future__ import annotations

import io
import os

import numpy as np

from chibi_meta.atomic import atomic_write_bytes


def png_bytes(img: np.ndarray) -> bytes:
    """(H, W, 4) uint8 -> PNG bytes; the same pixels always give the same bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img), "RGBA").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def save_png(path: str | os.PathLike, img: np.ndarray) -> None:
    atomic_write_bytes(path, png_bytes(img))
