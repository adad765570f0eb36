"""Rollups kept at ingest, so the feature timeline and detection over a week of millions of
requests read a few thousand rows instead of every request.

Rollups are kept per loaded file: a file's rows are summed once, and a file that is reloaded
or replaced takes its rollups with it. Sums, counts, minima and maxima merge exactly across
files. Four tables:

- `rollup_5m`: one row per (file, feature, five minutes, model, response_model,
  prompt_version) with counts and sums, so the first appearance of a model or prompt version
  is read from the rollups too; `ok_cost_n`/`ok_cost_sum` count successful requests only.
- `hist_1h`: per (file, feature, hour, metric, ok), histograms of `latency_ms` (log bins 1%
  wide), `cost_usd` (log bins 5.1% wide) and `quality_score` (bins of 0.01), in the shape of
  the aggregate contract's `hist_1h` (app/storage/aggregates.py) plus the file. `ok` tells
  successful requests from failed ones: the timeline's p95 counts every request, detection
  only the successful ones, from the same rows.
- `dim_1h` and `user_1h`: the contract's `agg_dim_1h` (per hour, split dimension and value)
  and `agg_user_1h` (the 20 busiest users of each feature-hour) plus the file, built by the
  contract's own SQL; read through views under the contract's names, as in lake mode.

A latency p95 read from the histogram (values taken as spread evenly within a bin) is within
1% of the exact one (docs/metrics.md).

`rollup_5m` and the latency histogram are built in the load's transaction, because the
timeline and the Overview read them. The rest (cost and quality histograms, `dim_1h`,
`user_1h`) serve detection, triage and splits; they are built by the first reader that needs
them (`ensure_deferred`) from the files listed in `rollup_pending`, in one transaction, so a
load spends no time on them (the 0.80 ingest target has no room for them) and the first
reader after it pays once. A load records its file in `rollup_pending` in its own
transaction, so a rollup is never missing without being pending.
"""

from __future__ import annotations

import threading
import time

import duckdb

from app.storage import aggregates
from app.storage.aggregates import (
    DUCKDB,
    HIST_METRICS,
    bin_sql,
    table_sql,
)

ROLLUP_MINUTES = 5
BIN_BASE = 1.01  # latency bin width: 1% (bin = floor(ln x / ln 1.01), as in the contract)
VERSION = "8"  # bump when the tables below change: they are rebuilt from the requests

TABLES = ("rollup_5m", "hist_1h", "dim_1h", "user_1h", "dim_hist_1h", "rollup_pending")
# The contract's per-dimension and per-user hourly tables, under their contract names: views
# over the per-file tables, so a consumer reads the same names and columns here and in lake mode.
VIEWS = {"agg_dim_1h": "dim_1h", "agg_user_1h": "user_1h", "hist_dim_1h": "dim_hist_1h"}
DEFERRED_METRICS = ("cost_usd", "quality_score")  # built at the first read (ensure_deferred)
LOAD_METRICS = tuple(m for m in HIST_METRICS if m not in DEFERRED_METRICS)
_OLD_TABLES = ("latency_hist_5m", "latency_hist_1h", "hist_pending")


def _names(view: str) -> list[str]:
    """The contract table's columns but `date` (a bucket's day is in the bucket)."""
    return [n for n, _ in aggregates.columns(view) if n != "date"]


def _columns(view: str) -> str:
    return ", ".join(f"{n} {t}" for n, t in aggregates.columns(view) if n != "date")


