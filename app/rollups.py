"""Five-minute rollups per feature, kept at ingest, so the feature timeline over a week of
millions of requests reads a few thousand rows instead of every request.

Sums and counts merge exactly. The p95 latency comes from a log-spaced histogram (bins 1%
wide), so a rolled-up p95 is within 1% of the exact one; splits and buckets under five
minutes are computed from the raw requests (docs/metrics.md).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

ROLLUP_MINUTES = 5
BIN_BASE = 1.01  # histogram bin width: 1%
VERSION = "2"  # bump when the tables below change: they are rebuilt from the requests

TABLES = ("rollup_5m", "latency_hist_5m", "latency_hist_1h")
DDL = (
    """CREATE TABLE IF NOT EXISTS rollup_5m (
        feature VARCHAR, bucket TIMESTAMP, requests BIGINT, errors BIGINT,
        quality_n BIGINT, quality_sum DOUBLE, quality_sumsq DOUBLE,
        cost_n BIGINT, cost_sum DOUBLE, feedback_n BIGINT, feedback_neg BIGINT,
        first_ts TIMESTAMP, last_ts TIMESTAMP)""",
    # Latency histograms at two grains: hourly ones keep week-long charts light.
    """CREATE TABLE IF NOT EXISTS latency_hist_5m (
        feature VARCHAR, bucket TIMESTAMP, bin INTEGER, n BIGINT)""",
    """CREATE TABLE IF NOT EXISTS latency_hist_1h (
        feature VARCHAR, bucket TIMESTAMP, bin INTEGER, n BIGINT)""",
)


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Create the rollup tables; rebuild them when they are missing or of another version."""
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name IN (?, ?, ?)",
        list(TABLES)).fetchall()}
    row = con.execute("SELECT value FROM meta WHERE key = 'rollup_version'").fetchone()
    if have == set(TABLES) and row and row[0] == VERSION:
        return
    for table in TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    for ddl in DDL:
        con.execute(ddl)
    rebuild(con)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_version', ?)", [VERSION])


