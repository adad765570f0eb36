"""The record of every query run in Investigate (SQL console, `query`, exports): who ran
what, when, and how it ended. Kept in the ledger, append-only like the audit trail.

The text recorded is the statement or the filter, never a token: Investigate handles none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.storage.ledger import Ledger

DDL = (
    """CREATE TABLE IF NOT EXISTS investigate_queries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ran_at TEXT NOT NULL,
        actor TEXT, role TEXT,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        outcome TEXT NOT NULL,
        rows INTEGER, elapsed_ms INTEGER, message TEXT)""",
    """CREATE TRIGGER IF NOT EXISTS investigate_queries_no_update
        BEFORE UPDATE ON investigate_queries
        BEGIN SELECT RAISE(ABORT, 'the query log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS investigate_queries_no_delete
        BEFORE DELETE ON investigate_queries
        BEGIN SELECT RAISE(ABORT, 'the query log is append-only'); END""",
)
OUTCOMES = ("ok", "refused", "timeout", "failed", "denied")


@dataclass(frozen=True)
class QueryRecord:
    ran_at: datetime
    actor: str | None
    role: str | None
    kind: str  # sql | export
    text: str
    outcome: str  # ok | refused | timeout | failed | denied
    rows: int | None
    elapsed_ms: int | None
    message: str | None


def _ledger(data_dir: Path) -> Ledger:
    led = Ledger(Path(data_dir))
    led.ensure_tables("investigate", DDL)
    return led


def record(
    data_dir: Path,
    *,
    actor: str | None,
    role: str | None,
    kind: str,
    text: str,
    outcome: str,
    rows: int | None = None,
    elapsed_ms: int | None = None,
    message: str | None = None,
) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    with _ledger(data_dir).connect() as con, con:
        con.execute(
            """INSERT INTO investigate_queries (ran_at, actor, role, kind, text, outcome, rows,
                   elapsed_ms, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                actor,
                role,
                kind,
                text,
                outcome,
                rows,
                elapsed_ms,
                message,
            ),
        )


def recent(data_dir: Path, limit: int = 100, actor: str | None = None) -> list[QueryRecord]:
    """The latest queries, newest first."""
    with _ledger(data_dir).connect() as con:
        rows = con.execute(
            """SELECT ran_at, actor, role, kind, text, outcome, rows, elapsed_ms, message
               FROM investigate_queries WHERE (:actor IS NULL OR actor = :actor)
               ORDER BY seq DESC LIMIT :limit""",
            {"actor": actor, "limit": limit},
        ).fetchall()
    return [QueryRecord(datetime.strptime(r[0], "%Y-%m-%dT%H:%M:%S.%fZ"), *r[1:]) for r in rows]
