"""Batch export: many avatars into a folder, with a JSONL manifest, resumable and shardable.

Every avatar file is written atomically (temp file + fsync + rename), then its manifest line is
appended. After a kill, a rerun with the same options drops a torn last manifest line and stale temp
files, skips the seeds already in the manifest and redoes the rest, so no file is half-written and
no seed appears twice (the same seed gives the same bytes, so a file written just before the kill
is simply rewritten). ``--shard i/n`` exports the seeds whose offset from ``--seed-start`` is
``i`` modulo ``n``, into its own manifest, so n machines can share one export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chibi_meta import limits
from chibi_meta.atomic import atomic_write_bytes, atomic_write_text
from chibi_meta.avatar import faces
from chibi_meta.avatar.basemesh import BaseMesh
from chibi_meta.avatar.names import DEFAULT_MORPH_SETS, MORPH_SETS, check_morph_sets
from chibi_meta.avatar.pack import build_avatar, check_options, choose_outfit, split_packaging
from chibi_meta.errors import AttributeValueError, ExportError, UsageError

log = logging.getLogger(__name__)

DICEBEAR_MODEL_ID = "dicebear-adventurer"
BATCH = 32
SETTINGS_FILE = "export.json"


# --- where textures come from ----------------------------------------------------------------
class DicebearSource:
    """The built-in dataset's renderer, standing in for the generator until a model is shipped."""

    model_id = DICEBEAR_MODEL_ID

    def __init__(self) -> None:
        from chibi_meta.data import attributes, dicebear

        self._render = dicebear.render
        self.schema = attributes.ADVENTURER
        info = dicebear.license_info()
        self.attribution = info["attribution"]
        self.license_url = info["license_url"]
        self.references = sorted({v["url"] for v in (info.get("source"), info.get("creator")) if v and v.get("url")})

    def resolve(self, seed: int, attrs: Mapping[str, object] | None = None) -> dict[str, str]:
        return self.schema.resolve(seed, attrs)

    def generate(self, seeds: Sequence[int], attrs_list: Sequence[Mapping[str, str]] | None = None) -> np.ndarray:
        attrs_list = attrs_list or [{}] * len(seeds)
        return np.stack([self._render(int(s), a, 128)[0] for s, a in zip(seeds, attrs_list, strict=True)])

    def generate_regions(self, seeds: Sequence[int], attrs_list: Sequence[Mapping[str, str] | None],
                         overrides: Sequence[Mapping[str, str]], box: tuple[int, int, int, int]) -> np.ndarray:
        """The face sheet the DiceBear way: each variant re-rendered with its options, then cropped."""
        y0, y1, x0, x1 = box
        out = np.zeros((len(seeds), len(overrides), y1 - y0, x1 - x0, 4), np.uint8)
        for i, (s, a) in enumerate(zip(seeds, attrs_list, strict=True)):
            full = self.resolve(int(s), a)
            for j, o in enumerate(overrides):
                out[i, j] = self._render(int(s), {**full, **o}, 128)[0][y0:y1, x0:x1]
        return out


def open_texture_source(model: str | os.PathLike | None = None) -> object:
    """The generator when ``chibi_meta.gan.api`` and a model file exist, else the DiceBear renderer."""
    try:
        from chibi_meta.gan import api
    except ImportError:
        api = None  # type: ignore[assignment]
    if api is not None:
        path = Path(model) if model else api.default_model_path()
        if path.is_file():
            return api.TextureGenerator.load(path)
        if model:
            raise UsageError(f"model file {path} does not exist")
    elif model:
        raise UsageError("--model needs the generator (chibi_meta.gan), which is not installed")
    log.warning("no generator model at %s; textures come from the DiceBear renderer instead (pass --model, "
                "or reinstall chibi-meta to restore the shipped model)", api.default_model_path() if api else "?")
    return DicebearSource()


def provenance(source: object, seed: int, attrs: Mapping[str, str]) -> dict:
    return {
        "seed": int(seed),
        "attributes": dict(sorted(attrs.items())),
        "model_id": source.model_id,  # type: ignore[attr-defined]
        "attribution": source.attribution,  # type: ignore[attr-defined]
        "license_url": getattr(source, "license_url", ""),
        "references": list(getattr(source, "references", [])),
        "generator": "chibi_meta",
    }


