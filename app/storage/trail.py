"""The append-only audit trail of flag actions and the cache of the flag systems' own
change histories, as stored in the ledger.

Every press of an action button (or CLI command) writes two rows: the intent, before the
backend is called, and the outcome, after the read-back. A process that dies in between
leaves its intent on record, shown as "no outcome recorded". Rows are never updated or
deleted (triggers refuse it). Tokens never reach this module: rows hold flag names, states,
operators, reasons and messages only.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.flags.base import ActionResult, HistoryEntry
from app.storage.datadir import DataDir
from app.storage.ledger import Ledger
from app.timestamps import utcnow

DDL = (
    """CREATE TABLE IF NOT EXISTS flag_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        action_id TEXT NOT NULL,
        phase TEXT NOT NULL CHECK (phase IN ('intent', 'outcome')),
        recorded_at TEXT NOT NULL,
        operator TEXT, operator_role TEXT, reason TEXT, incident_id TEXT,
        feature TEXT NOT NULL, action TEXT NOT NULL, role TEXT NOT NULL,
        backend TEXT NOT NULL, location TEXT,
        flag TEXT NOT NULL, environment TEXT NOT NULL,
        before_json TEXT, after_json TEXT,
        outcome TEXT, message TEXT, error_code TEXT, latency_ms INTEGER, changed INTEGER,
        UNIQUE (action_id, phase))""",
    "CREATE INDEX IF NOT EXISTS flag_audit_feature ON flag_audit (feature, recorded_at)",
    "CREATE INDEX IF NOT EXISTS flag_audit_incident ON flag_audit (incident_id)",
    """CREATE TRIGGER IF NOT EXISTS flag_audit_no_update BEFORE UPDATE ON flag_audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS flag_audit_no_delete BEFORE DELETE ON flag_audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TABLE IF NOT EXISTS flag_history (
        backend TEXT NOT NULL, entry_id TEXT NOT NULL, timestamp TEXT NOT NULL,
        flag TEXT NOT NULL, environment TEXT, change TEXT NOT NULL,
        before TEXT, after TEXT, author TEXT, description TEXT,
        PRIMARY KEY (backend, entry_id))""",
    """CREATE TABLE IF NOT EXISTS flag_history_sync (
        backend TEXT PRIMARY KEY, attempted_at TEXT NOT NULL, synced_at TEXT,
        message TEXT)""",
)

ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class AuditEntry:
    """One press: its intent and, unless the process died, its outcome."""

    action_id: str
    requested_at: datetime
    operator: str | None
    reason: str | None
    incident_id: str | None
    feature: str
    action: str
    role: str
    backend: str
    location: str | None
    flag: str
    environment: str
    before: dict[str, Any]
    after: dict[str, Any]
    outcome: str | None  # None: no outcome recorded (the process stopped mid-action)
    message: str | None
    latency_ms: int | None
    changed: bool | None
    finished_at: datetime | None
    operator_role: str | None = None  # viewer / responder / admin, when known

    @property
    def operator_label(self) -> str | None:
        """The operator with the role when known: `ana@example.com (responder)`."""
        if self.operator and self.operator_role:
            return f"{self.operator} ({self.operator_role})"
        return self.operator

    def as_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "requested_at": _iso(self.requested_at),
            "finished_at": _iso(self.finished_at) if self.finished_at else None,
            "operator": self.operator,
            "operator_role": self.operator_role,
            "reason": self.reason,
            "incident_id": self.incident_id,
            "feature": self.feature,
            "action": self.action,
            "backend": self.backend,
            "flag": self.flag,
            "environment": self.environment,
            "before": self.before,
            "after": self.after,
            "outcome": self.outcome or "no outcome recorded",
            "message": self.message,
            "latency_ms": self.latency_ms,
            "changed": self.changed,
        }


_UPGRADED: set[Path] = set()


def ledger(data_dir: DataDir | Path) -> Ledger:
    """The data directory's ledger with the audit tables (the DataDir's own, when given one)."""
    led = data_dir.ledger if isinstance(data_dir, DataDir) else Ledger(Path(data_dir))
    led.ensure_tables("audit", DDL)
    if led.path not in _UPGRADED:
        _add_operator_role(led)
        _UPGRADED.add(led.path)
    return led


def _reading(data_dir: DataDir | Path) -> Ledger | None:
    """The ledger to read the trail from, or None when it holds no trail yet: reading
    creates neither the ledger nor its tables (an export leaves the ledger as it was)."""
    led = data_dir.ledger if isinstance(data_dir, DataDir) else Ledger(Path(data_dir))
    return led if led.has_tables("flag_audit", "flag_history", "flag_history_sync") else None


def _add_operator_role(led: Ledger) -> None:
    """Trails written before roles existed get the column (empty for their rows)."""
    with led.connect() as con:
        columns = {r[1] for r in con.execute("PRAGMA table_info(flag_audit)").fetchall()}
        if "operator_role" not in columns:
            try:
                con.execute("ALTER TABLE flag_audit ADD COLUMN operator_role TEXT")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise


def new_action_id() -> str:
    return uuid.uuid4().hex[:16]


def record_intent(
    data_dir: Path,
    *,
    action_id: str,
    feature: str,
    action: str,
    role: str,
    backend: str,
    location: str,
    flag: str,
    environment: str,
    before: dict[str, Any],
    after: dict[str, Any],
    operator: str | None,
    reason: str | None,
    incident_id: str | None,
    operator_role: str | None = None,
) -> None:
    with ledger(data_dir).connect() as con, con:
        con.execute(
            """INSERT INTO flag_audit (action_id, phase, recorded_at, operator, operator_role,
                   reason, incident_id, feature, action, role, backend, location, flag,
                   environment, before_json, after_json)
               VALUES (?, 'intent', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                action_id,
                _now(),
                operator,
                operator_role,
                reason,
                incident_id,
                feature,
                action,
                role,
                backend,
                location,
                flag,
                environment,
                json.dumps(before),
                json.dumps(after),
            ),
        )


