"""The one owner of the DuckDB file: connections, schema migrations, shared queries.

DuckDB lets one process at a time open a file for writing. The app, the CLI and `watch`
all run at once on the same data directory, so every process opens short-lived
connections and retries while another process holds the lock (see docs/architecture.md).
Small transactional state (audit trail, incidents, flag history) lives in SQLite instead
(`app/ledger.py`), so that a rollback never waits behind a long ingest.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from app.config import setting
from app.storage import dedupe, rollups
from app.storage.lake import create_views, load_lake
from app.storage.schema import FIELDS

if TYPE_CHECKING:
    import polars as pl

SCHEMA_VERSION = 2

# Storage choices for request columns whose shape is known: a request_id is unique per row,
# so a dictionary cannot shrink it and zstd compresses it at a fraction of the cost; a
# file's rows are stored together, so file_id is long runs of one value.
_COMPRESSION = {"request_id": "zstd"}

_REQUEST_COLUMNS = ",\n    ".join(
    f"{f.name} {f.sql_type}{' NOT NULL' if f.required else ''}"
    + (f" USING COMPRESSION '{_COMPRESSION[f.name]}'" if f.name in _COMPRESSION else "")
    for f in FIELDS
)
_REQUESTS_DDL = f"""
    CREATE TABLE IF NOT EXISTS {{name}} (
    {_REQUEST_COLUMNS},
    extra JSON,
    file_id INTEGER USING COMPRESSION 'rle'
    )"""

MIGRATIONS: tuple[str, ...] = (
    _REQUESTS_DDL.format(name="requests"),
    """
    CREATE TABLE IF NOT EXISTS files (
        file_id INTEGER PRIMARY KEY,
        path VARCHAR NOT NULL UNIQUE,
        format VARCHAR,
        size BIGINT,
        mtime DOUBLE,
        fingerprint VARCHAR,
        mapping VARCHAR,
        loaded BIGINT,
        quarantined BIGINT,
        duplicates BIGINT,
        loaded_at TIMESTAMP
    )""",
    """
    CREATE TABLE IF NOT EXISTS quarantine (
        file_id INTEGER,
        path VARCHAR,
        source_row BIGINT,
        reason VARCHAR,
        raw VARCHAR,
        quarantined_at TIMESTAMP
    )""",
    """
    CREATE TABLE IF NOT EXISTS changes (
        change_id VARCHAR PRIMARY KEY,
        timestamp TIMESTAMP NOT NULL,
        feature VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        key VARCHAR,
        from_value VARCHAR,
        to_value VARCHAR,
        author VARCHAR,
        description VARCHAR,
        source VARCHAR NOT NULL,
        silent_update BOOLEAN DEFAULT false
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
)


def _upgrade_requests(con: duckdb.DuckDBPyConnection) -> None:
    """Schema 1 kept every request's position in its file and compressed request_id by
    dictionary; schema 2 drops the position and declares the compressions above. The rows
    are copied into the new table (inside the migration's transaction)."""
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'requests'"
        ).fetchall()
    }
    if "source_row" not in columns:
        return
    names = ", ".join([*(f.name for f in FIELDS), "extra", "file_id"])
    con.execute(_REQUESTS_DDL.format(name="requests_v2"))
    con.execute(f"INSERT INTO requests_v2 SELECT {names} FROM requests ORDER BY file_id, source_row")
    con.execute("DROP TABLE requests")
    con.execute("ALTER TABLE requests_v2 RENAME TO requests")


def _polars_type(sql_type: str) -> Any:
    """The polars type of a DuckDB result column's type, for the plain types; None for
    the others (left to polars to infer)."""
    import polars as pl

    if sql_type in ("DOUBLE", "FLOAT", "REAL") or sql_type.startswith("DECIMAL"):
        return pl.Float64
    if sql_type in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    ):
        return pl.Int64
    return {
        "VARCHAR": pl.Utf8,
        "BOOLEAN": pl.Boolean,
        "DATE": pl.Date,
        "TIMESTAMP": pl.Datetime("us"),
        "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
    }.get(sql_type)


def drop_parked(con: duckdb.DuckDBPyConnection) -> None:
    """Delete the rows a load parked (negative file_id) on their way to the quarantine. The
    load deletes them right after its commit, while it still holds the database; every
    process also does at its first connection, in case a load stopped in between."""
    con.execute("DELETE FROM requests WHERE file_id < 0")


class StoreBusy(RuntimeError):
    """Another process held the database longer than the lock timeout."""


def _is_lock_error(exc: Exception) -> bool:
    """Another process writes the file, or this process has it open read-only (a read-only
    query, app/storage/readonly.py): both pass, so wait."""
    text = str(exc).lower()
    return ("lock" in text and ("conflict" in text or "could not set" in text)) or (
        "different configuration" in text
    )


