"""The merged change timeline: stored changes (declared and inferred) and the changes on
record in the ledger (the console's own actions and the flag systems' histories)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.changes import recorded
from app.changes.events import ChangeEvent
from app.storage.store import Store


def list_changes(
    store: Store, feature: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[ChangeEvent]:
    """Stored change events (declared and inferred), oldest first."""
    rows = store.rows(
        """SELECT change_id, timestamp, feature, kind, key, from_value, to_value, author,
                  description, source, silent_update
           FROM changes
           WHERE (? IS NULL OR feature = ?) AND (? IS NULL OR timestamp >= ?)
             AND (? IS NULL OR timestamp <= ?)
           ORDER BY timestamp, change_id""",
        [feature, feature, since, since, until, until],
    )
    events = [
        ChangeEvent(
            change_id=r[0],
            timestamp=r[1],
            feature=r[2],
            kind=r[3],
            key=r[4],
            from_value=r[5],
            to_value=r[6],
            author=r[7],
            description=r[8],
            source=r[9],
            silent_update=bool(r[10]),
        )
        for r in rows
    ]
    return _without_confirmed(events)


CONFIRM_WINDOW = timedelta(hours=1)


def _without_confirmed(events: list[ChangeEvent]) -> list[ChangeEvent]:
    """Drop an inferred event that a declared one already tells (same feature, kind and new
    value within an hour): one change, one marker."""
    declared = [e for e in events if e.source == "declared"]

    def confirmed(e: ChangeEvent) -> bool:
        return any(
            d.feature == e.feature
            and d.kind == e.kind
            and d.to_value == e.to_value
            and abs(d.timestamp - e.timestamp) <= CONFIRM_WINDOW
            for d in declared
        )

    return [e for e in events if e.source != "inferred" or not confirmed(e)]


def timeline_changes(
    store: Store, feature: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[ChangeEvent]:
    """Every change event for the timeline: declared, inferred, and the flag systems' and the
    console's own (from the audit trail and cached backend histories)."""

    events = list_changes(store, feature, since, until)
    events += recorded.change_events(store.data_dir, feature=feature, since=since, until=until)
    return sorted(events, key=lambda e: (e.timestamp, e.change_id))
