"""``chibi-meta export``: rigged chibi avatars as GLB or VRM 1.0, one file or a resumable batch."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# kept here (not imported from chibi_meta.avatar) so that --help stays light; tests check they match
_FORMATS = ("glb", "vrm")
_TEXTURE_SIZES = (256, 512, 1024)
_TEXTURE_FORMATS = ("png", "jpeg", "webp")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export rigged chibi avatars as GLB or VRM 1.0",
        description=(
            "Export avatars. Batch: --count N --out DIR (resumable; writes DIR/manifest.jsonl). "
            "One avatar: --seed S --out FILE.glb|FILE.vrm."
        ),
    )
    p.add_argument("--out", required=True, help="output folder (batch) or file (with --seed)")
    p.add_argument("--count", type=int, help="number of avatars (batch export)")
    p.add_argument("--seed", type=int, help="export the one avatar of this seed to the file --out")
    p.add_argument("--seed-start", type=int, default=0, help="first seed of a batch (default 0)")
    p.add_argument("--format", dest="fmt", help=f"file format: {', '.join(_FORMATS)} (default: from --out, else glb)")
    p.add_argument("--attr", action="append", metavar="KEY=VALUE", help="fix an attribute (repeatable)")
    p.add_argument("--texture-size", type=int, default=512, help=f"atlas size: {', '.join(map(str, _TEXTURE_SIZES))}")
    p.add_argument("--texture-format", default="png", help=f"atlas encoding: {', '.join(_TEXTURE_FORMATS)}")
    p.add_argument("--shard", help="export only shard i of n (i/n, 0 <= i < n) for a cluster job array")
    p.add_argument("--base-mesh", help="use an artist's rigged chibi GLB instead of the built-in base")
    p.add_argument("--model", help="generator model file (default: the shipped model, else DiceBear images)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--thumbnails", action="store_true", help="also a front-view PNG beside each file (needs [render])")
    p.add_argument("--morph-targets", metavar="SETS",
                   help="morph-target sets each file carries, comma-separated: vrm, oculus, arkit, or none "
                        "(default: all)")
    p.set_defaults(func=handle)
    _register_render(subparsers)
    a = subparsers.add_parser("attributes", help="every attribute a request may fix, and its allowed values")
    a.add_argument("--model", metavar="PATH", help="generator .safetensors (default: the shipped model)")
    a.add_argument("--json", action="store_true", help="machine-readable JSON")
    a.set_defaults(func=_attributes)


def _format(args: argparse.Namespace, single: bool) -> str:
    from chibi_meta.errors import UsageError

    fmt = args.fmt
    suffix = Path(args.out).suffix.lower().lstrip(".")
    if single and suffix in _FORMATS:
        if fmt and fmt != suffix:
            raise UsageError(f"--format {fmt} does not match the file name {args.out}")
        fmt = suffix
    fmt = fmt or "glb"
    if fmt not in _FORMATS:
        raise UsageError(f"unknown format {fmt!r}; allowed: {', '.join(_FORMATS)}")
    return fmt


def handle(args: argparse.Namespace) -> int:
    from chibi_meta.avatar import export
    from chibi_meta.avatar.pack import check_options
    from chibi_meta.errors import UsageError

    single = args.seed is not None
    if single == (args.count is not None):
        raise UsageError("give either --count N (batch into a folder) or --seed S (one file)")
    fmt = _format(args, single)
    check_options(fmt, args.texture_size, args.texture_format)
    attrs = export.parse_attrs(args.attr)
    shard = export.parse_shard(args.shard)
    morphs = export.parse_morph_targets(args.morph_targets)
    if single:
        if args.shard:
            raise UsageError("--shard applies to batch exports (--count) only")
        if Path(args.out).suffix.lower() != "." + fmt:
            raise UsageError(f"with --seed, --out must be a file name ending in .{fmt}, got {args.out}")
    else:
        export.check_count(args.count, args.seed_start)
    base = None
    if args.base_mesh:
        from chibi_meta.avatar.basemesh import load_base_mesh

        base = load_base_mesh(args.base_mesh)
    source = export.open_texture_source(args.model)
    if single:
        full, data = export.export_one(
            args.out,
            args.seed,
            fmt=fmt,
            attrs=attrs,
            texture_size=args.texture_size,
            texture_format=args.texture_format,
            base=base,
            source=source,
            thumbnails=args.thumbnails,
            morph_targets=morphs,
        )
        log.info("wrote %s (%d bytes, %s)", args.out, len(data), ", ".join(f"{k}={v}" for k, v in full.items()))
        return 0
    s = export.export_batch(
        args.out,
        count=args.count,
        fmt=fmt,
        seed_start=args.seed_start,
        attrs=attrs,
        texture_size=args.texture_size,
        texture_format=args.texture_format,
        shard=shard,
        base=base,
        source=source,
        progress=not args.no_progress,
        thumbnails=args.thumbnails,
        morph_targets=morphs,
    )
    log.info("exported %d avatars (%d already there) to %s; manifest %s", s.written, s.skipped, args.out, s.manifest)
    return 0


# --- chibi-meta render -------------------------------------------------------------------------
# kept here (not imported from chibi_meta.avatar.render) so that --help stays light; tests check they match
_VIEWS = ("front", "three_quarter", "side", "back")


def _register_render(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="PNG renders of an avatar: turntable and posed views, headless",
        description=(
            "Render an avatar file (FILE.glb|FILE.vrm), or the avatar of --seed S made as `export --seed` makes it, "
            "to OUT/<name>_<view>.png and OUT/<name>_<pose>.png. Needs pip install 'chibi-meta[render]'."
        ),
    )
    p.add_argument("file", nargs="?", help="a GLB or VRM file (or give --seed)")
    p.add_argument("--seed", type=int, help="render the generated avatar of this seed")
    p.add_argument("--attr", action="append", metavar="KEY=VALUE", help="with --seed: fix an attribute (repeatable)")
    p.add_argument("--format", dest="fmt", help=f"with --seed: {', '.join(_FORMATS)} (default glb)")
    p.add_argument("--model", help="with --seed: generator model file (default: the shipped model)")
    p.add_argument("--views", default=",".join(_VIEWS), help=f"comma-separated: {', '.join(_VIEWS)}, or none")
    p.add_argument("--poses", default="", help="comma-separated pose names (a, arms_up, sit, walk0..walk7, "
                   "head_left60, ...), or all (the deformation pose set); default none")  # fmt: skip
    p.add_argument("--pose-view", default="three_quarter", help="the view posed renders are seen from")
    p.add_argument("--size", type=int, default=512, help="image width and height in pixels (default 512)")
    p.add_argument("--out", default=".", help="output folder (default: the current folder)")
    p.set_defaults(func=handle_render)


def _split(spec: str) -> list[str]:
    return [s.strip() for s in str(spec).split(",") if s.strip()]


def handle_render(args: argparse.Namespace) -> int:
    from chibi_meta.avatar import export, render
    from chibi_meta.avatar.poses import pose_set
    from chibi_meta.avatar.skinning import Avatar
    from chibi_meta.errors import UsageError
    from chibi_meta.limits import MAX_SEED

    if (args.file is None) == (args.seed is None):
        raise UsageError("give either a FILE.glb|FILE.vrm to render or --seed S")
    if args.file is not None and (args.attr or args.fmt or args.model):
        raise UsageError("--attr, --format and --model apply with --seed only")
    views = [] if args.views.strip() == "none" else render.check_views(_split(args.views))
    poses = list(pose_set()) if args.poses.strip() == "all" else render.check_poses(_split(args.poses))
    render.check_views([args.pose_view])
    size = render.check_size(args.size)
    if not views and not poses:
        raise UsageError("nothing to render: --views none and no --poses")
    out = Path(args.out)
    if args.file is not None:
        name, avatar = Path(args.file).stem, Avatar.from_file(args.file)
    else:
        fmt = args.fmt or "glb"
        if fmt not in _FORMATS:
            raise UsageError(f"unknown format {fmt!r}; allowed: {', '.join(_FORMATS)}")
        if not 0 <= args.seed <= MAX_SEED:
            raise UsageError(f"--seed must be an integer in [0, {MAX_SEED}], got {args.seed}")
        attrs = export.parse_attrs(args.attr)
        source = export.open_texture_source(args.model)
        attrs = export.validate_attrs(source, attrs)
        _, _, data = next(export.avatars(source, [args.seed], attrs, fmt=fmt, texture_size=512, texture_format="png"))
        name, avatar = f"chibi-{args.seed}", Avatar(data)
    export.check_writable_dir(out)
    images = render.render_views(avatar, views, poses, size=size, pose_view=args.pose_view)
    for key, img in images.items():
        path = out / f"{name}_{key}.png"
        render.write_png(path, img)
        log.info("wrote %s", path)
    return 0


def _attributes(args: argparse.Namespace) -> int:
    """The generator's attributes, then the packaging ones (``outfit``), which the packer draws."""
    import json
    import sys

    from chibi_meta.avatar.pack import PACKAGING_ATTRIBUTES
    from chibi_meta.gan.api import TextureGenerator

    gen = TextureGenerator.load(args.model)
    doc = {"model_id": gen.model_id, "attribution": gen.attribution, **gen.schema.to_json()}
    doc["attributes"] += [{"name": k, "values": list(v), "stage": "avatar"} for k, v in PACKAGING_ATTRIBUTES.items()]
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return 0
    for a in doc["attributes"]:
        sys.stdout.write(f"{a['name']}: {', '.join(a['values'])}\n")
    return 0
