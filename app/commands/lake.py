"""`aggregate` and `lake`: the aggregate tables of a Parquet lake (DuckDB or Spark), and a data
directory in lake mode."""

from __future__ import annotations

import argparse
import json
import sys

from app.config import resolve_data_dir


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "aggregate", parents=[common], help="build the aggregate tables of a request lake (incremental)"
    )
    p.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    p.add_argument(
        "--source",
        required=True,
        metavar="URI",
        help="requests: a folder or s3:// URI laid out date=YYYY-MM-DD/feature=NAME/*.parquet",
    )
    p.add_argument("--output", required=True, metavar="DIR", help="where the aggregate tables go")
    p.add_argument("--full", action="store_true", help="rebuild every partition, not only changed ones")
    p.add_argument("--master", default="local[2]", help="Spark master (default: local[2])")
    p.add_argument(
        "--plan",
        metavar="FILE",
        help="only write the partitions to (re)build to FILE, one a line (for spark-submit)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_aggregate)

    p = sub.add_parser("lake", parents=[common], help="a data directory in lake mode")
    p.add_argument("action", choices=["demo", "status", "verify"])
    p.add_argument("--if-empty", action="store_true", help="demo: only if nothing is loaded yet")
    p.add_argument("--other", metavar="DIR", help="verify: another build of the aggregates to compare")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_lake)


def cmd_aggregate(args: argparse.Namespace) -> int:
    from app.lake.build import build
    from app.lake.partitions import LakeError

    if args.plan:
        from app.lake.partitions import list_partitions, plan, read_manifest

        try:
            todo = plan(list_partitions(args.source), read_manifest(args.output), full=args.full)
        except LakeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        with open(args.plan, "w") as fh:
            fh.writelines(f"{p.key}\n" for p in todo.build)
        print(f"{len(todo.build)} partitions to build, {todo.unchanged} unchanged -> {args.plan}")
        return 0
    try:
        result = build(args.source, args.output, args.engine, full=args.full, spark_master=args.master)
    except LakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(
            f"{args.engine}: {result.built} partitions built, {result.removed} removed, "
            f"{result.unchanged} unchanged ({result.seconds:.1f} s)"
        )
    return 0


def cmd_lake(args: argparse.Namespace) -> int:
    from app.storage.lake import LakeConfigError, load_lake

    data_dir = resolve_data_dir(args.data_dir)
    if args.action == "demo":
        from app.demo.lake import load_lake_demo
        from app.storage.store import Store

        if args.if_empty and (data_dir / "lake.yaml").exists() and Store(data_dir).request_count() > 0:
            print(f"{data_dir}: lake already loaded; demo not regenerated")
            return 0
        result = load_lake_demo(data_dir)
        print(f"{data_dir}: {sum(f.loaded for f in result.files):,} requests written to the lake")
        return 0 if result.ok else 1
    try:
        lake = load_lake(data_dir)
    except LakeConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if lake is None:
        print(f"error: {data_dir} is not in lake mode (no lake.yaml)", file=sys.stderr)
        return 2
    if args.action == "verify":
        from app.lake.parity import compare

        if not args.other:
            print("error: verify needs --other DIR", file=sys.stderr)
            return 2
        diffs = compare(lake.aggregates, args.other)
        for d in diffs:
            print(
                f"{d.table}: {'equal' if d.equal else 'DIFFERENT'} ({d.rows_a} / {d.rows_b} rows)"
                + "".join(f"\n  {m}" for m in d.mismatched)
            )
        return 0 if all(d.equal for d in diffs) else 1
    from app.lake.partitions import list_partitions, plan, read_manifest

    parts = list_partitions(lake.requests)
    todo = plan(parts, read_manifest(lake.aggregates)) if not lake.aggregates.startswith("s3://") else None
    status = {
        "requests": lake.requests,
        "aggregates": lake.aggregates,
        "partitions": len(parts),
        "stale": None if todo is None else len(todo.build),
    }
    print(json.dumps(status) if args.json else "\n".join(f"{k}: {v}" for k, v in status.items()))
    return 0