class Store:
    """The project's DuckDB file in one data directory."""

    def __init__(self, data_dir: Path, lock_timeout_s: float | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / str(setting("database_file"))
        self.lock_timeout_s = float(
            lock_timeout_s if lock_timeout_s is not None else setting("lock_timeout_s")
        )
        self._migrated = False
        self._held: duckdb.DuckDBPyConnection | None = None
        # Lake mode (lake.yaml): requests and rollups are views over a Parquet lake.
        self.lake = load_lake(self.data_dir)

    @contextmanager
    def session(self) -> Iterator[Store]:
        """Run several queries on one connection (one open of the file instead of many)."""
        if self._held is not None:
            yield self
            return
        with self._open() as con:
            self._held = con
            try:
                yield self
            finally:
                self._held = None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection, or the session's if one is open."""
        if self._held is not None:
            yield self._held
            return
        with self._open() as con:
            yield con

    def _create(self) -> None:
        """Create the database file whole, or wait for the process creating it: another
        process opening a half-written new file would find "not a valid DuckDB database
        file". The file is made under another name and renamed into place."""
        lock_path = self.path.with_name(f".{self.path.name}.create.lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.path.exists():
                    return
                fresh = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
                for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
                    leftover.unlink(missing_ok=True)
                duckdb.connect(str(fresh)).close()
                os.replace(fresh, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection; waits while another process holds the file."""
        if not self.path.exists():
            self._create()
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    if _is_lock_error(exc):
                        raise StoreBusy(
                            f"{self.path} is held by another process for more than "
                            f"{self.lock_timeout_s:.0f} s"
                        ) from exc
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            con.execute("SET TimeZone = 'UTC'")
            # DuckDB draws a progress bar on stdout for long statements; stdout belongs to
            # the CLI's output (ingest reports progress itself).
            con.execute("SET enable_progress_bar_print = false")
            if not self._migrated:
                self._migrate(con)
            if self.lake is not None:
                create_views(con, self.lake)
            yield con
        finally:
            con.close()

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        # One transaction: one commit (and one sync of the file) instead of one per table.
        con.execute("BEGIN TRANSACTION")
        try:
            if self.lake is not None:
                # The lake holds the requests and their rollups: only the small tables here.
                for ddl in MIGRATIONS[1:]:
                    con.execute(ddl)
            else:
                for ddl in MIGRATIONS:
                    con.execute(ddl)
                _upgrade_requests(con)
                drop_parked(con)
                rollups.migrate(con)
                dedupe.finish_pending(con)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._migrated = True

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run one parameterised SELECT and return the rows as a polars frame. A column
        with no value (a metric no request of the range carries) keeps its SQL type, so
        arithmetic on it gives nulls instead of failing."""
        import polars as pl  # imported on first use: the CLI's ingest path never needs it

        with self.connect() as con:
            cur = con.execute(sql, params or [])
            columns = [d[0] for d in cur.description]
            types = [_polars_type(str(d[1])) for d in cur.description]
            rows = cur.fetchall()
        if not rows:
            df = pl.DataFrame(schema=columns)
        else:
            df = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
        return df.with_columns(
            pl.col(c).cast(t)
            for c, t in zip(columns, types, strict=True)
            if t is not None and df.schema[c] == pl.Null
        )

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        with self.connect() as con:
            con.execute(sql, params or [])

    # Shared read queries ------------------------------------------------------------

    def features(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT DISTINCT feature FROM requests ORDER BY 1")]

    def loaded_files(self) -> pl.DataFrame:
        """The files loaded so far, newest first, with their row counts."""
        return self.query("""SELECT path, format, loaded, quarantined, duplicates, size,
                                    loaded_at FROM files ORDER BY loaded_at DESC""")

    def quarantine_count(self) -> int:
        return int(self.scalar("SELECT count(*) FROM quarantine") or 0)

    def quarantined_rows(self, limit: int = 1000) -> pl.DataFrame:
        """The most recently quarantined rows with the reason each was set aside."""
        return self.query(
            """SELECT path, reason, raw FROM quarantine
                             ORDER BY quarantined_at DESC, path, source_row LIMIT ?""",
            [limit],
        )

    def request_count(self) -> int:
        return int(self.scalar("SELECT count(*) FROM requests") or 0)

    def time_bounds(self, feature: str | None = None) -> tuple[Any, Any]:
        """(min, max) request timestamp, for one feature or all; (None, None) when empty.
        Read from the rollups, which keep each bucket's first and last timestamp."""
        row = self.rows(
            "SELECT min(first_ts), max(last_ts) FROM rollup_5m WHERE ? IS NULL OR feature = ?",
            [feature, feature],
        )[0]
        return row[0], row[1]

    def extra_columns(self, feature: str | None = None, sample: int = 20000) -> list[str]:
        """Names of extra (non-canonical) columns seen in a sample of stored requests."""
        where = "WHERE extra IS NOT NULL" + (" AND feature = ?" if feature else "")
        params = [feature] if feature else []
        rows = self.rows(
            f"""SELECT DISTINCT unnest(json_keys(extra)) FROM
                (SELECT extra FROM requests {where} LIMIT {int(sample)}) ORDER BY 1""",
            params,
        )
        return [r[0] for r in rows]
