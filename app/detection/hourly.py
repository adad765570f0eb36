"""Hourly aggregates per feature, with value histograms, read from the store's rollups.

Detection never reads raw rows for its hourly series: the rollups kept at ingest
(app/storage/rollups.py; in lake mode, views over the aggregate tables) give, per feature and
hour, the counts and sums of every metric (`rollup_5m`, twelve five-minute rows to the hour)
and histograms (`hist_1h`) of quality score (0.01 bins), latency (log bins 1% wide, merged
here five by five into bins 5.1% wide) and cost (log bins 5.1% wide). The rank tests,
seasonal baselines and p95s are all computed from these.

Latency, cost and quality are measured on successful requests only (`hist_1h` rows with
`ok`, `rollup_5m`'s `ok_cost_*`): a failed call answers fast, costs nothing and has no score,
so a burst of failures would otherwise read as a faster, cheaper hour and make the same hour
of the next day look like a regression. Failures are the error rate's business.

Hours are read whole: the range starts at the hour that holds `since`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from app import stats
from app.storage import rollups
from app.storage.aggregates import LOG_BIN_WIDTH, LOG_BIN_WIDTHS, QUALITY_BINS
from app.storage.store import Store

# Latency and cost are counted in bins 1.01^5 = 5.1% wide: the rank tests and hourly p95s were
# tuned on bins of this width, and five times fewer bins than 1% keep the window scan's
# matrices small. Latency's 1% bins are merged five by five; cost's are already that wide.
MERGE_BINS = 5
DETECTION_BIN_WIDTH = MERGE_BINS * LOG_BIN_WIDTH
_MERGE = {name: round(DETECTION_BIN_WIDTH / width) for name, width in LOG_BIN_WIDTHS.items()}
SUMS = ("n", "errors", "q_n", "q_sum", "cost_n", "cost_sum", "fb_n", "neg_n", "lat_n")
# detection's metric -> the contract's histogram metric
HISTS = {"quality_score": "quality_score", "latency_p95_ms": "latency_ms", "cost_per_request_usd": "cost_usd"}
# The smallest value a log histogram tells apart; smaller values (and 0, the contract's
# ZERO_BIN) count in its bin.
_FLOOR = {"latency_ms": 0.01, "cost_usd": 1e-9}
_WHERE = "($feature IS NULL OR feature = $feature) AND bucket >= $start AND bucket < $until"
_SUMS_SQL = f"""
    SELECT feature, date_trunc('hour', bucket) AS hour, sum(requests) AS n, sum(errors) AS errors,
           sum(quality_n) AS q_n, sum(quality_sum) AS q_sum, sum(ok_cost_n) AS cost_n,
           sum(ok_cost_sum) AS cost_sum, sum(feedback_n) AS fb_n, sum(feedback_neg) AS neg_n
    FROM rollup_5m WHERE {_WHERE} GROUP BY 1, 2"""


def _merged_bin_sql() -> str:
    """Each metric's bin as detection counts it: log bins clamped at the smallest value told
    apart and merged to DETECTION_BIN_WIDTH (floor division, for the negative bins too)."""
    cases = " ".join(
        f"WHEN '{name}' THEN CAST(floor(greatest(bin, {int(np.floor(np.log(low) / LOG_BIN_WIDTHS[name]))}) "
        f"/ {_MERGE[name]}.0) AS INTEGER)"
        for name, low in _FLOOR.items()
    )
    return f"CASE metric {cases} ELSE bin END"


# The hour's index from the range's first hour is computed in SQL, and merged bins are summed
# there, so only the rows detection uses leave the database.
_HISTS_SQL = f"""
    SELECT feature, metric, CAST((epoch_us(bucket) - epoch_us($start)) // 3600000000 AS BIGINT) AS i,
           {_merged_bin_sql()} AS bin, sum(n) AS n
    FROM hist_1h WHERE ok AND {_WHERE} GROUP BY ALL"""


@dataclass
class Histogram:
    counts: np.ndarray  # [hours, bins]
    edges: np.ndarray  # [bins + 1], in the metric's unit


@dataclass
class HourlyData:
    """One feature's hourly aggregates over [start, start + H hours)."""

    feature: str
    start: datetime  # first hour
    sums: dict[str, np.ndarray]  # each [H]
    hists: dict[str, Histogram]

    @property
    def hours(self) -> int:
        return len(self.sums["n"])

    @property
    def strata(self) -> np.ndarray:
        """Hour of day of every hour: the seasonal strata."""
        return (self.start.hour + np.arange(self.hours)) % 24

    def index_of(self, t: datetime) -> int:
        return int((t - self.start) // timedelta(hours=1))

    def time_of(self, i: int) -> datetime:
        return self.start + timedelta(hours=int(i))


def frame_query(store: Store, sql: str, params: list | dict) -> pl.DataFrame:
    """A parameterised SELECT as a polars frame through Arrow (no Python row objects), on the
    store's connection; quiet (no progress bar on stderr)."""
    with store.connect() as con:
        con.execute("SET enable_progress_bar = false")
        return con.sql(sql, params=params).pl()


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def load_hourly(
    store: Store, since: datetime, until: datetime, feature: str | None = None
) -> dict[str, HourlyData]:
    """Hourly aggregates of every feature (or one) for the whole hours of [since, until)."""
    start = floor_hour(since)
    params = {"start": start, "until": until, "feature": feature}
    with store.connect() as con:
        con.execute("SET enable_progress_bar = false")
        rollups.ensure_deferred(con)
        sums_df = con.sql(_SUMS_SQL, params=params).pl()
        hists_df = con.sql(_HISTS_SQL, params=params).pl()
    hours = int(np.ceil((until - start) / timedelta(hours=1)))
    out: dict[str, HourlyData] = {}
    if sums_df.is_empty():
        return out
    sums_df = _hour_index(sums_df, start, hours)
    hists_df = hists_df.filter((pl.col("i") >= 0) & (pl.col("i") < hours))
    hist_parts = {str(name): part for (name,), part in hists_df.group_by("feature")}
    for (name,), totals in sums_df.group_by("feature"):
        part = hist_parts.get(str(name), hists_df.clear())
        sums = {}
        for col in SUMS[:-1]:
            arr = np.zeros(hours)
            arr[totals["i"].to_numpy()] = totals[col].fill_null(0).to_numpy()
            sums[col] = arr
        hists = {metric: _histogram(part, hours, metric) for metric in HISTS}
        sums["lat_n"] = hists["latency_p95_ms"].counts.sum(axis=1)
        out[str(name)] = HourlyData(str(name), start, sums, hists)
    return out


def _hour_index(df: pl.DataFrame, start: datetime, hours: int) -> pl.DataFrame:
    idx = ((pl.col("hour") - start).dt.total_seconds() // 3600).cast(pl.Int64)
    return df.with_columns(i=idx).filter((pl.col("i") >= 0) & (pl.col("i") < hours))


def _histogram(part: pl.DataFrame, hours: int, metric: str) -> Histogram:
    name = HISTS[metric]
    rows = part.filter(pl.col("metric") == name)
    if rows.is_empty():
        return Histogram(np.zeros((hours, 1)), np.array([0.0, 1.0]))
    bins = rows["bin"].to_numpy().astype(np.int64)
    lo, hi = int(bins.min()), int(bins.max())
    width = hi - lo + 1
    flat = rows["i"].to_numpy().astype(np.int64) * width + (bins - lo)
    counts = np.bincount(flat, weights=rows["n"].to_numpy().astype(float), minlength=hours * width)
    b = np.arange(lo, hi + 2, dtype=float)
    if name == "quality_score":
        edges = b / QUALITY_BINS
    else:
        edges = np.exp(b * DETECTION_BIN_WIDTH)
    return Histogram(counts.reshape(hours, width), edges)


def hourly_p95(h: Histogram) -> np.ndarray:
    """p95 of every hour (NaN where the hour is empty)."""
    total = h.counts.sum(axis=1)
    out = np.full(total.size, np.nan)
    for i in np.flatnonzero(total > 0):
        out[i] = stats.histogram_quantile(h.counts[i], h.edges, 0.95)
    return out
