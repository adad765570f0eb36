"""`ingest`, `demo` and `changes`: getting logs and change events into the data directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.changes import declared
from app.changes import timeline as changes
from app.config import resolve_data_dir
from app.ingest.mapping import MappingError, load_mapping
from app.ingest.pipeline import IngestResult, LoadProgress, ingest_paths
from app.storage.store import Store
from app.timestamps import display

# --format -> the kind of telemetry (app/ingest/sniff.py); '' is plain request logs.
_FORMATS = {"otlp": "otlp", "langfuse": "langfuse", "logs": ""}


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="load request logs (JSONL, CSV, Parquet, OTLP traces, Langfuse exports)",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or globs")
    p.add_argument("--changes", metavar="FILE", help="declared changes (YAML or CSV)")
    p.add_argument("--mapping", metavar="FILE", help="mapping YAML for differently named columns")
    p.add_argument(
        "--format",
        choices=sorted(_FORMATS),
        default=None,
        help="what the files hold: OTLP JSON traces, a Langfuse export, or request "
        "logs (default: told by each file's content)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("demo", parents=[common], help="generate and load the demo week")
    p.add_argument("--if-empty", action="store_true", help="do nothing when data is loaded")
    p.add_argument("--scale", type=float, default=1.0, help="traffic multiplier")
    p.add_argument(
        "--examples",
        metavar="DIR",
        help="only write example telemetry files (OTLP traces, a Langfuse export) "
        "with a known incident into DIR; load nothing",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("changes", parents=[common], help="list or load change events")
    p.add_argument("--load", metavar="FILE", help="declared changes (YAML or CSV) to load")
    p.add_argument("--feature")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_changes)


class _Bar:
    """A one-line progress bar on stderr, only when stderr is a terminal; it moves within a
    file as DuckDB reads it."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, p: LoadProgress) -> None:
        if not self.tty or p.files_total == 0:
            return
        width = 30
        filled = int(width * p.fraction)
        done = p.files_done == p.files_total
        name = Path(p.path).name[-40:] if p.path else "done"
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] file "
            f"{min(p.files_done + 1, p.files_total)}/{p.files_total} "
            f"{1.0 if done else p.within_file:4.0%} {name:<40}"
        )
        if done:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _print_result(result: IngestResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict()))
        return
    for f in result.files:
        if f.error:
            print(f"error: {f.error}", file=sys.stderr)
        else:
            print(f.summary())
        for w in f.warnings:
            print(f"warning: {w}", file=sys.stderr)
    print(
        f"total: {result.loaded:,} loaded, {result.quarantined:,} quarantined, "
        f"{result.duplicates:,} duplicates"
    )


def _load_changes(store: Store, path: str, quiet: bool) -> int:
    try:
        events, errors = declared.load_declared(path)
    except declared.ChangeFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    added = declared.save_events(store, events)
    if not quiet:
        print(f"{path}: {added} new change events ({len(events) - added} already known)")
    return 1 if errors else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    store = Store(resolve_data_dir(args.data_dir))
    mapping = None
    if args.mapping:
        try:
            mapping = load_mapping(args.mapping)
        except MappingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    result = ingest_paths(
        store,
        args.paths,
        mapping=mapping,
        progress=None if args.json else _Bar(),
        kind=_FORMATS[args.format] if args.format else None,
    )
    code = 0 if result.ok else 1
    if args.changes:
        code = max(code, _load_changes(store, args.changes, quiet=args.json))
    _print_result(result, args.json)
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    if args.examples:
        from app.demo.telemetry import write_examples

        written = write_examples(Path(args.examples))
        if args.json:
            print(json.dumps({"examples": written}))
        else:
            for name, n in written.items():
                print(f"{Path(args.examples) / name}: {n:,} requests")
        return 0
    from app.demo.setup import load_demo

    data_dir = resolve_data_dir(args.data_dir)
    store = Store(data_dir)
    if args.if_empty and store.request_count() > 0:
        if not args.json:
            print(f"{data_dir}: data already loaded; demo not regenerated")
        return 0
    result = load_demo(data_dir, scale=args.scale, progress=None if args.json else _Bar())
    _print_result(result, args.json)
    return 0 if result.ok else 1


def cmd_changes(args: argparse.Namespace) -> int:
    store = Store(resolve_data_dir(args.data_dir))
    if args.load:
        return _load_changes(store, args.load, quiet=args.json)
    events = changes.list_changes(store, feature=args.feature)
    if args.json:
        print(json.dumps({"changes": [e.as_dict() for e in events]}))
    else:
        for e in events:
            print(
                f"{display(e.timestamp)} {e.feature:<22} {e.kind:<7} {e.key or '':<22} "
                f"{e.from_value or ''} -> {e.to_value or ''} [{e.source}]"
            )
    return 0
