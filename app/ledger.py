"""The SQLite ledger: small, append-mostly, multi-process state beside the DuckDB file.

The audit trail, flag-change history and incident events live here rather than in DuckDB:
SQLite in WAL mode lets the app, the CLI and `watch` write at the same time, so a rollback
never queues behind a long ingest. Each owning module (audit, incidents, ...) declares its
own tables through `ensure_tables`; every write is one short transaction.
"""

from __future__ import annotations

import sqlite3
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
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=30000")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    def ensure_tables(self, owner: str, ddl: Sequence[str]) -> None:
        """Create an owner's tables once per process (idempotent)."""
        if owner in self._ready:
            return
        with self.connect() as con:
            for statement in ddl:
                con.execute(statement)
        self._ready.add(owner)
