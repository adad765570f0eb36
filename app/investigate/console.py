"""The SQL console: read-only SQL over the stored tables, for admins, every run recorded.

The statement goes through app/storage/readonly.py (one SELECT checked by DuckDB's parser,
read-only connection, external access off, row and time limits). This module adds who may
run it and the record of who did.
"""

from __future__ import annotations

import time
from pathlib import Path

from app.config import setting
from app.investigate import querylog
from app.investigate.roles import CONSOLE_ROLE, Actor, PermissionDenied, require
from app.storage.readonly import (
    DEFAULT_LIMIT,
    DEFAULT_TIMEOUT_S,
    QueryRefused,
    QueryResult,
    QueryTimeout,
    ReadOnlyQueryError,
    run_readonly,
)

# The tables a query may read, as documented in docs/investigate.md.
TABLES: dict[str, str] = {
    "requests": "one row per request: the canonical fields, `extra` (JSON) and `file_id`",
    "changes": "declared, inferred and recorded changes (model, prompt, flag, config)",
    "files": "every loaded file with its row counts",
    "quarantine": "rows set aside at load, with the reason",
    "rollup_5m": "five-minute aggregates per feature (what the charts read)",
}
MAX_LIMIT = 100_000


def run_sql(
    data_dir: Path,
    sql: str,
    *,
    actor: Actor | None = None,
    who: str | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """Run one read-only statement for `actor` (None: no sign-in configured; `who` names the
    person then, e.g. the OS user of the CLI) and record the run in the query log.
    Raises PermissionDenied, QueryRefused, QueryTimeout or QueryFailed."""
    name = actor.name if actor else who
    role = actor.role if actor else None
    limit = max(0, min(int(limit), MAX_LIMIT))
    try:
        require(actor, CONSOLE_ROLE, "the SQL console")
    except PermissionDenied as exc:
        querylog.record(
            data_dir, actor=name, role=role, kind="sql", text=sql, outcome="denied", message=str(exc)
        )
        raise
    started = time.monotonic()
    db_path = Path(data_dir) / str(setting("database_file"))
    try:
        result = run_readonly(db_path, sql, limit=limit, timeout_s=timeout_s)
    except ReadOnlyQueryError as exc:
        outcome = (
            "refused"
            if isinstance(exc, QueryRefused)
            else "timeout"
            if isinstance(exc, QueryTimeout)
            else "failed"
        )
        querylog.record(
            data_dir,
            actor=name,
            role=role,
            kind="sql",
            text=sql,
            outcome=outcome,
            elapsed_ms=int(1000 * (time.monotonic() - started)),
            message=str(exc),
        )
        raise
    querylog.record(
        data_dir,
        actor=name,
        role=role,
        kind="sql",
        text=sql,
        outcome="ok",
        rows=len(result.rows),
        elapsed_ms=int(1000 * result.elapsed_s),
        message="truncated at the row limit" if result.truncated else None,
    )
    return result
