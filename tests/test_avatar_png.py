"""The PNG writer: lossless round trip through Pillow, text chunks, determinism, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from chibi_meta.avatar.png import encode_png
from chibi_meta.errors import UsageError


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 4), (5, 1, 3), (64, 48, 4), (256, 256, 3)])
def test_round_trip_is_lossless(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    smooth = np.broadcast_to(np.linspace(0, 255, shape[1], dtype=np.uint8)[None, :, None], shape).copy()
    for img in (noise, smooth, np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)):
        data = encode_png(img)
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.mode == ("RGBA" if shape[2] == 4 else "RGB")
            assert np.array_equal(np.asarray(im), img)


def test_text_chunks_and_determinism() -> None:
    img = np.arange(4 * 5 * 4, dtype=np.uint8).reshape(4, 5, 4)
    a = encode_png(img, {"chibi_meta": '{"seed":1}', "Software": "chibi-meta"})
    assert a == encode_png(img, {"chibi_meta": '{"seed":1}', "Software": "chibi-meta"})
    with Image.open(io.BytesIO(a)) as im:
        assert im.text == {"chibi_meta": '{"seed":1}', "Software": "chibi-meta"}
    # A non-contiguous view encodes like its copy.
    big = np.random.default_rng(0).integers(0, 256, (8, 10, 4), dtype=np.uint8)
    assert encode_png(big[:, ::2]) == encode_png(np.ascontiguousarray(big[:, ::2]))


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8), [[1, 2, 3]]])
def test_bad_arrays_are_refused(bad: object) -> None:
    with pytest.raises(UsageError, match="uint8"):
        encode_png(bad)  # type: ignore[arg-type]


def test_bad_text_is_refused() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(UsageError, match="Latin-1"):
        encode_png(img, {"k": "\u2603"})
    with pytest.raises(UsageError, match="1..79"):
        encode_png(img, {"": "v"})
