"""`analyze`, `rollout status|advance` and `watch`: detection, attribution and canary guardrails."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from app.changes.declared import parse_time
from app.config import resolve_data_dir
from app.detection.findings import AnalysisResult, format_value, iso_z
from app.detection.thresholds import Thresholds, ThresholdsError, load_thresholds
from app.storage.datadir import DataDir
from app.storage.store import Store


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("analyze", parents=[common], help="find degradations, their scope and what changed")
    p.add_argument("--feature", help="only this feature")
    p.add_argument(
        "--since", metavar="TIME", help="start (ISO 8601 or epoch; default: a week before --until)"
    )
    p.add_argument("--until", metavar="TIME", help="end (default: the newest request loaded)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser("rollout", parents=[common], help="gradual rollout ladder of a feature")
    p.add_argument("action", choices=["status", "advance"])
    p.add_argument("feature")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_rollout)

    p = sub.add_parser(
        "watch", parents=[common], help="ingest new logs every interval and guard running canaries"
    )
    p.add_argument("--folder", metavar="DIR", required=True, help="folder to ingest new files from")
    p.add_argument("--interval", type=float, default=60.0, metavar="S", help="seconds between looks")
    p.add_argument(
        "--apply", action="store_true", help="roll back for real (default: record what would have been done)"
    )
    p.add_argument("--once", action="store_true", help="look once and exit")
    p.add_argument("--json", action="store_true", help="one JSON object per look")
    p.set_defaults(handler=cmd_watch)


def _time_arg(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    t = parse_time(value)
    if t is None:
        raise ValueError(f"--{name} {value!r} is not a time (ISO 8601 or epoch seconds)")
    return t


def _thresholds(data_dir: Path) -> Thresholds | None:
    try:
        return load_thresholds(data_dir)
    except ThresholdsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_analyze(args: argparse.Namespace) -> int:
    from app.detection.analysis import analyze

    data_dir = resolve_data_dir(args.data_dir)
    try:
        since, until = _time_arg(args.since, "since"), _time_arg(args.until, "until")
        thresholds = load_thresholds(data_dir)
    except (ValueError, ThresholdsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = analyze(Store(data_dir), feature=args.feature, since=since, until=until, thresholds=thresholds)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print_analysis(result)
    return 0


def print_analysis(result: AnalysisResult) -> None:
    if result.since is not None:
        print(f"window {iso_z(result.since)} .. {iso_z(result.until)}")
    if not result.findings:
        print("no degradations found")
    for f in result.findings:
        scope = f.scope.kind
        if f.scope.slices:
            scope += (
                " ("
                + ", ".join(f"{s.dimension} = {s.value}, {100 * s.share:.0f}%" for s in f.scope.slices)
                + ")"
            )
        print(
            f"\n{f.feature}: {f.metric} {format_value(f.metric, f.baseline)} -> "
            f"{format_value(f.metric, f.current)} from {iso_z(f.onset)} "
            f"(p = {f.p_value:.2g}, {f.shape}); scope {scope}"
        )
        for i, s in enumerate(f.suspects, 1):
            c = s.change
            print(
                f"  {i}. [{s.score:.2f}] {c.kind} {c.key or ''}: {c.from_value or '?'} -> "
                f"{c.to_value or '?'} at {iso_z(c.timestamp)} ({c.source})"
            )
            print(f"     {s.evidence}")
    for i in result.inconclusive:
        print(f"\ninconclusive: {i.feature} {i.metric}: {i.reason}")


def cmd_rollout(args: argparse.Namespace) -> int:
    from app.rollout import ladder as rollout

    dd = DataDir.open(args.data_dir)
    thresholds = _thresholds(dd.path)
    if thresholds is None:
        return 2
    store = dd.store
    if args.action == "status":
        status = rollout.ladder_status(store, args.feature, thresholds)
        if args.json:
            print(json.dumps(status.as_dict()))
        else:
            print(status.summary())
        return 0
    outcome = rollout.advance(store, args.feature, thresholds)
    if args.json:
        print(json.dumps(outcome.as_dict()))
    else:
        print(outcome.message)
    return 0 if outcome.advanced else 1


def cmd_watch(args: argparse.Namespace) -> int:
    from app.rollout import watch

    data_dir = resolve_data_dir(args.data_dir)
    thresholds = _thresholds(data_dir)
    if thresholds is None:
        return 2

    def report(look: watch.WatchLook) -> None:
        if args.json:
            print(json.dumps(look.as_dict()), flush=True)
        else:
            for line in look.lines():
                print(line, flush=True)

    from app.review.alerting import watch_hook  # burn-rate alerts of slos.yaml

    watch.watch(
        data_dir,
        args.folder,
        interval_s=args.interval,
        apply=args.apply,
        once=args.once,
        thresholds=thresholds,
        on_look=report,
        hooks=[watch_hook],
    )
    return 0
