"""A playbook's query check runs on the sandboxed read-only connection: it answers from the
request tables and cannot read a file, write, or attach."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from app.incidents.playbooks import Check, run_query_check
from app.ingest.pipeline import ingest_paths
from app.storage.readonly import ReadOnlyQueryError
from app.storage.store import Store

SINCE, UNTIL = datetime(2026, 5, 1, 10), datetime(2026, 5, 1, 12)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    logs = tmp_path / "logs.jsonl"
    logs.write_text(
        "".join(
            json.dumps(
                {
                    "timestamp": f"2026-05-01T{10 + i // 60:02d}:{i % 60:02d}:00Z",
                    "feature": "chat",
                    "model": "m1" if i % 3 else "m2",
                    "latency_ms": 100 + i,
                }
            )
            + "\n"
            for i in range(120)
        )
    )
    s = Store(tmp_path / "data")
    assert ingest_paths(s, [str(logs)]).loaded == 120
    return s


def test_a_query_check_answers_from_the_requests(store: Store):
    check = Check(
        kind="query",
        title="by model",
        sql=(
            "SELECT model, count(*) AS n FROM requests WHERE feature = $feature "
            "AND timestamp >= $since AND timestamp < $until GROUP BY 1 ORDER BY 1"
        ),
    )
    result = run_query_check(store, check, "chat", SINCE, UNTIL)
    assert result.columns == ("model", "n") and result.rows == [("m1", 80), ("m2", 40)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT content FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT 1; DELETE FROM requests",
    ],
)
def test_a_query_check_cannot_read_files_or_write(store: Store, sql: str):
    with pytest.raises(ReadOnlyQueryError):
        run_query_check(store, Check(kind="query", title="x", sql=sql), "chat", SINCE, UNTIL)
    assert store.request_count() == 120
