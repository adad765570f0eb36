"""Small readable log files and a way to run `rollback-desk ingest` on them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from app.cli import main


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    """Rows as JSON lines; a string row is written as it is (to make broken lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_text(path: Path, text: str) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def big_frame(rows: int) -> pl.DataFrame:
    """`rows` requests one second apart, two features, ids big-0, big-1, ..."""
    return pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                pl.datetime(2026, 3, 1), pl.datetime(2026, 4, 8), interval="1s", eager=True
            ).head(rows),
            "feature": pl.Series(["chat", "search"] * (rows // 2)),
            "request_id": pl.Series([f"big-{i}" for i in range(rows)]),
            "latency_ms": pl.Series(range(rows), dtype=pl.Float64),
        }
    )


def request(i: int, **fields) -> dict:
    base = {
        "timestamp": f"2026-03-02T10:{i // 60:02d}:{i % 60:02d}Z",
        "feature": "support-reply",
        "request_id": f"r-{i}",
        "model": "gpt-4o",
        "latency_ms": 100 + i,
        "quality_score": 0.9,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


class Desk:
    """One data directory: run the CLI against it and look inside its database."""

    def __init__(self, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.data_dir = data_dir
        self.capsys = capsys

    def ingest(self, *args: str | Path) -> tuple[int, dict]:
        self.capsys.readouterr()
        code = main(["ingest", *map(str, args), "--data-dir", str(self.data_dir), "--json"])
        out = self.capsys.readouterr().out
        return code, json.loads(out)

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.data_dir / "rollback.duckdb"), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params: list | None = None):
        return self.rows(sql, params)[0][0]

    def count(self, table: str = "requests") -> int:
        return self.scalar(f"SELECT count(*) FROM {table}")

    def quarantine(self) -> list[tuple[str, int, str]]:
        return self.rows("SELECT path, source_row, reason FROM quarantine ORDER BY path, source_row")
