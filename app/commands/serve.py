"""`rollback-desk serve`: start the console, on this machine only unless told otherwise.

On a loopback address (the default, 127.0.0.1) it starts as it is: without sign-in it runs
in local mode, and says so. On any other address it refuses to start unless sign-in is
configured ([auth] in .streamlit/secrets.toml) or `--allow-unauthenticated` is given, which
every page then shows in a red banner.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.access.signin import is_loopback, sign_in_configured
from app.config import DATA_DIR_ENV, resolve_data_dir

ROUTER = Path(__file__).resolve().parents[1] / "ui" / "streamlit_app.py"
UNAUTHENTICATED_ENV = "ROLLBACK_DESK_UNAUTHENTICATED"  # read by app/ui/auth.py
EXIT_REFUSED = 2


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="start the console (this machine only by default)")
    p.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="listen on a network address without sign-in (shown in a red banner)",
    )
    p.set_defaults(handler=cmd_serve)


def serve_command(address: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROUTER),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]


def refusal(address: str, signed_in: bool, allow_unauthenticated: bool) -> str | None:
    """Why the console may not start on this address, or None."""
    if is_loopback(address) or signed_in or allow_unauthenticated:
        return None
    return (
        f"{address} is reachable from other machines and sign-in is not configured: "
        "add [auth] to .streamlit/secrets.toml (docs/security.md), or pass "
        "--allow-unauthenticated to let anyone who can reach it act on flags"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    signed_in = sign_in_configured()
    reason = refusal(args.address, signed_in, args.allow_unauthenticated)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_REFUSED
    env = {**os.environ, DATA_DIR_ENV: str(data_dir)}
    env.pop(UNAUTHENTICATED_ENV, None)
    if not is_loopback(args.address) and not signed_in:
        env[UNAUTHENTICATED_ENV] = "1"
    mode = (
        "sign-in required"
        if signed_in
        else (
            "local mode: anyone on this machine can act"
            if is_loopback(args.address)
            else "NO SIGN-IN: anyone who can reach it can act"
        )
    )
    print(f"Rollback Desk on http://{args.address}:{args.port} ({mode}); data in {data_dir}", flush=True)
    command = serve_command(args.address, args.port)
    os.execve(command[0], command, env)  # the server takes this process (and its signals)
    return 0  # not reached
