"""Changes on record in the ledger, as change events: the console's own flag actions
(`rollback-desk`) and the flag systems' cached histories (`flag-audit`).

A backend's record of a change the console made itself is recognised by what the backend
recorded: the console sends `rollback-desk action <action id>` as the change's comment, and
a history entry whose comment names an action id of the audit trail is that action. A
backend that keeps no comment (Unleash's events) cannot be matched, so both are shown, the
backend's entry noting the console's action it may stand for: an outside change is never
hidden because it came soon after one of the console's own.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from app.changes.events import ChangeEvent
from app.flags.base import FlagError, FlagRole
from app.storage import trail
from app.storage.datadir import DataDir, as_datadir

KIND_BY_ROLE = {FlagRole.MODEL: "model", FlagRole.PROMPT: "prompt"}
# What the actions path writes as the comment of every change it sends (app/rollback/actions.py).
ACTION_COMMENT = re.compile(r"\brollback-desk action ([0-9a-f]{16})\b")


def change_events(
    data_dir: DataDir | Path,
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    own: bool = True,
) -> list[ChangeEvent]:
    """The console's own changes (`rollback-desk`, unless `own` is False) and the backends'
    cached histories (`flag-audit`) as change events, oldest first. A history entry the
    console's own action left is left out when its comment names that action."""
    dd = as_datadir(data_dir)
    entries = trail.entries(dd, limit=100_000)
    events = [e for e in _history_events(dd, entries) if _keep(e, feature, since, until)]
    if own:
        events += [e for e in _own_events(entries) if _keep(e, feature, since, until)]
    return sorted(events, key=lambda e: (e.timestamp, e.change_id))


def _own_events(entries: list[trail.AuditEntry]) -> list[ChangeEvent]:
    events = []
    for entry in entries:
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


# Backends whose history keeps the comment the console sends with a change.
KEEPS_COMMENTS = frozenset({"flagd-file", "launchdarkly"})
# In a backend that keeps no comment, an entry this close to one of the console's own
# changes of the same flag says so (it may be that change's record): shown, not hidden.
NEAR_OWN_S = 30


def _history_events(dd: DataDir, entries: list[trail.AuditEntry]) -> list[ChangeEvent]:
    own_ids = {e.action_id for e in entries}
    try:
        config = dd.flag_config()
    except FlagError:
        return []  # a broken flags.yaml is reported where flags are read and changed
    by_flag = {
        (feature.backend, ref.key): (feature.feature, ref.role)
        for feature in config.features.values()
        for ref in feature.flags.values()
    }
    events = []
    for row in trail.history_rows(dd):
        owner = by_flag.get((row["backend"], row["flag"]))
        if owner is None or is_own(row["description"], own_ids):
            continue
        feature, role = owner
        when = trail.parse_time(row["timestamp"]).replace(microsecond=0)
        description = row["description"] or row["change"]
        backend = config.backends.get(row["backend"])
        keeps_comments = backend is not None and backend.type in KEEPS_COMMENTS
        near = None if keeps_comments else _near_own(entries, row["flag"], when)
        if near is not None:
            description += (
                f" (within {NEAR_OWN_S} s of the console's action {near.action_id}; "
                f"{row['backend']} keeps no action id to tell whether it is that one)"
            )
        events.append(
            ChangeEvent(
                timestamp=when,
                feature=feature,
                kind=KIND_BY_ROLE.get(role, "flag"),
                key=row["flag"],
                from_value=row["before"],
                to_value=row["after"],
                author=row["author"],
                description=description,
                source="flag-audit",
            )
        )
    return events


def _near_own(entries: list[trail.AuditEntry], flag: str, when: datetime) -> trail.AuditEntry | None:
    return next(
        (
            e
            for e in entries
            if e.flag == flag and e.changed and abs((e.requested_at - when).total_seconds()) <= NEAR_OWN_S
        ),
        None,
    )


def is_own(comment: str | None, own_ids: set[str]) -> bool:
    """Whether a backend's history entry records one of the console's own actions: its
    comment names an action id that the audit trail holds."""
    match = ACTION_COMMENT.search(comment or "")
    return match is not None and match.group(1) in own_ids


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
