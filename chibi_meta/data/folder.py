"""Import a folder of the user's own art (PNG, JPEG, WebP), optionally labelled.

Images are read as untrusted input: a file over MAX_IMAGE_BYTES or MAX_IMAGE_PIXELS, one that
cannot be decoded or is truncated, one smaller than MIN_IMAGE_SIDE or with an aspect ratio past
MAX_ASPECT_RATIO is reported by name and skipped; the import goes on. Each kept image is padded
to a square (transparent), resized to ``size`` and stored as RGBA.

Labels (optional) name attributes per file:

* CSV with a header ``file,<attr>,<attr>,...``;
* JSON ``{"attributes": {"<attr>": ["v1", ...]}, "labels": {"<file>": {"<attr>": "v"}}}``, or just
  the ``labels`` object. Declared attributes fix the allowed values.

A column named like a built-in attribute (``hair_color``, ``skin``, ...) must use the built-in
values, so a model trained on the user's art speaks the same vocabulary. A labels file that
names an unknown file or value fails at once, before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import numpy as np

from chibi_meta.atomic import atomic_write_text
from chibi_meta.data import store
from chibi_meta.data.attributes import ADVENTURER, Attribute, AttributeSchema
from chibi_meta.errors import DataError, LimitExceeded, UsageError
from chibi_meta.limits import MAX_ASPECT_RATIO, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_LABELS_BYTES, MIN_IMAGE_SIDE

log = logging.getLogger(__name__)
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
SHARD = 1000


class Skipped(Exception):
    """An image that is not imported, with the reason."""


def load_image(path: Path, size: int) -> np.ndarray:
    """Decode, check and square-pad one image; raises Skipped with a reason."""
    from PIL import Image, UnidentifiedImageError

    n = path.stat().st_size
    if n > MAX_IMAGE_BYTES:
        raise Skipped(f"{n} bytes is over MAX_IMAGE_BYTES ({MAX_IMAGE_BYTES})")
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise Skipped(f"{w}x{h} is over MAX_IMAGE_PIXELS ({MAX_IMAGE_PIXELS})")
            if min(w, h) < MIN_IMAGE_SIDE:
                raise Skipped(f"tiny: {w}x{h}, the shorter side must be >= {MIN_IMAGE_SIDE}")
            if max(w, h) / min(w, h) > MAX_ASPECT_RATIO:
                raise Skipped(f"oddly shaped: {w}x{h}, aspect ratio must be <= {MAX_ASPECT_RATIO}")
            im.load()
            rgba = im.convert("RGBA")
    except Skipped:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise Skipped(f"unreadable or truncated image: {e}") from None
    side = max(rgba.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    return np.asarray(canvas.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def read_labels(path: str | Path, files: list[str]) -> tuple[AttributeSchema, dict[str, dict[str, str]]]:
    """Parse and check a labels file against the folder's file names."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"labels file not found: {path}")
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise LimitExceeded(f"labels file {path} is over MAX_LABELS_BYTES ({MAX_LABELS_BYTES})")
    text = path.read_text("utf-8-sig")
    declared: dict[str, list[str]] = {}
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise DataError(f"{path}: not valid JSON: {e}") from None
        if isinstance(doc, dict) and "labels" in doc:
            declared = doc.get("attributes") or {}
            doc = doc["labels"]
        if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
            raise DataError(f"{path}: expected an object of file name -> {{attribute: value}}")
        labels = {str(k): {str(a): v for a, v in d.items()} for k, d in doc.items()}
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or "file" not in rows[0]:
            raise DataError(f"{path}: a labels CSV needs a header row starting with 'file' and at least one row")
        labels = {r["file"]: {k: v for k, v in r.items() if k != "file"} for r in rows}
    else:
        raise UsageError(f"labels file {path} must be .csv or .json")
    known = set(files)
    unknown = sorted(set(labels) - known)
    if unknown:
        raise DataError(f"{path} names {len(unknown)} file(s) not in the folder, e.g. {unknown[0]!r}")
    names = sorted({a for d in labels.values() for a in d} | set(declared))
    builtin = {a.name: a for a in ADVENTURER.attributes}
    attrs = []
    for name in names:
        if name in builtin:
            allowed = list(builtin[name].values)
        elif name in declared:
            allowed = [str(v) for v in declared[name]]
        else:
            allowed = sorted({str(d[name]) for d in labels.values() if d.get(name) not in (None, "")})
        for f, d in labels.items():
            v = d.get(name)
            if v in (None, ""):
                raise DataError(f"{path}: {f!r} has no value for {name!r}; every labelled file needs every attribute")
            if not isinstance(v, str) or v not in allowed:
                raise DataError(f"{path}: {f!r} has unknown {name} value {v!r}; allowed: {', '.join(allowed)}")
        b = builtin.get(name)
        attrs.append(b if b else Attribute(name, tuple(allowed)))
    return AttributeSchema(f"labels:{path.name}", tuple(attrs)), {k: {a: str(v) for a, v in d.items()}
                                                                    for k, d in labels.items()}


def build_from_folder(src: str | Path, out: str | Path, size: int = 128, labels: str | Path | None = None,
                      progress: bool = True) -> dict:
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UsageError(f"--images {src} is not a folder")
    if size not in (32, 64, 128, 256):
        raise UsageError(f"--size must be one of 32, 64, 128, 256, got {size}")
    files = sorted(p.name for p in src.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    schema, labelled = read_labels(labels, files) if labels else (AttributeSchema("unlabelled", ()), {})
    if labels:
        files = [f for f in files if f in labelled]  # unlabelled files of a labelled set are left out
    out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    imgs, labs, names, skipped = [], [], [], []
    for f in tqdm(files, unit="img", disable=not progress, desc="import"):
        try:
            imgs.append(load_image(src / f, size))
        except Skipped as e:
            log.warning("skipped %s: %s", f, e)
            skipped.append({"file": f, "reason": str(e)})
            continue
        labs.append(schema.encode(labelled[f]) if labels else [])
        names.append(f)
    if not imgs:
        raise DataError(f"no usable images in {src} ({len(skipped)} skipped; allowed types: {', '.join(EXTENSIONS)})")
    shards = []
    for k in range(0, len(imgs), SHARD):
        name = store.shard_name(k // SHARD)
        lab = np.asarray(labs[k:k + SHARD], dtype=np.int64).reshape(len(imgs[k:k + SHARD]), len(schema.attributes))
        store.write_shard(out / name, np.stack(imgs[k:k + SHARD]), lab, names[k:k + SHARD])
        shards.append(name)
    counts = [[0] * n for n in schema.sizes]
    for row in labs:
        for j, v in enumerate(row):
            counts[j][v] += 1
    atomic_write_text(out / "skipped.json", json.dumps(skipped, indent=1) + "\n")
    lic = {"license": "as provided by the artist", "attribution": f"images from {src.name}"}
    return store.write_meta(out, schema.with_probs(counts) if labels else schema, size, shards, len(imgs),
                            {"source": "folder", "skipped": len(skipped), "license": lic})