def record_outcome(data_dir: Path, result: ActionResult, role: str, location: str) -> None:
    with ledger(data_dir).connect() as con, con:
        con.execute(
            """INSERT INTO flag_audit (action_id, phase, recorded_at, operator, operator_role,
                   reason, incident_id, feature, action, role, backend, location, flag,
                   environment, before_json, after_json, outcome, message, error_code,
                   latency_ms, changed)
               VALUES (?, 'outcome', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                result.action_id,
                _now(),
                result.operator,
                result.operator_role,
                result.reason,
                result.incident_id,
                result.feature,
                result.action,
                role,
                result.backend,
                location,
                result.flag,
                result.environment,
                json.dumps(result.before),
                json.dumps(result.after),
                str(result.outcome),
                result.message,
                result.error_code,
                result.latency_ms,
                int(result.changed),
            ),
        )


def entries(
    data_dir: Path,
    *,
    feature: str | None = None,
    outcome: str | None = None,
    incident_id: str | None = None,
    limit: int = 500,
) -> list[AuditEntry]:
    """Presses, newest first; `outcome="none"` lists those with no outcome recorded."""
    sql = """SELECT i.*, o.outcome AS o_outcome, o.message AS o_message,
                    o.latency_ms AS o_latency, o.changed AS o_changed,
                    o.before_json AS o_before, o.after_json AS o_after,
                    o.recorded_at AS o_at
             FROM flag_audit i
             LEFT JOIN flag_audit o ON o.action_id = i.action_id AND o.phase = 'outcome'
             WHERE i.phase = 'intent'
               AND (:feature IS NULL OR i.feature = :feature)
               AND (:incident IS NULL OR i.incident_id = :incident)
               AND (:outcome IS NULL OR o.outcome = :outcome
                    OR (:outcome = 'none' AND o.outcome IS NULL))
             ORDER BY i.seq DESC LIMIT :limit"""
    params = {"feature": feature, "incident": incident_id, "outcome": outcome, "limit": limit}
    led = _reading(data_dir)
    if led is None:
        return []
    with led.connect() as con:
        rows = con.execute(sql, params).fetchall()
    return [_entry(row) for row in rows]


def actions_for_incident(data_dir: Path, incident_id: str) -> list[AuditEntry]:
    """The presses recorded against an incident, oldest first (for its timeline)."""
    return list(reversed(entries(data_dir, incident_id=incident_id, limit=10_000)))


def _entry(row: Any) -> AuditEntry:
    has_outcome = row["o_outcome"] is not None
    return AuditEntry(
        action_id=row["action_id"],
        requested_at=_parse(row["recorded_at"]),
        operator=row["operator"],
        reason=row["reason"],
        incident_id=row["incident_id"],
        feature=row["feature"],
        action=row["action"],
        role=row["role"],
        backend=row["backend"],
        location=row["location"],
        flag=row["flag"],
        environment=row["environment"],
        before=json.loads(row["o_before"] if has_outcome else row["before_json"]),
        after=json.loads(row["o_after"] if has_outcome else row["after_json"]),
        outcome=row["o_outcome"],
        message=row["o_message"],
        latency_ms=row["o_latency"],
        changed=None if row["o_changed"] is None else bool(row["o_changed"]),
        finished_at=_parse(row["o_at"]) if has_outcome else None,
        operator_role=row["operator_role"] if "operator_role" in row.keys() else None,
    )


def _now() -> str:
    return utcnow().strftime(ISO)


def _iso(when: datetime) -> str:
    return when.strftime(ISO)


def _parse(text: str) -> datetime:
    return datetime.strptime(text, ISO)


def store_history(led: Ledger, backend: str, fetched: list[HistoryEntry]) -> None:
    with led.connect() as con, con:
        con.executemany(
            """INSERT OR IGNORE INTO flag_history (backend, entry_id, timestamp, flag,
                   environment, change, before, after, author, description)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    backend,
                    h.entry_id,
                    _iso(h.timestamp),
                    h.flag,
                    h.environment,
                    h.change,
                    h.before,
                    h.after,
                    h.author,
                    h.description,
                )
                for h in fetched
            ],
        )


def record_sync(
    led: Ledger, backend: str, attempted: datetime, synced: datetime | None, message: str | None
) -> None:
    with led.connect() as con, con:
        con.execute(
            """INSERT INTO flag_history_sync (backend, attempted_at, synced_at, message)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (backend) DO UPDATE SET attempted_at = excluded.attempted_at,
                   synced_at = COALESCE(excluded.synced_at, flag_history_sync.synced_at),
                   message = excluded.message""",
            (backend, _iso(attempted), _iso(synced) if synced else None, message),
        )


def history_rows(data_dir: Path) -> list[Any]:
    """The cached flag-system history entries, oldest first."""
    led = _reading(data_dir)
    if led is None:
        return []
    with led.connect() as con:
        return con.execute("SELECT * FROM flag_history ORDER BY timestamp").fetchall()


def sync_state(data_dir: Path, backend: str) -> Any:
    """When a backend's history was last attempted and last fetched (None if never)."""
    with ledger(data_dir).connect() as con:
        return con.execute(
            "SELECT attempted_at, synced_at FROM flag_history_sync WHERE backend = ?", (backend,)
        ).fetchone()


def parse_time(text: str) -> datetime:
    return _parse(text)