def avatars(
    source: object,
    seeds: Sequence[int],
    attrs: Mapping[str, str] | None,
    *,
    fmt: str,
    texture_size: int,
    texture_format: str,
    base: BaseMesh | None = None,
    morph_targets: Sequence[str] | None = DEFAULT_MORPH_SETS,
) -> Iterator[tuple[int, dict[str, str], bytes]]:
    """(seed, full attributes, file bytes) for each seed, generating textures in batches.

    ``morph_targets``: the morph-target sets each file carries (names.MORPH_SETS; ``["none"]``: none).
    """
    sets = check_morph_targets(morph_targets)
    for i in range(0, len(seeds), BATCH):
        chunk = [int(s) for s in seeds[i : i + BATCH]]
        gan_attrs, pkg = split_packaging(attrs)
        drawn = [source.resolve(s, gan_attrs) for s in chunk]  # type: ignore[attr-defined]
        textures = source.generate(chunk, drawn)  # type: ignore[attr-defined]
        sheets = face_sheets(source, chunk, drawn) if sets else [None] * len(chunk)
        full = [{**a, "outfit": choose_outfit(s, pkg)} for s, a in zip(chunk, drawn, strict=True)]
        for s, a, tex, sheet in zip(chunk, full, textures, sheets, strict=True):
            data = build_avatar(
                np.ascontiguousarray(tex),
                a,
                fmt=fmt,
                texture_size=texture_size,
                texture_format=texture_format,
                provenance=provenance(source, s, a),
                base=base,
                face_sheet=sheet,
                morph_targets=morph_targets_json(sets),  # build_avatar takes the request's form: ["none"] for none
            )
            yield s, a, data


def validate_attrs(source: object, attrs: Mapping[str, str] | None) -> dict[str, str]:
    """The fixed attributes of an export, checked: the generator's against its schema, ``outfit``
    against the outfits (a missing outfit is drawn per seed)."""
    gan_attrs, pkg = split_packaging(attrs)
    out = dict(source.schema.validate(gan_attrs))  # type: ignore[attr-defined]
    if pkg:
        out["outfit"] = choose_outfit(0, pkg)
    return out


def face_sheets(source: object, seeds: Sequence[int], attrs: Sequence[Mapping[str, str]]) -> list:
    """Each avatar's face sheet (faces.FaceSheet), or None where the source cannot draw one."""
    if not hasattr(source, "generate_regions"):
        return [None] * len(seeds)
    variants = faces.variants_for(source.schema.names)  # type: ignore[attr-defined]
    if not variants:
        return [None] * len(seeds)
    regions = source.generate_regions(seeds, attrs, variants, faces.SHEET_BOX)  # type: ignore[attr-defined]
    parts = frozenset(faces.parts_drawn(variants))
    return [faces.FaceSheet(r, parts) for r in regions]


# --- option parsing helpers --------------------------------------------------------------------
def parse_shard(spec: str | None) -> tuple[int, int]:
    if spec is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", str(spec))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise UsageError(f"malformed shard {spec!r}; expected i/n with 0 <= i < n, e.g. 0/4")
    return int(m.group(1)), int(m.group(2))


def parse_morph_targets(spec: str | None) -> tuple[str, ...]:
    """``--morph-targets vrm,oculus`` -> the sets in canonical order (``none`` -> ``()``; absent: all).

    Raises AttributeValueError (exit 2) naming the allowed sets.
    """
    if spec is None:
        return DEFAULT_MORPH_SETS
    try:
        return check_morph_sets([s.strip() for s in str(spec).split(",") if s.strip()])
    except AttributeValueError as e:
        msg = str(e).replace("morph_targets", "--morph-targets", 1)
        if "allowed:" not in msg:
            msg += f"; allowed: {', '.join((*MORPH_SETS, 'none'))}"
        raise AttributeValueError(msg) from None


def check_morph_targets(value: Sequence[str] | None) -> tuple[str, ...]:
    """The Python API's ``morph_targets``: None (all), sets by name, ``["none"]`` or ``()`` (none)."""
    if isinstance(value, (list, tuple)) and not value:
        return ()
    return check_morph_sets(value)


def morph_targets_json(sets: Sequence[str]) -> list[str]:
    """Morph-target sets as export.json records them (``["none"]`` for none)."""
    return list(sets) if sets else ["none"]


