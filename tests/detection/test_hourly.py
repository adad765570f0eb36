"""Detection's hourly frames, read from the rollups, agree with a computation over the rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from app.demo.synth import Effect, FeatureSpec, Scenario, generate
from app.detection.hourly import MERGE_BINS, hourly_p95, load_hourly
from app.ingest.pipeline import ingest_paths
from app.storage.store import Store

START = datetime(2026, 3, 2)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> tuple[Store, pl.DataFrame]:
    folder = tmp_path_factory.mktemp("hourly")
    scenario = Scenario(
        start=START,
        days=2,
        seed=5,
        features=[
            FeatureSpec("a", 120, {"region": [("eu", 0.5), ("us", 0.5)]}, feedback_rate=0.3),
            FeatureSpec("b", 60, {}),
        ],
        switches=[],
        # Failures that answer fast: they must not make the successful requests look faster.
        effects=[Effect("a", START + timedelta(days=1), {"region": "eu"}, error_rate_add=0.3)],
    )
    df = generate(scenario)
    # Two files, so the frames sum the rollups of both.
    third = df.height // 3
    df.head(third).write_parquet(folder / "one.parquet")
    df.tail(df.height - third).write_parquet(folder / "two.parquet")
    store = Store(folder / "data")
    ingest_paths(store, [str(folder / "one.parquet"), str(folder / "two.parquet")])
    assert store.request_count() == df.height
    assert store.scalar("SELECT count(DISTINCT file_id) FROM hist_1h") == 2
    return store, df


def _by_hour(df: pl.DataFrame, feature: str) -> pl.DataFrame:
    ok = pl.col("error").is_null()
    return (
        df.filter(pl.col("feature") == feature)
        .with_columns(hour=pl.col("timestamp").dt.truncate("1h"))
        .group_by("hour")
        .agg(
            n=pl.len(),
            errors=pl.col("error").is_not_null().sum(),
            q_n=pl.col("quality_score").is_not_null().sum(),
            q_sum=pl.col("quality_score").sum(),
            cost_n=(pl.col("cost_usd").is_not_null() & ok).sum(),
            cost_sum=pl.col("cost_usd").filter(ok).sum(),
            fb_n=pl.col("feedback").is_not_null().sum(),
            neg_n=(pl.col("feedback") == -1).sum(),
            lat_n=(pl.col("latency_ms").is_not_null() & ok).sum(),
            lat_ok=pl.col("latency_ms").filter(ok & pl.col("latency_ms").is_not_null()),
            cost_ok=pl.col("cost_usd").filter(ok & pl.col("cost_usd").is_not_null()),
        )
        .sort("hour")
    )


def test_sums_equal_the_rows_and_histograms_hold_successful_requests(loaded):
    store, df = loaded
    frames = load_hourly(store, START, START + timedelta(days=2))
    assert set(frames) == {"a", "b"}
    for feature, d in frames.items():
        want = _by_hour(df, feature)
        idx = [d.index_of(h) for h in want["hour"]]
        assert d.hours == 48
        for col in ("n", "errors", "q_n", "fb_n", "neg_n", "cost_n", "lat_n"):
            got = np.zeros(d.hours)
            got[idx] = want[col].to_numpy()
            np.testing.assert_array_equal(d.sums[col], got, err_msg=f"{feature} {col}")
        for col in ("q_sum", "cost_sum"):
            got = np.zeros(d.hours)
            got[idx] = want[col].fill_null(0).to_numpy()
            np.testing.assert_allclose(d.sums[col], got, rtol=1e-9, err_msg=f"{feature} {col}")
        # Every successful latency and cost lies in the bin the frame counts it in.
        for metric, col in (("latency_p95_ms", "lat_ok"), ("cost_per_request_usd", "cost_ok")):
            h = d.hists[metric]
            for i, values in zip(idx, want[col], strict=True):
                counts, _ = np.histogram(values.to_numpy(), bins=h.edges)
                np.testing.assert_array_equal(h.counts[i], counts, err_msg=f"{feature} {metric} hour {i}")
        q = d.hists["quality_score"]
        np.testing.assert_array_equal(q.counts.sum(axis=1), d.sums["q_n"] - _failed_scores(df, feature, d))


def _failed_scores(df: pl.DataFrame, feature: str, d) -> np.ndarray:
    rows = df.filter(
        (pl.col("feature") == feature) & pl.col("error").is_not_null() & pl.col("quality_score").is_not_null()
    )
    out = np.zeros(d.hours)
    for h in rows["timestamp"].dt.truncate("1h"):
        out[d.index_of(h)] += 1
    return out


def test_bins_are_five_percent_wide_and_p95_lies_within_a_bin_of_the_rows(loaded):
    store, df = loaded
    d = load_hourly(store, START, START + timedelta(days=2), feature="a")["a"]
    for metric in ("latency_p95_ms", "cost_per_request_usd"):
        edges = d.hists[metric].edges
        np.testing.assert_allclose(edges[1:] / edges[:-1], 1.01**MERGE_BINS)
    h = d.hists["latency_p95_ms"]
    want = _by_hour(df, "a")
    got = hourly_p95(h)[[d.index_of(t) for t in want["hour"]]]
    width = 1.01**MERGE_BINS
    for p95, values in zip(got, want["lat_ok"], strict=True):
        # Between the order statistics on either side of rank 0.95 n, give or take a bin.
        v = np.sort(values.to_numpy())
        k = 0.95 * v.size
        low, high = v[max(int(np.floor(k)) - 1, 0)], v[min(int(np.ceil(k)), v.size - 1)]
        assert low / width <= p95 <= high * width


def test_failed_requests_do_not_count_in_the_success_histograms(loaded):
    store, df = loaded
    d = load_hourly(store, START, START + timedelta(days=2), feature="a")["a"]
    second_day = slice(24, 48)
    # The effect's failures are a third of eu's requests on the second day.
    assert d.sums["errors"][second_day].sum() > 0.1 * d.sums["n"][second_day].sum()
    assert d.hists["latency_p95_ms"].counts[second_day].sum() == d.sums["lat_n"][second_day].sum()
    assert (
        d.sums["lat_n"][second_day].sum()
        < d.sums["n"][second_day].sum() - d.sums["errors"][second_day].sum() + 1
    )


def test_a_range_starting_inside_an_hour_reads_that_hour_whole(loaded, tmp_path: Path):
    store, df = loaded
    d = load_hourly(store, START + timedelta(minutes=30), START + timedelta(hours=3), feature="b")["b"]
    assert d.start == START and d.hours == 3
    want = df.filter((pl.col("feature") == "b") & (pl.col("timestamp") < START + timedelta(hours=1))).height
    assert d.sums["n"][0] == want
