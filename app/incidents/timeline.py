"""An incident's timeline, assembled from every source that knows part of the story.

- `logs`: the onset of the degradation (the first degraded bucket);
- `changes`: declared, inferred and flag-history changes of the incident's features in the
  window (from a day before the onset until now, or until it was resolved);
- `audit`: every flag action recorded against the incident, with its verified outcome;
- `incident`: opening, status changes, steps done or skipped, notes, saved investigation;
- `notify`: every message sent, with its outcome.

Entries can be corrected (time, text); the correction is an incident event, so the original
and every correction stay in the entry's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from app.changes import recorded
from app.changes import timeline as changes
from app.changes.events import ChangeEvent
from app.incidents.log import Event, Incident, parse_iso
from app.storage import trail
from app.storage.datadir import DataDir
from app.storage.store import Store

CHANGES_BEFORE_ONSET = timedelta(hours=24)
ROLLBACK_ACTIONS = frozenset({"kill", "rollout", "pin-model", "revert-prompt", "pause"})


@dataclass
class Revision:
    time: datetime
    text: str
    changed_at: datetime | None = None  # None: the original
    actor: str | None = None
    reason: str | None = None


@dataclass
class Entry:
    key: str  # stable: what a correction targets
    time: datetime
    source: str  # logs | changes | audit | incident | notify
    kind: str
    text: str
    outcome: str | None = None
    actor: str | None = None
    history: list[Revision] = field(default_factory=list)

    @property
    def corrected(self) -> bool:
        return len(self.history) > 1


def assemble(data_dir: DataDir | Path, store: Store | None, incident: Incident, now: datetime) -> list[Entry]:
    """Every timeline entry of the incident, corrections applied, oldest first."""
    entries: list[Entry] = []
    if incident.onset is not None:
        metric = incident.metric or "quality"
        entries.append(
            Entry(
                "onset",
                incident.onset,
                "logs",
                "onset",
                f"Degradation of {metric} began in {', '.join(incident.features)} (first degraded bucket)",
            )
        )
    entries += _change_entries(data_dir, store, incident, changes_until(incident, now))
    actions = action_entries(data_dir, incident)
    entries += actions
    seen_actions = {e.key for e in actions}
    for event in incident.events:
        entry = _incident_entry(event, seen_actions)
        if entry is not None:
            entries.append(entry)
    _apply_corrections(entries, incident.events)
    return sorted(entries, key=lambda e: (e.time, e.key))


def changes_until(incident: Incident, now: datetime) -> datetime:
    """The end of the window of changes shown: now, or the last time a resolved incident was
    resolved (later changes are not part of its story)."""
    if incident.status != "resolved":
        return now
    times = [e.at for e in incident.events if e.kind == "status" and e.data["to"] == "resolved"]
    return max(times, default=now)


def action_entries(data_dir: DataDir | Path, incident: Incident) -> list[Entry]:
    """Flag actions recorded against the incident in the audit trail (CLI and app alike)."""
    out = []
    for a in trail.actions_for_incident(data_dir, incident.id):
        outcome = a.outcome or "no outcome recorded"
        change = f"{recorded.summary(a.before, a.role) or '?'} -> {recorded.summary(a.after, a.role) or '?'}"
        text = (
            f"{a.action} {a.flag} ({a.environment}): {change}: {outcome}"
            + (f" ({a.message})" if a.message else "")
            + (f"; reason: {a.reason}" if a.reason else "")
        )
        out.append(
            Entry(
                f"action:{a.action_id}",
                a.requested_at.replace(microsecond=0),
                "audit",
                a.action,
                text,
                outcome=outcome,
                actor=a.operator_label,
            )
        )
    return out


def first_verified_rollback(entries: list[Entry]) -> datetime | None:
    """Time of the first verified rollback action (the end of time-to-mitigate)."""
    times = [
        e.time
        for e in entries
        if e.source == "audit" and e.kind in ROLLBACK_ACTIONS and e.outcome == "verified"
    ]
    return min(times) if times else None


def _change_entries(
    data_dir: DataDir | Path, store: Store | None, incident: Incident, now: datetime
) -> list[Entry]:
    if incident.onset is None:
        return []
    since = incident.onset - CHANGES_BEFORE_ONSET
    events: list[ChangeEvent] = []
    for feature in incident.features:
        if store is not None:
            events += changes.list_changes(store, feature, since, now)
    # flag-history entries the backends keep (cached: nothing here calls a backend); the
    # console's own actions come from the audit trail as action entries
    events += [
        e
        for e in recorded.change_events(data_dir, None, since, now, own=False)
        if e.feature in incident.features
    ]
    out = []
    for e in events:
        what = f"{e.kind} {e.key or ''}: {e.from_value or '?'} -> {e.to_value or '?'}"
        by = f" by {e.author}" if e.author else ""
        text = f"{e.feature}: {what}{by} [{e.source}]" + (f" {e.description}" if e.description else "")
        out.append(
            Entry(
                f"change:{e.change_id}",
                e.timestamp.replace(microsecond=0),
                "changes",
                e.kind,
                text,
                actor=e.author,
            )
        )
    return out


def _incident_entry(event: Event, seen_actions: set[str]) -> Entry | None:
    d, key = event.data, f"event:{event.seq}"
    if event.kind == "opened":
        text = f"Incident opened: {d['title']} ({d['severity']})" + (
            f" from {d['source']}" if d.get("source") not in (None, "manual") else ""
        )
        return Entry(key, event.at, "incident", "opened", text, actor=event.actor)
    if event.kind == "status":
        return Entry(
            key, event.at, "incident", "status", f"Status {d.get('from')} -> {d['to']}", actor=event.actor
        )
    if event.kind == "note":
        return Entry(key, event.at, "incident", "note", d["text"], actor=event.actor)
    if event.kind == "field" and d["field"] in ("severity", "commander", "comms_lead", "playbook"):
        return Entry(
            key, event.at, "incident", "field", f"{d['field']} set to {d['value']}", actor=event.actor
        )
    if event.kind == "step" and d["state"] in ("done", "skipped"):
        why = f" ({d['reason']})" if d.get("reason") else ""
        return Entry(
            key, event.at, "incident", "step", f"Step {d['step_id']} {d['state']}{why}", actor=event.actor
        )
    if event.kind == "step_action" and f"action:{d.get('action_id')}" not in seen_actions:
        text = f"{d.get('action')} {d.get('flag')}: {d.get('outcome')} ({d.get('message')})"
        return Entry(
            f"action:{d.get('action_id')}",
            event.at,
            "audit",
            str(d.get("action")),
            text,
            outcome=d.get("outcome"),
            actor=event.actor,
        )
    if event.kind == "evidence":
        note = f": {d['note']}" if d.get("note") else ""
        return Entry(
            key,
            event.at,
            "incident",
            "evidence",
            f"Investigation saved: {d['title']}{note}",
            actor=event.actor,
        )
    if event.kind == "message":
        attempts = d.get("attempts")
        detail = d.get("detail") or ""
        text = (
            f"{d['template_title']} to {d['channel']}: {d['outcome']}"
            + (f" ({detail})" if detail else "")
            + (f", {attempts} attempt(s)" if attempts else "")
        )
        return Entry(key, event.at, "notify", "message", text, outcome=d["outcome"], actor=event.actor)
    return None


def _apply_corrections(entries: list[Entry], events: list[Event]) -> None:
    by_key = {e.key: e for e in entries}
    for e in entries:
        e.history = [Revision(e.time, e.text)]
    for event in events:
        if event.kind != "correction":
            continue
        entry = by_key.get(event.data["target"])
        if entry is None:
            continue
        new_time = parse_iso(event.data.get("time")) or entry.time
        new_text = event.data.get("text") or entry.text
        entry.time, entry.text = new_time, new_text
        entry.history.append(Revision(new_time, new_text, event.at, event.actor, event.data.get("reason")))


def format_duration(delta: timedelta | None) -> str:
    """`2 d 3 h 05 min`, `45 min`, `12 s`; `n/a` for None."""
    if delta is None:
        return "n/a"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h {minutes:02d} min"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{secs} s"
