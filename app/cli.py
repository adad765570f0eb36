"""`rollback-desk ...`: parses arguments, calls the logic package, prints JSON or text."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module registers its own subcommands; order is the order of `--help`.
COMMAND_MODULES: tuple[str, ...] = (
    "app.commands.data",
    "app.commands.flags",
    "app.commands.incidents",
    "app.commands.analysis",
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        help="data directory (default: $ROLLBACK_DESK_DATA, else ./data)",
    )
    parser = argparse.ArgumentParser(
        prog="rollback-desk",
        description="Incident-ops console for AI features.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
