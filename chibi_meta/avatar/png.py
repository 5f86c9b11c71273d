"""A small PNG writer for 8-bit RGB/RGBA arrays: fast, deterministic, standard.

Pillow picks a filter per row by trying all five (libpng's heuristic); for our atlases (flat
swatches plus one smooth upscaled face) the Sub filter everywhere with zlib's run-length strategy
is as small and about 3x faster (16 atlases of 256 px on the 2-core CPU, medians: 0.74 ms and
46.8 KB against Pillow's 2.45 ms and 46.4 KB at compress_level 3). In `bench/export_speed.py`,
GLB with a 256 px PNG atlas went from 155 to 242 avatars/s (encode 2.5 -> 0.72 ms).

Only what a texture needs: one IHDR, optional tEXt chunks (Latin-1 key/value), one IDAT, IEND.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

import numpy as np

from chibi_meta.errors import UsageError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {3: 2, 4: 6}  # channels -> PNG colour type (truecolour, truecolour + alpha)
_FILTER_SUB = 1


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _text_chunk(key: str, value: str) -> bytes:
    if not 1 <= len(key) <= 79:
        raise UsageError(f"PNG text key must be 1..79 characters, got {len(key)}")
    try:
        return _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError as e:
        raise UsageError(f"PNG text must be Latin-1: {e}") from None


def encode_png(image: np.ndarray, text: Mapping[str, str] | None = None, level: int = 1) -> bytes:
    """PNG bytes of an (H, W, 3|4) uint8 array: Sub filter on every row, zlib Z_RLE at ``level``."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] not in _COLOUR_TYPE or image.shape[0] < 1 or image.shape[1] < 1:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise UsageError(f"encode_png needs an (H, W, 3 or 4) uint8 array, got {desc}")
    h, w, c = image.shape
    rows = np.ascontiguousarray(image).reshape(h, w * c)
    raw = np.empty((h, w * c + 1), np.uint8)
    raw[:, 0] = _FILTER_SUB
    raw[:, 1 : 1 + c] = rows[:, :c]
    np.subtract(rows[:, c:], rows[:, :-c], out=raw[:, 1 + c :])  # uint8 arithmetic wraps mod 256
    z = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = z.compress(raw.tobytes()) + z.flush()
    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPE[c], 0, 0, 0))]
    parts += [_text_chunk(k, v) for k, v in (text or {}).items()]
    parts += [_chunk(b"IDAT", data), _chunk(b"IEND", b"")]
    return b"".join(parts)
