"""The append-only audit trail of flag actions, and the flag-change history cache.

Every press of an action button (or CLI command) writes two rows: the intent, before the
backend is called, and the outcome, after the read-back. A process that dies in between
leaves its intent on record, shown as "no outcome recorded". Rows are never updated or
deleted (triggers refuse it). Tokens never reach this module: rows hold flag names, states,
operators, reasons and messages only.

Backends' own change histories are cached in `flag_history` by `sync_history`, at most once
per `min_interval_s`, so rendering a page never hammers a flag server.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.changes import ChangeEvent
from app.flags.base import ActionResult, FlagError, FlagRole, HistoryEntry
from app.flags.config import load_config
from app.ledger import Ledger

DDL = (
    """CREATE TABLE IF NOT EXISTS flag_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        action_id TEXT NOT NULL,
        phase TEXT NOT NULL CHECK (phase IN ('intent', 'outcome')),
        recorded_at TEXT NOT NULL,
        operator TEXT, reason TEXT, incident_id TEXT,
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "requested_at": _iso(self.requested_at),
            "finished_at": _iso(self.finished_at) if self.finished_at else None,
            "operator": self.operator,
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


def ledger(data_dir: Path) -> Ledger:
    led = Ledger(Path(data_dir))
    led.ensure_tables("audit", DDL)
    return led


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
) -> None:
    with ledger(data_dir).connect() as con, con:
        con.execute(
            """INSERT INTO flag_audit (action_id, phase, recorded_at, operator, reason,
                   incident_id, feature, action, role, backend, location, flag, environment,
                   before_json, after_json)
               VALUES (?, 'intent', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (action_id, _now(), operator, reason, incident_id, feature, action, role, backend,
             location, flag, environment, json.dumps(before), json.dumps(after)),
        )


def record_outcome(data_dir: Path, result: ActionResult, role: str, location: str) -> None:
    with ledger(data_dir).connect() as con, con:
        con.execute(
            """INSERT INTO flag_audit (action_id, phase, recorded_at, operator, reason,
                   incident_id, feature, action, role, backend, location, flag, environment,
                   before_json, after_json, outcome, message, error_code, latency_ms, changed)
               VALUES (?, 'outcome', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (result.action_id, _now(), result.operator, result.reason, result.incident_id,
             result.feature, result.action, role, result.backend, location, result.flag,
             result.environment, json.dumps(result.before), json.dumps(result.after),
             str(result.outcome), result.message, result.error_code, result.latency_ms,
             int(result.changed)),
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
    with ledger(data_dir).connect() as con:
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
    )


# -- change events -------------------------------------------------------------------------
KIND_BY_ROLE = {FlagRole.MODEL: "model", FlagRole.PROMPT: "prompt"}


def change_events(
    data_dir: Path,
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ChangeEvent]:
    """The console's own changes (`rollback-desk`) and the backends' cached histories
    (`flag-audit`) as change events, oldest first. A backend's record of a change the
    console made itself is left out: the console's own event already stands for it."""
    own = [e for e in _own_events(data_dir) if _keep(e, feature, since, until)]
    own_keys = {(e.key, e.timestamp) for e in own}
    external = [
        e for e in _history_events(data_dir)
        if _keep(e, feature, since, until) and not _is_own(e, own_keys)
    ]
    return sorted(own + external, key=lambda e: (e.timestamp, e.change_id))


def _own_events(data_dir: Path) -> list[ChangeEvent]:
    events = []
    for entry in entries(data_dir, limit=100_000):
        if entry.outcome not in ("verified", "unverified") or not entry.changed:
            continue
        events.append(
            ChangeEvent(
                timestamp=entry.requested_at.replace(microsecond=0),
                feature=entry.feature,
                kind=KIND_BY_ROLE.get(FlagRole(entry.role), "flag"),
                key=entry.flag,
                from_value=summary(entry.before, entry.role) or None,
                to_value=summary(entry.after, entry.role) or None,
                author=entry.operator,
                description=f"{entry.action} ({entry.outcome})"
                + (f": {entry.reason}" if entry.reason else ""),
                source="rollback-desk",
            )
        )
    return events


def _history_events(data_dir: Path) -> list[ChangeEvent]:
    try:
        config = load_config(data_dir)
    except FlagError:
        return []
    by_flag = {
        (feature.backend, ref.key): (feature.feature, ref.role)
        for feature in config.features.values()
        for ref in feature.flags.values()
    }
    with ledger(data_dir).connect() as con:
        rows = con.execute("SELECT * FROM flag_history ORDER BY timestamp").fetchall()
    events = []
    for row in rows:
        owner = by_flag.get((row["backend"], row["flag"]))
        if owner is None:
            continue
        feature, role = owner
        events.append(
            ChangeEvent(
                timestamp=_parse(row["timestamp"]).replace(microsecond=0),
                feature=feature,
                kind=KIND_BY_ROLE.get(role, "flag"),
                key=row["flag"],
                from_value=row["before"],
                to_value=row["after"],
                author=row["author"],
                description=row["description"] or row["change"],
                source="flag-audit",
            )
        )
    return events


def _is_own(event: ChangeEvent, own_keys: set[tuple[str | None, datetime]]) -> bool:
    if event.description and "rollback-desk action" in event.description:
        return True
    return any(
        key == event.key and abs((when - event.timestamp).total_seconds()) <= 30
        for key, when in own_keys
    )


def _keep(e: ChangeEvent, feature: str | None, since: datetime | None, until: datetime | None):
    return (
        (feature is None or e.feature == feature)
        and (since is None or e.timestamp >= since)
        and (until is None or e.timestamp <= until)
    )


def summary(state: dict[str, Any], role: str) -> str:
    """The part of a flag's state its role cares about: on/off, a percentage, a version."""
    if role in (FlagRole.MODEL, FlagRole.PROMPT):
        value = state.get("variant")
        return "split" if value is None and state else str(value or "")
    if role == FlagRole.ROLLOUT:
        pct = state.get("rollout_percentage")
        return "" if pct is None else f"{pct:g}%"
    if state.get("enabled") is None:
        return ""
    return "on" if state["enabled"] else "off"


# -- backend history cache ----------------------------------------------------------------
def sync_history(
    data_dir: Path,
    *,
    min_interval_s: float = 60.0,
    force: bool = False,
    lookback: timedelta = timedelta(days=30),
) -> dict[str, str]:
    """Fetch each configured backend's history into the cache, unless fetched within
    `min_interval_s`. Returns a status line per backend; errors are recorded, not raised."""
    from app.flags.registry import build_backend

    config = load_config(data_dir)
    status: dict[str, str] = {}
    led = ledger(data_dir)
    now = datetime.now(UTC).replace(tzinfo=None)
    for name, cfg in config.backends.items():
        with led.connect() as con:
            row = con.execute(
                "SELECT attempted_at, synced_at FROM flag_history_sync WHERE backend = ?", (name,)
            ).fetchone()
        if row and not force and (now - _parse(row["attempted_at"])).total_seconds() < min_interval_s:
            status[name] = "cached"
            continue
        since = _parse(row["synced_at"]) - timedelta(minutes=5) if row and row["synced_at"] else None
        try:
            fetched = build_backend(cfg).history(since or now - lookback)
        except FlagError as exc:
            _record_sync(led, name, now, None, exc.message)
            status[name] = f"failed: {exc.message}"
            continue
        _store_history(led, name, fetched)
        _record_sync(led, name, now, now, None)
        status[name] = f"synced {len(fetched)} entries"
    return status


def _store_history(led: Ledger, backend: str, fetched: list[HistoryEntry]) -> None:
    with led.connect() as con, con:
        con.executemany(
            """INSERT OR IGNORE INTO flag_history (backend, entry_id, timestamp, flag,
                   environment, change, before, after, author, description)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(backend, h.entry_id, _iso(h.timestamp), h.flag, h.environment, h.change,
              h.before, h.after, h.author, h.description) for h in fetched],
        )


def _record_sync(
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


def _now() -> str:
    return datetime.now(UTC).strftime(ISO)


def _iso(when: datetime) -> str:
    return when.strftime(ISO)


def _parse(text: str) -> datetime:
    return datetime.strptime(text, ISO)
