"""The Overview, timeline splits, detection's slice sums, incident triage and the guardrails
read the rollups and aggregate tables: the same answers as the requests give, in the embedded
store and in lake mode, and in either mode no request is read for the whole hours of a range."""

from __future__ import annotations

import math
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from app.detection.analysis import analyze
from app.incidents import impact
from app.metrics import timeline as metrics
from app.rollout import guardrails
from app.storage.store import Store


def same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Equal but for the order in which floating-point sums were added."""
    assert a.height > 0
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def same_arms(a: list, b: list) -> None:
    """Equal arm comparisons, but for the order in which floating-point sums were added."""
    import dataclasses

    flat_a = [dataclasses.astuple(x) for arms in a for x in arms]
    flat_b = [dataclasses.astuple(x) for arms in b for x in arms]
    assert len(flat_a) == len(flat_b) > 0
    for x, y in zip(flat_a, flat_b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) or isinstance(u, tuple):
                assert u == pytest.approx(v, rel=1e-9)
            else:
                assert u == v


def hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def test_overview_gives_the_requests_figures_in_both_modes(pair):
    embedded, lake = pair
    e, k = Store(embedded), Store(lake)
    _, hi = e.time_bounds(None)
    since = hi - timedelta(hours=23, minutes=11)  # no period starts or ends on the hour
    got = metrics.overview(e, since, hi)
    same(got, metrics.overview(k, since, hi))
    prev_since = since - (hi - since)
    for period, lo, up, suffix in (("cur", since, hi, ""), ("prev", prev_since, since, "_prev")):
        want = e.query(
            """SELECT feature, count(*) AS requests, avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END)
                      AS error_rate, avg(quality_score) AS quality_score,
                      stddev_samp(quality_score) AS quality_sd, avg(cost_usd) AS cost,
                      avg(CASE WHEN feedback = -1 THEN 1.0 WHEN feedback IS NOT NULL THEN 0.0 END)
                      AS neg, quantile_cont(latency_ms, 0.95) AS p95
               FROM requests WHERE timestamp >= ? AND timestamp < ? GROUP BY 1 ORDER BY 1""",
            [lo, up],
        )
        assert got["feature"].to_list() == want["feature"].to_list(), period
        for row, exact in zip(got.iter_rows(named=True), want.iter_rows(named=True), strict=True):
            assert row[f"requests{suffix}"] == exact["requests"]
            for column, name in (
                ("error_rate", "error_rate"),
                ("quality_score", "quality_score"),
                ("quality_sd", "quality_sd"),
                ("cost_per_request_usd", "cost"),
                ("negative_feedback_rate", "neg"),
            ):
                assert row[column + suffix] == pytest.approx(exact[name], rel=1e-9), (period, column)
            # the p95 comes from the hourly histogram: within 1% of the exact one
            assert row[f"latency_p95_ms{suffix}"] == pytest.approx(exact["p95"], rel=0.01)


@pytest.mark.parametrize("split", ["model", "prompt_version", "region", "variant"])
def test_splits_from_sums_give_the_requests_figures(pair, split: str):
    embedded, lake = pair
    e, k = Store(embedded), Store(lake)
    _, hi = e.time_bounds(None)
    feature = e.features()[0]
    for bucket, since in (
        ("1 hour", hi - timedelta(days=2, minutes=17)),
        ("6 hours", hi - timedelta(days=5, minutes=43)),
        ("5 minutes", hi - timedelta(hours=7, minutes=3)),
    ):
        got = metrics.timeline(e, feature, since, hi, bucket=bucket, split=split)
        same(got, metrics.timeline(k, feature, since, hi, bucket=bucket, split=split))
        want = e.query(
            f"""SELECT time_bucket(INTERVAL '{bucket}', timestamp) AS bucket,
                       coalesce({split}, '(none)') AS series, count(*) AS requests,
                       avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END) AS error_rate,
                       avg(quality_score) AS quality_score, stddev_samp(quality_score) AS quality_sd,
                       quantile_cont(latency_ms, 0.95) AS latency_p95_ms,
                       avg(cost_usd) AS cost_per_request_usd
                FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?
                GROUP BY ALL ORDER BY 1, 2""",
            [feature, since, hi],
        )
        assert want["series"].n_unique() <= metrics.MAX_SERIES  # no 'other' to rebuild here
        exact = want.with_columns(pl.col("requests").cast(pl.Int64))
        if bucket == "5 minutes":  # under an hour: the p95 of the range's latencies
            same(got.select(want.columns), exact)
            continue
        # from an hour: the p95 from hist_dim_1h's 1% bins and the partial hours' latencies
        same(got.select(want.columns).drop("latency_p95_ms"), exact.drop("latency_p95_ms"))
        ratio = (got["latency_p95_ms"] / exact["latency_p95_ms"]).to_numpy()
        assert abs(ratio - 1).max() <= 0.01


def test_triage_finds_the_same_scope_in_both_modes(pair):
    embedded, lake = pair
    e, k = Store(embedded), Store(lake)
    _, hi = e.time_bounds(None)
    findings = analyze(e).findings
    kinds = set()
    for f in findings:
        b = impact.triage(k, f.feature, f.onset + timedelta(minutes=7), hi)  # off the hour too
        c = impact.triage(e, f.feature, f.onset + timedelta(minutes=7), hi)
        kinds.add(c.kind)
        assert (b.kind, b.metric, b.dimension, b.value) == (c.kind, c.metric, c.dimension, c.value)
        assert math.isclose(b.z, c.z, rel_tol=1e-9)
        for dim, rows in c.slices.items():
            mine = {s.value: (s.requests, s.current) for s in b.slices[dim]}
            if dim == "user_id":
                # agg_user_1h keeps each hour's 20 busiest users: a user's slice is never
                # larger than theirs in the requests, and the busiest users are all there
                theirs = {s.value: s.requests for s in rows}
                assert all(n <= theirs[v] for v, (n, _) in mine.items())
                assert max(rows, key=lambda s: s.requests).value in mine
                continue
            assert mine.keys() == {s.value for s in rows}
            for s in rows:
                assert mine[s.value][0] == s.requests
                assert mine[s.value][1] == pytest.approx(s.current, rel=1e-9)
    assert kinds >= {"total", "partial", "single_user"}  # the demo's incidents cover every scope


def test_daily_traffic_counts_the_requests(pair):
    embedded, lake = pair
    e, k = Store(embedded), Store(lake)
    _, hi = e.time_bounds(None)
    for feature in e.features():
        for until in (hi, hi - timedelta(days=2, minutes=7, seconds=3)):
            since = max(e.time_bounds(feature)[0], until - timedelta(days=7))
            n = e.scalar(
                "SELECT count(*) FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?",
                [feature, since, until],
            )
            want = n / ((until - since).total_seconds() / 86400.0)
            assert guardrails.daily_traffic(e, feature, until) == pytest.approx(want, rel=1e-12)
            assert guardrails.daily_traffic(k, feature, until) == pytest.approx(want, rel=1e-12)


def test_on_whole_hours_lake_mode_reads_only_the_aggregates(pair, tmp_path: Path):
    """The same answers from a copy of the lake whose request files are gone."""
    _, lake = pair
    full = Store(lake)
    bare_dir = tmp_path / "bare"
    shutil.copytree(lake, bare_dir, ignore=shutil.ignore_patterns("requests"))
    (bare_dir / "lake.yaml").write_text(
        yaml.safe_dump({"requests": "lake/requests", "aggregates": "lake/aggregates"})
    )
    bare = Store(bare_dir)
    assert bare.request_count() == 0 and full.request_count() > 100_000
    _, hi = full.time_bounds(None)
    until = hour_floor(hi)
    since = until - timedelta(hours=24)
    same(metrics.overview(bare, since, until), metrics.overview(full, since, until))
    feature = full.features()[0]
    for split in ("model", "region"):
        a = metrics.timeline(bare, feature, since, until, bucket="1 hour", split=split)
        b = metrics.timeline(full, feature, since, until, bucket="1 hour", split=split)
        same(a, b)
        assert a["latency_p95_ms"].is_not_null().all()  # from hist_dim_1h
    for f in analyze(full).findings:
        onset = hour_floor(f.onset)
        a, b = impact.triage(bare, f.feature, onset, until), impact.triage(full, f.feature, onset, until)
        assert (a.kind, a.metric, a.dimension, a.value) == (b.kind, b.metric, b.dimension, b.value)
        assert math.isclose(a.z, b.z, rel_tol=1e-9)
    assert guardrails.daily_traffic(bare, feature, until) == guardrails.daily_traffic(full, feature, until)
    arms = [guardrails.arm_stats(full, f, since, until) for f in full.features()]
    assert max(len(a) for a in arms) >= 2  # a feature with a canary and a control
    same_arms([guardrails.arm_stats(bare, f, since, until) for f in full.features()], arms)


def test_on_whole_hours_the_embedded_store_reads_only_its_rollups(pair, tmp_path: Path):
    """Detection's slice sums, triage and the splits by any dimension give the same answers
    from a copy of the store whose requests are deleted (its rollups stay)."""
    from app.detection import slices
    from app.storage import rollups

    embedded, _ = pair
    full = Store(embedded)
    with full.connect() as con:
        rollups.ensure_deferred(con)  # the deferred rollups exist before the requests go
    copy = tmp_path / "copy"
    shutil.copytree(embedded, copy)
    bare = Store(copy)
    bare.execute("DELETE FROM requests")
    assert bare.request_count() == 0 and full.request_count() > 100_000
    _, hi = full.time_bounds(None)
    until = hour_floor(hi)
    since = until - timedelta(days=3)
    keys = ["feature", "dimension", "value", "hour"]
    bare_sums = slices.slice_hourly(bare, since, until, None).sort(keys)
    assert bare_sums.height > 0 and bare_sums["n"].sum() > 10_000
    same(bare_sums, slices.slice_hourly(full, since, until, None).sort(keys))
    feature = full.features()[0]
    for split in ("model", "region", "variant", "segment"):
        a = metrics.timeline(bare, feature, since, until, bucket="1 hour", split=split)
        b = metrics.timeline(full, feature, since, until, bucket="1 hour", split=split)
        same(a, b)
    for f in analyze(full).findings:
        onset = hour_floor(f.onset)
        a, b = impact.triage(bare, f.feature, onset, until), impact.triage(full, f.feature, onset, until)
        assert (a.kind, a.metric, a.dimension, a.value) == (b.kind, b.metric, b.dimension, b.value)
        assert math.isclose(a.z, b.z, rel_tol=1e-9)
        assert {d: [(s.value, s.requests) for s in rows] for d, rows in a.slices.items()} == {
            d: [(s.value, s.requests) for s in rows] for d, rows in b.slices.items()
        }
    arms = [guardrails.arm_stats(full, f, since, until) for f in full.features()]
    assert max(len(a) for a in arms) >= 2  # a feature with a canary and a control
    same_arms([guardrails.arm_stats(bare, f, since, until) for f in full.features()], arms)


def test_slice_sums_off_the_hour_are_those_of_the_requests(pair):
    """Partial hours at both ends come from the requests: the sums equal one scan of them."""
    from app.detection import slices

    embedded, lake = pair
    e, k = Store(embedded), Store(lake)
    lo, hi = e.time_bounds(None)
    since, until = lo + timedelta(days=1, minutes=17, seconds=5), hi - timedelta(hours=5, minutes=41)
    keys = ["feature", "dimension", "value", "hour"]

    def sums(df: pl.DataFrame) -> pl.DataFrame:
        return df.sort(keys).select(*keys, *[pl.col(c).cast(pl.Float64) for c in slices._SUMS])

    params = {"feature": None, "lo": since, "hi": until}
    want = sums(e.query(slices._raw_sql("timestamp >= $lo AND timestamp < $hi"), params))
    assert want["hour"].min() < since < want["hour"].min() + timedelta(hours=1)  # partial ends
    same(sums(slices.slice_hourly(e, since, until, None)), want)
    same(sums(slices.slice_hourly(k, since, until, None)), want)


def test_arm_comparison_gives_the_requests_figures_in_both_modes(pair):
    """Per variant: counts, rates and log-latency moments exact; the p95 and its interval
    within 1% of the order statistics (read from 1% latency bins)."""
    embedded, lake = pair
    e, k = Store(embedded), Store(lake)
    _, hi = e.time_bounds(None)
    since, until = hi - timedelta(days=2, hours=3, minutes=19), hi - timedelta(minutes=47)
    checked = 0
    for feature in e.features():
        got = guardrails.arm_stats(e, feature, since, until)
        for a, b in zip(got, guardrails.arm_stats(k, feature, since, until), strict=True):
            assert (a.variant, a.requests, a.first_seen, a.latency_p95_ci) == (
                b.variant,
                b.requests,
                b.first_seen,
                b.latency_p95_ci,
            )
            assert a.log_latency_var == pytest.approx(b.log_latency_var, rel=1e-9)
        want = e.query(
            """SELECT coalesce(variant, '(none)') AS variant, count(*) AS n, min(timestamp) AS first,
                      count(error) AS errors, avg(quality_score) AS q, stddev_samp(quality_score) AS q_sd,
                      avg(ln(greatest(latency_ms, 0.01))) AS ll,
                      var_samp(ln(greatest(latency_ms, 0.01))) AS ll_var,
                      count(latency_ms) AS lat_n, avg(cost_usd) AS cost,
                      quantile_cont(latency_ms, 0.95) AS p95,
                      list_sort(list(latency_ms) FILTER (WHERE latency_ms IS NOT NULL)) AS lat
               FROM requests WHERE feature = ? AND timestamp >= ? AND timestamp < ?
               GROUP BY 1 ORDER BY n DESC, variant""",
            [feature, since, until],
        )
        assert [a.variant for a in got] == want["variant"].to_list()
        for arm, w in zip(got, want.iter_rows(named=True), strict=True):
            assert (arm.requests, arm.first_seen, arm.latency_n) == (w["n"], w["first"], w["lat_n"])
            assert arm.error_rate == w["errors"] / w["n"]
            for mine, exact in (
                (arm.quality_score, w["q"]),
                (arm.quality_sd, w["q_sd"]),
                (arm.log_latency_mean, w["ll"]),
                (arm.log_latency_var, w["ll_var"]),
                (arm.cost_per_request_usd, w["cost"]),
            ):
                assert (mine is None and exact is None) or mine == pytest.approx(exact, rel=1e-9)
            assert arm.latency_p95_ms == pytest.approx(w["p95"], rel=0.01)
            lat = w["lat"]
            lo_level, hi_level = guardrails.stats.quantile_rank_levels(len(lat), 0.95)
            for mine, level in zip(arm.latency_p95_ci, (lo_level, hi_level), strict=True):
                r = level * (len(lat) - 1)
                exact = lat[int(r)] + (r - int(r)) * (lat[min(int(r) + 1, len(lat) - 1)] - lat[int(r)])
                assert mine == pytest.approx(exact, rel=0.01)
            checked += 1
    assert checked >= 3  # the demo has a feature with a canary and a control
