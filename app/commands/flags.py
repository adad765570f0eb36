"""`rollback-desk flags ...`: live flag state and the rollback actions, for scripts.

The commands take the same path as the console's buttons (`app.actions`): the same checks,
read-back verification and audit trail. Exit code 0 only for a verified outcome.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.access.identity import Source, cli_user
from app.access.roles import AccessError, load_access
from app.changes import recorded
from app.config import resolve_data_dir
from app.flags.base import FlagError, FlagRole
from app.flags.config import load_config
from app.rollback import actions, history
from app.rollback.actions import Action
from app.storage import trail

EXIT_NOT_VERIFIED = 1
EXIT_USAGE = 2


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    flags = subparsers.add_parser("flags", help="flag state and rollback actions")
    sub = flags.add_subparsers(dest="flags_command", required=True, metavar="ACTION")

    status = sub.add_parser("status", parents=[common], help="live state of configured flags")
    status.add_argument("--feature", help="only this feature")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=run_status)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.add_argument("feature", metavar="FEATURE")
        p.add_argument("--yes", action="store_true", help="do it (without: show the plan only)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--incident", metavar="ID", help="incident this action belongs to")
        p.add_argument(
            "--actor",
            "--operator",
            dest="operator",
            help="who acts, for the audit trail (default: the OS user)",
        )
        p.add_argument("--reason", help="why, for the audit trail")
        p.set_defaults(handler=run_action, action=name)
        return p

    action("kill", "turn the feature off (kill switch)")
    rollout = action("rollout", "set the canary's rollout percentage (default 0)")
    rollout.add_argument("percentage", nargs="?", default="0", metavar="PERCENT")
    pin = action("pin-model", "serve one model version (default: the previous one)")
    pin.add_argument("version", nargs="?", metavar="VERSION")
    revert = action("revert-prompt", "serve one prompt version (default: the previous one)")
    revert.add_argument("version", nargs="?", metavar="VERSION")
    action("pause", "pause the agent (dry-run mode)")
    resume = action("resume", "undo a kill switch or an agent pause")
    resume.add_argument(
        "--what",
        choices=["kill_switch", "agent_pause"],
        help="which one (default: whichever is active, kill switch first)",
    )

    history = sub.add_parser("audit", parents=[common], help="the audit trail of flag actions")
    history.add_argument("--feature")
    history.add_argument("--incident", metavar="ID")
    history.add_argument("--outcome", choices=["verified", "unverified", "failed", "none"])
    history.add_argument("--limit", type=int, default=50)
    history.set_defaults(handler=run_audit)

    sync = sub.add_parser(
        "sync-history", parents=[common], help="fetch the backends' change histories into the cache"
    )
    sync.set_defaults(handler=run_sync)


def run_status(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    try:
        doc = actions.status(data_dir, args.feature)
    except FlagError as exc:
        return _error(args, exc.message)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for feature in doc["features"]:
        print(f"{feature['feature']} ({feature['backend']})")
        for f in feature["flags"]:
            state = f.get("error") or recorded.summary(f, f["role"])
            print(f"  {f['role']:<12} {f['key']:<32} {f['environment']:<12} {state}")
    return 0


def run_action(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    try:
        action, value = _resolve(args, data_dir)
    except FlagError as exc:
        return _error(args, exc.message)
    if not args.yes:
        try:
            the_plan = actions.plan(data_dir, args.feature, action, value)
        except FlagError as exc:
            return _error(args, exc.message)
        doc = {
            "outcome": "planned",
            "flag": the_plan.flag.key,
            "before": the_plan.before,
            "after": the_plan.after,
            "message": f"would change {the_plan.description}; add --yes to do it",
        }
        _print(args, doc)
        return EXIT_NOT_VERIFIED
    try:
        actor = load_access(data_dir).local(cli_user(args.operator), Source.CLI)
    except AccessError as exc:
        return _error(args, str(exc))
    result = actions.execute(
        data_dir, args.feature, action, value, actor=actor, reason=args.reason, incident_id=args.incident
    )
    _print(args, result.cli_dict())
    return 0 if result.verified else EXIT_NOT_VERIFIED


def _resolve(args: argparse.Namespace, data_dir: Any) -> tuple[Action, Any]:
    name = args.action
    if name == "rollout":
        return Action.ROLLOUT, args.percentage
    if name in ("pin-model", "revert-prompt"):
        return Action(name), args.version
    if name != "resume":
        return Action(name), None
    if args.what:
        return (Action.RESUME if args.what == "kill_switch" else Action.RESUME_AGENT), None
    roles = load_config(data_dir).feature(args.feature).flags
    if FlagRole.KILL_SWITCH in roles:
        killed = actions.status(data_dir, args.feature)["features"][0]["flags"]
        if any(f["role"] == "kill_switch" and f["enabled"] is False for f in killed):
            return Action.RESUME, None
    if FlagRole.AGENT_PAUSE in roles:
        return Action.RESUME_AGENT, None
    return Action.RESUME, None


def run_audit(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    rows = trail.entries(
        data_dir, feature=args.feature, incident_id=args.incident, outcome=args.outcome, limit=args.limit
    )
    print(json.dumps({"entries": [r.as_dict() for r in rows]}, indent=2))
    return 0


def run_sync(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    try:
        status = history.sync_history(data_dir, force=True)
    except FlagError as exc:
        return _error(args, exc.message)
    print(json.dumps(status, indent=2))
    return 0 if all(not s.startswith("failed") for s in status.values()) else EXIT_NOT_VERIFIED


def _print(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(doc, indent=2))
    else:
        print(f"{doc['outcome']}: {doc['message']}")


def _error(args: argparse.Namespace, message: str) -> int:
    if getattr(args, "json", False) and getattr(args, "action", None):
        print(
            json.dumps(
                {"outcome": "failed", "flag": None, "before": None, "after": None, "message": message},
                indent=2,
            )
        )
    else:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE if getattr(args, "action", None) is None else EXIT_NOT_VERIFIED
