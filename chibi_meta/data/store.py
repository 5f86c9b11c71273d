"""The compact on-disk dataset format and its loader.

A dataset folder holds:
  dataset.json      schema (with the data's attribute counts), size, count, shard list, fingerprint
  shard-NNNNN.npz   uncompressed: ``images`` (n, S, S, 4) uint8 RGBA, ``labels`` (n, A) int16, ``names``
  LICENSE.txt       the licence and attribution text of the art (travels with the data)

Shards are written atomically, so an interrupted build leaves only whole shards and a rerun
fills in the missing ones. 40 000 images at 128 px load in about 2 s.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chibi_meta.atomic import atomic_write_bytes, atomic_write_text
from chibi_meta.data.attributes import AttributeSchema
from chibi_meta.errors import DataError

log = logging.getLogger(__name__)
META = "dataset.json"
FORMAT = "chibi-meta-dataset/1"


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.npz"


def write_shard(path: Path, images: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    buf = io.BytesIO()
    np.savez(buf, images=images, labels=labels.astype(np.int16), names=np.asarray(names, dtype=str))
    atomic_write_bytes(path, buf.getvalue())


def read_shard(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["images"], z["labels"], [str(n) for n in z["names"]]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"corrupt dataset shard {path}: {e}") from None


def write_meta(out: Path, schema: AttributeSchema, size: int, shards: list[str], count: int, extra: dict) -> dict:
    """Write dataset.json; the fingerprint hashes the shard files' names, sizes and the schema."""
    h = hashlib.sha256(schema.dumps().encode())
    for s in shards:
        h.update(f"{s}:{(out / s).stat().st_size}".encode())
    meta = {
        "format": FORMAT,
        "size": size,
        "count": count,
        "shards": shards,
        "schema": schema.to_json(),
        "fingerprint": h.hexdigest()[:16],
        **extra,
    }
    atomic_write_text(out / META, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


@dataclass
class Dataset:
    """A loaded dataset: all images in memory as uint8."""

    root: Path
    images: np.ndarray  # (N, S, S, 4) uint8
    labels: np.ndarray  # (N, A) int64
    schema: AttributeSchema
    fingerprint: str
    meta: dict

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])


def read_meta(root: str | Path) -> dict:
    root = Path(root)
    p = root / META
    if not p.is_file():
        raise DataError(f"{root} is not a dataset folder: {META} is missing; build one with `chibi-meta dataset build`")
    try:
        meta = json.loads(p.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"corrupt {p}: {e}") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"{p}: unknown dataset format {meta.get('format')!r}; expected {FORMAT!r}")
    return meta


def load_dataset(root: str | Path) -> Dataset:
    """Load every shard into memory. Raises DataError for an empty or corrupt dataset."""
    root = Path(root)
    meta = read_meta(root)
    imgs, labs = [], []
    for s in meta["shards"]:
        i, lab, _ = read_shard(root / s)
        imgs.append(i)
        labs.append(lab)
    if not imgs or sum(len(i) for i in imgs) == 0:
        raise DataError(f"dataset {root} is empty: it holds no images")
    images = np.concatenate(imgs)
    labels = np.concatenate(labs).astype(np.int64)
    schema = AttributeSchema.from_json(meta["schema"])
    if labels.shape[1] != len(schema.attributes):
        raise DataError(f"dataset {root}: labels have {labels.shape[1]} columns, schema has {len(schema.attributes)}")
    log.info("loaded %d images of %d px from %s", len(images), images.shape[1], root)
    return Dataset(root, images, labels, schema, meta["fingerprint"], meta)
