"""Several processes share one data directory: DuckDB's single writer is waited for, the
ledger takes concurrent writers, and two data directories never interfere."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.changes import declared, inferred
from app.changes import timeline as changes
from app.changes.events import ChangeEvent
from app.demo.scenario import demo_scenario
from app.demo.synth import generate
from app.storage.ledger import Ledger
from app.storage.store import Store, StoreBusy

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def test_reader_and_writer_in_another_process_wait_for_a_long_ingest(tmp_path: Path):
    logs = tmp_path / "big.parquet"
    generate(demo_scenario(scale=4)).write_parquet(logs)  # ~900k rows: a load of a few seconds
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "ingest", str(logs), "--json", "--data-dir", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    store = Store(data, lock_timeout_s=120)
    event = ChangeEvent(
        timestamp=datetime(2026, 11, 20),
        feature="support-reply",
        kind="config",
        key="k",
        from_value="a",
        to_value="b",
        author="t",
        description=None,
        source="declared",
    )
    seen_counts = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        seen_counts.append(store.request_count())  # waits while the ingest holds the file
        time.sleep(0.05)
    assert declared.save_events(store, [event]) == 1
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    loaded = json.loads(out)["loaded"]
    assert store.request_count() == loaded > 800_000
    # Readers only ever saw all or nothing of the file: one file is one transaction.
    assert set(seen_counts) <= {0, loaded}
    assert [e.change_id for e in changes.list_changes(store, "support-reply") if e.key == "k"] == [
        event.change_id
    ]


def test_busy_database_gives_a_clear_error(tmp_path: Path):
    store = Store(tmp_path, lock_timeout_s=0.3)
    store.request_count()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(30)",
            str(store.path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusy, match="held by another process"):
            store.request_count()
    finally:
        holder.kill()
        holder.wait()


def test_ledger_takes_writes_from_two_processes_at_once(tmp_path: Path):
    ledger = Ledger(tmp_path)
    ledger.ensure_tables("t", ["CREATE TABLE IF NOT EXISTS t (who TEXT, i INTEGER)"])
    code = (
        "import sys; from pathlib import Path; from app.storage.ledger import Ledger\n"
        "l = Ledger(Path(sys.argv[1]))\n"
        "for i in range(200):\n"
        "    with l.connect() as con:\n"
        "        con.execute('INSERT INTO t VALUES (?, ?)', (sys.argv[2], i))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), who], cwd=ROOT) for who in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with ledger.connect() as con:
        rows = con.execute("SELECT who, count(*) FROM t GROUP BY who ORDER BY who").fetchall()
    assert [tuple(r) for r in rows] == [("a", 200), ("b", 200)]


def test_two_data_directories_never_interfere(tmp_path: Path):
    logs = tmp_path / "x.jsonl"
    logs.write_text('{"timestamp": "2026-01-01T00:00:00Z", "feature": "only-in-a"}\n')
    assert cli("ingest", str(logs), "--data-dir", str(tmp_path / "a")).returncode == 0
    out_b = cli("changes", "--json", "--data-dir", str(tmp_path / "b"))
    assert json.loads(out_b.stdout) == {"changes": []}
    assert Store(tmp_path / "b").request_count() == 0
    assert Store(tmp_path / "a").features() == ["only-in-a"]
    assert not (ROOT / "data" / "x").exists()


def test_data_dir_from_environment(tmp_path: Path):
    import os

    logs = tmp_path / "x.jsonl"
    logs.write_text('{"timestamp": 1767225600, "feature": "env-feature"}\n')
    env = {**os.environ, "ROLLBACK_DESK_DATA": str(tmp_path / "env-data")}
    assert cli("ingest", str(logs), env=env).returncode == 0
    store = Store(tmp_path / "env-data")
    assert store.features() == ["env-feature"]
    lo, _ = store.time_bounds()
    assert lo == datetime(2026, 1, 1) + timedelta(0)


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "rollback-desk"
    assert exe.exists()
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ingest" in out.stdout and "demo" in out.stdout


def test_a_data_directory_of_schema_1_is_upgraded_in_place(tmp_path: Path):
    # Schema 1 kept each request's position in its file; its rows must survive the upgrade
    # and the rollups be rebuilt from them.
    import duckdb

    from app.metrics import timeline as metrics
    from app.storage.schema import FIELDS

    con = duckdb.connect(str(tmp_path / "rollback.duckdb"))
    cols = ", ".join(f"{f.name} {f.sql_type}" for f in FIELDS)
    con.execute(f"CREATE TABLE requests ({cols}, extra JSON, file_id INTEGER, source_row BIGINT)")
    con.execute("""INSERT INTO requests (timestamp, feature, request_id, model, latency_ms,
                                         file_id, source_row)
                   SELECT TIMESTAMP '2026-03-02 10:00:00' + to_minutes(i), 'chat', 'r-' || i,
                          CASE WHEN i < 60 THEN 'm1' ELSE 'm2' END, 100 + i, 1 + i // 90,
                          i + 1
                   FROM range(120) t(i)""")
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('rollup_version', '2')")
    con.close()

    store = Store(tmp_path)
    assert store.request_count() == 120
    assert "source_row" not in {
        r[0] for r in store.rows("SELECT column_name FROM duckdb_columns() WHERE table_name = 'requests'")
    }
    assert store.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == "2"
    got = metrics.timeline(store, "chat", datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 12), bucket="1 hour")
    assert got["requests"].to_list() == [60, 60]
    # Each file's rollups are its own, so that a reload replaces only them.
    assert store.rows("SELECT file_id, sum(requests)::INT FROM rollup_5m GROUP BY 1 ORDER BY 1") == [
        (1, 90),
        (2, 30),
    ]
    assert store.rows(
        "SELECT file_id, sum(n)::INT FROM hist_1h WHERE metric = 'latency_ms' GROUP BY 1 ORDER BY 1"
    ) == [
        (1, 90),
        (2, 30),
    ]
    firsts = inferred.first_appearances(store, ["chat"])["chat"]
    assert [v for v, _ in firsts["model"]] == ["m1", "m2"]


def test_rows_parked_by_a_load_that_stopped_after_its_commit_are_removed_on_open(tmp_path: Path):
    # A load parks its bad rows under a negative file_id and deletes them right after its
    # commit; a process that stopped in between leaves them, and the next one removes them
    # before anything reads.
    import duckdb

    store = Store(tmp_path)
    store.execute(
        "INSERT INTO requests (timestamp, feature, file_id) VALUES "
        "(TIMESTAMP '2026-03-02 10:00', 'chat', 1), (TIMESTAMP '1970-01-01', '', -1)"
    )
    con = duckdb.connect(str(store.path))
    assert con.execute("SELECT count(*) FROM requests WHERE file_id < 0").fetchone()[0] == 1
    con.close()
    assert Store(tmp_path).features() == ["chat"]
