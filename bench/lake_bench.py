"""A request lake at scale: building its aggregates with Spark and with DuckDB, and the app's
queries in lake mode.

    .venv/bin/python bench/lake_bench.py [--rows 100000000] [--days 30] [--repeat 3] [--no-spark]

The lake (hive layout, one Parquet file per day and feature) is generated once into
bench/out/lake-<rows>/ with DuckDB. Both engines then build every aggregate table from it
(a full build), each with two cores: Spark in `local[2]`, DuckDB with `threads = 2`. The
ratio Spark / DuckDB is measured in the same run. In lake mode the data directory's
queries are timed: the feature timeline over the whole range, `analyze` over the last week,
and one feature-day of raw requests (a page of 100 rows and the count), as the Explore page
reads them. Medians of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import yaml  # noqa: E402

from app.lake.build import build, build_duckdb  # noqa: E402
from app.lake.partitions import list_partitions  # noqa: E402
from app.lake.spark_job import build_spark, session  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
FEATURES = ("support-reply", "search-answer", "summarize", "code-assist", "ticket-triage")


def make_lake(rows: int, days: int) -> Path:
    root = OUT / f"lake-{rows}" / "requests"
    if root.exists() and any(root.glob("date=*/feature=*/*.parquet")):
        return root
    root.mkdir(parents=True, exist_ok=True)
    per_part = rows // (days * len(FEATURES))
    print(f"generating {rows:,} requests in {days * len(FEATURES)} partitions ...", flush=True)
    con = duckdb.connect()
    for d in range(days):
        day = f"2026-10-{d + 1:02d}" if d < 31 else None
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
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()
    src = make_lake(args.rows, args.days)
    parts = list_partitions(str(src))
    stage = OUT / f"lake-{args.rows}" / "bench-stage"

    def duck() -> None:
        shutil.rmtree(stage, ignore_errors=True)
        build_duckdb(str(src), parts, stage / "duck", threads=2)

    duck_s = timed(duck, args.repeat)
    print(
        f"DuckDB (2 threads) full build: {duck_s:.1f} s ({args.rows / duck_s / 1e6:.2f} M rows/s)", flush=True
    )
    if not args.no_spark:
        spark = session("local[2]")
        keys = [p.key for p in parts]

        def sp() -> None:
            shutil.rmtree(stage / "spark", ignore_errors=True)
            build_spark(str(src), keys, str(stage / "spark"), spark=spark)

        spark_s = timed(sp, args.repeat)
        spark.stop()
        print(
            f"Spark local[2] full build: {spark_s:.1f} s; ratio Spark / DuckDB = {spark_s / duck_s:.2f}",
            flush=True,
        )

    # lake mode
    data = OUT / f"lake-{args.rows}" / "desk"
    agg = OUT / f"lake-{args.rows}" / "aggregates"
    build(str(src), str(agg), "duckdb")
    data.mkdir(parents=True, exist_ok=True)
    (data / "lake.yaml").write_text(yaml.safe_dump({"requests": str(src), "aggregates": str(agg)}))
    from app.detection.analysis import analyze
    from app.lake.tables import relation
    from app.metrics import timeline as metrics
    from app.storage.store import Store

    store = Store(data)
    lo, hi = store.time_bounds(None)
    tl = timed(lambda: metrics.timeline(store, FEATURES[0], lo, hi), args.repeat)
    an = timed(lambda: analyze(store, since=hi - timedelta(days=7), until=hi), args.repeat)

    def explore() -> None:
        con = duckdb.connect()
        relation(
            con,
            str(src),
            "r",
            feature=FEATURES[1],
            since=hi - timedelta(days=1),
            until=hi - timedelta(days=1),
        )
        con.execute("SELECT count(*) FROM r").fetchall()
        con.execute("SELECT * FROM r ORDER BY timestamp DESC LIMIT 100").fetchall()

    ex = timed(explore, args.repeat)
    print(
        f"lake mode at {args.rows:,} rows: timeline {tl:.2f} s (30 days, one feature), "
        f"analyze {an:.1f} s (one week, every feature), one feature-day of requests {ex:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
