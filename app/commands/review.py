"""`review`: the weekly reliability review as text, JSON, markdown or one HTML file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.changes.declared import parse_time
from app.config import resolve_data_dir


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "review", parents=[common], help="weekly reliability review: SLOs, error budgets, failed changes"
    )
    p.add_argument(
        "--week",
        metavar="YYYY-Www",
        help="ISO week, e.g. 2026-W47 (default: the last complete week of the data)",
    )
    p.add_argument("--since", metavar="TIME", help="start instead of a week (ISO 8601 or epoch)")
    p.add_argument("--until", metavar="TIME", help="end instead of a week")
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write the review to FILE: .md (markdown) or .html (one self-contained page)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--post", action="store_true", help="send a short summary to the webhooks of notify.yaml")
    p.set_defaults(handler=cmd_review)


def _period(args: argparse.Namespace, store):
    from app.review.report import Period, ReviewError, default_week, week_bounds

    if args.week and (args.since or args.until):
        raise ReviewError("give either --week or --since/--until, not both")
    if args.week:
        return week_bounds(args.week)
    if args.since or args.until:
        since, until = parse_time(args.since), parse_time(args.until)
        if args.since and since is None:
            raise ReviewError(f"--since {args.since!r} is not a time (ISO 8601 or epoch seconds)")
        if args.until and until is None:
            raise ReviewError(f"--until {args.until!r} is not a time (ISO 8601 or epoch seconds)")
        if since is None or until is None:
            raise ReviewError("--since and --until go together")
        if since >= until:
            raise ReviewError("--since must be before --until")
        return Period(since, until)
    return default_week(store)


def cmd_review(args: argparse.Namespace) -> int:
    from app.review import export
    from app.review.report import ReviewError, weekly_review
    from app.review.slos import SloConfigError
    from app.storage.store import Store

    data_dir = resolve_data_dir(args.data_dir)
    store = Store(data_dir)
    if args.output and Path(args.output).suffix.lower() not in (".md", ".html", ".htm"):
        print(f"error: --output {args.output}: expected a .md or .html file name", file=sys.stderr)
        return 2
    try:
        review = weekly_review(store, _period(args, store))
    except (ReviewError, SloConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        out = Path(args.output)
        text = export.to_markdown(review) if out.suffix.lower() == ".md" else export.to_html(review)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)  # a reader never sees half a file
    code = 0
    if args.post:
        code = _post(data_dir, export.post_text(review), quiet=args.json)
    if args.json:
        print(json.dumps(review.as_dict()))
    elif not args.output:
        print(export.to_markdown(review), end="")
    else:
        print(f"wrote {args.output}: {export.summary_line(review)}")
    return code


def _post(data_dir: Path, text: str, quiet: bool) -> int:
    from app.incidents import notify

    try:
        hooks = notify.load_webhooks(data_dir)
    except notify.NotifyConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not hooks:
        print(f"error: no webhooks in {data_dir / notify.CONFIG_FILE}: nothing posted", file=sys.stderr)
        return 1
    failed = 0
    for name, hook in sorted(hooks.items()):
        result = notify.post(hook, text)
        failed += not result.ok
        print(
            f"posted to {name}: {result.outcome} ({result.detail})", file=sys.stderr if quiet else sys.stdout
        )
    return 1 if failed else 0
