"""`incidents open|analyze|list|show|note|status` and `postmortem`: incidents from the command
line. `open` analyses the incident's features and attaches the finding (app/incidents/attach.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.access.identity import cli_user
from app.changes.declared import parse_time
from app.config import resolve_data_dir
from app.detection.thresholds import ThresholdsError, load_thresholds
from app.incidents import postmortem
from app.incidents.log import SEVERITIES, STATUSES, Incident, IncidentError, IncidentLog
from app.incidents.playbooks import load_playbooks
from app.storage.datadir import DataDir
from app.storage.store import Store
from app.timestamps import display, machine


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("incidents", parents=[common], help="open, list and update incidents")
    isub = p.add_subparsers(dest="incidents_command", required=True, metavar="SUBCOMMAND")

    o = isub.add_parser("open", parents=[common], help="open an incident")
    o.add_argument("--feature", action="append", required=True, help="affected feature (repeatable)")
    o.add_argument("--title", required=True)
    o.add_argument("--severity", default="SEV3", choices=SEVERITIES)
    o.add_argument("--playbook", metavar="ID", help="playbook id (see playbooks/)")
    o.add_argument("--metric", help="the metric that degraded, e.g. error_rate")
    o.add_argument("--onset", help="first degraded bucket, ISO 8601 UTC")
    o.add_argument("--commander")
    o.add_argument("--comms-lead")
    o.add_argument("--json", action="store_true", help='print {"id": ...}')
    o.add_argument(
        "--no-analysis", action="store_true", help="do not analyse the features to attach a finding"
    )
    o.set_defaults(handler=cmd_open)

    an = isub.add_parser(
        "analyze", parents=[common], help="analyse an incident's features again and attach the finding"
    )
    an.add_argument("id")
    an.add_argument("--json", action="store_true")
    an.set_defaults(handler=cmd_attach)

    ls = isub.add_parser("list", parents=[common], help="list incidents, newest first")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_list)

    sh = isub.add_parser("show", parents=[common], help="one incident and its events")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(handler=cmd_show)

    n = isub.add_parser("note", parents=[common], help="add a note to the timeline")
    n.add_argument("id")
    n.add_argument("text")
    n.add_argument("--author", help="default: the current user")
    n.set_defaults(handler=cmd_note)

    s = isub.add_parser("status", parents=[common], help="move an incident to a new status")
    s.add_argument("id")
    s.add_argument("status", choices=STATUSES)
    s.add_argument("--author", help="default: the current user")
    s.set_defaults(handler=cmd_status)

    pm = sub.add_parser("postmortem", parents=[common], help="write an incident's post-mortem (markdown)")
    pm.add_argument("id")
    pm.add_argument("--output", metavar="FILE", help="default: print to stdout")
    pm.set_defaults(handler=cmd_postmortem)


def _author(args: argparse.Namespace) -> str:
    return cli_user(getattr(args, "author", None))


def _log(args: argparse.Namespace) -> IncidentLog:
    return IncidentLog(DataDir.open(args.data_dir))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def cmd_open(args: argparse.Namespace) -> int:
    if args.playbook:
        known = [p.id for p in load_playbooks()[0]]
        if args.playbook not in known:
            return _fail(f"playbook {args.playbook} not found (known: {', '.join(known)})")
    onset = None
    if args.onset:
        onset = parse_time(args.onset)
        if onset is None:
            return _fail(f"--onset {args.onset!r} is not a time (ISO 8601, UTC)")
    try:
        incident = _log(args).open(
            args.title,
            args.feature,
            args.severity,
            playbook=args.playbook,
            metric=args.metric,
            onset=onset,
            commander=args.commander,
            comms_lead=args.comms_lead,
            actor=cli_user(),
        )
    except IncidentError as exc:
        return _fail(str(exc))
    attached = None if args.no_analysis else _attach(args, incident.id)
    if args.json:
        print(json.dumps({"id": incident.id, **({"analysis": attached} if attached else {})}))
    else:
        print(f"opened {incident.id}: {incident.title}")
        if attached:
            print(attached["summary"])
    return 0


def _attach(args: argparse.Namespace, incident_id: str) -> dict | None:
    """Run the analysis for the incident and attach its finding; None (with a warning) when the
    thresholds file is broken: the incident stays open either way."""
    from app.incidents.attach import attach_finding

    data_dir = resolve_data_dir(args.data_dir)
    try:
        thresholds = load_thresholds(data_dir)
    except ThresholdsError as exc:
        print(f"warning: no analysis attached: {exc}", file=sys.stderr)
        return None
    result = attach_finding(
        Store(data_dir), IncidentLog(data_dir), incident_id, load_playbooks()[0], thresholds, actor=cli_user()
    )
    return {
        "finding": result.finding.as_dict() if result.finding else None,
        "reason": result.reason,
        "playbook": result.playbook,
        "summary": result.summary(),
    }


def cmd_attach(args: argparse.Namespace) -> int:
    try:
        _log(args).get(args.id)
    except IncidentError as exc:
        return _fail(str(exc))
    attached = _attach(args, args.id)
    if attached is None:
        return 1
    print(json.dumps(attached) if args.json else attached["summary"])
    return 0


def _line(i: Incident) -> str:
    return (
        f"{i.id}  {i.severity}  {i.status:<13} {display(i.opened_at)}  {','.join(i.features):<24} {i.title}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    try:
        incidents = _log(args).list()
    except IncidentError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"incidents": [i.as_dict() for i in incidents]}))
    else:
        for i in incidents:
            print(_line(i))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        incident = _log(args).get(args.id)
    except IncidentError as exc:
        return _fail(str(exc))
    if args.json:
        events = [
            {"seq": e.seq, "at": machine(e.at), "kind": e.kind, "actor": e.actor, "data": e.data}
            for e in incident.events
        ]
        print(json.dumps({**incident.as_dict(), "events": events}))
    else:
        print(_line(incident))
        for e in incident.events:
            print(
                f"  {display(e.at, seconds=True)} {e.kind:<12} {e.actor or '':<10} {json.dumps(e.data)[:100]}"
            )
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    try:
        _log(args).add_note(args.id, args.text, _author(args))
    except IncidentError as exc:
        return _fail(str(exc))
    print(f"note added to {args.id}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        incident = _log(args).set_status(args.id, args.status, _author(args))
    except IncidentError as exc:
        return _fail(str(exc))
    print(f"{incident.id} is now {incident.status}")
    return 0


def cmd_postmortem(args: argparse.Namespace) -> int:
    try:
        text = postmortem.export(DataDir.open(args.data_dir), args.id)
    except IncidentError as exc:
        return _fail(str(exc))
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    return 0