DDL = (
    """CREATE TABLE IF NOT EXISTS rollup_5m (
        file_id INTEGER, feature VARCHAR, bucket TIMESTAMP, model VARCHAR,
        response_model VARCHAR, prompt_version VARCHAR, requests BIGINT, errors BIGINT,
        quality_n BIGINT, quality_sum DOUBLE, quality_sumsq DOUBLE,
        cost_n BIGINT, cost_sum DOUBLE, ok_cost_n BIGINT, ok_cost_sum DOUBLE,
        feedback_n BIGINT, feedback_neg BIGINT, first_ts TIMESTAMP, last_ts TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS hist_1h (
        file_id INTEGER, feature VARCHAR, bucket TIMESTAMP, metric VARCHAR, ok BOOLEAN,
        bin INTEGER, n BIGINT)""",
    *(
        f"CREATE TABLE IF NOT EXISTS {table} (file_id INTEGER, {_columns(view)})"
        for view, table in VIEWS.items()
    ),
    "CREATE TABLE IF NOT EXISTS rollup_pending (file_id INTEGER)",
    *(
        f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(_names(view))} FROM {table}"
        for view, table in VIEWS.items()
    ),
)


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Create the rollup tables; rebuild them when they are missing or of another version."""
    have = {
        r[0]
        for r in con.execute(
            f"SELECT table_name FROM duckdb_tables() WHERE table_name IN ({', '.join('?' * len(TABLES))})",
            list(TABLES),
        ).fetchall()
    }
    row = con.execute("SELECT value FROM meta WHERE key = 'rollup_version'").fetchone()
    if have == set(TABLES) and row and row[0] == VERSION:
        return
    for view in VIEWS:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for table in TABLES + _OLD_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    for ddl in DDL:
        con.execute(ddl)
    rebuild(con)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_version', ?)", [VERSION])


def drop_file(con: duckdb.DuckDBPyConnection, file_id: int) -> None:
    """Forget one file's rollups (it is being reloaded, or replaced)."""
    for table in TABLES:
        con.execute(f"DELETE FROM {table} WHERE file_id = ?", [file_id])


def add_file(con: duckdb.DuckDBPyConnection, file_id: int | None) -> None:
    """Sum one file's stored requests into the rollups (every file's, for None). Runs
    inside the caller's transaction, so rollups and requests change together."""
    if file_id is None:
        for (fid,) in con.execute("SELECT DISTINCT file_id FROM requests").fetchall():
            add_file(con, fid)
        return
    # Rows are grouped by the bucket's number (microseconds since the epoch over the
    # bucket's length), which costs a third of time_bucket() per row; the timestamp is
    # made once per group, and floor() keeps buckets before 1970 whole. The file is one
    # value, so it is not a grouping key. Conditional counts and sums are written with CASE,
    # as in the aggregate contract (FILTER clauses were never faster here).
    step = ROLLUP_MINUTES * 60_000_000
    fid = int(file_id)
    con.execute(
        f"""INSERT INTO rollup_5m
            SELECT {fid}, feature, make_timestamp(CAST(b AS BIGINT) * {step}), model,
                   response_model, prompt_version, requests, errors, quality_n, quality_sum,
                   quality_sumsq, cost_n, cost_sum, ok_cost_n, ok_cost_sum, feedback_n,
                   feedback_neg, first_ts, last_ts
            FROM (SELECT feature, floor(epoch_us(timestamp) / {step}) AS b, model,
                         response_model, prompt_version, count(*) AS requests,
                         count(error) AS errors, count(quality_score) AS quality_n,
                         sum(quality_score) AS quality_sum,
                         sum(quality_score * quality_score) AS quality_sumsq,
                         count(cost_usd) AS cost_n, sum(cost_usd) AS cost_sum,
                         count(CASE WHEN error IS NULL THEN cost_usd END) AS ok_cost_n,
                         sum(CASE WHEN error IS NULL THEN cost_usd END) AS ok_cost_sum,
                         count(feedback) AS feedback_n,
                         count(CASE WHEN feedback = -1 THEN 1 END) AS feedback_neg,
                         min(timestamp) AS first_ts, max(timestamp) AS last_ts
                  FROM requests WHERE file_id = {fid} GROUP BY ALL)"""
    )
    con.execute(f"INSERT INTO hist_1h {hist_sql(fid, LOAD_METRICS)}")
    con.execute("INSERT INTO rollup_pending VALUES (?)", [fid])


