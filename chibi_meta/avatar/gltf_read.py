"""Reading glTF 2.0 files (GLB, or .gltf with data URIs only) for :mod:`chibi_meta.avatar.skinning`.

``split_glb`` checks the container (size cap ``MAX_FILE_BYTES``, GLB header and chunks, the JSON,
``asset.version`` 2.x, ``extensionsRequired`` against what is read); ``Reader`` reads accessors
(strided, normalized integers, sparse) and images (capped at ``limits.MAX_IMAGE_PIXELS``); external
URIs are refused. Every problem is a :class:`~chibi_meta.errors.MeshError` naming it.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import struct

import numpy as np

from chibi_meta import limits
from chibi_meta.errors import MeshError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 256 * 1024 * 1024  # a GLB / glTF we agree to parse
_DTYPE = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_NORM = {np.int8: 127.0, np.uint8: 255.0, np.int16: 32767.0, np.uint16: 65535.0}
# required extensions that are read (or safe to ignore: texture transforms are drawn untransformed)
_READ_EXTENSIONS = {"KHR_mesh_quantization", "EXT_texture_webp", "KHR_materials_unlit", "KHR_texture_transform"}


def split_glb(data: bytes) -> tuple[dict, bytes]:
    """The glTF JSON and the binary chunk of a GLB (or of a .gltf JSON file: no binary chunk)."""
    if len(data) > MAX_FILE_BYTES:
        raise MeshError(f"file is {len(data)} bytes; at most {MAX_FILE_BYTES} are read")
    if data[:4] == b"glTF":
        if len(data) < 20:
            raise MeshError("truncated GLB header")
        _, version, length = struct.unpack_from("<4sII", data, 0)
        if version != 2:
            raise MeshError(f"GLB version {version}; only glTF 2.0 is supported")
        length = min(length, len(data))
        off, doc, binary = 12, None, b""
        while off + 8 <= length:
            clen, ctype = struct.unpack_from("<II", data, off)
            chunk = data[off + 8 : off + 8 + clen]
            if len(chunk) != clen:
                raise MeshError("truncated GLB chunk")
            if ctype == 0x4E4F534A and doc is None:
                doc = chunk
            elif ctype == 0x004E4942 and not binary:
                binary = chunk
            off += 8 + clen + (-clen % 4 if ctype != 0x4E4F534A else 0)
        if doc is None:
            raise MeshError("GLB without a JSON chunk")
    elif data.lstrip()[:1] == b"{":
        doc, binary = data, b""
    else:
        raise MeshError(f"not a GLB or glTF file (it starts with {data[:8]!r})")
    try:
        gltf = json.loads(bytes(doc).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise MeshError(f"not a GLB or glTF file (its JSON does not parse: {e})") from None
    if not isinstance(gltf, dict) or not str(gltf.get("asset", {}).get("version", "")).startswith("2"):
        raise MeshError("not a glTF 2.0 file (asset.version is not 2.x)")
    unknown = sorted(set(gltf.get("extensionsRequired") or []) - _READ_EXTENSIONS)
    if unknown:
        raise MeshError(f"the file requires {', '.join(map(str, unknown))}, which chibi_meta cannot read "
                        f"(it reads {', '.join(sorted(_READ_EXTENSIONS))})")  # fmt: skip
    return gltf, binary


def _data_uri(uri: str) -> bytes:
    if not uri.startswith("data:") or ";base64," not in uri:
        raise MeshError(f"external URI {uri[:60]!r}: only self-contained files (GLB, data URIs) are read")
    try:
        return base64.b64decode(uri.split(";base64,", 1)[1], validate=True)
    except ValueError:
        raise MeshError("malformed base64 data URI") from None


class Reader:
    """Accessors and images of one parsed file."""

    def __init__(self, gltf: dict, binary: bytes) -> None:
        self.g = gltf
        self.buffers: list[bytes] = []
        for i, b in enumerate(gltf.get("buffers", [])):
            data = _data_uri(b["uri"]) if "uri" in b else (binary if i == 0 else b"")
            if len(data) < int(b.get("byteLength", 0)):
                raise MeshError(f"buffer {i} holds {len(data)} bytes, less than its byteLength")
            self.buffers.append(data)

    def view(self, i: int) -> tuple[bytes, int, int, int | None]:
        try:
            v = self.g["bufferViews"][i]
            buf = self.buffers[v["buffer"]]
        except (IndexError, KeyError, TypeError):
            raise MeshError(f"bufferView {i} is missing or names a missing buffer") from None
        off, n = int(v.get("byteOffset", 0)), int(v["byteLength"])
        if off < 0 or n < 0 or off + n > len(buf):
            raise MeshError(f"bufferView {i} lies outside its buffer")
        return buf, off, n, v.get("byteStride")

    def _raw(self, view: int, offset: int, count: int, dtype: type, ncomp: int) -> np.ndarray:
        buf, voff, vlen, stride = self.view(view)
        item = np.dtype(dtype).itemsize
        stride = int(stride or item * ncomp)
        need = offset + (count - 1) * stride + item * ncomp if count else 0
        if offset < 0 or need > vlen or stride < item * ncomp:
            raise MeshError(f"accessor data lies outside bufferView {view}")
        if count == 0:
            return np.zeros((0, ncomp), dtype)
        arr = np.ndarray((count, ncomp), dtype, buffer=buf, offset=voff + offset, strides=(stride, item))
        return arr.copy()

    def accessor(self, i: int) -> np.ndarray:
        """Accessor ``i`` as an array (count, components): floats if float or normalized, else ints."""
        try:
            a = self.g["accessors"][i]
            dtype, ncomp = _DTYPE[a["componentType"]], _NCOMP[a["type"]]
            count = int(a["count"])
        except (IndexError, KeyError, TypeError):
            raise MeshError(f"accessor {i} is missing or malformed") from None
        if count < 0 or count > 1 << 26:
            raise MeshError(f"accessor {i} has an unusable count {count}")
        if "bufferView" in a:
            arr = self._raw(a["bufferView"], int(a.get("byteOffset", 0)), count, dtype, ncomp)
        else:
            arr = np.zeros((count, ncomp), dtype)
        sp = a.get("sparse")
        if sp:
            try:
                n, si, sv = int(sp["count"]), sp["indices"], sp["values"]
                idx = self._raw(si["bufferView"], int(si.get("byteOffset", 0)), n, _DTYPE[si["componentType"]], 1)
                val = self._raw(sv["bufferView"], int(sv.get("byteOffset", 0)), n, dtype, ncomp)
            except (KeyError, TypeError, ValueError):
                raise MeshError(f"sparse accessor {i} is malformed") from None
            idx = idx[:, 0].astype(np.int64)
            if n and (idx.min() < 0 or idx.max() >= count):
                raise MeshError(f"sparse accessor {i} has indices outside [0, {count})")
            arr[idx] = val
        if a.get("normalized") and dtype in _NORM:
            return np.maximum(arr.astype(np.float32) / _NORM[dtype], -1.0)
        return arr.astype(np.float32) if dtype == np.float32 else arr

    def image(self, i: int) -> np.ndarray | None:
        try:
            im = self.g["images"][i]
            data = _data_uri(im["uri"]) if "uri" in im else None
            if data is None:
                buf, off, n, _ = self.view(im["bufferView"])
                data = buf[off : off + n]
        except (IndexError, KeyError, TypeError):
            raise MeshError(f"image {i} is missing or malformed") from None
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as pil:
                if pil.width * pil.height > limits.MAX_IMAGE_PIXELS:
                    raise MeshError(f"image {i} is {pil.width}x{pil.height}, over {limits.MAX_IMAGE_PIXELS} pixels")
                return np.asarray(pil.convert("RGBA"))
        except (OSError, ValueError) as e:
            log.warning("image %d cannot be decoded (%s); drawing its material without it", i, e)
            return None


def triangles(mode: int, idx: np.ndarray) -> np.ndarray:
    """(T, 3) triangles of a primitive's indices for its mode (4 list, 5 strip, 6 fan; others none)."""
    if mode == 4:
        return idx[: len(idx) // 3 * 3].reshape(-1, 3)
    if mode in (5, 6) and len(idx) >= 3:
        k = np.arange(len(idx) - 2)
        if mode == 5:  # strip: every other triangle is flipped to keep the winding
            a, b, c = idx[k], idx[k + 1 + (k % 2)], idx[k + 2 - (k % 2)]
        else:  # fan
            a, b, c = np.full_like(idx[k], idx[0]), idx[k + 1], idx[k + 2]
        return np.stack([a, b, c], axis=1)
    return np.zeros((0, 3), np.uint32)
