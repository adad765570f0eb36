"""`query`, `compare` and `sample`: read-only SQL, two arms side by side, a slice exported.

Exit status: 0 done; 2 refused or unusable input (the reason on one line of stderr);
3 a query stopped at its time limit; 1 any other failure.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.config import resolve_data_dir

DEFAULT_SAMPLE = 50


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "query", parents=[common], help="run one read-only SQL statement over the stored tables"
    )
    p.add_argument("sql", metavar="SQL", help="one SELECT (DESCRIBE, SHOW, SUMMARIZE too)")
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--json", action="store_true", help='print {"columns":[...],"rows":[[...]],"truncated":bool}'
    )
    out.add_argument("--csv", action="store_true", help="print CSV with a header row")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N rows (1000)")
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="interrupt the query after S seconds (10)"
    )
    p.set_defaults(handler=cmd_query)

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="two arms of a feature: every metric with 95%% intervals and p-values",
    )
    p.add_argument("feature")
    p.add_argument("--a", required=True, metavar="FILTER", help="field=value[,field=value...]")
    p.add_argument("--b", required=True, metavar="FILTER", help="field=value[,field=value...]")
    _time_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser(
        "sample", parents=[common], help="export requests of a feature (an eval set) as JSONL, CSV or Parquet"
    )
    p.add_argument("feature")
    p.add_argument("--where", metavar="FILTER", default="", help="field=value[,field=value...]")
    p.add_argument(
        "--n",
        type=int,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"how many requests ({DEFAULT_SAMPLE}; 0 = all that match)",
    )
    p.add_argument(
        "--worst", action="store_true", help="errors first, then the lowest quality, then the slowest"
    )
    p.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="FILE.jsonl, FILE.csv or FILE.parquet; the filter goes to FILE.json",
    )
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"], help="default: from the file name")
    _time_args(p)
    p.set_defaults(handler=cmd_sample)


def _time_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="TIME", help="start (ISO 8601 or epoch; default: all data)")
    p.add_argument("--until", metavar="TIME", help="end (exclusive; default: all data)")


def _fail(message: str, status: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def cmd_query(args: argparse.Namespace) -> int:
    from app.investigate.console import run_sql
    from app.storage.readonly import QueryRefused, QueryTimeout, ReadOnlyQueryError

    data_dir = resolve_data_dir(args.data_dir)
    if args.limit < 0:
        return _fail("--limit must be 0 or more")
    try:
        result = run_sql(data_dir, args.sql, who=getpass.getuser(), limit=args.limit, timeout_s=args.timeout)
    except QueryRefused as exc:
        return _fail(str(exc), 2)
    except QueryTimeout as exc:
        return _fail(str(exc), 3)
    except ReadOnlyQueryError as exc:
        return _fail(str(exc), 1)
    if args.json:
        print(
            json.dumps(
                {
                    "columns": list(result.columns),
                    "rows": [[_plain(v) for v in row] for row in result.rows],
                    "truncated": result.truncated,
                }
            )
        )
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_plain(v) for v in row] for row in result.rows])
    else:
        _print_table(result.columns, result.rows)
        more = " (truncated at the limit)" if result.truncated else ""
        print(f"{len(result.rows)} row(s){more}, {result.elapsed_s * 1000:.0f} ms")
    return 0


def _print_table(columns: tuple[str, ...], rows: list[tuple]) -> None:
    cells = [[("" if v is None else str(_plain(v)))[:60] for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _scope_parts(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    from app.changes.declared import parse_time

    out = []
    for name in ("since", "until"):
        value = getattr(args, name)
        t = parse_time(value) if value else None
        if value and t is None:
            raise ValueError(f"--{name} {value!r} is not a time (ISO 8601 or epoch seconds)")
        out.append(t)
    return out[0], out[1]


def cmd_compare(args: argparse.Namespace) -> int:
    from app.investigate.compare import compare
    from app.investigate.filters import Filter, FilterError, Scope
    from app.storage.store import Store

    store = Store(resolve_data_dir(args.data_dir))
    try:
        since, until = _scope_parts(args)
        if args.feature not in store.features():
            raise ValueError(f"feature {args.feature!r} has no stored requests")
        extras = tuple(store.extra_columns(args.feature))
        a = Scope(args.feature, since, until, Filter.parse(args.a))
        b = Scope(args.feature, since, until, Filter.parse(args.b))
        result = compare(store, a, b, extras)
    except (ValueError, FilterError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    print(
        f"{result.feature}: a = {result.a.filter or '(all)'} ({result.a.requests:,} requests), "
        f"b = {result.b.filter or '(all)'} ({result.b.requests:,} requests)"
    )

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4g}"

    def ci(c: tuple[float, float] | None) -> str:
        return "" if c is None else f" [{fmt(c[0])}, {fmt(c[1])}]"

    for m in result.metrics:
        print(
            f"  {m.metric:<24} a {fmt(m.a)}{ci(m.a_ci)}  b {fmt(m.b)}{ci(m.b_ci)}  "
            f"b-a {fmt(m.difference)}  p {fmt(m.p_value)}"
        )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from app.investigate.export import ExportError, export_slice
    from app.investigate.filters import Filter, FilterError, Scope
    from app.storage.store import Store

    store = Store(resolve_data_dir(args.data_dir))
    try:
        since, until = _scope_parts(args)
        if args.n < 0:
            raise ValueError("--n must be 0 or more")
        if args.feature not in store.features():
            raise ValueError(f"feature {args.feature!r} has no stored requests")
        extras = tuple(store.extra_columns(args.feature))
        scope = Scope(args.feature, since, until, Filter.parse(args.where))
        result = export_slice(
            store,
            scope,
            Path(args.output),
            fmt=args.format,
            n=args.n or None,
            worst=args.worst,
            extras=extras,
            who=getpass.getuser(),
        )
    except (ValueError, FilterError, ExportError) as exc:
        return _fail(str(exc))
    print(f"{result.rows} request(s) written to {result.path} ({result.format}); filter in {result.sidecar}")
    return 0
