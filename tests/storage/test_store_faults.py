"""The store under contention: a database held past the lock timeout is a one-line error
with its own exit status (and a JSON error object under --json); new data directories
created by several processes at once all open."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import EXIT_BUSY, main
from app.storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN TRANSACTION")
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def held(tmp_path: Path):
    """A data directory whose database another process holds open for writing."""
    data_dir = tmp_path / "data"
    with Store(data_dir).connect():
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir / "rollback.duckdb")], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    yield data_dir
    holder.kill()
    holder.wait()


def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"timestamp": "2026-03-02T10:00:00Z", "feature": "chat"}) + "\n")
    return path


def test_a_busy_store_is_a_one_line_error_with_its_own_exit_status(held, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROLLBACK_DESK_LOCK_TIMEOUT_S", "0.3")
    code = main(["ingest", str(request_file(tmp_path)), "--data-dir", str(held)])
    out, err = capsys.readouterr()
    assert code == EXIT_BUSY and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "held by another process" in err


def test_a_busy_store_under_json_prints_a_json_error(held, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROLLBACK_DESK_LOCK_TIMEOUT_S", "0.3")
    code = main(["ingest", str(request_file(tmp_path)), "--data-dir", str(held), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == EXIT_BUSY and doc["error"] == "busy" and "held by another process" in doc["message"]


RACER = """
import sys, time
from pathlib import Path
from app.cli import main
root, start = Path(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
codes = [main(["ingest", sys.argv[3], "--data-dir", str(root / f"d{i}"), "--json"])
         for i in range(int(sys.argv[4]))]
print("codes", sorted(set(codes)), flush=True)
"""


def test_first_ingests_into_new_data_directories_at_the_same_time_all_succeed(tmp_path):
    source = request_file(tmp_path)
    start = time.time() + 2.0
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / "race"), str(start), str(source), "12"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(3)
    ]
    outputs = [r.communicate(timeout=120) for r in racers]
    for out, err in outputs:
        assert out.strip().splitlines()[-1] == "codes [0]", err[-500:]
        assert "not a valid DuckDB" not in out + err
    assert not list((tmp_path / "race").glob("d*/.*.new"))


def _env() -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}
