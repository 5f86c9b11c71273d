"""Build the built-in dataset: DiceBear `adventurer` avatars rendered offline.

Image ``i`` draws the labelled attributes from the schema's distribution with seed ``i`` and pins
them in DiceBear (seed ``chibi-<i>``), which picks the unlabelled parts; DiceBear's resolved options
are checked against the label. Work is split into
shards of ``SHARD`` images rendered by a process pool; a rerun renders only missing shards.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from chibi_meta.atomic import atomic_write_text
from chibi_meta.data import dicebear, store
from chibi_meta.data.attributes import ADVENTURER, NONE
from chibi_meta.errors import DataError, UsageError

log = logging.getLogger(__name__)
SHARD = 1000
STYLES = ("adventurer",)


def check_resolved(full: dict[str, str], options: dict) -> None:
    """Cross-check that DiceBear resolved the options we pinned (a guard against style changes)."""
    for a in ADVENTURER.attributes:
        want = a.dicebear[a.values.index(full[a.name])] if a.dicebear else full[a.name]
        raw = options.get(a.option)
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        if raw is None:  # absent: glasses off, or a hair style that uses no hair colour (short19)
            if a.name == "glasses" and full[a.name] != NONE:
                raise DataError(f"DiceBear drew no glasses although {full[a.name]} was pinned")
            continue
        if str(raw).lower().lstrip("#") != want.lower().lstrip("#"):
            raise DataError(f"DiceBear resolved {a.option}={raw!r}, expected {want!r}")


def render_labelled(i: int, size: int) -> tuple[np.ndarray, list[int]]:
    """Image ``i``: attributes drawn from the schema's distribution with seed ``i``, pinned in DiceBear;
    the rest (eyebrows, earrings, details) is DiceBear's own choice from the seed ``chibi-<i>``."""
    full = ADVENTURER.resolve(i)
    av = dicebear.avatar(i, full, size)
    check_resolved(full, av.to_json()["options"])  # type: ignore[attr-defined]
    return dicebear.rasterise(av.to_string(), size), ADVENTURER.encode(full)  # type: ignore[attr-defined]


def _render_shard(args: tuple[Path, int, int, int]) -> str:
    out, k, n, size = args
    start = k * SHARD
    imgs, labs, names = [], [], []
    for i in range(start, min(start + SHARD, n)):
        im, lab = render_labelled(i, size)
        imgs.append(im)
        labs.append(lab)
        names.append(f"chibi-{i}")
    store.write_shard(out / store.shard_name(k), np.stack(imgs), np.asarray(labs), names)
    return store.shard_name(k)


def build(out: str | Path, count: int, size: int = 128, style: str = "adventurer", workers: int | None = None,
          progress: bool = True) -> dict:
    """Render ``count`` avatars into ``out``; returns the dataset metadata."""
    if style not in STYLES:
        raise UsageError(f"unknown style {style!r}; allowed: {', '.join(STYLES)}")
    if count < 1:
        raise UsageError(f"--count must be >= 1, got {count}")
    if size not in (32, 64, 128, 256):
        raise UsageError(f"--size must be one of 32, 64, 128, 256, got {size}")
    dicebear._require()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old = (out / store.META)
    if old.exists():
        meta = store.read_meta(out)
        if meta.get("size") != size or meta.get("style") != style:
            raise UsageError(f"{out} holds a {meta.get('style')} dataset at {meta.get('size')} px; use another --out")
    nshards = (count + SHARD - 1) // SHARD
    names = [store.shard_name(k) for k in range(nshards)]
    # A shard is complete iff it exists under its final name (atomic writes) with the right count.
    todo = [k for k in range(nshards) if not (out / names[k]).exists()]
    last = nshards - 1
    if last not in todo and (out / names[last]).exists():
        if len(store.read_shard(out / names[last])[2]) != count - last * SHARD:
            todo.append(last)  # the count changed: the last shard is re-rendered
    log.info("dataset %s: %d shards, %d to render", out, nshards, len(todo))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="shard", disable=not progress, desc="render")
        with ProcessPoolExecutor(workers) as ex:
            for _ in ex.map(_render_shard, [(out, k, count, size) for k in todo]):
                bar.update(1)
        bar.close()
    counts = [[0] * n for n in ADVENTURER.sizes]
    for s in names:
        _, lab, _ = store.read_shard(out / s)
        for j in range(lab.shape[1]):
            for v, c in zip(*np.unique(lab[:, j], return_counts=True), strict=True):
                counts[j][int(v)] += int(c)
    lic = dicebear.license_info()
    atomic_write_text(out / "LICENSE.txt", _license_text(lic))
    return store.write_meta(out, ADVENTURER.with_probs(counts), size, names, count,
                            {"style": style, "source": "dicebear", "license": lic})


def _license_text(lic: dict) -> str:
    return (
        f"Images in this folder were rendered offline from the DiceBear '{lic['style']}' style.\n\n"
        f"{lic['attribution']}\n\nLicence: {lic['license']} ({lic['license_url']})\n"
        f"Renderer: {lic['renderer']}\n"
    )
