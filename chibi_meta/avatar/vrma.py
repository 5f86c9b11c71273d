"""VRM Animation 1.0 (``.vrma``) files from ``chibi_meta.avatar.clips.Clip``.

A ``.vrma`` is a GLB with the ``VRMC_vrm_animation`` extension (spec: vrm-c/vrm-specification,
``specification/VRMC_vrm_animation-1.0``): one node per humanoid bone of the reference skeleton
(``clips.REST``, VRM T-pose, identity rotations, translations relative to the parent), the extension's
``humanoid.humanBones`` mapping each bone to its node, and one animation with a LINEAR rotation channel
for every bone the clip moves plus a translation channel for the hips (absolute positions in the
reference skeleton: rest + ``Clip.hips_offset``; players scale it by the model's hips height).

Keys are sampled at the clip's ``fps`` over its whole duration; a loop's last key equals its first.
The bytes are deterministic (sorted JSON keys, fixed separators, little-endian float32 data).
``python assets/animations/make_clips.py`` regenerates the shipped files.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

from chibi_meta.atomic import atomic_write_bytes
from chibi_meta.avatar.clips import BONES, CLIPS, PARENT, REST, Clip
from chibi_meta.errors import UsageError

log = logging.getLogger(__name__)

GENERATOR = "chibi_meta vrma writer 1"
EXTENSION = "VRMC_vrm_animation"
FLOAT = 5126
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942
# The shipped clips (written by assets/animations/make_clips.py), found like the shipped model
# (chibi_meta.gan.api.DEFAULT_MODEL): next to the package in a source checkout / editable install.
ANIMATIONS_DIR = Path(__file__).resolve().parents[2] / "assets" / "animations"


def _f32(v: float) -> float:
    """``v`` rounded to float32 (the value the file stores, so accessor min/max match the data)."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def _round(v: float) -> float:
    r = round(v, 6)
    return 0.0 if r == 0.0 else r  # no -0.0 in the JSON


def _keys(clip: Clip) -> tuple[list[float], dict[str, list[tuple[float, ...]]], list[tuple[float, float, float]]]:
    """Key times, rotations of the moved bones (sign-continuous) and absolute hips positions."""
    times = clip.frame_times()
    moved = clip.moved_bones()
    rotations: dict[str, list[tuple[float, ...]]] = {b: [] for b in moved}
    hips: list[tuple[float, float, float]] = []
    rest = REST["hips"]
    for t in times:
        sample = clip.sample(t)
        for b in moved:
            q = sample[b]
            prev = rotations[b][-1] if rotations[b] else None
            if prev is not None and sum(a * c for a, c in zip(prev, q, strict=True)) < 0.0:
                q = (-q[0], -q[1], -q[2], -q[3])  # shortest path between keys
            rotations[b].append(q)
        o = clip.hips_offset(t)
        hips.append((rest[0] + o[0], rest[1] + o[1], rest[2] + o[2]))
    return times, rotations, hips


def vrma_bytes(clip: Clip) -> bytes:
    """The ``.vrma`` (GLB) bytes of ``clip``."""
    if clip.fps <= 0 or not clip.duration > 0.0:
        raise UsageError(f"clip {clip.name!r}: fps and duration must be positive (got {clip.fps}, {clip.duration})")
    times, rotations, hips = _keys(clip)
    index = {b: i for i, b in enumerate(BONES)}
    nodes: list[dict] = []
    for b in BONES:
        p = PARENT[b]
        pos, base = REST[b], (REST[p] if p is not None else (0.0, 0.0, 0.0))
        node: dict = {"name": b, "translation": [_round(pos[k] - base[k]) for k in range(3)]}
        children = [index[c] for c in BONES if PARENT[c] == b]
        if children:
            node["children"] = children
        nodes.append(node)

    binary = bytearray()
    views: list[dict] = []
    accessors: list[dict] = []

    def add(values: list[tuple[float, ...]] | list[float], kind: str, width: int, bounds: bool) -> int:
        flat = [float(v) for row in values for v in (row if isinstance(row, tuple) else (row,))]
        data = struct.pack(f"<{len(flat)}f", *flat)
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data)})
        binary.extend(data + bytes(-len(data) % 4))
        acc: dict = {"bufferView": len(views) - 1, "componentType": FLOAT, "count": len(values), "type": kind}
        if bounds:
            cols = [[_f32(flat[i + k]) for i in range(0, len(flat), width)] for k in range(width)]
            acc["min"] = [min(c) for c in cols]
            acc["max"] = [max(c) for c in cols]
        accessors.append(acc)
        return len(accessors) - 1

    time_acc = add(times, "SCALAR", 1, bounds=True)
    samplers: list[dict] = []
    channels: list[dict] = []
    hips_acc = add(hips, "VEC3", 3, bounds=False)
    samplers.append({"input": time_acc, "interpolation": "LINEAR", "output": hips_acc})
    channels.append({"sampler": 0, "target": {"node": index["hips"], "path": "translation"}})
    for b, qs in rotations.items():
        samplers.append({"input": time_acc, "interpolation": "LINEAR", "output": add(qs, "VEC4", 4, bounds=False)})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": index[b], "path": "rotation"}})

    doc = {
        "asset": {
            "version": "2.0",
            "generator": GENERATOR,
            "extras": {"chibi_meta": {"clip": clip.name, "duration": clip.duration, "fps": clip.fps,
                                      "loop": clip.loop}},
        },  # fmt: skip
        "scene": 0,
        "scenes": [{"nodes": [index["hips"]]}],
        "nodes": nodes,
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": accessors,
        "animations": [{"name": clip.name, "channels": channels, "samplers": samplers}],
        "extensionsUsed": [EXTENSION],
        "extensions": {
            EXTENSION: {"specVersion": "1.0", "humanoid": {"humanBones": {b: {"node": index[b]} for b in BONES}}}
        },
    }
    js = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return b"".join([
        struct.pack("<III", _GLB_MAGIC, 2, total),
        struct.pack("<II", len(js), _JSON_CHUNK), js,
        struct.pack("<II", len(binary), _BIN_CHUNK), bytes(binary),
    ])  # fmt: skip


def write_vrma(clip: Clip, path: str | os.PathLike) -> int:
    """Write ``clip`` as a ``.vrma`` file atomically; return its size in bytes."""
    data = vrma_bytes(clip)
    atomic_write_bytes(path, data)
    log.info("wrote %s (%s, %d bytes)", path, clip.name, len(data))
    return len(data)


def shipped_clip(name: str) -> Path:
    """Path of the shipped ``<name>.vrma`` (``idle``, ``walk``); ``UsageError`` for another name."""
    if name not in CLIPS:
        raise UsageError(f"unknown clip {name!r}; allowed: {', '.join(sorted(CLIPS))}")
    return ANIMATIONS_DIR / f"{name}.vrma"


def write_all(out_dir: str | os.PathLike) -> dict[str, int]:
    """Write every clip of ``CLIPS`` as ``out_dir/<name>.vrma``; return the sizes."""
    return {name: write_vrma(clip, Path(out_dir) / f"{name}.vrma") for name, clip in CLIPS.items()}
