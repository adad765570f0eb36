"""Incidents: an append-only event log per incident, and its current state folded from it.

Incidents live in the SQLite ledger of the data directory (`ledger.sqlite`, beside the DuckDB
file), not in DuckDB: the app, the CLI and `watch` write at the same time, and SQLite in WAL
mode lets several processes do that while a rollback never waits behind an ingest.

Every change is one appended event (opened, field, status, step, step_action, note, message,
correction, section, action_item); nothing is updated in place, so two browser sessions
editing the same incident lose no update. Changes that depend on the current state (a status
move, a post-mortem section edited from an older version) are checked inside the same
write transaction (`BEGIN IMMEDIATE`), so a stale edit is refused, not silently overwritten.
A write that fails raises `IncidentError` with a message for the person on call.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.access.identity import Identity
from app.access.roles import AccessDenied, Permission, require
from app.storage.datadir import DataDir
from app.storage.ledger import Ledger
from app.timestamps import machine, utcnow

STATUSES: tuple[str, ...] = ("investigating", "identified", "mitigated", "resolved")
SEVERITIES: tuple[str, ...] = ("SEV1", "SEV2", "SEV3", "SEV4")
STEP_STATES: tuple[str, ...] = ("done", "skipped", "pending")
FIELDS: tuple[str, ...] = (
    "title",
    "severity",
    "commander",
    "comms_lead",
    "features",
    "playbook",
    "metric",
    "onset",
    "suspect_change_ids",
)
SECTIONS: tuple[str, ...] = ("summary", "root_cause", "went_well", "went_wrong", "got_lucky")
ACTION_ITEM_TYPES: tuple[str, ...] = ("mitigate", "prevent", "process")

DDL = (
    """CREATE TABLE IF NOT EXISTS incidents (
        number INTEGER PRIMARY KEY,
        incident_id TEXT NOT NULL UNIQUE,
        opened_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS incident_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id TEXT NOT NULL REFERENCES incidents(incident_id),
        at TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS incident_events_by_incident ON incident_events(incident_id, seq)",
)


class IncidentError(RuntimeError):
    """A refused or failed incident write; `str()` says what happened and what to do."""


class IncidentNotFound(IncidentError):
    pass


class StaleEdit(IncidentError):
    """Someone else changed the same thing since this edit's base version."""


def now_utc() -> datetime:
    return utcnow().replace(microsecond=0)


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.replace(microsecond=0).isoformat()


def parse_iso(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


@dataclass(frozen=True)
class Event:
    seq: int
    incident_id: str
    at: datetime
    recorded_at: datetime
    kind: str
    actor: str | None
    data: dict[str, Any]


@dataclass
class StepProgress:
    state: str = "pending"
    at: datetime | None = None
    actor: str | None = None
    reason: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)  # results of this step's actions

    @property
    def verified(self) -> bool:
        return any(a.get("outcome") == "verified" for a in self.actions)


@dataclass
class Incident:
    id: str
    opened_at: datetime
    title: str
    severity: str
    status: str
    commander: str | None = None
    comms_lead: str | None = None
    features: list[str] = field(default_factory=list)
    playbook: str | None = None
    metric: str | None = None
    onset: datetime | None = None
    suspect_change_ids: list[str] = field(default_factory=list)
    finding: dict[str, Any] | None = None
    source: str = "manual"
    steps: dict[str, StepProgress] = field(default_factory=dict)
    sections: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (text, seq)
    action_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    version: int = 0  # seq of the last event

    @property
    def feature(self) -> str | None:
        return self.features[0] if self.features else None

    def step(self, step_id: str) -> StepProgress:
        return self.steps.get(step_id, StepProgress())

    def first_time_in(self, status: str) -> datetime | None:
        for e in self.events:
            if e.kind == "status" and e.data["to"] == status:
                return e.at
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "opened_at": machine(self.opened_at),
            "commander": self.commander,
            "comms_lead": self.comms_lead,
            "features": self.features,
            "playbook": self.playbook,
            "metric": self.metric,
            "onset": machine(self.onset),
            "suspect_change_ids": self.suspect_change_ids,
            "version": self.version,
        }


