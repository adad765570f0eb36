"""Bucketed quality metrics per feature, splits, period-over-period overview, the registry.

Metric definitions (docs/metrics.md):
- error_rate: share of requests whose `error` is set;
- quality_score: mean `quality_score` of the requests that have one, with a 95% normal-approx
  confidence band (mean +- 1.96 * sd / sqrt(n));
- latency_p95_ms: 95th percentile of `latency_ms` (linear interpolation);
- cost_per_request_usd: mean `cost_usd`;
- negative_feedback_rate: share of requests *with feedback* whose feedback is -1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from app import stats
from app.storage import aggregates, rollups, spans
from app.storage.schema import SPLIT_DIMENSIONS
from app.storage.store import Store

METRICS: dict[str, str] = {
    "requests": "count(*)",
    "error_rate": "avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END)",
    "quality_score": "avg(quality_score)",
    "quality_sd": "stddev_samp(quality_score)",
    "quality_n": "count(quality_score)",
    "latency_p95_ms": "quantile_cont(latency_ms, 0.95)",
    "cost_per_request_usd": "avg(cost_usd)",
    "negative_feedback_rate": "avg(CASE WHEN feedback = -1 THEN 1.0 WHEN feedback IS NOT NULL THEN 0.0 END)",
    "feedback_n": "count(feedback)",
}
_SELECT = ",\n".join(f"{sql} AS {name}" for name, sql in METRICS.items())

BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("1 minute", timedelta(minutes=1)),
    ("5 minutes", timedelta(minutes=5)),
    ("15 minutes", timedelta(minutes=15)),
    ("30 minutes", timedelta(minutes=30)),
    ("1 hour", timedelta(hours=1)),
    ("3 hours", timedelta(hours=3)),
    ("6 hours", timedelta(hours=6)),
    ("12 hours", timedelta(hours=12)),
    ("1 day", timedelta(days=1)),
)
BUCKET_NAMES = tuple(b[0] for b in BUCKETS)
BUCKET_WIDTH = dict(BUCKETS)
MAX_SERIES = 8


def choose_bucket(since: datetime, until: datetime, target_points: int = 200) -> str:
    """The smallest bucket that keeps the chart at about target_points points or fewer."""
    span = until - since
    for name, width in BUCKETS:
        if span / width <= target_points:
            return name
    return BUCKETS[-1][0]


def _split_expr(split: str | None, params: list) -> str:
    """SQL for a split: a whitelisted canonical dimension, or an extra column via a parameter."""
    if split is None:
        return "'all'"
    if split in SPLIT_DIMENSIONS:
        return f"coalesce({split}, '(none)')"
    # A JSON Pointer names any key as it is (quotes, dots, spaces); only ~ and / are escaped.
    params.append("/" + split.replace("~", "~0").replace("/", "~1"))
    return "coalesce(json_extract_string(extra, ?), '(none)')"


def timeline(
    store: Store,
    feature: str,
    since: datetime,
    until: datetime,
    bucket: str | None = None,
    split: str | None = None,
) -> pl.DataFrame:
    """One row per (bucket, series): every metric, with the quality confidence band.

    Without a split and with buckets of five minutes or more, the numbers come from the
    rollups kept at ingest (the range is widened to five-minute boundaries).

    With a split, the MAX_SERIES largest values keep their name and the rest become 'other'."""
    bucket = bucket or choose_bucket(since, until)
    if bucket not in BUCKET_NAMES:
        raise ValueError(f"bucket {bucket!r} is not one of {', '.join(BUCKET_NAMES)}")
    if split is None and BUCKET_WIDTH[bucket] >= timedelta(minutes=rollups.ROLLUP_MINUTES):
        hourly = BUCKET_WIDTH[bucket] >= timedelta(hours=1)
        step = timedelta(hours=1) if hourly else timedelta(minutes=rollups.ROLLUP_MINUTES)
        lo = datetime.min + ((since - datetime.min) // step) * step
        hi = datetime.min + -((datetime.min - until) // step) * step
        df = store.query(rollups.timeline_sql(bucket, hourly), [feature, lo, hi] * 2)
    elif split is None:
        sql = f"""
            SELECT time_bucket(INTERVAL '{bucket}', timestamp) AS bucket, 'all' AS series,
                   {_SELECT}
            FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?
            GROUP BY 1 ORDER BY 1"""
        df = store.query(sql, [feature, since, until])
    elif (split in ROLLUP_SPLITS and BUCKET_WIDTH[bucket] >= timedelta(minutes=rollups.ROLLUP_MINUTES)) or (
        split in aggregates.SPLIT_DIMENSIONS and BUCKET_WIDTH[bucket] >= HOUR
    ):
        df = _split_from_sums(store, feature, since, until, bucket, split)
    else:
        params: list = []
        series = _split_expr(split, params)
        window = [feature, since, until]
        with store.session():
            top = [
                r[0]
                for r in store.rows(
                    f"""SELECT {series} FROM requests
                    WHERE feature = ? AND timestamp >= ? AND timestamp < ?
                    GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {MAX_SERIES}""",
                    params + window,
                )
            ]
            sql = f"""
                SELECT time_bucket(INTERVAL '{bucket}', timestamp) AS bucket,
                       CASE WHEN list_contains(?, {series}) THEN {series} ELSE 'other' END
                           AS series,
                       {_SELECT}
                FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?
                GROUP BY ALL ORDER BY bucket, series"""
            df = store.query(sql, [top] + params + params + window)
    if df.is_empty():
        return df
    half = stats.Z95 * pl.col("quality_sd") / pl.col("quality_n").cast(pl.Float64).sqrt()
    return df.with_columns(
        quality_lo=(pl.col("quality_score") - half).clip(0, 1),
        quality_hi=(pl.col("quality_score") + half).clip(0, 1),
    )


# Splits read from sums where a table holds them: rollup_5m carries the model, the model that
# answered and the prompt version by five minutes (the embedded store); agg_dim_1h carries six
# dimensions by the hour (both modes). The whole buckets of the range come from the table, its
# partial buckets at the ends from the requests, so the numbers are those of the requests. The
# p95 per series of buckets from an hour comes from hist_dim_1h (within 1%); under an hour,
# from the range's latencies.
ROLLUP_SPLITS = ("model", "response_model", "prompt_version")
HOUR = timedelta(hours=1)


def _split_from_sums(
    store: Store, feature: str, since: datetime, until: datetime, bucket: str, split: str
) -> pl.DataFrame:
    width = BUCKET_WIDTH[bucket]
    if split in ROLLUP_SPLITS and (store.lake is None or width < HOUR):
        step = HOUR if width >= HOUR else timedelta(minutes=rollups.ROLLUP_MINUTES)
        table = f"""SELECT bucket AS ts, coalesce({split}, '(none)') AS series, {_ROLLUP_COLUMNS}
                    FROM rollup_5m WHERE feature = ? AND bucket >= ? AND bucket < ?"""
        table_params: list = [feature]
    else:
        step = HOUR
        table = f"""SELECT bucket AS ts, value AS series, {_ROLLUP_COLUMNS}
                    FROM agg_dim_1h WHERE feature = ? AND dimension = ? AND bucket >= ? AND bucket < ?"""
        table_params = [feature, split]
    hourly = step == HOUR
    if hourly:  # agg_dim_1h and hist_dim_1h are built by their first reader after a load
        with store.connect() as con:
            rollups.ensure_deferred(con)
    cut = spans.cut(since, until, step)
    parts, params = [], []
    if cut.inner is not None:
        parts.append(table)
        params += table_params + list(cut.inner)
    if cut.edges:
        where, edge_params = spans.edges_sql([cut])
        step_sql = "1 hour" if step == HOUR else f"{rollups.ROLLUP_MINUTES} minutes"
        parts.append(
            f"""SELECT time_bucket(INTERVAL '{step_sql}', timestamp) AS ts,
                       coalesce({split}, '(none)') AS series, {_RAW_SUMS}
                FROM requests WHERE feature = ? AND {where} GROUP BY 1, 2"""
        )
        params += [feature] + edge_params
    if hourly:  # from hist_dim_1h, below
        p95_sql, p95_params = (
            "SELECT NULL::TIMESTAMP AS bucket, NULL::VARCHAR AS series, NULL::DOUBLE AS latency_p95_ms "
            "WHERE false",
            [],
        )
    else:  # buckets under an hour: the range's latencies
        p95_sql = f"""
            SELECT time_bucket(INTERVAL '{bucket}', timestamp) AS bucket,
                   CASE WHEN coalesce({split}, '(none)') IN (SELECT series FROM top)
                        THEN coalesce({split}, '(none)') ELSE 'other' END AS series,
                   quantile_cont(latency_ms, 0.95) AS latency_p95_ms
            FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ? GROUP BY 1, 2"""
        p95_params = [feature, since, until]
    sql = f"""
        WITH parts AS ({" UNION ALL ".join(parts)}),
        top AS (SELECT series FROM parts GROUP BY 1 ORDER BY sum(requests) DESC, 1 LIMIT {MAX_SERIES}),
        agg AS (
            SELECT time_bucket(INTERVAL '{bucket}', ts) AS bucket,
                   CASE WHEN series IN (SELECT series FROM top) THEN series ELSE 'other' END AS series,
                   CAST(sum(requests) AS BIGINT) AS requests, sum(errors) / sum(requests) AS error_rate,
                   sum(quality_sum) / nullif(sum(quality_n), 0) AS quality_score,
                   CASE WHEN sum(quality_n) > 1 THEN sqrt(greatest(sum(quality_sumsq)
                        - sum(quality_sum) ^ 2 / sum(quality_n), 0) / (sum(quality_n) - 1))
                   END AS quality_sd,
                   CAST(sum(quality_n) AS BIGINT) AS quality_n,
                   sum(cost_sum) / nullif(sum(cost_n), 0) AS cost_per_request_usd,
                   sum(feedback_neg) / nullif(sum(feedback_n), 0) AS negative_feedback_rate,
                   CAST(sum(feedback_n) AS BIGINT) AS feedback_n
            FROM parts GROUP BY 1, 2 HAVING sum(requests) > 0),
        p95 AS ({p95_sql})
        SELECT bucket, series, requests, error_rate, quality_score, quality_sd, quality_n,
               latency_p95_ms, cost_per_request_usd, negative_feedback_rate, feedback_n
        FROM agg LEFT JOIN p95 USING (bucket, series) ORDER BY bucket, series"""
    with store.session():
        df = store.query(sql, params + p95_params)
        if not hourly or df.is_empty():
            return df
        return (
            df.drop("latency_p95_ms")
            .join(
                _split_p95(store, feature, bucket, split, cut, set(df["series"].to_list()) - {"other"}),
                on=["bucket", "series"],
                how="left",
            )
            .select(df.columns)
        )


def _split_p95(
    store: Store, feature: str, bucket: str, split: str, cut: spans.Spans, top: set[str]
) -> pl.DataFrame:
    """The p95 latency of every (bucket, series) of an hourly split: the whole hours' bins from
    `hist_dim_1h`, the partial hours' latencies put in the same bins, the quantile read as the
    unsplit timeline reads it (rollups.hist_quantile_sql, within 1%)."""
    parts, params = [], []
    if cut.inner is not None:
        parts.append(
            f"""SELECT time_bucket(INTERVAL '{bucket}', bucket) AS b, value AS series, bin, n
                FROM hist_dim_1h WHERE feature = ? AND dimension = ? AND bucket >= ? AND bucket < ?"""
        )
        params += [feature, split, *cut.inner]
    if cut.edges:
        where, edge_params = spans.edges_sql([cut])
        parts.append(
            f"""SELECT time_bucket(INTERVAL '{bucket}', timestamp) AS b,
                       coalesce({split}, '(none)') AS series, {_RAW_BIN} AS bin, 1 AS n
                FROM requests WHERE feature = ? AND {where} AND latency_ms >= 0"""
        )
        params += [feature, *edge_params]
    return store.query(
        f"""WITH binned AS ({" UNION ALL ".join(parts)}),
            h AS (
                SELECT b, CASE WHEN list_contains(?, series) THEN series ELSE 'other' END AS series,
                       bin, sum(n) AS n
                FROM binned GROUP BY 1, 2, 3),
            {rollups.hist_quantile_sql(["b", "series"])}
            SELECT b AS bucket, series, latency_p95_ms FROM p95""",
        [*params, sorted(top)],
    )


_ROLLUP_COLUMNS = """requests, errors, quality_n, quality_sum, quality_sumsq, cost_n, cost_sum,
    feedback_n, feedback_neg"""


OVERVIEW_METRICS = (
    "requests",
    "error_rate",
    "quality_score",
    "latency_p95_ms",
    "cost_per_request_usd",
    "negative_feedback_rate",
)


def overview(store: Store, since: datetime, until: datetime) -> pl.DataFrame:
    """Per feature: each metric for [since, until) and for the previous period of equal length,
    the relative change, and the feature's last change event before `until`.

    Read from the rollups: the whole hours of each period from `rollup_5m` (counts and sums)
    and `hist_1h` (p95, every request's latency), the partial hours at the periods' ends from the requests, so
    the figures are exact but for the p95, which is within 1% (docs/aggregates.md)."""
    with store.session():  # one connection (in lake mode each one sets up the lake's views)
        return _overview(store, since, until)


def _overview(store: Store, since: datetime, until: datetime) -> pl.DataFrame:
    prev_since = since - (until - since)
    df = _period_metrics(store, [("prev", prev_since, since), ("cur", since, until)])
    if df.is_empty():
        return df
    kept = (*OVERVIEW_METRICS, "quality_sd", "quality_n", "feedback_n")
    cur = df.filter(pl.col("period") == "cur").select("feature", *kept)
    prev = df.filter(pl.col("period") == "prev").select(
        "feature", *[pl.col(m).alias(f"{m}_prev") for m in kept]
    )
    out = cur.join(prev, on="feature", how="left")
    out = out.with_columns(
        *[
            ((pl.col(m) - pl.col(f"{m}_prev")) / pl.col(f"{m}_prev").abs()).alias(f"{m}_change")
            for m in OVERVIEW_METRICS
        ]
    )
    rows = out.to_dicts()
    out = out.with_columns(
        *[
            pl.Series(f"{m}_worse", [_worse(m, r) for r in rows], dtype=pl.Boolean)
            for m in OVERVIEW_METRICS
            if m != "requests"
        ]
    )
    last = store.query(
        """SELECT feature, arg_max(kind || ' ' || coalesce(key, '') || ': ' ||
                  coalesce(from_value, '?') || ' -> ' || coalesce(to_value, '?'), timestamp)
                  AS last_change, max(timestamp) AS last_change_at
           FROM changes WHERE timestamp < ? GROUP BY feature""",
        [until],
    )
    if not last.is_empty():
        out = out.join(last, on="feature", how="left")
    else:
        out = out.with_columns(
            last_change=pl.lit(None, pl.Utf8), last_change_at=pl.lit(None, pl.Datetime("us"))
        )
    return out.sort("feature")


_PERIOD_SUMS = """sum(requests) AS requests, sum(errors) AS errors, sum(quality_n) AS quality_n,
    sum(quality_sum) AS quality_sum, sum(quality_sumsq) AS quality_sumsq, sum(cost_n) AS cost_n,
    sum(cost_sum) AS cost_sum, sum(feedback_n) AS feedback_n, sum(feedback_neg) AS feedback_neg"""
# the same sums over requests, under the names of rollup_5m's columns
_RAW_SUMS = """count(*) AS requests, count(error) AS errors, count(quality_score) AS quality_n,
    sum(quality_score) AS quality_sum, sum(quality_score * quality_score) AS quality_sumsq,
    count(cost_usd) AS cost_n, sum(cost_usd) AS cost_sum, count(feedback) AS feedback_n,
    count(*) FILTER (WHERE feedback = -1) AS feedback_neg"""
# the latency bin of hist_1h (rollups.py, the aggregate contract), for a partial hour's requests
_RAW_BIN = f"CASE WHEN latency_ms IS NOT NULL THEN {aggregates.bin_sql('latency_ms')} END"


def _period_case(periods: list[tuple[str, datetime, datetime]], column: str, params: list) -> str:
    parts = []
    for name, lo, hi in periods:
        parts.append(f"WHEN {column} >= ? AND {column} < ? THEN '{name}'")
        params += [lo, hi]
    return "CASE " + " ".join(parts) + " END"


def _period_metrics(store: Store, periods: list[tuple[str, datetime, datetime]]) -> pl.DataFrame:
    """Every feature's metrics in each named period, from the rollups' whole hours and the
    requests of the partial hours at the periods' ends (one row per feature and period)."""
    hour = timedelta(hours=1)
    cuts = [(name, spans.cut(lo, hi, hour)) for name, lo, hi in periods]
    inner = [(name, *c.inner) for name, c in cuts if c.inner is not None]
    edge = [(name, lo, hi) for name, c in cuts for lo, hi in c.edges]
    sums: list[tuple] = []
    bins: list[tuple] = []
    with store.session():
        if inner:
            p: list = []
            case = _period_case(inner, "bucket", p)
            sums += store.rows(
                f"""SELECT feature, period, {_PERIOD_SUMS} FROM (
                        SELECT *, {case} AS period FROM rollup_5m
                        WHERE bucket >= ? AND bucket < ?) WHERE period IS NOT NULL
                    GROUP BY ALL""",
                p + [min(i[1] for i in inner), max(i[2] for i in inner)],
            )
            p = []
            case = _period_case(inner, "bucket", p)
            bins += store.rows(
                f"""SELECT feature, period, bin, sum(n) FROM (
                        SELECT *, {case} AS period FROM hist_1h
                        WHERE metric = 'latency_ms' AND bucket >= ? AND bucket < ?) WHERE period IS NOT NULL
                    GROUP BY ALL""",
                p + [min(i[1] for i in inner), max(i[2] for i in inner)],
            )
        if edge:
            p = []
            case = _period_case(edge, "timestamp", p)
            where = " OR ".join("(timestamp >= ? AND timestamp < ?)" for _ in edge)
            window = [x for _, lo, hi in edge for x in (lo, hi)]
            # one pass over the partial hours: the sums and the latency bins together
            for feature, period, b, lat_n, *values in store.rows(
                f"""SELECT feature, {case} AS period, {_RAW_BIN} AS bin, count(latency_ms),
                           {_RAW_SUMS} FROM requests WHERE {where} GROUP BY ALL""",
                p + window,
            ):
                sums.append((feature, period, *values))
                if b is not None:
                    bins.append((feature, period, b, lat_n))
    names = ("requests", "errors", "quality_n", "quality_sum", "quality_sumsq")
    names += ("cost_n", "cost_sum", "feedback_n", "feedback_neg")
    acc: dict[tuple[str, str], list[float]] = {}
    for feature, period, *values in sums:
        slot = acc.setdefault((feature, period), [0] * len(names))
        for i, v in enumerate(values):
            slot[i] += v or 0
    hists: dict[tuple[str, str], dict[int, int]] = {}
    for feature, period, b, n in bins:
        h = hists.setdefault((feature, period), {})
        h[int(b)] = h.get(int(b), 0) + int(n)
    rows = []
    for (feature, period), values in sorted(acc.items()):
        v = dict(zip(names, values, strict=True))
        n, q_n, q_sum = int(v["requests"]), int(v["quality_n"]), float(v["quality_sum"])
        if n == 0:
            continue
        q_var = (float(v["quality_sumsq"]) - q_sum * q_sum / q_n) / (q_n - 1) if q_n > 1 else None
        rows.append(
            {
                "feature": feature,
                "period": period,
                "requests": n,
                "error_rate": v["errors"] / n,
                "quality_score": q_sum / q_n if q_n else None,
                "quality_sd": max(q_var, 0.0) ** 0.5 if q_var is not None else None,
                "quality_n": q_n,
                "latency_p95_ms": hist_quantile(hists.get((feature, period), {}), 0.95),
                "cost_per_request_usd": v["cost_sum"] / v["cost_n"] if v["cost_n"] else None,
                "negative_feedback_rate": v["feedback_neg"] / v["feedback_n"] if v["feedback_n"] else None,
                "feedback_n": int(v["feedback_n"]),
            }
        )
    schema = {
        "feature": pl.Utf8,
        "period": pl.Utf8,
        "requests": pl.Int64,
        "error_rate": pl.Float64,
        "quality_score": pl.Float64,
        "quality_sd": pl.Float64,
        "quality_n": pl.Int64,
        "latency_p95_ms": pl.Float64,
        "cost_per_request_usd": pl.Float64,
        "negative_feedback_rate": pl.Float64,
        "feedback_n": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def hist_quantile(hist: dict[int, int], level: float) -> float | None:
    """A quantile of the values counted in hist_1h's latency bins, as the hourly timeline
    reads it (rollups.timeline_sql): `quantile_cont`'s rank level x (n - 1) between the two
    order statistics around it, each taken as spread evenly within its bin."""
    total = sum(hist.values())
    if total == 0:
        return None
    r = level * (total - 1)
    k0 = int(r // 1)
    k1 = min(k0 + 1, total - 1)
    values = {}
    below = 0
    for b in sorted(hist):
        n = hist[b]
        for k in (k0, k1):
            if below <= k < below + n:
                values[k] = rollups.BIN_BASE ** (b + (k - below + 0.5) / n)
        below += n
    return values[k0] + (r - k0) * (values[k1] - values[k0])


# A change "for the worse" on the overview is one in the bad direction that is both large
# (OVERVIEW_MIN_RELATIVE) and unlikely to be noise: |z| > OVERVIEW_Z for the rates (two
# proportions) and the quality mean (two means). Percentiles and costs have no variance
# here, so they need the larger OVERVIEW_MIN_RELATIVE_UNTESTED. Detect does the real tests.
OVERVIEW_Z = 3.0
OVERVIEW_MIN_RELATIVE = 0.05
OVERVIEW_MIN_RELATIVE_UNTESTED = 0.10


def _worse(metric: str, row: dict) -> bool:
    """Whether one feature's metric changed for the worse against the previous period."""
    now, prev, change = row[metric], row[f"{metric}_prev"], row[f"{metric}_change"]
    if now is None or prev is None or change is None:
        return False
    if metric in ("error_rate", "negative_feedback_rate"):
        n1, n0 = (
            ("requests", "requests_prev") if metric == "error_rate" else ("feedback_n", "feedback_n_prev")
        )
        if not row[n1] or not row[n0]:
            return False
        z = stats.two_proportions_z(now * row[n1], row[n1], prev * row[n0], row[n0])
        return change > OVERVIEW_MIN_RELATIVE and z > OVERVIEW_Z
    if metric == "quality_score":
        if row["quality_sd"] is None or row["quality_sd_prev"] is None:
            return False
        z = stats.welch_z(
            prev,
            row["quality_sd_prev"],
            row["quality_n_prev"] or 0,
            now,
            row["quality_sd"],
            row["quality_n"] or 0,
        )
        return change < -OVERVIEW_MIN_RELATIVE / 5 and z > OVERVIEW_Z
    return change > OVERVIEW_MIN_RELATIVE_UNTESTED


# Registry ------------------------------------------------------------------------------

_DATED = re.compile(r"(\d{4}-\d{2}-\d{2}|\d{8}|-\d{4}$|@\d|:\d{3,}|-v\d+(\.\d+)*$)")


def is_floating_alias(model: str) -> bool:
    """True for model names that float (`gpt-4o`, `claude-sonnet-latest`), false for dated
    or versioned ones (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`, `gpt-3.5-turbo-0613`)."""
    if "latest" in model.lower():
        return True
    return _DATED.search(model) is None


@dataclass(frozen=True)
class RegistryEntry:
    feature: str
    model: str | None
    response_model: str | None
    prompt_version: str | None
    model_changed_at: datetime | None
    prompt_changed_at: datetime | None
    quality_now: float | None  # last 24 h of data
    quality_baseline: float | None  # the 7 days before that
    quality_n: int
    warnings: tuple[str, ...]


def registry(store: Store) -> list[RegistryEntry]:
    """Per feature: what it runs now, when that last changed, and quality against baseline."""
    rows = store.rows(
        """WITH latest AS (SELECT feature, max(timestamp) AS t FROM requests GROUP BY 1),
           recent AS (
             SELECT r.* FROM requests r JOIN latest l USING (feature)
             WHERE r.timestamp > l.t - INTERVAL 1 HOUR)
           SELECT feature, mode(model), mode(response_model), mode(prompt_version)
           FROM recent GROUP BY 1 ORDER BY 1"""
    )
    quality = {
        r[0]: r[1:]
        for r in store.rows(
            """WITH latest AS (SELECT feature, max(timestamp) AS t FROM requests GROUP BY 1)
           SELECT r.feature,
                  avg(quality_score) FILTER (WHERE r.timestamp > l.t - INTERVAL 1 DAY),
                  avg(quality_score) FILTER (WHERE r.timestamp <= l.t - INTERVAL 1 DAY
                                             AND r.timestamp > l.t - INTERVAL 8 DAY),
                  count(quality_score) FILTER (WHERE r.timestamp > l.t - INTERVAL 1 DAY)
           FROM requests r JOIN latest l USING (feature) GROUP BY 1"""
        )
    }
    changed = {
        (r[0], r[1]): r[2]
        for r in store.rows(
            """SELECT feature, kind, max(timestamp) FROM changes
           WHERE kind IN ('model', 'prompt') GROUP BY 1, 2"""
        )
    }
    entries = []
    for feature, model, response_model, prompt in rows:
        warnings = []
        if model and is_floating_alias(model):
            warnings.append(f"model {model} is a floating alias: pin a dated version")
        if model and response_model and model != response_model:
            warnings.append(f"provider answers with {response_model}, not {model}")
        q_now, q_base, q_n = quality.get(feature, (None, None, 0))
        entries.append(
            RegistryEntry(
                feature=feature,
                model=model,
                response_model=response_model,
                prompt_version=prompt,
                model_changed_at=changed.get((feature, "model")),
                prompt_changed_at=changed.get((feature, "prompt")),
                quality_now=q_now,
                quality_baseline=q_base,
                quality_n=int(q_n or 0),
                warnings=tuple(warnings),
            )
        )
    return entries
