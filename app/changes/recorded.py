"""Changes on record in the ledger, as change events: the console's own flag actions
(`rollback-desk`) and the flag systems' cached histories (`flag-audit`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from app.changes.events import ChangeEvent
from app.flags.base import FlagError, FlagRole
from app.flags.config import load_config
from app.storage import trail

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
    for entry in trail.entries(data_dir, limit=100_000):
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
    rows = trail.history_rows(data_dir)
    events = []
    for row in rows:
        owner = by_flag.get((row["backend"], row["flag"]))
        if owner is None:
            continue
        feature, role = owner
        events.append(
            ChangeEvent(
                timestamp=trail.parse_time(row["timestamp"]).replace(microsecond=0),
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
