"""Spark and DuckDB build the same aggregate tables from the same requests: counts exactly,
sums to a relative 1e-9. Runs a real local Spark (pyspark on Java 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.lake.build import build
from app.lake.parity import compare
from app.lake.spark_job import build_spark
from app.storage.aggregates import TABLES


@pytest.mark.integration
def test_spark_and_duckdb_build_identical_tables(lake: Path, tmp_path: Path, spark):
    build(str(lake), str(tmp_path / "duck"), "duckdb")
    keys = sorted({f"{p.parent.parent.name}/{p.parent.name}" for p in lake.glob("*/*/*.parquet")})
    build_spark(str(lake), keys, str(tmp_path / "spark"), spark=spark)
    diffs = compare(str(tmp_path / "duck"), str(tmp_path / "spark"))
    assert [d.table for d in diffs] == list(TABLES)
    for d in diffs:
        assert d.rows_a > 0, d.table
        assert d.equal, (d.table, d.only_a, d.only_b, d.mismatched)


@pytest.mark.integration
def test_parity_check_sees_a_difference(lake: Path, tmp_path: Path, spark):
    """The comparison itself can fail: one request fewer on the Spark side is caught."""
    import duckdb

    build(str(lake), str(tmp_path / "duck"), "duckdb")
    part = lake / "date=2026-03-02" / "feature=chat"
    f = next(part.glob("*.parquet"))
    duckdb.sql(f"COPY (SELECT * FROM '{f}' OFFSET 1) TO '{tmp_path / 'cut.parquet'}' (FORMAT parquet)")
    f.unlink()
    (tmp_path / "cut.parquet").rename(part / "cut.parquet")
    keys = sorted({f"{p.parent.parent.name}/{p.parent.name}" for p in lake.glob("*/*/*.parquet")})
    build_spark(str(lake), keys, str(tmp_path / "spark"), spark=spark)
    diffs = {d.table: d for d in compare(str(tmp_path / "duck"), str(tmp_path / "spark"))}
    assert not diffs["agg_1h"].equal
    assert any(m.startswith("requests at") for m in diffs["agg_1h"].mismatched)


@pytest.mark.integration
def test_the_aggregate_command_with_spark_is_incremental(lake: Path, tmp_path: Path):
    """`rollback-desk aggregate --engine spark` end to end, in its own process (its own JVM)."""
    import json
    import subprocess
    import sys

    from components import require
    from conftest import spark_available

    require(spark_available(), "pyspark with a Java runtime")
    out = tmp_path / "spark"
    cmd = [
        sys.executable,
        "-m",
        "app",
        "aggregate",
        "--engine",
        "spark",
        "--source",
        str(lake),
        "--output",
        str(out),
        "--json",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout.strip().splitlines()[-1])["partitions_built"] == 9
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert json.loads(second.stdout.strip().splitlines()[-1])["partitions_built"] == 0
    build(str(lake), str(tmp_path / "duck"), "duckdb")
    assert all(d.equal for d in compare(str(out), str(tmp_path / "duck")))
