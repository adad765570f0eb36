"""The SQLite ledger: small, append-mostly, multi-process state beside the DuckDB file.

The audit trail, flag-change history and incident events live here rather than in DuckDB:
SQLite in WAL mode lets the app, the CLI and `watch` write at the same time, so a rollback
never queues behind a long ingest. Each owning module (audit, incidents, ...) declares its
own tables through `ensure_tables`; every write is one short transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from app.config import setting


class Ledger:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / str(setting("ledger_file"))
        self._ready: set[str] = set()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit-per-`with` mode: `with con:` is one transaction."""
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            _ensure_wal(con)
            con.execute("PRAGMA synchronous=FULL")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    def has_tables(self, *names: str) -> bool:
        """Whether the ledger exists and holds these tables; never creates either."""
        if not self.path.exists():
            return False
        with self.connect() as con:
            found = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return set(names) <= found

    def version(self) -> str:
        """Changes whenever a row is added to or removed from any table of the ledger (a flag
        action, a ladder step, a fetched flag history, an incident event): part of the
        pages' cache key. Empty when there is no ledger yet; reading never creates it."""
        if not self.path.exists():
            return ""
        con = sqlite3.connect(self.path, timeout=30.0)
        try:
            tables = [
                r[0]
                for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            parts = [f"{t}:{_table_version(con, t)}" for t in tables]
        finally:
            con.close()
        return "|".join(parts)

    def ensure_tables(self, owner: str, ddl: Sequence[str]) -> None:
        """Create an owner's tables once per process (idempotent)."""
        if owner in self._ready:
            return
        with self.connect() as con:
            for statement in ddl:
                con.execute(statement)
        self._ready.add(owner)


def _table_version(con: sqlite3.Connection, table: str) -> str:
    """Row count and highest rowid: an insert (also INSERT OR REPLACE) raises the rowid, a
    delete lowers the count."""
    try:
        n, top = con.execute(f'SELECT count(*), max(rowid) FROM "{table}"').fetchone()
    except sqlite3.OperationalError:  # a WITHOUT ROWID table
        n, top = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0], None
    return f"{n}:{top}"


def _ensure_wal(con: sqlite3.Connection, attempts: int = 200) -> None:
    """Switch a new ledger to WAL (a setting kept in the file). Two processes creating the
    ledger at once can both try; SQLite answers the loser "locked" without waiting, so retry."""
    for _ in range(attempts):
        if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            con.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    raise sqlite3.OperationalError("could not switch the ledger to WAL mode")
