"""`rollback-desk ...`: parses arguments, calls the logic package, prints JSON or text."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from app.storage.store import StoreBusy

# Each module registers its own subcommands; order is the order of `--help`. The table
# names each module's top-level commands, so that running one imports only its module
# (the others cost a tenth of a second of imports).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "app.commands.data": ("ingest", "demo", "changes"),
    "app.commands.flags": ("flags",),
    "app.commands.incidents": ("incidents", "postmortem"),
    "app.commands.analysis": ("analyze", "rollout", "watch"),
    "app.commands.review": ("review",),
    "app.commands.lake": ("aggregate", "lake"),
    "app.commands.investigate": ("query", "compare", "sample"),
    "app.commands.serve": ("serve",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of the module that owns `command`."""
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
    owners = [m for m, names in COMMAND_MODULES.items() if command in names]
    for name in owners or COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


# The database stayed held by another process past the lock timeout: try again later
# (EX_TEMPFAIL), told apart from a failed command (1) and bad usage (2).
EXIT_BUSY = 75


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except StoreBusy as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": "busy", "message": str(exc)}))
        else:
            print(f"error: {exc}; try again when it is done", file=sys.stderr)
        return EXIT_BUSY
