"""Hourly aggregates per feature, with value histograms, from one DuckDB query.

Detection never reads raw rows: one grouped scan gives, per feature and hour, the counts and
sums of every metric plus histograms of quality score (0.01 bins), latency and cost (5% wide
log bins). The rank tests, seasonal baselines and p95s are all computed from these.

Latency, cost and quality are measured on successful requests only: a failed call answers
fast, costs nothing and has no score, so a burst of failures would otherwise read as a faster,
cheaper hour and make the same hour of the next day look like a regression. Failures are the
error rate's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from app import stats
from app.storage.store import Store

LOG_BINS_PER_UNIT = 20  # ln-scale bins: exp(1/20) = 5.1% wide
SUMS = ("n", "errors", "q_n", "q_sum", "cost_n", "cost_sum", "fb_n", "neg_n", "lat_n")
HISTS = {"quality_score": "quality_score", "latency_p95_ms": "latency_ms", "cost_per_request_usd": "cost_usd"}
_BIN = {
    "quality_score": "CAST(round(quality_score * 100) AS INTEGER)",
    "latency_p95_ms": f"CAST(floor(ln(greatest(latency_ms, 0.01)) * {LOG_BINS_PER_UNIT}) AS INTEGER)",
    "cost_per_request_usd": f"CAST(floor(ln(greatest(cost_usd, 1e-9)) * {LOG_BINS_PER_UNIT}) AS INTEGER)",
}
_KIND = {metric: i + 1 for i, metric in enumerate(HISTS)}
_WHERE = "($feature IS NULL OR feature = $feature) AND timestamp >= $since AND timestamp < $until"
# One plain aggregate for the sums and one per histogram, glued with UNION ALL (faster in
# DuckDB than one GROUPING SETS scan).
_SQL = "\nUNION ALL\n".join(
    [
        f"""SELECT feature, date_trunc('hour', timestamp) AS hour, 0 AS k, 0 AS b, count(*) AS n,
           count(error) AS errors, count(quality_score) AS q_n, sum(quality_score) AS q_sum,
           count(cost_usd) FILTER (WHERE error IS NULL) AS cost_n,
           sum(cost_usd) FILTER (WHERE error IS NULL) AS cost_sum, count(feedback) AS fb_n,
           count_if(feedback = -1) AS neg_n, count(latency_ms) FILTER (WHERE error IS NULL) AS lat_n
        FROM requests WHERE {_WHERE} GROUP BY 1, 2""",
        *[
            f"""SELECT feature, date_trunc('hour', timestamp), {_KIND[m]}, {_BIN[m]}, count(*),
              0, 0, 0, 0, 0, 0, 0, 0
          FROM requests WHERE {_WHERE} AND {col} IS NOT NULL AND error IS NULL GROUP BY 1, 2, 4"""
            for m, col in HISTS.items()
        ],
    ]
)


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
    """Hourly aggregates of every feature (or one) for [since, until)."""
    df = frame_query(store, _SQL, {"since": since, "until": until, "feature": feature})
    start = floor_hour(since)
    hours = int(np.ceil((until - start) / timedelta(hours=1)))
    out: dict[str, HourlyData] = {}
    if df.is_empty():
        return out
    for (name,), part in df.group_by("feature"):
        idx = ((part["hour"] - start).dt.total_seconds() // 3600).cast(pl.Int64)
        part = part.with_columns(i=idx).filter((pl.col("i") >= 0) & (pl.col("i") < hours))
        totals = part.filter(pl.col("k") == 0)
        sums = {}
        for col in SUMS:
            arr = np.zeros(hours)
            arr[totals["i"].to_numpy()] = totals[col].fill_null(0).to_numpy()
            sums[col] = arr
        hists = {}
        for metric in HISTS:
            hists[metric] = _histogram(part, hours, metric)
        out[str(name)] = HourlyData(str(name), start, sums, hists)
    return out


def _histogram(part: pl.DataFrame, hours: int, metric: str) -> Histogram:
    col = "b"
    rows = part.filter(pl.col("k") == _KIND[metric])
    if rows.is_empty():
        return Histogram(np.zeros((hours, 1)), np.array([0.0, 1.0]))
    bins = rows[col].to_numpy()
    lo, hi = int(bins.min()), int(bins.max())
    counts = np.zeros((hours, hi - lo + 1))
    np.add.at(counts, (rows["i"].to_numpy(), bins - lo), rows["n"].to_numpy())
    b = np.arange(lo, hi + 2, dtype=float)
    if metric == "quality_score":
        edges = (b - 0.5) / 100.0
    else:
        edges = np.exp(b / LOG_BINS_PER_UNIT)
    return Histogram(counts, edges)


def hourly_p95(h: Histogram) -> np.ndarray:
    """p95 of every hour (NaN where the hour is empty)."""
    total = h.counts.sum(axis=1)
    out = np.full(total.size, np.nan)
    for i in np.flatnonzero(total > 0):
        out[i] = stats.histogram_quantile(h.counts[i], h.edges, 0.95)
    return out