# One build of the deferred rollups at a time in this process. The app's sessions are
# threads, each with its own connection to the same database: without the lock, a session
# that lost the race to another's uncommitted build would read the tables before they hold
# anything. (Another process cannot race: DuckDB's file lock lets one process at a time in.)
_BUILDING = threading.Lock()


def ensure_deferred(con: duckdb.DuckDBPyConnection) -> int:
    """Build the deferred rollups (the cost and quality histograms, `dim_1h`, `user_1h` and
    `dim_hist_1h`) of every file loaded since the last call, in one transaction; returns how
    many files were built. A no-op in lake mode (the lake's tables are built whole) and when
    nothing is pending. A caller that finds another thread building waits for it, then finds
    nothing left to build: when this returns, the tables are whole."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rollup_pending'").fetchall()[
        0
    ][0]:
        return 0
    if not con.execute("SELECT count(*) FROM rollup_pending").fetchall()[0][0]:
        return 0
    with _BUILDING:
        for wait in (0.2, 0.4, 0.8):
            try:
                return _build_pending(con)
            except duckdb.TransactionException:
                # A load in this process changed the same files' rollups at the same time:
                # build again once it has committed (its file is pending again, or gone).
                time.sleep(wait)
        return _build_pending(con)


def _build_pending(con: duckdb.DuckDBPyConnection) -> int:
    deferred = ", ".join(f"'{m}'" for m in DEFERRED_METRICS)
    con.execute("BEGIN TRANSACTION")  # called outside a transaction (a reader's connection)
    try:
        files = [r[0] for r in con.execute("SELECT DISTINCT file_id FROM rollup_pending").fetchall()]
        for fid in files:
            con.execute(f"DELETE FROM hist_1h WHERE file_id = ? AND metric IN ({deferred})", [fid])
            con.execute(f"INSERT INTO hist_1h {hist_sql(int(fid), DEFERRED_METRICS)}")
            for view, table in VIEWS.items():
                con.execute(f"DELETE FROM {table} WHERE file_id = ?", [fid])
                con.execute(f"INSERT INTO {table} {contract_sql(int(fid), view)}")
        con.execute("DELETE FROM rollup_pending")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(files)


def contract_sql(file_id: int, view: str) -> str:
    """The SELECT of one file's rows of a per-file table, by the aggregate contract's own SQL
    for `view` (the same statement Spark and the lake builder run)."""
    src = f"src AS (SELECT *, CAST(timestamp AS DATE) AS date FROM requests WHERE file_id = {file_id})"
    body = table_sql(view, DUCKDB)
    body = f"WITH {src}, {body[5:]}" if body.startswith("WITH ") else f"WITH {src}\n{body}"
    return f"SELECT {file_id}, {', '.join(_names(view))} FROM (\n{body})"


def hist_sql(file_id: int, metrics: tuple[str, ...] = HIST_METRICS) -> str:
    """The SELECT of one file's rows of `hist_1h` for `metrics`: one grouped scan each."""
    hour = 3_600_000_000
    return "\nUNION ALL\n".join(
        f"""SELECT {file_id}, feature, make_timestamp(CAST(h AS BIGINT) * {hour}), '{metric}',
                   ok, bin, n
            FROM (SELECT feature, floor(epoch_us(timestamp) / {hour}) AS h,
                         error IS NULL AS ok, {bin_sql(metric)} AS bin, count(*) AS n
                  FROM requests WHERE file_id = {file_id} AND {metric} >= 0 GROUP BY ALL)"""
        for metric in metrics
    )


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every rollup (after a schema change, or to repair)."""
    for table in TABLES:
        con.execute(f"DELETE FROM {table}")
    add_file(con, None)


def hist_quantile_sql(keys: list[str], level: float = 0.95) -> str:
    """CTEs that read a relation `h` (the columns `keys`, `bin` and `n`: counts of 1% latency
    bins) and end in `p95` (`keys`, `latency_p95_ms`): per group, `quantile_cont`'s rank
    level x (n - 1) between the two order statistics around it, each placed within its bin as
    if the bin's values were spread evenly over it. Within 1% of the exact quantile."""
    by = ", ".join(keys)

    def on(a: str, b: str) -> str:
        return " AND ".join(f"{a}.{k} = {b}.{k}" for k in keys)

    q_keys = ", ".join(f"q.{k}" for k in keys)
    c_keys = ", ".join(f"c.{k}" for k in keys)
    return f"""cum AS (
            SELECT {by}, bin, n, sum(n) OVER (PARTITION BY {by} ORDER BY bin) AS below,
                   sum(n) OVER (PARTITION BY {by}) AS total FROM h),
        ranks AS (
            -- quantile_cont's rank level * (n - 1): the order statistics on either side
            SELECT DISTINCT {by}, total, {level!r} * (total - 1) AS r FROM cum),
        stats AS (
            -- each order statistic, spread evenly over the bin that holds it
            SELECT {c_keys}, k.i, pow({BIN_BASE}, c.bin + (k.k - (c.below - c.n) + 0.5) / c.n) AS v
            FROM ranks q
            CROSS JOIN LATERAL (VALUES (0, floor(q.r)), (1, least(floor(q.r) + 1, q.total - 1)))
                 k(i, k)
            JOIN cum c ON {on("c", "q")} AND c.below - c.n <= k.k AND k.k < c.below),
        p95 AS (
            SELECT {q_keys}, lo.v + (q.r - floor(q.r)) * (hi.v - lo.v) AS latency_p95_ms
            FROM ranks q JOIN stats lo ON {on("lo", "q")} AND lo.i = 0
                         JOIN stats hi ON {on("hi", "q")} AND hi.i = 1)"""