def parse_attrs(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items or []:
        k, sep, v = str(it).partition("=")
        if not sep or not k.strip() or not v.strip():
            raise UsageError(f"malformed --attr {it!r}; expected key=value, e.g. hair_color=pink")
        out[k.strip()] = v.strip()
    return out


def check_count(count: object, seed_start: object) -> tuple[int, int]:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limits.MAX_COUNT:
        raise UsageError(f"--count must be an integer in [1, {limits.MAX_COUNT}], got {count!r}")
    if isinstance(seed_start, bool) or not isinstance(seed_start, int) or seed_start < 0:
        raise UsageError(f"--seed-start must be an integer >= 0, got {seed_start!r}")
    if seed_start + count - 1 > limits.MAX_SEED:
        raise UsageError(f"seeds {seed_start}..{seed_start + count - 1} go past the largest seed {limits.MAX_SEED}")
    return count, seed_start


def check_writable_dir(out: Path) -> None:
    """Create ``out`` if needed and prove we can write there, leaving nothing behind."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot write to {out}: it exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ExportError(f"cannot write to {out}: {e.strerror or e}") from None


# --- the batch export --------------------------------------------------------------------------
@dataclass
class ExportSummary:
    written: int
    skipped: int
    manifest: Path
    total_bytes: int


def _read_manifest(path: Path, out: Path) -> dict[int, dict]:
    """Seeds already exported (their file present with the recorded size).

    Repairs the manifest first: a torn last line (a kill mid-write) is dropped, and so are lines
    whose file is gone or has another size (rewritten atomically), so a redone seed is listed once.
    """
    done: dict[int, dict] = {}
    if not path.exists():
        return done
    raw = path.read_bytes()
    keep = raw[: raw.rfind(b"\n") + 1]
    if len(keep) != len(raw):
        log.warning("manifest %s ends with a torn line (killed mid-write); dropping it", path)
    stale = 0
    for line in keep.decode("utf-8").splitlines():
        try:
            rec = json.loads(line)
            seed = int(rec["seed"])
            f = out / rec["file"]
        except (ValueError, KeyError, TypeError):
            raise ExportError(f"manifest {path} has a malformed line; move it away to start over") from None
        if seed not in done and f.is_file() and f.stat().st_size == rec.get("bytes"):
            done[seed] = rec
        else:
            stale += 1
    if stale or len(keep) != len(raw):
        if stale:
            log.warning("manifest %s: %d lines without their file (or repeated); redoing those seeds", path, stale)
        lines = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in done.values())
        atomic_write_text(path, lines)
    return done


def _clean_temp(out: Path, suffix: str) -> None:
    for p in out.glob(f".chibi-*{suffix}.*.tmp"):
        try:
            p.unlink()
        except OSError:
            pass


def export_batch(
    out: str | os.PathLike,
    *,
    count: int,
    fmt: str = "glb",
    seed_start: int = 0,
    attrs: Mapping[str, str] | None = None,
    texture_size: int = 512,
    texture_format: str = "png",
    shard: tuple[int, int] = (0, 1),
    base: BaseMesh | None = None,
    source: object | None = None,
    progress: bool = True,
    thumbnails: bool = False,
    morph_targets: Sequence[str] | None = DEFAULT_MORPH_SETS,
) -> ExportSummary:
    """Export ``count`` avatars (this shard's share) into the folder ``out``.

    ``thumbnails``: also a front-view PNG beside each file (``chibi_meta.avatar.render``), written
    before the manifest line; a rerun adds the ones missing beside files already exported.
    ``morph_targets``: the morph-target sets each file carries (recorded in export.json).
    """
    check_options(fmt, texture_size, texture_format)
    check_count(count, seed_start)
    morphs = check_morph_targets(morph_targets)
    i, n = shard
    source = source or open_texture_source()
    attrs = validate_attrs(source, attrs)
    out = Path(out)
    check_writable_dir(out)
    settings = {
        "format": fmt,
        "texture_size": texture_size,
        "texture_format": texture_format,
        "attributes": dict(sorted(attrs.items())),
        "model_id": source.model_id,  # type: ignore[attr-defined]
        "base_mesh": base.source if base else "procedural",
        "morph_targets": morph_targets_json(morphs),
    }
    sfile = out / SETTINGS_FILE
    if sfile.exists():
        try:
            old = json.loads(sfile.read_text("utf-8"))
        except (OSError, ValueError):
            old = None
        if old != settings:
            raise UsageError(
                f"{out} holds an export made with other settings ({sfile}); use another --out or the same options"
            )
    else:
        atomic_write_text(sfile, json.dumps(settings, sort_keys=True, indent=1) + "\n")
    manifest = out / ("manifest.jsonl" if n == 1 else f"manifest.shard{i}of{n}.jsonl")
    _clean_temp(out, "." + fmt)
    if thumbnails:
        _clean_temp(out, ".png")
    done = _read_manifest(manifest, out)
    seeds = [s for s in range(seed_start + i, seed_start + count, n)]
    todo = [s for s in seeds if s not in done]
    renderer = _thumbnail_renderer(thumbnails)
    log.info(
        "export: %d avatars in this shard, %d already done, %d to do", len(seeds), len(seeds) - len(todo), len(todo)
    )
    from tqdm import tqdm

    written = total = 0
    bar = tqdm(total=len(seeds), initial=len(seeds) - len(todo), unit="avatar", disable=not progress or None)
    try:
        for rec in done.values() if renderer else ():
            if not _thumbnail_path(out / rec["file"]).exists():
                _write_thumbnail(renderer, (out / rec["file"]).read_bytes(), out / rec["file"])
        with open(manifest, "a", encoding="utf-8") as mf:
            for seed, full, data in avatars(
                source, todo, attrs, fmt=fmt, texture_size=texture_size, texture_format=texture_format, base=base,
                morph_targets=morphs,
            ):
                name = f"chibi-{seed}.{fmt}"
                atomic_write_bytes(out / name, data)
                if renderer:
                    _write_thumbnail(renderer, data, out / name)
                rec = {
                    "file": name,
                    "seed": seed,
                    "attributes": dict(sorted(full.items())),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                }
                mf.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
                mf.flush()
                written += 1
                total += len(data)
                if written % 64 == 0:
                    os.fsync(mf.fileno())
                bar.update(1)
            mf.flush()
            os.fsync(mf.fileno())
    except OSError as e:
        raise ExportError(f"cannot write to {out}: {e.strerror or e}") from None
    finally:
        bar.close()
        if renderer:
            renderer.close()
    return ExportSummary(written=written, skipped=len(seeds) - len(todo), manifest=manifest, total_bytes=total)


def export_one(
    path: str | os.PathLike,
    seed: int,
    *,
    fmt: str,
    attrs: Mapping[str, str] | None = None,
    texture_size: int = 512,
    texture_format: str = "png",
    base: BaseMesh | None = None,
    source: object | None = None,
    thumbnails: bool = False,
    morph_targets: Sequence[str] | None = DEFAULT_MORPH_SETS,
) -> tuple[dict[str, str], bytes]:
    """Export one avatar to the file ``path`` (atomically), with ``thumbnails`` its front view beside it."""
    check_options(fmt, texture_size, texture_format)
    morphs = check_morph_targets(morph_targets)
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"cannot write to {path}: it is a folder (give a file name ending in .{fmt})")
    source = source or open_texture_source()
    attrs = validate_attrs(source, attrs)
    _, full, data = next(
        avatars(source, [seed], attrs, fmt=fmt, texture_size=texture_size, texture_format=texture_format, base=base,
                morph_targets=morphs)
    )
    renderer = _thumbnail_renderer(thumbnails)
    atomic_write_bytes(path, data)
    if renderer:
        try:
            _write_thumbnail(renderer, data, path)
        finally:
            renderer.close()
    return full, data


def _thumbnail_renderer(thumbnails: bool) -> object | None:
    """A started renderer for ``--thumbnails`` (a missing render dependency fails before anything is written)."""
    if not thumbnails:
        return None
    from chibi_meta.avatar.render import Renderer

    return Renderer().start()


def _thumbnail_path(path: Path) -> Path:
    from chibi_meta.avatar.render import thumbnail_path

    return thumbnail_path(path)


def _write_thumbnail(renderer: object, data: bytes, path: Path) -> None:
    from chibi_meta.avatar.render import write_thumbnail

    write_thumbnail(renderer, data, path)  # type: ignore[arg-type]
