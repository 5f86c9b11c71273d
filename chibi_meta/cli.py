"""The `chibi-meta` command: one subcommand per job, each registered by its stage's package.

Each stage owns a ``cli.py`` with ``register(subparsers)``; handlers import heavy modules
(torch, websockets) only when they run. Errors derived from ChibiError print one line and
exit with code 2; argparse's own usage errors also exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from chibi_meta.errors import ChibiError

# Order = order in --help. Each module exposes register(subparsers).
STAGES = (
    "chibi_meta.data.cli",
    "chibi_meta.gan.cli",
    "chibi_meta.avatar.cli",
    "chibi_meta.bridge.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chibi-meta", description="Self-hosted chibi 3D avatar generator.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in STAGES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a stage not built yet must not break the others
            if e.name == mod:
                continue
            raise
        m.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO
    logging.basicConfig(
        level=level,
        format=os.environ.get("CHIBI_LOG_FORMAT", "%(asctime)s %(levelname)s %(name)s: %(message)s"),
        stream=sys.stderr,
    )
    try:
        rc = args.func(args)
    except ChibiError as e:
        print(f"chibi-meta {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"chibi-meta {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