def timeline_sql(bucket: str, hourly: bool) -> str:
    """The timeline's metrics from the rollups; parameters: feature, since, until (x2).
    Buckets of an hour or more take p95 from the hourly histograms; shorter ones compute it
    from the requests of the range (one feature, a short range: few rows)."""
    if hourly:
        p95 = f"""
        h AS (
            SELECT time_bucket(INTERVAL '{bucket}', bucket) AS b, bin, sum(n) AS n
            FROM hist_1h WHERE metric = 'latency_ms' AND feature = ? AND bucket >= ? AND bucket < ?
            GROUP BY 1, 2),
        {hist_quantile_sql(["b"])}"""
    else:
        p95 = f"""
        p95 AS (
            SELECT time_bucket(INTERVAL '{bucket}', timestamp) AS b,
                   quantile_cont(latency_ms, 0.95) AS latency_p95_ms
            FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?
            GROUP BY 1)"""
    return f"""
        WITH r AS (
            SELECT time_bucket(INTERVAL '{bucket}', bucket) AS b, * FROM rollup_5m
            WHERE feature = ? AND bucket >= ? AND bucket < ?),
        agg AS (
            SELECT b, sum(requests) AS requests, sum(errors) / sum(requests) AS error_rate,
                   sum(quality_sum) / nullif(sum(quality_n), 0) AS quality_score,
                   sqrt(greatest(sum(quality_sumsq) - sum(quality_sum) ^ 2
                        / nullif(sum(quality_n), 0), 0) / nullif(sum(quality_n) - 1, 0))
                       AS quality_sd,
                   sum(quality_n) AS quality_n,
                   sum(cost_sum) / nullif(sum(cost_n), 0) AS cost_per_request_usd,
                   sum(feedback_neg) / nullif(sum(feedback_n), 0) AS negative_feedback_rate,
                   sum(feedback_n) AS feedback_n
            FROM r GROUP BY b),{p95}
        SELECT agg.b AS bucket, 'all' AS series, requests, error_rate, quality_score,
               quality_sd, quality_n, latency_p95_ms, cost_per_request_usd,
               negative_feedback_rate, feedback_n
        FROM agg LEFT JOIN p95 USING (b) ORDER BY 1"""
