"""Attainment, error budget, burn rates and the multiwindow alert rule, on requests whose
right answers are worked out by hand in each test."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from app.review.budget import find_alerts, slo_status
from app.review.sli import STEP, Series, count_events
from app.review.slos import DEFAULT_ALERTS, parse_slos

from .stores import T0, load, per_bucket

DAY = timedelta(days=1)


def config(objective: float = 0.99, window_days: float = 1, min_requests: int = 10, **extra):
    spec = {"sli": "success_rate", "objective": objective, **extra}
    return parse_slos(
        {"min_requests": min_requests, "features": {"f": {"window_days": window_days, "objectives": [spec]}}}
    )


def status(store, cfg, until=T0 + DAY, alert_since=T0):
    series = count_events(store, cfg, until - 4 * DAY, until)["f"]
    slos = cfg.for_feature("f")
    return slo_status(series, slos, slos.objectives[0], until, cfg.alerts, alert_since, cfg.min_requests)


def test_last_hour_of_errors_gives_the_hand_computed_budget_and_burn_rates(data_dir: Path):
    # 10 requests per five minutes for a day (2,880); 3 of 10 fail in each of the last 12.
    store = load(data_dir, per_bucket(T0, 288, 10, bad={b: 3 for b in range(276, 288)}))
    s = status(store, config())
    assert (s.events, s.bad) == (2880, 36)
    assert s.attainment == pytest.approx(1 - 36 / 2880)  # 0.9875
    assert s.met is False
    assert s.budget_total == pytest.approx(28.8)  # 1% of 2,880 requests may fail
    assert s.budget_spent == 36
    assert s.budget_remaining == pytest.approx(-7.2)
    # burn = (bad / requests in the window) / 1%
    assert s.burn_rates["5m"] == pytest.approx(30.0)  # 3 / 10
    assert s.burn_rates["30m"] == pytest.approx(30.0)  # 18 / 60
    assert s.burn_rates["1h"] == pytest.approx(30.0)  # 36 / 120
    assert s.burn_rates["6h"] == pytest.approx(5.0)  # 36 / 720
    assert s.burn_rates["3d"] == pytest.approx(1.25)  # 36 / 2,880: the only day with traffic
    # The burn-down ends at the share of budget left: -7.2 / 28.8.
    assert s.burndown[0] == (T0, 1.0)
    assert s.burndown[-1] == (T0 + DAY, pytest.approx(-0.25))


def test_each_workbook_rule_fires_when_both_its_windows_cross(data_dir: Path):
    store = load(data_dir, per_bucket(T0, 288, 10, bad={b: 3 for b in range(276, 288)}))
    alerts = {a.rule: a for a in status(store, config()).alerts}
    # page-fast (14.4x over 1 h and 5 min): after k failing buckets the hour burns 3k/120/1%;
    # it reaches 14.4 at k = 6 (15x), i.e. at 23:30, and lasts to the end of the day.
    assert alerts["page-fast"].start == T0 + timedelta(hours=23, minutes=30)
    assert alerts["page-fast"].end == T0 + DAY
    assert alerts["page-fast"].peak_burn_rate == pytest.approx(30.0)
    # page-slow (6x over 6 h): at most 36 / 720 / 1% = 5x: never.
    assert "page-slow" not in alerts
    # ticket (1x over 3 d and 6 h): 30k / (276 + k) >= 1 from k = 10 (23:50).
    assert alerts["ticket"].start == T0 + timedelta(hours=23, minutes=50)


def test_page_slow_fires_on_a_long_moderate_burn(data_dir: Path):
    # 1 of 10 failing (10x) for the last 8 hours; 6 h window reaches 6x after 3.6 h
    # (k / 72 / 1% * ... = k/7.2 >= 6 at k = 44 buckets: 03:40 into the burn).
    store = load(data_dir, per_bucket(T0, 288, 10, bad={b: 1 for b in range(192, 288)}))
    alerts = {a.rule: a for a in status(store, config()).alerts}
    assert alerts["page-slow"].start == T0 + timedelta(hours=16, minutes=5 * 44)
    assert "page-fast" not in alerts  # 10x never reaches 14.4x


def test_a_spike_shorter_than_the_long_window_needs_pages_nobody(data_dir: Path):
    # One five-minute bucket of 100% errors at noon: 5 min burns 100x, the hour only
    # 10 / 120 / 1% = 8.3x, below 14.4: no page.
    store = load(data_dir, per_bucket(T0, 288, 10, bad={144: 10}))
    s = status(store, config())
    assert s.alerts == ()
    assert s.attainment == pytest.approx(1 - 10 / 2880)


def test_the_alert_stops_when_the_short_window_recovers():
    # Series built by hand: two buckets fail completely, then clean traffic. The hour keeps
    # burning 20 / 120 / 1% = 16.7x for an hour, but the 5-minute window is clean again:
    # the alert fires at the second bucket only.
    n = 288
    total = np.full(n, 10, dtype=np.int64)
    bad = np.zeros(n, dtype=np.int64)
    bad[100:102] = 10
    counts = {"requests": total, "errors": bad}
    series = Series("f", T0, T0 + n * STEP, counts)
    cfg = config()
    [alert] = [
        a
        for a in find_alerts(series, cfg.for_feature("f").objectives[0], DEFAULT_ALERTS, T0, T0 + DAY)
        if a.rule == "page-fast"
    ]
    assert alert.start == alert.end == T0 + 102 * STEP


def test_a_window_with_no_traffic_has_no_burn_rate(data_dir: Path):
    # Traffic stops at 22:00: the last hour has no request, so no burn rate (not zero).
    store = load(data_dir, per_bucket(T0, 264, 10, bad={0: 1}))
    s = status(store, config())
    assert s.burn_rates["5m"] is None and s.burn_rates["1h"] is None
    assert s.burn_rates["6h"] == pytest.approx(0.0)
    assert s.attainment == pytest.approx(1 - 1 / 2640)


def test_a_feature_with_too_few_requests_is_not_judged(data_dir: Path):
    store = load(data_dir, per_bucket(T0, 5, 10, bad={0: 5}))
    s = status(store, config(min_requests=100))
    assert s.attainment is None and s.met is None and s.budget_total is None
    assert s.reason == "too few events to judge (50 < 100)"


def test_a_feature_with_no_request_in_its_window_says_so(data_dir: Path):
    store = load(data_dir, per_bucket(T0, 5, 10))
    s = status(store, config(), until=T0 + 10 * DAY, alert_since=T0 + 9 * DAY)
    assert s.attainment is None and s.reason == "no events in the window"


def test_latency_quality_and_feedback_slis_count_their_own_events(data_dir: Path):
    rows = per_bucket(T0, 12, 10)
    for i, r in enumerate(rows):
        r["latency_ms"] = 5000.0 if i % 10 == 0 else 100.0  # 12 of 120 slow
        r["quality_score"] = (0.5 if i % 20 == 0 else 0.9) if i % 2 == 0 else None  # 6 of 60
        r["feedback"] = (-1 if i % 30 == 0 else 1) if i % 3 == 0 else None  # 4 of 40
    store = load(data_dir, rows)
    cfg = parse_slos(
        {
            "min_requests": 10,
            "features": {
                "f": {
                    "window_days": 1,
                    "objectives": [
                        {"name": "fast", "sli": "latency", "threshold_ms": 3000, "objective": 0.95},
                        {"name": "good", "sli": "quality", "threshold": 0.7, "objective": 0.8},
                        {"name": "happy", "sli": "feedback", "objective": 0.5},
                    ],
                }
            },
        }
    )
    until = T0 + timedelta(hours=1)
    series = count_events(store, cfg, T0, until)["f"]
    slos = cfg.for_feature("f")
    got = {o.name: slo_status(series, slos, o, until, cfg.alerts, T0, 10) for o in slos.objectives}
    assert (got["fast"].events, got["fast"].bad) == (120, 12)
    assert got["fast"].attainment == pytest.approx(0.9)
    assert got["fast"].burn_rates["1h"] == pytest.approx(0.1 / 0.05)
    assert (got["good"].events, got["good"].bad) == (60, 6)
    assert got["good"].budget_total == pytest.approx(12.0)
    assert (got["happy"].events, got["happy"].bad) == (40, 4)
    assert got["happy"].budget_remaining == pytest.approx(20 - 4)


def test_counting_starts_and_ends_on_five_minute_boundaries(data_dir: Path):
    store = load(data_dir, per_bucket(T0, 3, 10))
    series = count_events(store, config(), T0 + timedelta(minutes=2), T0 + timedelta(minutes=12))["f"]
    assert series.since == T0 and series.until == T0 + timedelta(minutes=15)
    assert series.counts["requests"].tolist() == [10, 10, 10]
    assert isinstance(series.since, datetime)


def test_counts_from_the_rollups_and_the_requests_equal_a_direct_count_of_the_requests(data_dir: Path):
    # Two files (the rollups are kept per file), a feature with latency and quality
    # objectives and one with only availability, feedback, nulls and a partial last bucket.
    rows_a = per_bucket(T0, 24, 6, bad={3: 2, 10: 6}, quality_score=0.8, feedback=1)
    rows_b = per_bucket(T0 + timedelta(minutes=2), 24, 4, feature="g", bad={5: 1}, feedback=-1)
    for i, r in enumerate(rows_a):
        r["latency_ms"] = 50.0 + 40 * (i % 5)  # 50 .. 210 ms
        r["quality_score"] = None if i % 7 == 0 else 0.3 + 0.1 * (i % 6)
        r["feedback"] = None if i % 3 else (-1 if i % 2 else 1)
    load(data_dir, rows_a[:70], "a.parquet")
    store = load(data_dir, rows_a[70:] + rows_b, "b.parquet")
    cfg = parse_slos(
        {
            "features": {
                "f": {
                    "objectives": [
                        {"sli": "latency", "threshold_ms": 120, "objective": 0.9},
                        {"sli": "quality", "threshold": 0.6, "objective": 0.9},
                        {"sli": "feedback", "objective": 0.9},
                    ]
                },
                "g": {"objectives": [{"sli": "success_rate", "objective": 0.9}]},
            }
        }
    )
    until = T0 + timedelta(minutes=117)  # not on a bucket boundary
    series = count_events(store, cfg, T0, until)
    for feature, keys in {
        "f": ("requests", "errors", "lat_n", "lat_bad", "q_n", "q_bad", "fb_n", "fb_bad", "cost"),
        "g": ("requests", "errors", "fb_n", "fb_bad", "cost"),
    }.items():
        lat, q = (120.0, 0.6) if feature == "f" else (None, None)
        direct = store.rows(
            """SELECT CAST(floor(epoch_us(timestamp) / 300000000) AS BIGINT) AS b, count(*), count(error),
                      count(latency_ms), count(*) FILTER (WHERE latency_ms > ?),
                      count(quality_score), count(*) FILTER (WHERE quality_score < ?),
                      count(feedback), count(*) FILTER (WHERE feedback = -1), coalesce(sum(cost_usd), 0)
               FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ? GROUP BY 1 ORDER BY 1""",
            [lat, q, feature, T0, T0 + timedelta(minutes=120)],
        )
        s = series[feature]
        assert len(s.counts["requests"]) == 24
        columns = dict(
            zip(
                ("requests", "errors", "lat_n", "lat_bad", "q_n", "q_bad", "fb_n", "fb_bad", "cost"),
                range(1, 10),
                strict=True,
            )
        )
        for key in keys:
            expected = np.zeros(24)
            for row in direct:
                expected[row[0] - direct[0][0]] = row[columns[key]]
            assert np.allclose(s.counts[key], expected), (feature, key)
        rows = rows_a if feature == "f" else rows_b
        assert s.counts["requests"].sum() == sum(r["timestamp"] < T0 + timedelta(minutes=120) for r in rows)
