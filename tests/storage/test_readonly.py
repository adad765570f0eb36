"""Read-only queries on a real DuckDB file: what gets through, what is refused and why, and
the row and time limits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from app.storage.readonly import (
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    check_statement,
    readonly_connection,
    run_readonly,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE requests AS SELECT range AS i, 'r' || range AS request_id FROM range(5000)")
    con.close()
    (tmp_path / "secret.csv").write_text("token\nabc\n")
    return path


REFUSED = {
    "SELECT 1; SELECT 2": "one statement at a time, found 2",
    "COPY requests TO '/tmp/out.csv'": "COPY",
    "COPY requests FROM '/tmp/in.csv'": "COPY",
    "ATTACH '/tmp/other.duckdb' AS other": "ATTACH",
    "INSTALL httpfs": "INSTALL",
    "LOAD httpfs": "LOAD",
    "INSERT INTO requests VALUES (1, 'x')": "INSERT",
    "UPDATE requests SET i = 0": "UPDATE",
    "DELETE FROM requests": "DELETE",
    "CREATE TABLE t (a INTEGER)": "CREATE",
    "DROP TABLE requests": "DROP",
    "ALTER TABLE requests ADD COLUMN x INTEGER": "ALTER",
    "SET enable_external_access = true": "SET",
    "PRAGMA enable_profiling": "PRAGMA",
    "EXPORT DATABASE '/tmp/x'": "EXPORT",
    "SELECT * FROM read_csv('/etc/passwd')": "read_csv()",
    "SELECT * FROM '/etc/passwd'": "'/etc/passwd'",
    "SELECT * FROM 'secret.csv'": "'secret.csv'",
    "WITH f AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM f": "read_text()",
    "SELECT * FROM glob('/etc/*')": "glob()",
    "SELEC 1": "syntax error",
    "": "empty",
}


@pytest.mark.parametrize("sql", list(REFUSED))
def test_refused_statements_say_why(sql: str, db: Path):
    with pytest.raises(QueryRefused) as err:
        run_readonly(db, sql)
    message = str(err.value)
    assert message.startswith("refused: ") and REFUSED[sql] in message
    assert "\n" not in message


def test_the_database_is_unchanged_after_the_refusals(db: Path):
    for sql in REFUSED:
        with pytest.raises(QueryRefused):
            run_readonly(db, sql)
    assert run_readonly(db, "SELECT count(*) FROM requests").rows == [(5000,)]
    assert sorted(p.name for p in db.parent.iterdir()) == ["secret.csv", "store.duckdb"]


def test_selects_describe_and_named_parameters_run(db: Path):
    assert check_statement("  SELECT 1  ") == "SELECT 1"
    r = run_readonly(db, "SELECT i FROM requests WHERE i < $top ORDER BY i", {"top": 3})
    assert r.columns == ("i",) and r.types == ("BIGINT",) and r.rows == [(0,), (1,), (2,)]
    assert not r.truncated
    described = run_readonly(db, "DESCRIBE requests")
    assert [row[0] for row in described.rows] == ["i", "request_id"]


def test_external_access_is_off_even_past_the_check(db: Path):
    """A file read the name check cannot see (inside query()) is refused by the connection."""
    with pytest.raises(QueryRefused, match="file system operations are disabled"):
        run_readonly(db, "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')")
    with readonly_connection(db) as con:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('enable_external_access', 'lock_configuration', "
                "'access_mode')"
            ).fetchall()
        )
        assert settings == {
            "enable_external_access": "false",
            "lock_configuration": "true",
            "access_mode": "read_only",
        }
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")


def test_the_row_limit_truncates_and_says_so(db: Path):
    r = run_readonly(db, "SELECT * FROM requests ORDER BY i", limit=10)
    assert len(r.rows) == 10 and r.truncated and r.rows[-1][0] == 9
    whole = run_readonly(db, "SELECT * FROM requests", limit=5000)
    assert len(whole.rows) == 5000 and not whole.truncated


def test_a_runaway_query_is_interrupted_at_the_time_limit(db: Path):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="0.5 s limit"):
        run_readonly(db, "SELECT count(*) FROM range(1000000000000) a, requests b", timeout_s=0.5)
    assert time.monotonic() - started < 5
    # and the next query runs as usual
    assert run_readonly(db, "SELECT 42").rows == [(42,)]


def test_other_errors_are_one_line(db: Path):
    with pytest.raises(QueryFailed) as err:
        run_readonly(db, "SELECT nope FROM requests")
    assert "nope" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(QueryFailed, match="no database"):
        run_readonly(db.with_name("absent.duckdb"), "SELECT 1")


def test_a_writer_in_this_process_waits_for_a_running_read_only_query(tmp_path: Path):
    """DuckDB refuses a read-write open of a file this process holds read-only; the Store
    waits for it instead of failing."""
    from app.storage.store import Store

    store = Store(tmp_path / "data", lock_timeout_s=10)
    assert store.request_count() == 0  # creates the file
    holding = threading.Event()
    released = threading.Event()

    def hold() -> None:
        with readonly_connection(store.path) as con:
            con.execute("SELECT 1").fetchall()
            holding.set()
            time.sleep(0.5)
        released.set()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    assert store.request_count() == 0
    assert released.is_set()
    thread.join()