class IncidentLog:
    """The incidents of one data directory.

    With an `identity` (the console passes the signed-in or local person) every write is
    checked against its role and recorded under its name and role, whatever actor the
    caller names; a viewer's write is refused."""

    def __init__(self, data_dir: DataDir | Path, identity: Identity | None = None) -> None:
        self.ledger = data_dir.ledger if isinstance(data_dir, DataDir) else Ledger(Path(data_dir))
        self.identity = identity

    def _writer(self, actor: str | None) -> str | None:
        if self.identity is None:
            return actor
        try:
            require(self.identity, Permission.INCIDENT_WRITE)
        except AccessDenied as exc:
            raise IncidentError(str(exc)) from None
        return self.identity.label

    def _connect(self):
        try:
            self.ledger.ensure_tables("incidents", DDL)
            return self.ledger.connect()
        except sqlite3.Error as exc:
            raise IncidentError(f"incident store {self.ledger.path} unavailable: {exc}") from exc

    # Writing ------------------------------------------------------------------------------

    def open(
        self,
        title: str,
        features: list[str],
        severity: str = "SEV3",
        *,
        commander: str | None = None,
        comms_lead: str | None = None,
        playbook: str | None = None,
        metric: str | None = None,
        onset: datetime | None = None,
        suspect_change_ids: list[str] | None = None,
        finding: dict[str, Any] | None = None,
        source: str = "manual",
        actor: str | None = None,
        at: datetime | None = None,
    ) -> Incident:
        """Open an incident in status `investigating`; returns it with its new id."""
        actor = self._writer(actor)
        if not title.strip():
            raise IncidentError("an incident needs a title")
        _check_severity(severity)
        at = at or now_utc()
        data = {
            "title": title.strip(),
            "severity": severity,
            "commander": commander,
            "comms_lead": comms_lead,
            "features": list(features),
            "playbook": playbook,
            "metric": metric,
            "onset": iso(onset),
            "suspect_change_ids": list(suspect_change_ids or []),
            "finding": finding,
            "source": source,
        }
        with self._connect() as con:
            try:
                con.execute("BEGIN IMMEDIATE")
                number = con.execute("SELECT coalesce(max(number), 0) + 1 FROM incidents").fetchone()[0]
                incident_id = f"INC-{number:04d}"
                con.execute("INSERT INTO incidents VALUES (?, ?, ?)", [number, incident_id, iso(at)])
                _insert(con, incident_id, at, "opened", actor, data)
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(con)
                raise IncidentError(f"could not open the incident: {exc}") from exc
        return self.get(incident_id)

    def append(
        self,
        incident_id: str,
        kind: str,
        data: dict[str, Any],
        actor: str | None = None,
        at: datetime | None = None,
        check: Callable[[Incident], dict[str, Any] | None] | None = None,
    ) -> Incident:
        """Append one event; `check(incident)` runs on the current state inside the write
        transaction: it raises to refuse the event, or returns fields to add to it."""
        actor = self._writer(actor)
        with self._connect() as con:
            try:
                con.execute("BEGIN IMMEDIATE")
                incident = _fold(incident_id, _events(con, incident_id))
                extra = check(incident) if check is not None else None
                _insert(con, incident_id, at or now_utc(), kind, actor, {**data, **(extra or {})})
                con.execute("COMMIT")
            except IncidentError:
                _rollback(con)
                raise
            except sqlite3.Error as exc:
                _rollback(con)
                raise IncidentError(f"could not save the {kind} on {incident_id}: {exc}") from exc
        return self.get(incident_id)

    def set_status(
        self, incident_id: str, status: str, actor: str | None = None, at: datetime | None = None
    ) -> Incident:
        if status not in STATUSES:
            raise IncidentError(f"status {status!r} is not one of {', '.join(STATUSES)}")

        def check(incident: Incident) -> dict[str, Any]:
            old = STATUSES.index(incident.status)
            new = STATUSES.index(status)
            if new == old:
                raise StaleEdit(f"{incident_id} is already {status}")
            if new < old and status != "investigating":
                raise IncidentError(
                    f"{incident_id} is {incident.status}: it can move forward, or be "
                    f"reopened as investigating, not go back to {status}"
                )
            return {"from": incident.status}

        return self.append(incident_id, "status", {"to": status}, actor, at, check)

    def set_field(self, incident_id: str, name: str, value: Any, actor: str | None = None) -> Incident:
        if name not in FIELDS:
            raise IncidentError(f"field {name!r} is not one of {', '.join(FIELDS)}")
        if name == "severity":
            _check_severity(value)
        if isinstance(value, datetime):
            value = iso(value)
        return self.append(incident_id, "field", {"field": name, "value": value}, actor)

    def add_note(
        self, incident_id: str, text: str, actor: str | None = None, at: datetime | None = None
    ) -> Incident:
        if not text.strip():
            raise IncidentError("a note needs some text")
        return self.append(incident_id, "note", {"text": text.strip()}, actor, at)

    def record_step_action(
        self, incident_id: str, step_id: str, result: dict[str, Any], actor: str | None = None
    ) -> Incident:
        """A flag action run from a step; a verified one marks the step done."""
        return self.append(incident_id, "step_action", {"step_id": step_id, **result}, actor)

    def mark_step(
        self,
        incident_id: str,
        step_id: str,
        state: str,
        actor: str | None = None,
        reason: str | None = None,
        needs_verified_action: bool = False,
    ) -> Incident:
        """Mark a step done, skipped or pending again. A step that carries flag actions is only
        done after one of them was verified."""
        if state not in STEP_STATES:
            raise IncidentError(f"step state {state!r} is not one of {', '.join(STEP_STATES)}")

        def check(incident: Incident) -> None:
            if state == "done" and needs_verified_action and not incident.step(step_id).verified:
                raise IncidentError(
                    f"step {step_id} runs a flag action: it is done once an action "
                    "is verified (or skip it with a reason)"
                )

        return self.append(
            incident_id, "step", {"step_id": step_id, "state": state, "reason": reason}, actor, check=check
        )

    def correct(
        self,
        incident_id: str,
        target: str,
        *,
        time: datetime | None = None,
        text: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Correct a timeline entry's time or text; the original and each correction are kept."""
        if time is None and not (text and text.strip()):
            raise IncidentError("a correction changes the time, the text or both")
        return self.append(
            incident_id,
            "correction",
            {"target": target, "time": iso(time), "text": text, "reason": reason},
            actor,
        )

    def set_section(
        self,
        incident_id: str,
        section: str,
        text: str,
        actor: str | None = None,
        base_version: int | None = None,
    ) -> Incident:
        """Save a post-mortem section. With `base_version` (the seq the editor started from),
        an edit made since by someone else is not overwritten: StaleEdit is raised."""
        if section not in SECTIONS:
            raise IncidentError(f"section {section!r} is not one of {', '.join(SECTIONS)}")

        def check(incident: Incident) -> None:
            current = incident.sections.get(section)
            if base_version is not None and current and current[1] > base_version:
                who = next((e.actor for e in incident.events if e.seq == current[1]), None) or "someone"
                raise StaleEdit(
                    f"{who} changed '{section}' since you started editing; "
                    f"their text is kept: reload and merge your edit"
                )

        return self.append(incident_id, "section", {"section": section, "text": text}, actor, check=check)

    def set_action_item(
        self,
        incident_id: str,
        text: str,
        owner: str | None,
        kind: str,
        item_id: str | None = None,
        removed: bool = False,
        actor: str | None = None,
    ) -> Incident:
        if kind not in ACTION_ITEM_TYPES:
            raise IncidentError(f"action item type {kind!r} is not one of {', '.join(ACTION_ITEM_TYPES)}")
        if not removed and not text.strip():
            raise IncidentError("an action item needs some text")
        if item_id is None:
            item_id = f"AI-{uuid.uuid4().hex[:8]}"
        return self.append(
            incident_id,
            "action_item",
            {"item_id": item_id, "text": text.strip(), "owner": owner, "type": kind, "removed": removed},
            actor,
        )

    # Reading ------------------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident:
        with self._connect() as con:
            events = _events(con, incident_id)
        return _fold(incident_id, events)

    def list(self) -> list[Incident]:
        """Every incident, newest first."""
        with self._connect() as con:
            ids = [r[0] for r in con.execute("SELECT incident_id FROM incidents ORDER BY number DESC")]
            return [_fold(i, _events(con, i)) for i in ids]


def _check_severity(value: Any) -> None:
    if value not in SEVERITIES:
        raise IncidentError(f"severity {value!r} is not one of {', '.join(SEVERITIES)}")


def _rollback(con: sqlite3.Connection) -> None:
    if con.in_transaction:
        con.execute("ROLLBACK")


def _insert(
    con: sqlite3.Connection,
    incident_id: str,
    at: datetime,
    kind: str,
    actor: str | None,
    data: dict[str, Any],
) -> None:
    con.execute(
        "INSERT INTO incident_events (incident_id, at, recorded_at, kind, actor, data) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [incident_id, iso(at), iso(now_utc()), kind, actor, json.dumps(data, default=str)],
    )


def _events(con: sqlite3.Connection, incident_id: str) -> list[Event]:
    rows = con.execute(
        "SELECT seq, incident_id, at, recorded_at, kind, actor, data FROM incident_events "
        "WHERE incident_id = ? ORDER BY seq",
        [incident_id],
    ).fetchall()
    return [Event(r[0], r[1], parse_iso(r[2]), parse_iso(r[3]), r[4], r[5], json.loads(r[6])) for r in rows]


# Incidents recorded before the quality metric took its one name keep their metric.
_RENAMED_METRICS = {"quality_mean": "quality_score"}


def _metric(name: str | None) -> str | None:
    return _RENAMED_METRICS.get(name, name) if name else name


def _fold(incident_id: str, events: list[Event]) -> Incident:
    if not events or events[0].kind != "opened":
        raise IncidentNotFound(f"no incident {incident_id}")
    d = events[0].data
    inc = Incident(
        id=incident_id,
        opened_at=events[0].at,
        title=d["title"],
        severity=d["severity"],
        status="investigating",
        commander=d.get("commander"),
        comms_lead=d.get("comms_lead"),
        features=list(d.get("features") or []),
        playbook=d.get("playbook"),
        metric=_metric(d.get("metric")),
        onset=parse_iso(d.get("onset")),
        suspect_change_ids=list(d.get("suspect_change_ids") or []),
        finding=d.get("finding"),
        source=d.get("source", "manual"),
    )
    for e in events[1:]:
        d = e.data
        if e.kind == "status":
            inc.status = d["to"]
        elif e.kind == "finding":  # the analysis run for the incident (app/incidents/attach.py)
            inc.finding = d.get("finding") or inc.finding
        elif e.kind == "field":
            value = parse_iso(d["value"]) if d["field"] == "onset" else d["value"]
            setattr(inc, d["field"], _metric(value) if d["field"] == "metric" else value)
        elif e.kind == "step":
            progress = inc.steps.setdefault(d["step_id"], StepProgress())
            progress.state, progress.at, progress.actor = d["state"], e.at, e.actor
            progress.reason = d.get("reason")
        elif e.kind == "step_action":
            progress = inc.steps.setdefault(d["step_id"], StepProgress())
            if any(a.get("action_id") == d.get("action_id") for a in progress.actions):
                continue  # two sessions linked the same action
            progress.actions.append(d)
            if d.get("outcome") == "verified":
                progress.state, progress.at, progress.actor = "done", e.at, e.actor
        elif e.kind == "section":
            inc.sections[d["section"]] = (d["text"], e.seq)
        elif e.kind == "action_item":
            if d.get("removed"):
                inc.action_items.pop(d["item_id"], None)
            else:
                inc.action_items[d["item_id"]] = {**d, "seq": e.seq}
    inc.events = events
    inc.version = events[-1].seq
    return inc
