"""Compare on data whose answer is known: the numbers against the construction of the data,
against the same statistics written directly in DuckDB, and the p-values against scipy."""

from __future__ import annotations

import math
from datetime import datetime

import duckdb
import numpy as np
import pytest
from scipy import stats as sst

from app.investigate.compare import arm_timeline, before_after, compare, preset_from_finding
from app.investigate.filters import Filter, Scope
from app.storage.store import Store

from .conftest import FEATURE, N_V7, N_V8

Z = 1.959963984540054


@pytest.fixture(scope="module")
def result(known_template):
    store = Store(known_template)
    a = Scope(FEATURE, filter=Filter.parse("prompt_version=v7"))
    b = Scope(FEATURE, filter=Filter.parse("prompt_version=v8"))
    return compare(store, a, b)


def direct(known_template, sql: str, arm: str):
    con = duckdb.connect(str(known_template / "rollback.duckdb"), read_only=True)
    try:
        return con.execute(
            sql + " FROM requests WHERE feature = ? AND prompt_version = ?", [FEATURE, arm]
        ).fetchone()
    finally:
        con.close()


def test_error_rates_are_the_constructed_ones_with_wilson_intervals(result, known_template):
    m = result.metric("error_rate")
    assert result.a.requests == N_V7 and result.b.requests == N_V8
    assert result.a.errors == 50 and result.b.errors == 125
    assert m.a == pytest.approx(0.025) and m.b == pytest.approx(0.125)
    assert m.difference == pytest.approx(0.10)
    for arm, value, ci in (("v7", m.a, m.a_ci), ("v8", m.b, m.b_ci)):
        lo, hi = _wilson_sql(known_template, arm)  # the interval written out in SQL
        assert lo < value < hi
        assert ci == pytest.approx((lo, hi), rel=1e-9)
    # 2.5% against 12.5% on these counts is far beyond chance
    assert m.p_value < 1e-20


def _wilson_sql(known_template, arm):
    con = duckdb.connect(str(known_template / "rollback.duckdb"), read_only=True)
    try:
        return con.execute(
            f"""
            WITH c AS (SELECT count(error) / count(*) AS p, count(*) AS n FROM requests
                       WHERE feature = ? AND prompt_version = ?)
            SELECT (p + {Z}^2 / (2 * n) - {Z} * sqrt(p * (1 - p) / n + {Z}^2 / (4 * n * n)))
                       / (1 + {Z}^2 / n),
                   (p + {Z}^2 / (2 * n) + {Z} * sqrt(p * (1 - p) / n + {Z}^2 / (4 * n * n)))
                       / (1 + {Z}^2 / n) FROM c""",
            [FEATURE, arm],
        ).fetchone()
    finally:
        con.close()


def test_quality_score_and_interval_match_duckdb(result, known_template):
    m = result.metric("quality_score")
    for arm, value, ci, n in (("v7", m.a, m.a_ci, m.n_a), ("v8", m.b, m.b_ci, m.n_b)):
        mean, sd, count = direct(
            known_template, "SELECT avg(quality_score), stddev_samp(quality_score), count(quality_score)", arm
        )
        assert n == count
        assert value == pytest.approx(mean, rel=1e-12)
        half = Z * sd / math.sqrt(count)
        assert ci == pytest.approx((mean - half, mean + half), rel=1e-12)
    assert m.difference == pytest.approx(m.b - m.a)
    assert m.difference < -0.05  # v8 was built 0.1 lower


def test_quality_p_value_is_the_mann_whitney_test(result, known_template):
    """Quality lies on a 0.001 grid, so compare's binned rank test is the exact Mann-Whitney
    (ties included, normal approximation without continuity correction)."""
    con = duckdb.connect(str(known_template / "rollback.duckdb"), read_only=True)
    a, b = (
        np.array(
            [
                r[0]
                for r in con.execute(
                    "SELECT quality_score FROM requests WHERE prompt_version = ? "
                    "AND quality_score IS NOT NULL",
                    [arm],
                ).fetchall()
            ]
        )
        for arm in ("v7", "v8")
    )
    con.close()
    expected = sst.mannwhitneyu(b, a, use_continuity=False, method="asymptotic").pvalue
    assert result.metric("quality_score").p_value == pytest.approx(expected, rel=1e-6)


