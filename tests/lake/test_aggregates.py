"""The aggregate tables built by DuckDB, checked against sums written directly over the raw
requests, and rebuilt incrementally."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest

from app.lake.build import build
from app.lake.partitions import LakeError, list_partitions
from app.storage.aggregates import TOP_USERS, bin_bounds


def q(sql: str):
    return duckdb.sql(sql).fetchall()


def test_hourly_sums_equal_the_raw_requests(lake: Path, tmp_path: Path):
    out = tmp_path / "agg"
    result = build(str(lake), str(out))
    assert result.built == 9 and result.unchanged == 0  # 3 days x 3 features
    raw = str(lake.parent / "all.parquet")
    got = q(f"""SELECT feature, bucket, requests, errors, latency_n, latency_sum, quality_n,
                       quality_sum, cost_n, cost_sum, feedback_n, feedback_neg, users
                FROM read_parquet('{out}/agg_1h/*/*/*.parquet', hive_partitioning=true)
                ORDER BY 1, 2""")
    want = q(f"""SELECT feature, time_bucket(INTERVAL 1 hour, timestamp) AS b, count(*),
                        count(*) FILTER (WHERE error IS NOT NULL AND error <> ''),
                        count(latency_ms), sum(latency_ms), count(quality_score),
                        sum(quality_score), count(cost_usd), sum(cost_usd), count(feedback),
                        count(*) FILTER (WHERE feedback = -1), count(DISTINCT user_id)
                 FROM '{raw}' GROUP BY 1, 2 ORDER BY 1, 2""")
    assert len(got) == len(want) == 3 * 72
    for g, w in zip(got, want, strict=True):
        assert g[:5] == w[:5] and g[6] == w[6] and g[8] == w[8] and g[10:] == w[10:]
        for a, b in ((g[5], w[5]), (g[7], w[7]), (g[9], w[9])):
            assert (a is None and b is None) or a == pytest.approx(b, rel=1e-12)


def test_an_empty_error_is_a_success(lake: Path, tmp_path: Path):
    build(str(lake), str(tmp_path / "agg"))
    errors = q(f"SELECT sum(errors) FROM read_parquet('{tmp_path}/agg/agg_5m/*/*/*.parquet')")[0][0]
    raw = q(f"SELECT count(*) FILTER (WHERE error = 'timeout') FROM '{lake.parent / 'all.parquet'}'")[0][0]
    assert errors == raw


def test_split_values_and_missing_values(lake: Path, tmp_path: Path):
    build(str(lake), str(tmp_path / "agg"))
    rows = dict(
        q(f"""SELECT value, sum(requests) FROM read_parquet(
                          '{tmp_path}/agg/agg_dim_1h/*/*/*.parquet', hive_partitioning=true)
                      WHERE dimension = 'segment' GROUP BY 1""")
    )
    raw = dict(
        q(f"SELECT coalesce(segment, '(none)'), count(*) FROM '{lake.parent / 'all.parquet'}' GROUP BY 1")
    )
    assert rows == raw and "(none)" in rows


def test_top_users_keep_the_heaviest_and_only_so_many(lake: Path, tmp_path: Path):
    build(str(lake), str(tmp_path / "agg"))
    kept = dict(
        ((f, str(b)), n)
        for f, b, n in q(f"""
        SELECT feature, bucket, count(*) FROM read_parquet(
            '{tmp_path}/agg/agg_user_1h/*/*/*.parquet', hive_partitioning=true) GROUP BY 1, 2""")
    )
    raw = dict(
        ((f, str(b)), n)
        for f, b, n in q(f"""
        SELECT feature, time_bucket(INTERVAL 1 hour, timestamp), count(DISTINCT user_id)
        FROM '{lake.parent / "all.parquet"}' GROUP BY 1, 2""")
    )
    assert kept.keys() == raw.keys()
    assert all(kept[k] == min(raw[k], TOP_USERS) for k in raw)
    assert any(n > TOP_USERS for n in raw.values())  # the cut is exercised
    top = q(f"""SELECT arg_max(user_id, requests) FROM read_parquet(
                    '{tmp_path}/agg/agg_user_1h/*/*/*.parquet', hive_partitioning=true)
                GROUP BY feature, bucket""")
    assert {t[0] for t in top} == {"heavy-user"}


def test_latency_histogram_gives_p95_within_one_percent(lake: Path, tmp_path: Path):
    build(str(lake), str(tmp_path / "agg"))
    bins = q(f"""SELECT bin, sum(n) FROM read_parquet('{tmp_path}/agg/hist_1h/*/*/*.parquet',
                     hive_partitioning=true)
                 WHERE metric = 'latency_ms' AND feature = 'chat' GROUP BY 1 ORDER BY 1""")
    total = sum(n for _, n in bins)
    rank, seen = 0.95 * total, 0
    for b, n in bins:
        seen += n
        if seen >= rank:
            low, high = bin_bounds("latency_ms", b)
            break
    exact = q(f"""SELECT quantile_disc(latency_ms, 0.95) FROM '{lake.parent / "all.parquet"}'
                  WHERE feature = 'chat'""")[0][0]
    assert low <= exact * 1.0000001 and exact <= high * 1.0000001
    assert high / low == pytest.approx(1.01)


def test_histograms_and_success_sums_tell_failures_apart(lake: Path, tmp_path: Path):
    # `ok`: no error, or an empty one. Latency bins are 1% wide, cost's 5.1%, quality's 0.01.
    build(str(lake), str(tmp_path / "agg"))
    raw = lake.parent / "all.parquet"
    got = q(f"""SELECT metric, ok, bin, sum(n) FROM read_parquet('{tmp_path}/agg/hist_1h/*/*/*.parquet',
                    hive_partitioning=true) GROUP BY ALL ORDER BY ALL""")
    want = q(f"""
        WITH r AS (SELECT *, error IS NULL OR error = '' AS ok FROM '{raw}')
        SELECT m, ok, bin, count(*) FROM (
            SELECT 'cost_usd' AS m, ok, CASE WHEN cost_usd > 0
                   THEN floor(ln(cost_usd) / ln(pow(1.01, 5)))::INT ELSE -100000 END AS bin
            FROM r WHERE cost_usd >= 0
            UNION ALL
            SELECT 'latency_ms', ok, CASE WHEN latency_ms > 0
                   THEN floor(ln(latency_ms) / ln(1.01))::INT ELSE -100000 END
            FROM r WHERE latency_ms >= 0
            UNION ALL
            SELECT 'quality_score', ok, floor(quality_score * 100)::INT FROM r
            WHERE quality_score >= 0)
        GROUP BY ALL ORDER BY ALL""")
    assert got == want
    assert {ok for _, ok, _, _ in got} == {True, False}
    sums = q(f"""SELECT sum(ok_cost_n), sum(ok_cost_sum) FROM read_parquet(
                     '{tmp_path}/agg/agg_versions_5m/*/*/*.parquet', hive_partitioning=true)""")[0]
    exact = q(f"""SELECT count(cost_usd), sum(cost_usd) FROM '{raw}'
                  WHERE error IS NULL OR error = ''""")[0]
    assert sums[0] == exact[0] and sums[1] == pytest.approx(exact[1], rel=1e-12)


def test_a_second_run_builds_nothing_and_a_changed_partition_only_itself(lake: Path, tmp_path: Path):
    out = tmp_path / "agg"
    build(str(lake), str(out))
    assert build(str(lake), str(out)).built == 0
    part = lake / "date=2026-03-02" / "feature=chat"
    f = next(part.glob("*.parquet"))
    duckdb.sql(f"COPY (SELECT * FROM '{f}' LIMIT 10) TO '{part / 'extra.parquet'}' (FORMAT parquet)")
    again = build(str(lake), str(out))
    assert (again.built, again.unchanged) == (1, 8)
    n = q(f"""SELECT sum(requests) FROM read_parquet('{out}/agg_1h/*/*/*.parquet', hive_partitioning=true)
              WHERE feature = 'chat' AND date = '2026-03-02'""")[0][0]
    raw = q(f"SELECT count(*) FROM read_parquet('{part}/*.parquet')")[0][0]
    assert n == raw


def test_a_removed_partition_takes_its_aggregates_with_it(lake: Path, tmp_path: Path):
    out = tmp_path / "agg"
    build(str(lake), str(out))
    shutil.rmtree(lake / "date=2026-03-03" / "feature=search")
    result = build(str(lake), str(out))
    assert result.removed == 1
    assert not (out / "agg_1h" / "date=2026-03-03" / "feature=search").exists()
    manifest = json.loads((out / "_manifest.json").read_text())
    assert "date=2026-03-03/feature=search" not in manifest["partitions"]


def test_a_run_stopped_before_its_manifest_is_redone(lake: Path, tmp_path: Path):
    out = tmp_path / "agg"
    build(str(lake), str(out))
    before = (out / "_manifest.json").read_text()
    part = lake / "date=2026-03-01" / "feature=summarize"
    f = next(part.glob("*.parquet"))
    time.sleep(0.01)
    os.utime(f)  # the file was rewritten
    # a run that stopped after swapping but before the manifest: simulate by leaving the
    # old manifest and a staging folder behind
    (out / ".staging" / "agg_1h").mkdir(parents=True)
    assert (out / "_manifest.json").read_text() == before
    result = build(str(lake), str(out))
    assert result.built == 1 and not (out / ".staging").exists()


def test_a_folder_outside_the_layout_is_named(tmp_path: Path):
    bad = tmp_path / "requests" / "2026-03-01"
    bad.mkdir(parents=True)
    duckdb.sql(f"COPY (SELECT 1 AS x) TO '{bad / 'a.parquet'}' (FORMAT parquet)")
    with pytest.raises(LakeError, match="2026-03-01/a.parquet is not laid out as date="):
        list_partitions(str(tmp_path / "requests"))


def test_an_unreadable_manifest_says_what_to_do(lake: Path, tmp_path: Path):
    out = tmp_path / "agg"
    out.mkdir()
    (out / "_manifest.json").write_text("{not json")
    with pytest.raises(LakeError, match="_manifest.json: not a readable manifest.*delete it"):
        build(str(lake), str(out))


def test_the_aggregate_command_plans_builds_and_verifies(lake: Path, tmp_path: Path):
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300
        )

    plan_file = tmp_path / "plan.txt"
    out = run("aggregate", "--source", str(lake), "--output", str(tmp_path / "a"), "--plan", str(plan_file))
    assert out.returncode == 0 and len(plan_file.read_text().split()) == 9
    out = run("aggregate", "--source", str(lake), "--output", str(tmp_path / "a"), "--json")
    assert json.loads(out.stdout)["partitions_built"] == 9
    run("aggregate", "--source", str(lake), "--output", str(tmp_path / "b"))
    data = tmp_path / "desk"
    data.mkdir()
    (data / "lake.yaml").write_text(f"requests: {lake}\naggregates: {tmp_path / 'a'}\n")
    ok = run("lake", "verify", "--data-dir", str(data), "--other", str(tmp_path / "b"))
    assert ok.returncode == 0 and ok.stdout.count("equal") == 7  # every table
    bad = run("aggregate", "--source", str(tmp_path / "nowhere"), "--output", str(tmp_path / "c"))
    assert bad.returncode == 2 and "nowhere: no such folder" in bad.stderr


def test_dimension_sums_carry_what_slice_detection_compares(lake: Path, tmp_path: Path):
    # Every dimension's rows add up to the feature, and the successful requests' cost squares
    # and log-latency moments equal sums written over the raw rows.
    build(str(lake), str(tmp_path / "agg"))
    raw = lake.parent / "all.parquet"
    got = q(f"""SELECT dimension, value, sum(requests), sum(ok_cost_n), sum(ok_cost_sumsq),
                       sum(ok_latency_n), sum(ok_latency_lnsum), sum(ok_latency_lnsumsq)
                FROM read_parquet('{tmp_path}/agg/agg_dim_1h/*/*/*.parquet', hive_partitioning=true)
                WHERE feature = 'chat' GROUP BY 1, 2 ORDER BY 1, 2""")
    want = {}
    for dim in ("model", "response_model", "prompt_version", "variant", "region", "segment"):
        for row in q(f"""
                WITH r AS (SELECT *, error IS NULL OR error = '' AS ok FROM '{raw}' WHERE feature = 'chat')
                SELECT '{dim}', coalesce({dim}, '(none)'), count(*),
                       count(cost_usd) FILTER (WHERE ok), sum(cost_usd * cost_usd) FILTER (WHERE ok),
                       count(latency_ms) FILTER (WHERE ok),
                       sum(ln(greatest(latency_ms, 0.01))) FILTER (WHERE ok),
                       sum(ln(greatest(latency_ms, 0.01)) ^ 2) FILTER (WHERE ok)
                FROM r GROUP BY 1, 2"""):
            want[row[:2]] = row
    assert len(got) == len(want) and len({g[0] for g in got}) == 6
    total = q(f"SELECT count(*) FROM '{raw}' WHERE feature = 'chat'")[0][0]
    for dim in {g[0] for g in got}:
        assert sum(g[2] for g in got if g[0] == dim) == total
    for g in got:
        w = want[g[:2]]
        assert g[2:4] == w[2:4] and g[5] == w[5]
        for a, b in zip(g[4:], w[4:], strict=True):
            assert a == pytest.approx(b, rel=1e-12)


def test_dimension_latency_histograms_hold_every_latency_in_its_bin(lake: Path, tmp_path: Path):
    build(str(lake), str(tmp_path / "agg"))
    raw = lake.parent / "all.parquet"
    got = q(f"""SELECT dimension, value, bin, sum(n) FROM read_parquet(
                    '{tmp_path}/agg/hist_dim_1h/*/*/*.parquet', hive_partitioning=true)
                WHERE feature = 'search' AND dimension IN ('variant', 'segment') GROUP BY ALL ORDER BY ALL""")
    want = q(f"""
        SELECT dim, value, bin, count(*) FROM (
            SELECT 'variant' AS dim, coalesce(variant, '(none)') AS value, latency_ms FROM '{raw}'
            WHERE feature = 'search'
            UNION ALL
            SELECT 'segment', coalesce(segment, '(none)'), latency_ms FROM '{raw}' WHERE feature = 'search')
        CROSS JOIN LATERAL (SELECT CASE WHEN latency_ms > 0 THEN floor(ln(latency_ms) / ln(1.01))::INT
                                        ELSE -100000 END AS bin)
        WHERE latency_ms >= 0 GROUP BY ALL ORDER BY ALL""")
    assert got == want and ("segment", "(none)") in {g[:2] for g in got}
