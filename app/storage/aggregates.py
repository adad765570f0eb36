"""The aggregate tables: the contract between whatever scans the requests (DuckDB here, Spark
on a cluster) and the app's statistics.

Every table is written one way, as SQL text over a relation `src` of canonical requests with
`date` and `feature` columns, so that DuckDB and Spark SQL run *the same statements*: the
only words that differ between the two engines are the two in `Dialect` (a timestamp's
microseconds since 1970, and back). docs/aggregates.md describes each
column. This module imports nothing but the standard library, so a Spark job can ship it on
its own (`spark-submit --py-files`).
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = 3  # bump when a table's columns or meaning change; builders then rebuild everything

TOP_USERS = 20  # users kept per feature-hour in agg_user_1h (by requests, then user_id)
LOG_BIN_WIDTH = 0.009950330853168083  # ln(1.01): latency bins are 1% wide
# Each log-binned metric's bin width in ln units: latency 1% (the timeline's p95 within 1%);
# cost 1.01^5, 5.1% (what detection's rank test reads; three and a half times fewer groups
# than 1% bins, which keeps the histograms' share of an ingest small).
LOG_BIN_WIDTHS = {"latency_ms": LOG_BIN_WIDTH, "cost_usd": 5 * LOG_BIN_WIDTH}
ZERO_BIN = -100000  # the bin of a latency or cost of exactly 0 (no logarithm)
QUALITY_BINS = 100  # quality_score bins of 0.01 on [0, 1]; 1.0 falls in bin 100

# The numeric columns every builder casts the source to before aggregating, so that a lake
# written with DECIMAL or 32-bit columns gives the same sums in every engine.
NUMERIC_TYPES = {
    "latency_ms": "DOUBLE",
    "cost_usd": "DOUBLE",
    "quality_score": "DOUBLE",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "feedback": "INT",
}

SPLIT_DIMENSIONS = ("model", "response_model", "prompt_version", "variant", "region", "segment")
NONE_VALUE = "(none)"  # the value of a dimension a request does not carry


@dataclass(frozen=True)
class Dialect:
    name: str
    epoch_us: str  # SQL of a timestamp column's microseconds since 1970: format with {ts}
    from_epoch_s: str  # SQL of a timestamp from whole seconds: format with {s}


DUCKDB = Dialect("duckdb", "epoch_us({ts})", "make_timestamp(({s}) * 1000000)")
SPARK = Dialect(
    "spark", "unix_micros(CAST({ts} AS TIMESTAMP))", "CAST(timestamp_seconds({s}) AS TIMESTAMP_NTZ)"
)

_IS_ERROR = "CASE WHEN error IS NOT NULL AND error <> '' THEN 1 ELSE 0 END"
# A successful request: the ones whose latency, cost and quality detection measures (a failed
# call answers fast, costs nothing and has no score).
IS_OK = "(error IS NULL OR error = '')"

# ln of a latency, floored at 0.01 ms (a logged 0 has a logarithm): detection's slice tests and
# the guardrails compare latency on this scale (scale-free; a slow tail does not swamp the mean).
_LN_LATENCY = "ln(greatest(latency_ms, 0.01))"

# name, SQL over the group's rows. Counts are BIGINT and sums DOUBLE in every engine.
MEASURES: tuple[tuple[str, str], ...] = (
    ("requests", "CAST(count(*) AS BIGINT)"),
    ("errors", f"CAST(sum({_IS_ERROR}) AS BIGINT)"),
    ("latency_n", "CAST(count(latency_ms) AS BIGINT)"),
    ("latency_sum", "CAST(sum(latency_ms) AS DOUBLE)"),
    ("latency_sumsq", "CAST(sum(latency_ms * latency_ms) AS DOUBLE)"),
    ("latency_lnsum", f"CAST(sum({_LN_LATENCY}) AS DOUBLE)"),
    ("latency_lnsumsq", f"CAST(sum({_LN_LATENCY} * {_LN_LATENCY}) AS DOUBLE)"),
    ("quality_n", "CAST(count(quality_score) AS BIGINT)"),
    ("quality_sum", "CAST(sum(quality_score) AS DOUBLE)"),
    ("quality_sumsq", "CAST(sum(quality_score * quality_score) AS DOUBLE)"),
    ("cost_n", "CAST(count(cost_usd) AS BIGINT)"),
    ("cost_sum", "CAST(sum(cost_usd) AS DOUBLE)"),
    ("cost_sumsq", "CAST(sum(cost_usd * cost_usd) AS DOUBLE)"),
    ("ok_cost_n", f"CAST(count(CASE WHEN {IS_OK} THEN cost_usd END) AS BIGINT)"),
    ("ok_cost_sum", f"CAST(sum(CASE WHEN {IS_OK} THEN cost_usd END) AS DOUBLE)"),
    ("ok_cost_sumsq", f"CAST(sum(CASE WHEN {IS_OK} THEN cost_usd * cost_usd END) AS DOUBLE)"),
    ("ok_latency_n", f"CAST(count(CASE WHEN {IS_OK} THEN latency_ms END) AS BIGINT)"),
    ("ok_latency_lnsum", f"CAST(sum(CASE WHEN {IS_OK} THEN {_LN_LATENCY} END) AS DOUBLE)"),
    ("ok_latency_lnsumsq", f"CAST(sum(CASE WHEN {IS_OK} THEN {_LN_LATENCY} * {_LN_LATENCY} END) AS DOUBLE)"),
    ("input_tokens_sum", "CAST(sum(input_tokens) AS BIGINT)"),
    ("output_tokens_sum", "CAST(sum(output_tokens) AS BIGINT)"),
    ("feedback_n", "CAST(count(feedback) AS BIGINT)"),
    ("feedback_neg", "CAST(sum(CASE WHEN feedback = -1 THEN 1 ELSE 0 END) AS BIGINT)"),
    ("first_ts", "min(timestamp)"),
    ("last_ts", "max(timestamp)"),
)
MEASURE_NAMES = tuple(m[0] for m in MEASURES)
# agg_user_1h carries what a user's slice is compared on (triage: requests, errors, quality,
# latency, cost, feedback): grouping every user of every hour is the costliest part of a
# build, and the other measures would make it 40% longer.
USER_MEASURES = (
    "requests",
    "errors",
    "latency_n",
    "latency_sum",
    "quality_n",
    "quality_sum",
    "quality_sumsq",
    "cost_n",
    "cost_sum",
    "feedback_n",
    "feedback_neg",
    "first_ts",
    "last_ts",
)


def measure_type(name: str) -> str:
    """The SQL type of a measure column (every engine writes these types)."""
    if name.endswith("_ts"):
        return "TIMESTAMP"
    if name == "requests" or name == "errors" or name.endswith(("_n", "_neg", "tokens_sum")):
        return "BIGINT"
    return "DOUBLE"


def _rollup(name: str) -> str:
    """SQL that merges a measure over groups of the table that holds it (sums of sums, the
    first of the first times, the last of the last)."""
    if name == "first_ts":
        return "min(first_ts)"
    if name == "last_ts":
        return "max(last_ts)"
    return f"CAST(sum({name}) AS {measure_type(name)})"


# Table -> its key columns (the rest are measures). `date` and `feature` partition every table.
TABLES: dict[str, tuple[str, ...]] = {
    "agg_5m": ("date", "feature", "bucket"),
    "agg_1h": ("date", "feature", "bucket"),
    "agg_versions_5m": ("date", "feature", "bucket", "model", "response_model", "prompt_version"),
    "agg_dim_1h": ("date", "feature", "bucket", "dimension", "value"),
    "agg_user_1h": ("date", "feature", "bucket", "user_id"),
    "hist_1h": ("date", "feature", "bucket", "metric", "ok", "bin"),
    "hist_dim_1h": ("date", "feature", "bucket", "dimension", "value", "bin"),
}
HIST_TABLES = ("hist_1h", "hist_dim_1h")  # their one measure is `n`, the requests in the bin
_KEY_TYPES = {"bucket": "TIMESTAMP", "ok": "BOOLEAN", "bin": "INTEGER"}  # the other keys: VARCHAR


def columns(table: str) -> list[tuple[str, str]]:
    """Every column of `table` with its SQL type, keys first, as every builder writes them."""
    keys = [(k, _KEY_TYPES.get(k, "VARCHAR")) for k in TABLES[table]]
    if table in HIST_TABLES:
        return [*keys, ("n", "BIGINT")]
    users = [("users", "BIGINT")] if table == "agg_1h" else []
    names = USER_MEASURES if table == "agg_user_1h" else MEASURE_NAMES
    return keys + [(m, measure_type(m)) for m in names] + users


def _bucket(d: Dialect, seconds: int) -> str:
    us = d.epoch_us.format(ts="timestamp")
    # floor, not truncation, so a bucket before 1970 is whole too; a double holds every
    # microsecond count of the next 280 years exactly, and the quotient's floor with it.
    whole = f"CAST(floor(({us}) / {seconds * 1_000_000}.0) AS BIGINT)"
    return d.from_epoch_s.format(s=f"({whole}) * {seconds}")


def _measures(names: tuple[str, ...] = MEASURE_NAMES) -> str:
    return ",\n       ".join(f"{sql} AS {name}" for name, sql in MEASURES if name in names)


def table_sql(table: str, d: Dialect) -> str:
    """The SELECT that builds `table` from the relation `src`, in dialect `d`."""
    if table in ("agg_5m", "agg_1h"):
        seconds = 300 if table == "agg_5m" else 3600
        users = ",\n       CAST(count(DISTINCT user_id) AS BIGINT) AS users" if table == "agg_1h" else ""
        return (
            f"SELECT date, feature, {_bucket(d, seconds)} AS bucket,\n       {_measures()}{users}\n"
            f"FROM src GROUP BY 1, 2, 3"
        )
    if table == "agg_versions_5m":
        return (
            f"SELECT date, feature, {_bucket(d, 300)} AS bucket, model, response_model,\n"
            f"       prompt_version,\n       {_measures()}\nFROM src GROUP BY 1, 2, 3, 4, 5, 6"
        )
    if table == "agg_dim_1h":
        # One scan of the rows, summed per hour and combination of the dimensions' values (a
        # few hundred per feature-hour); each dimension's rows are rolled up from those.
        dims = ", ".join(SPLIT_DIMENSIONS)
        rolled = ",\n       ".join(f"{_rollup(n)} AS {n}" for n in MEASURE_NAMES)
        parts = [
            f"SELECT date, feature, bucket, '{dim}' AS dimension,\n"
            f"       coalesce({dim}, '{NONE_VALUE}') AS value,\n       {rolled}\n"
            f"FROM combos GROUP BY 1, 2, 3, 4, 5"
            for dim in SPLIT_DIMENSIONS
        ]
        return (
            f"WITH combos AS (\n"
            f"  SELECT date, feature, {_bucket(d, 3600)} AS bucket, {dims},\n       {_measures()}\n"
            f"  FROM src GROUP BY {', '.join(str(i) for i in range(1, 4 + len(SPLIT_DIMENSIONS)))})\n"
            + "\nUNION ALL\n".join(parts)
        )
    if table == "agg_user_1h":
        return (
            f"SELECT {', '.join(TABLES['agg_user_1h'])}, {', '.join(USER_MEASURES)} FROM (\n"
            f"  SELECT *, row_number() OVER (PARTITION BY date, feature, bucket\n"
            f"                               ORDER BY requests DESC, user_id) AS user_rank\n"
            f"  FROM (SELECT date, feature, {_bucket(d, 3600)} AS bucket, user_id,\n"
            f"               {_measures(USER_MEASURES)}\n"
            f"        FROM src WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4) per_user\n"
            f") ranked WHERE user_rank <= {TOP_USERS}"
        )
    if table == "hist_1h":
        parts = [
            (
                f"SELECT date, feature, {_bucket(d, 3600)} AS bucket, '{metric}' AS metric,\n"
                f"       {IS_OK} AS ok, {bin_sql(metric)} AS bin, CAST(count(*) AS BIGINT) AS n\n"
                f"FROM src WHERE {metric} IS NOT NULL AND {metric} >= 0 GROUP BY 1, 2, 3, 4, 5, 6"
            )
            for metric in HIST_METRICS
        ]
        return "\nUNION ALL\n".join(parts)
    if table == "hist_dim_1h":
        # As agg_dim_1h: one scan counts every combination of the six values and the bin per
        # hour, each dimension's bins are rolled up from those (25% faster than six scans).
        dims = ", ".join(SPLIT_DIMENSIONS)
        parts = [
            f"SELECT date, feature, bucket, '{dim}' AS dimension,\n"
            f"       coalesce({dim}, '{NONE_VALUE}') AS value, bin, CAST(sum(n) AS BIGINT) AS n\n"
            f"FROM combos GROUP BY 1, 2, 3, 4, 5, 6"
            for dim in SPLIT_DIMENSIONS
        ]
        return (
            f"WITH combos AS (\n"
            f"  SELECT date, feature, {_bucket(d, 3600)} AS bucket, {dims},\n"
            f"         {bin_sql('latency_ms')} AS bin, CAST(count(*) AS BIGINT) AS n\n"
            f"  FROM src WHERE latency_ms IS NOT NULL AND latency_ms >= 0\n"
            f"  GROUP BY {', '.join(str(i) for i in range(1, 5 + len(SPLIT_DIMENSIONS)))})\n"
            + "\nUNION ALL\n".join(parts)
        )
    raise KeyError(f"no aggregate table named {table!r}")


HIST_METRICS = ("latency_ms", "cost_usd", "quality_score")


def bin_sql(metric: str) -> str:
    """SQL of the histogram bin of `metric` (a column of that name, not null, >= 0): the same
    text in every engine and in the embedded store's rollups."""
    if metric == "quality_score":
        return f"CAST(floor(least(greatest(quality_score, 0.0), 1.0) * {QUALITY_BINS}) AS INTEGER)"
    return (
        f"CASE WHEN {metric} > 0 THEN CAST(floor(ln({metric}) / {LOG_BIN_WIDTHS[metric]!r}) AS INTEGER) "
        f"ELSE {ZERO_BIN} END"
    )


def bin_bounds(metric: str, b: int) -> tuple[float, float]:
    """The values a histogram bin holds, [low, high)."""
    import math

    if metric == "quality_score":
        return b / QUALITY_BINS, (b + 1) / QUALITY_BINS
    if b == ZERO_BIN:
        return 0.0, 0.0
    width = LOG_BIN_WIDTHS[metric]
    return math.exp(b * width), math.exp((b + 1) * width)
