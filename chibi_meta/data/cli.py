"""`chibi-meta dataset build`: the built-in DiceBear data or a folder of the user's own art."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="build a training dataset")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    b = dsub.add_parser("build", help="render DiceBear avatars, or import a folder of your own art")
    src = b.add_mutually_exclusive_group()
    src.add_argument("--style", default=None, help="built-in DiceBear style (allowed: adventurer)")
    src.add_argument("--images", metavar="DIR", help="a folder of your own PNG/JPEG/WebP art")
    b.add_argument("--labels", metavar="FILE", help="labels for --images: CSV (file,attr,...) or JSON")
    b.add_argument("--count", type=int, default=40_000, help="avatars to render (built-in style; default 40000)")
    b.add_argument("--size", type=int, default=128, help="image size in px: 32, 64, 128 or 256 (default 128)")
    b.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write (resumable)")
    b.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from chibi_meta.errors import UsageError

    if args.images:
        from chibi_meta.data.folder import build_from_folder

        meta = build_from_folder(args.images, args.out, size=args.size, labels=args.labels,
                                 progress=not args.no_progress)
    else:
        if args.labels:
            raise UsageError("--labels only applies with --images DIR")
        from chibi_meta.data.build_dicebear import build

        meta = build(args.out, args.count, size=args.size, style=args.style or "adventurer",
                     workers=args.workers, progress=not args.no_progress)
    json.dump({k: meta[k] for k in ("count", "size", "fingerprint")}, sys.stdout)
    sys.stdout.write("\n")
    return 0