def test_latency_p95_and_its_interval_are_duckdb_quantiles(result, known_template):
    from app.stats import quantile_rank_levels

    m = result.metric("latency_p95_ms")
    for arm, value, ci, n in (("v7", m.a, m.a_ci, m.n_a), ("v8", m.b, m.b_ci, m.n_b)):
        lo, hi = quantile_rank_levels(n, 0.95)
        p95, q_lo, q_hi = direct(
            known_template,
            f"SELECT quantile_cont(latency_ms, 0.95), "
            f"quantile_cont(latency_ms, {lo}), "
            f"quantile_cont(latency_ms, {hi})",
            arm,
        )
        assert value == pytest.approx(p95) and ci == pytest.approx((q_lo, q_hi))
        assert q_lo <= value <= q_hi
    # v7 latency is 1000 + (i % 400): p95 of a uniform 1000..1399 is about 1380
    assert m.a == pytest.approx(1000 + 0.95 * 399, abs=1)
    assert m.b == pytest.approx(1500 + 0.95 * 499, abs=1)
    assert m.p_value < 1e-50


def test_cost_and_feedback(result, known_template):
    cost = result.metric("cost_per_request_usd")
    assert cost.a == pytest.approx(0.00245) and cost.b == pytest.approx(0.00345)
    assert cost.difference == pytest.approx(0.001)
    fb = result.metric("negative_feedback_rate")
    for arm, value in (("v7", fb.a), ("v8", fb.b)):
        neg, n = direct(known_template, "SELECT count_if(feedback = -1), count(feedback)", arm)
        assert value == pytest.approx(neg / n)


def test_identical_arms_show_no_difference(known_template):
    store = Store(known_template)
    arm = Scope(FEATURE, filter=Filter.parse("prompt_version=v8"))
    same = compare(store, arm, arm)
    for m in same.metrics:
        assert m.difference == pytest.approx(0.0, abs=1e-12)
        assert m.p_value == pytest.approx(1.0, abs=0.05)


def test_an_empty_arm_has_no_p_value(known_template):
    store = Store(known_template)
    out = compare(
        store,
        Scope(FEATURE, filter=Filter.parse("prompt_version=v7")),
        Scope(FEATURE, filter=Filter.parse("prompt_version=v9")),
    )
    assert out.b.requests == 0
    for m in out.metrics:
        assert m.b is None and m.p_value is None and m.difference is None


def test_before_and_after_a_moment_split_the_range(known_template):
    store = Store(known_template)
    a, b = before_after(datetime(2026, 11, 20, 12), Filter.parse("prompt_version=v7"))
    out = compare(store, Scope(FEATURE, filter=a), Scope(FEATURE, filter=b))
    assert out.a.requests + out.b.requests == N_V7
    assert out.a.requests == N_V7 // 2


def test_the_timeline_of_both_arms_adds_up(known_template):
    store = Store(known_template)
    rows = arm_timeline(
        store,
        Scope(FEATURE, filter=Filter.parse("prompt_version=v7")),
        Scope(FEATURE, filter=Filter.parse("prompt_version=v8")),
        "error_rate",
        "6 hours",
    )
    assert sum(n for arm, _, _, n in rows if arm == "a") == N_V7
    assert sum(n for arm, _, _, n in rows if arm == "b") == N_V8
    assert {arm for arm, *_ in rows} == {"a", "b"}


def test_a_prompt_suspect_presets_its_two_versions():
    from app.changes.events import ChangeEvent
    from app.detection.findings import Finding, Suspect
    from app.detection.findings import Scope as FindingScope

    change = ChangeEvent(
        datetime(2026, 11, 20, 12), FEATURE, "prompt", "prompt_version", "v7", "v8", None, None, "declared"
    )
    finding = Finding(
        feature=FEATURE,
        metric="quality_score",
        onset=datetime(2026, 11, 20, 12),
        end=datetime(2026, 11, 21),
        baseline=0.9,
        current=0.8,
        p_value=1e-9,
        n_baseline=100,
        n_current=100,
        shape="step",
        severity=1.0,
        scope=FindingScope("total"),
        suspects=(Suspect(change, 0.9, "timing"),),
    )
    a, b, label = preset_from_finding(finding)
    assert a.text() == "prompt_version=v7" and b.text() == "prompt_version=v8"
    assert "v7" in label and "v8" in label
    no_suspect = Finding(**{**finding.__dict__, "suspects": ()})
    a, b, label = preset_from_finding(no_suspect)
    assert a.text() == "timestamp<2026-11-20T12:00:00" and b.text() == "timestamp>=2026-11-20T12:00:00"


def test_a_slice_presets_the_rest_against_the_slice_since_the_onset(known_template):
    from app.investigate.compare import preset

    onset = datetime(2026, 11, 20, 12)
    a, b, label = preset(onset, None, ("region", "eu"))
    assert a.text() == "region!=eu,timestamp>=2026-11-20T12:00:00"
    assert b.text() == "region=eu,timestamp>=2026-11-20T12:00:00"
    out = compare(Store(known_template), Scope(FEATURE, filter=a), Scope(FEATURE, filter=b))
    assert out.a.requests == N_V7 // 2 + N_V8 // 4 and out.b.requests == N_V8 // 4
