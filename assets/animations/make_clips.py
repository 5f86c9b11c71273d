"""Regenerate the shipped VRM Animation clips: ``python assets/animations/make_clips.py [OUT_DIR]``.

Writes ``<name>.vrma`` for every clip of ``chibi_meta.avatar.clips.CLIPS`` (idle, walk) into OUT_DIR
(default: this folder). tests/test_avatar_animation.py checks that the shipped files equal what this writes.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from chibi_meta.avatar.vrma import write_all


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_all(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
