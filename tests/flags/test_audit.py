"""The audit trail is append-only and feeds the change timeline; backend histories are
cached and refreshed at most once per interval."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from app.changes import recorded
from app.rollback import actions, history
from app.storage import trail


def test_each_press_writes_an_intent_then_an_outcome(flag_dir: Path) -> None:
    actions.execute(flag_dir, "support-reply", "kill", operator="ana", reason="r")
    with trail.ledger(flag_dir).connect() as con:
        rows = con.execute("SELECT phase, outcome FROM flag_audit ORDER BY seq").fetchall()
    assert [tuple(r) for r in rows] == [("intent", None), ("outcome", "verified")]


def test_rows_can_be_neither_changed_nor_deleted(flag_dir: Path) -> None:
    actions.execute(flag_dir, "support-reply", "kill", operator="ana")
    with trail.ledger(flag_dir).connect() as con:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE flag_audit SET operator = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM flag_audit")


def test_change_events_cover_own_actions_and_backend_history(flag_dir: Path) -> None:
    actions.execute(flag_dir, "support-reply", "revert-prompt", operator="ana", reason="v8 bad")
    actions.execute(flag_dir, "support-reply", "revert-prompt", "v7", operator="bo")  # no-op
    history.sync_history(flag_dir)
    events = recorded.change_events(flag_dir, feature="support-reply")
    assert [(e.source, e.kind, e.from_value, e.to_value) for e in events] == [
        ("flag-audit", "prompt", "v7", "v8"),
        ("rollback-desk", "prompt", "v8", "v7"),
    ]
    assert events[0].timestamp == datetime(2026, 11, 20, 14, 0)
    assert events[1].author == "ana" and "v8 bad" in events[1].description


def test_change_events_filter_by_time_window(flag_dir: Path) -> None:
    history.sync_history(flag_dir)
    window = recorded.change_events(flag_dir, since=datetime(2026, 11, 19), until=datetime(2026, 11, 21, 12))
    assert [(e.feature, e.key) for e in window] == [
        ("support-reply", "support-reply-prompt"),
        ("doc-summarizer", "doc-summarizer-canary"),
    ]


def test_sync_is_rate_limited_unless_forced(flag_dir: Path) -> None:
    assert history.sync_history(flag_dir)["local"].startswith("synced")
    assert history.sync_history(flag_dir) == {"local": "cached"}
    assert history.sync_history(flag_dir, force=True)["local"].startswith("synced")


def test_actions_for_an_incident_oldest_first(flag_dir: Path) -> None:
    actions.execute(flag_dir, "doc-summarizer", "rollout", 0, incident_id="INC-3")
    actions.execute(flag_dir, "support-reply", "kill", incident_id="INC-4")
    actions.execute(flag_dir, "doc-summarizer", "kill", incident_id="INC-3")
    listed = trail.actions_for_incident(flag_dir, "INC-3")
    assert [e.action for e in listed] == ["rollout", "kill"]
