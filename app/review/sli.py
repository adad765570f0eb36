"""Service-level indicators counted from the requests: per feature, per five minutes, how
many events each SLI saw and how many of them were bad.

Two grouped queries answer every objective of every feature. Requests, errors, feedback and
cost come from the five-minute rollups kept at ingest, which hold them exactly. Latency and
quality are counted against each feature's own threshold, which no rollup can know, so they
are read from the requests: one pass over the rows of the features that have such an
objective, the thresholds joined in as a small table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from app.review.slos import SloConfig
from app.storage.store import Store

STEP = timedelta(minutes=5)
_STEP_US = 5 * 60 * 1_000_000
_EPOCH = datetime(1970, 1, 1)

# Per SLI: the column pair (events, bad events) of the counting query.
COUNTS = {
    "success_rate": ("requests", "errors"),
    "latency": ("lat_n", "lat_bad"),
    "quality": ("q_n", "q_bad"),
    "feedback": ("fb_n", "fb_bad"),
}


@dataclass(frozen=True)
class Series:
    """Five-minute counts of one feature over [since, until): bucket i starts at
    since + i * STEP. Every array has one value per bucket (zero where no traffic)."""

    feature: str
    since: datetime
    until: datetime
    counts: dict[str, np.ndarray]  # requests, errors, lat_n, lat_bad, ..., cost

    def events(self, sli: str) -> tuple[np.ndarray, np.ndarray]:
        total, bad = COUNTS[sli]
        return self.counts[total], self.counts[bad]

    def index(self, t: datetime) -> int:
        """Number of whole buckets from since to t (clipped to the range)."""
        return int(min(max((t - self.since) // STEP, 0), len(self.counts["requests"])))

    def time(self, i: int) -> datetime:
        return self.since + i * STEP


def align(t: datetime) -> datetime:
    """t rounded down to its five-minute bucket."""
    return _EPOCH + ((t - _EPOCH) // STEP) * STEP


def count_events(
    store: Store, config: SloConfig, since: datetime, until: datetime, features: list[str] | None = None
) -> dict[str, Series]:
    """Per feature with objectives (or each of `features`): its five-minute series over
    [align(since), align(until) + one bucket when until is not aligned)."""
    names = sorted(features if features is not None else config.features)
    if not names:
        return {}
    lo = align(since)
    hi = align(until) if align(until) == until else align(until) + STEP
    n = int((hi - lo) // STEP)
    first = int((lo - _EPOCH) // STEP)
    out = {
        f: Series(f, lo, hi, {k: np.zeros(n, dtype=float if k == "cost" else np.int64) for k in KEYS})
        for f in names
    }
    counted = store.rows(
        f"""SELECT feature, CAST(floor(epoch_us(bucket) / {_STEP_US}) AS BIGINT) AS b,
                   sum(requests), sum(errors), sum(feedback_n), sum(feedback_neg),
                   coalesce(sum(cost_sum), 0)
            FROM rollup_5m
            WHERE feature IN (SELECT unnest(?::VARCHAR[])) AND bucket >= ? AND bucket < ?
            GROUP BY ALL""",
        [names, lo, hi],
    )
    _fill(out, first, counted, ("requests", "errors", "fb_n", "fb_bad", "cost"))
    thresholds = [(f, _threshold(config, f, "latency"), _threshold(config, f, "quality")) for f in names]
    judged = [t for t in thresholds if t[1] is not None or t[2] is not None]
    if judged:
        names_t, lat, qual = (list(c) for c in zip(*judged, strict=True))
        scored = store.rows(
            f"""WITH t AS (SELECT unnest(?::VARCHAR[]) AS feature, unnest(?::DOUBLE[]) AS lat_t,
                                  unnest(?::DOUBLE[]) AS q_t)
                SELECT r.feature, CAST(floor(epoch_us(r.timestamp) / {_STEP_US}) AS BIGINT) AS b,
                       count(r.latency_ms), count(*) FILTER (WHERE r.latency_ms > t.lat_t),
                       count(r.quality_score), count(*) FILTER (WHERE r.quality_score < t.q_t)
                FROM requests r JOIN t ON r.feature = t.feature
                WHERE r.timestamp >= ? AND r.timestamp < ?
                GROUP BY ALL""",
            [names_t, lat, qual, lo, hi],
        )
        _fill(out, first, scored, ("lat_n", "lat_bad", "q_n", "q_bad"))
    return out


KEYS = ("requests", "errors", "lat_n", "lat_bad", "q_n", "q_bad", "fb_n", "fb_bad", "cost")


def _fill(out: dict[str, Series], first: int, rows: list, keys: tuple[str, ...]) -> None:
    """Put each (feature, bucket number, *counts) row into its feature's arrays (column-wise:
    a month of five-minute rows is tens of thousands)."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    feature = np.asarray(columns[0], dtype=object)
    index = np.asarray(columns[1], dtype=np.int64) - first
    values = {k: np.asarray(c, dtype=float) for k, c in zip(keys, columns[2:], strict=True)}
    for name, series in out.items():
        mine = feature == name
        at = index[mine]
        for k in keys:
            series.counts[k][at] = values[k][mine]


def _threshold(config: SloConfig, feature: str, sli: str) -> float | None:
    slos = config.for_feature(feature)
    if slos is None:
        return None
    return next((o.threshold for o in slos.objectives if o.sli == sli), None)
