"""A request lake at scale: building its aggregates with Spark and with DuckDB, and the app's
queries in lake mode.

    .venv/bin/python bench/lake_bench.py [--rows 100000000] [--days 30] [--repeat 3]
        [--spark-repeat 1] [--no-spark] [--out DIR] [--memory 6GB] [--results FILE]

The lake (hive layout, one Parquet file per day and feature) is generated once into
<out>/lake-<rows>/ with DuckDB, one partition at a time (so 100M rows never sit in memory).
Both engines then build every aggregate table from it (a full build), each with two cores
and the same memory: DuckDB with `threads = 2`, Spark in `local[2]` (its driver is its
executor). The ratio Spark / DuckDB is measured in the same run. In lake mode the data
directory's queries are timed: the feature timeline over the whole range, the Overview's
two periods, `analyze` over the last week, and one feature-day as the Explore page reads it
(facets, the first page of requests and the count), as well as the same feature-day read
through the pruned partition relation. Medians of `--repeat` runs (`--spark-repeat` for the
slow Spark build). The lake-mode figures come before the Spark build so that they are there
even when the Spark build is stopped; every figure is also appended to `--results` (JSON
lines) as it is measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import yaml  # noqa: E402

from app.lake.build import build, build_duckdb  # noqa: E402
from app.lake.partitions import list_partitions  # noqa: E402
from app.lake.spark_job import build_spark, session  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
FEATURES = ("support-reply", "search-answer", "summarize", "code-assist", "ticket-triage")


def make_lake(out: Path, rows: int, days: int) -> Path:
    root = out / f"lake-{rows}" / "requests"
    if root.exists() and any(root.glob("date=*/feature=*/*.parquet")):
        return root
    root.mkdir(parents=True, exist_ok=True)
    per_part = rows // (days * len(FEATURES))
    print(f"generating {rows:,} requests in {days * len(FEATURES)} partitions ...", flush=True)
    con = duckdb.connect()
    for d in range(days):
        day = (date(2026, 10, 1) + timedelta(days=d)).isoformat()
        for feature in FEATURES:
            part = root / f"date={day}" / f"feature={feature}"
            part.mkdir(parents=True, exist_ok=True)
            con.execute(f"""COPY (SELECT
                TIMESTAMP '{day} 00:00:00' + INTERVAL (CAST(i * 86400000000 // {per_part} AS BIGINT))
                    MICROSECOND AS timestamp,
                '{feature}' AS feature, '{feature[:3]}-{d}-' || i AS request_id,
                CASE WHEN {d} < 20 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END AS model,
                CASE WHEN {d} < 20 THEN 'gpt-4o-2024-08-06' ELSE 'gpt-4o-mini-2024-07-18' END
                    AS response_model,
                'v' || (1 + ({d} // 7)) AS prompt_version,
                CASE WHEN hash(i) % 10 = 0 THEN 'canary' ELSE 'control' END AS variant,
                'user-' || (hash(i * 7) % 5000) AS user_id,
                ['free', 'pro', 'enterprise'][(1 + hash(i * 3) % 3)::BIGINT] AS segment,
                ['eu', 'us', 'apac'][(1 + hash(i * 5) % 3)::BIGINT] AS region,
                (200 + (hash(i * 11) % 100000) / 50.0)::DOUBLE AS latency_ms,
                (500 + hash(i * 13) % 1500)::BIGINT AS input_tokens,
                (100 + hash(i * 17) % 400)::BIGINT AS output_tokens,
                ((500 + hash(i * 13) % 1500) * 2.5e-6
                 + (100 + hash(i * 17) % 400) * 1e-5)::DOUBLE AS cost_usd,
                CASE WHEN hash(i * 19) % 100 < 2 THEN 'rate_limit' END AS error,
                CASE WHEN hash(i * 23) % 10 = 0 THEN (hash(i * 29) % 1000) / 1000.0 END AS quality_score,
                CASE WHEN hash(i * 31) % 50 = 0 THEN -1 WHEN hash(i * 31) % 50 = 1 THEN 1 END::TINYINT
                    AS feedback
                FROM range({per_part}) t(i)) TO '{part / "part-0.parquet"}' (FORMAT parquet)""")
        print(f"  day {d + 1}/{days}", flush=True)
    return root


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--spark-repeat", type=int, default=1)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument(
        "--stages", default="duckdb,lake,spark", help="which of duckdb, lake, spark to run (comma-separated)"
    )
    ap.add_argument("--out", type=Path, default=OUT, help="where the lake and the builds go")
    ap.add_argument("--memory", default="6GB", help="memory for each engine's build")
    ap.add_argument("--results", type=Path, default=None, help="append each figure here (JSON lines)")
    args = ap.parse_args()

    def record(name: str, seconds: float, runs: int, **more) -> None:
        if args.results is not None:
            with args.results.open("a") as fh:
                row = {"rows": args.rows, "figure": name, "median_s": round(seconds, 4), "runs": runs}
                fh.write(json.dumps({**row, **more}) + "\n")

    src = make_lake(args.out, args.rows, args.days)
    parts = list_partitions(str(src))
    stage = args.out / f"lake-{args.rows}" / "bench-stage"

    stages = set(args.stages.split(","))
    duck_s = None

    def duck() -> None:
        shutil.rmtree(stage / "duck", ignore_errors=True)
        build_duckdb(str(src), parts, stage / "duck", threads=2, memory_limit=args.memory)

    if "duckdb" in stages:
        duck_s = timed(duck, args.repeat)
        shutil.rmtree(stage / "duck", ignore_errors=True)
        record("duckdb_build", duck_s, args.repeat)
        print(
            f"DuckDB (2 threads) full build: {duck_s:.1f} s ({args.rows / duck_s / 1e6:.2f} M rows/s)",
            flush=True,
        )
    if "lake" in stages:
        lake_mode(args, src, record)
    if "spark" in stages and not args.no_spark:
        spark = session("local[2]", driver_memory=args.memory.lower().replace("gb", "g"))
        keys = [p.key for p in parts]

        def sp() -> None:
            shutil.rmtree(stage / "spark", ignore_errors=True)
            build_spark(str(src), keys, str(stage / "spark"), spark=spark)

        spark_s = timed(sp, args.spark_repeat)
        spark.stop()
        shutil.rmtree(stage / "spark", ignore_errors=True)
        ratio = round(spark_s / duck_s, 2) if duck_s else None
        record("spark_build", spark_s, args.spark_repeat, ratio=ratio)
        print(f"Spark local[2] full build: {spark_s:.1f} s; ratio Spark / DuckDB = {ratio}", flush=True)
    return 0


def lake_mode(args, src: Path, record) -> None:
    data = args.out / f"lake-{args.rows}" / "desk"
    agg = args.out / f"lake-{args.rows}" / "aggregates"
    build(str(src), str(agg), "duckdb")
    data.mkdir(parents=True, exist_ok=True)
    (data / "lake.yaml").write_text(yaml.safe_dump({"requests": str(src), "aggregates": str(agg)}))
    from app.detection.analysis import analyze
    from app.investigate import request_table
    from app.investigate.facets import facets
    from app.investigate.filters import Scope
    from app.lake.tables import relation
    from app.metrics import timeline as metrics
    from app.storage.store import Store

    store = Store(data)
    lo, hi = store.time_bounds(None)
    tl = timed(lambda: metrics.timeline(store, FEATURES[0], lo, hi), args.repeat)
    record("lake_timeline", tl, args.repeat, what="one feature, 30 days")
    print(f"lake mode: timeline {tl:.2f} s (one feature, {args.days} days)", flush=True)
    ov = timed(lambda: metrics.overview(store, hi - timedelta(days=1), hi), args.repeat)
    record("lake_overview", ov, args.repeat, what="every feature, last day vs the day before")
    print(f"lake mode: overview {ov:.2f} s (every feature, a day against the day before)", flush=True)
    an = timed(lambda: analyze(store, since=hi - timedelta(days=7), until=hi), args.repeat)
    record("lake_analyze", an, args.repeat, what="every feature, last 7 days")
    print(f"lake mode: analyze {an:.1f} s (every feature, one week)", flush=True)

    day_start = (hi - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    scope = Scope(FEATURES[1], day_start, day_start + timedelta(days=1))

    def explore_page() -> None:
        facets(store, scope)
        request_table.page(store, scope)

    ex_page = timed(explore_page, args.repeat)
    record("lake_explore_page", ex_page, args.repeat, what="facets + first page + count, one feature-day")
    print(f"lake mode: Explore page of one feature-day {ex_page:.2f} s (facets, page, count)", flush=True)

    def explore_pruned() -> None:
        con = duckdb.connect()
        relation(con, str(src), "r", feature=FEATURES[1], since=day_start, until=day_start)
        con.execute("SELECT count(*) FROM r").fetchall()
        con.execute("SELECT * FROM r ORDER BY timestamp DESC LIMIT 100").fetchall()

    ex = timed(explore_pruned, args.repeat)
    record("lake_feature_day_pruned", ex, args.repeat, what="count + 100 newest, pruned relation")
    print(f"lake mode: one feature-day through the pruned relation {ex:.2f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
