"""Small stores for the review tests, whose right answers are known by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from app.ingest.pipeline import ingest_paths
from app.storage.store import Store

T0 = datetime(2026, 1, 1)


def requests_frame(rows: list[dict]) -> pl.DataFrame:
    schema = {
        "timestamp": pl.Datetime("us"),
        "feature": pl.Utf8,
        "request_id": pl.Utf8,
        "model": pl.Utf8,
        "prompt_version": pl.Utf8,
        "latency_ms": pl.Float64,
        "error": pl.Utf8,
        "quality_score": pl.Float64,
        "feedback": pl.Int8,
        "cost_usd": pl.Float64,
    }
    filled = [
        {k: r.get(k) for k in schema} | {"request_id": r.get("request_id") or f"r{i}"}
        for i, r in enumerate(rows)
    ]
    return pl.DataFrame(filled, schema=schema)


def load(data_dir: Path, rows: list[dict], name: str = "requests.parquet") -> Store:
    """Write the rows to a Parquet file and ingest it into a real DuckDB store."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    requests_frame(rows).write_parquet(path)
    store = Store(data_dir)
    result = ingest_paths(store, [str(path)])
    assert result.ok, result
    return store


def per_bucket(
    start: datetime, buckets: int, n: int, feature: str = "f", bad: dict[int, int] | None = None, **values
) -> list[dict]:
    """`n` requests in each five-minute bucket from `start`; `bad[i]` of bucket i fail."""
    rows = []
    for b in range(buckets):
        for k in range(n):
            t = start + timedelta(minutes=5 * b, seconds=k * (300 // max(n, 1)))
            failed = k < (bad or {}).get(b, 0)
            rows.append(
                {
                    "timestamp": t,
                    "feature": feature,
                    "request_id": f"{feature}-{b}-{k}",
                    "error": "server_error" if failed else None,
                    "latency_ms": 100.0,
                    "cost_usd": 0.001,
                    **values,
                }
            )
    return rows