def refresh(con: duckdb.DuckDBPyConnection, ranges: list[tuple[str, datetime, datetime]]) -> None:
    """Recompute the rollups of each (feature, first, last) range from the stored requests.

    Runs inside the caller's transaction, so rollups and requests change together. All
    features are done in one pass over the requests; hourly histograms are summed from the
    five-minute ones."""
    merged: dict[str, tuple[datetime, datetime]] = {}
    for feature, lo, hi in ranges:
        if lo is None or hi is None:
            continue
        old = merged.get(feature)
        merged[feature] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    if not merged:
        return
    con.execute("CREATE OR REPLACE TEMP TABLE rd_ranges (feature VARCHAR, lo TIMESTAMP, "
                "hi TIMESTAMP)")
    con.executemany("INSERT INTO rd_ranges VALUES (?, ?, ?)",
                    [[f, lo, hi] for f, (lo, hi) in merged.items()])
    for table, grain in (("rollup_5m", "5 minutes"), ("latency_hist_5m", "5 minutes"),
                         ("latency_hist_1h", "1 hour")):
        con.execute(
            f"""DELETE FROM {table} t USING rd_ranges g WHERE t.feature = g.feature
                AND t.bucket >= time_bucket(INTERVAL '{grain}', g.lo)
                AND t.bucket <= time_bucket(INTERVAL '{grain}', g.hi)""")
    source = """FROM requests q JOIN rd_ranges g ON q.feature = g.feature
                AND q.timestamp >= time_bucket(INTERVAL '5 minutes', g.lo)
                AND q.timestamp < time_bucket(INTERVAL '5 minutes', g.hi) + INTERVAL '5 minutes'"""
    con.execute(
        f"""INSERT INTO rollup_5m
            SELECT q.feature, time_bucket(INTERVAL '5 minutes', timestamp), count(*),
                   count(error), count(quality_score), sum(quality_score),
                   sum(quality_score * quality_score), count(cost_usd), sum(cost_usd),
                   count(feedback), count(*) FILTER (WHERE feedback = -1),
                   min(timestamp), max(timestamp)
            {source} GROUP BY 1, 2""")
    con.execute(
        f"""INSERT INTO latency_hist_5m
            SELECT q.feature, time_bucket(INTERVAL '5 minutes', timestamp),
                   CAST(floor(ln(greatest(latency_ms, 0.01)) / ln({BIN_BASE})) AS INTEGER),
                   count(*)
            {source} AND latency_ms IS NOT NULL GROUP BY 1, 2, 3""")
    con.execute(
        """INSERT INTO latency_hist_1h
           SELECT h.feature, time_bucket(INTERVAL '1 hour', h.bucket), h.bin, sum(h.n)
           FROM latency_hist_5m h JOIN rd_ranges g ON h.feature = g.feature
            AND h.bucket >= time_bucket(INTERVAL '1 hour', g.lo)
            AND h.bucket < time_bucket(INTERVAL '1 hour', g.hi) + INTERVAL '1 hour'
           GROUP BY 1, 2, 3""")
    con.execute("DROP TABLE rd_ranges")


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every rollup (after a schema change, or to repair)."""
    for table in TABLES:
        con.execute(f"DELETE FROM {table}")
    ranges = con.execute(
        "SELECT feature, min(timestamp), max(timestamp) FROM requests GROUP BY 1").fetchall()
    refresh(con, [(r[0], r[1], r[2]) for r in ranges])


def timeline_sql(bucket: str, hourly: bool) -> str:
    """The timeline's metrics from the rollups; parameters: feature, since, until (x2)."""
    hist = "latency_hist_1h" if hourly else "latency_hist_5m"
    return f"""
        WITH r AS (
            SELECT time_bucket(INTERVAL '{bucket}', bucket) AS b, * FROM rollup_5m
            WHERE feature = ? AND bucket >= ? AND bucket < ?),
        agg AS (
            SELECT b, sum(requests) AS requests, sum(errors) / sum(requests) AS error_rate,
                   sum(quality_sum) / nullif(sum(quality_n), 0) AS quality_mean,
                   sqrt(greatest(sum(quality_sumsq) - sum(quality_sum) ^ 2
                        / nullif(sum(quality_n), 0), 0) / nullif(sum(quality_n) - 1, 0))
                       AS quality_sd,
                   sum(quality_n) AS quality_n,
                   sum(cost_sum) / nullif(sum(cost_n), 0) AS cost_per_request_usd,
                   sum(feedback_neg) / nullif(sum(feedback_n), 0) AS negative_feedback_rate,
                   sum(feedback_n) AS feedback_n
            FROM r GROUP BY b),
        h AS (
            SELECT time_bucket(INTERVAL '{bucket}', bucket) AS b, bin, sum(n) AS n
            FROM {hist} WHERE feature = ? AND bucket >= ? AND bucket < ?
            GROUP BY 1, 2),
        cum AS (
            SELECT b, bin, sum(n) OVER (PARTITION BY b ORDER BY bin) AS below,
                   sum(n) OVER (PARTITION BY b) AS total FROM h),
        p95 AS (
            -- quantile_cont's rank 0.95 * (n - 1), interpolated between the bins holding
            -- the order statistics on either side of it
            SELECT b, 0.95 * (total - 1) - floor(0.95 * (total - 1)) AS frac,
                   min(bin) FILTER (WHERE below > floor(0.95 * (total - 1))) AS bin_lo,
                   min(bin) FILTER (WHERE below > floor(0.95 * (total - 1)) + 1) AS bin_hi
            FROM cum GROUP BY b, total)
        SELECT agg.b AS bucket, 'all' AS series, requests, error_rate, quality_mean,
               quality_sd, quality_n,
               pow({BIN_BASE}, p95.bin_lo + 0.5) + p95.frac * (
                   pow({BIN_BASE}, coalesce(p95.bin_hi, p95.bin_lo) + 0.5)
                   - pow({BIN_BASE}, p95.bin_lo + 0.5)) AS latency_p95_ms,
               cost_per_request_usd, negative_feedback_rate, feedback_n
        FROM agg LEFT JOIN p95 USING (b) ORDER BY 1"""
