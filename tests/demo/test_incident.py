"""The incident the demo ships: replayed through the incident log and the console's rollback
path at the times of its story, so the audit trail, the flag file's history, the incident
and the logs tell the same story."""

from __future__ import annotations

import ast
import json
import threading
from datetime import datetime
from pathlib import Path

from app.changes import timeline as changes
from app.demo import incident as story
from app.demo.flags import FLAG_FILE
from app.flags.flagd_file import FlagdFileBackend
from app.incidents import postmortem
from app.incidents.log import IncidentLog
from app.review.report import week_bounds, weekly_review
from app.storage import trail
from app.storage.store import Store
from app.timestamps import replaying, utcnow

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_ships_one_resolved_incident_opened_by_the_person_on_call(demo_dir: Path):
    [inc] = IncidentLog(demo_dir).list()
    assert (inc.id, inc.status, inc.severity, inc.source) == ("INC-0001", "resolved", "SEV3", "manual")
    assert inc.features == ["support-reply"] and inc.playbook == "prompt-regression"
    assert (inc.onset, inc.opened_at) == (datetime(2026, 11, 4, 13), datetime(2026, 11, 4, 13, 35))
    assert inc.first_time_in("mitigated") == datetime(2026, 11, 4, 16, 35)
    assert inc.first_time_in("resolved") == datetime(2026, 11, 4, 18, 30)
    # its suspect is the declared prompt change the logs show: v7 -> v7.1 at 13:00
    [suspect] = inc.suspect_change_ids
    [change] = [c for c in changes.list_changes(Store(demo_dir), "support-reply") if c.change_id == suspect]
    assert (change.source, change.from_value, change.to_value) == ("declared", "v7", "v7.1")
    assert len(inc.action_items) == 2 and {"summary", "root_cause"} <= set(inc.sections)
    assert inc.step("revert-prompt").verified  # the rollback is linked to the playbook step


def test_the_rollback_is_on_the_audit_trail_and_in_the_flag_history_at_the_same_time(demo_dir: Path):
    [action] = trail.actions_for_incident(demo_dir, "INC-0001")
    assert (action.action, action.flag, action.outcome, action.operator) == (
        "revert-prompt",
        "support-reply-prompt",
        "verified",
        "sam",
    )
    assert (action.before["variant"], action.after["variant"]) == ("v7.1", "v7")
    assert action.requested_at.replace(microsecond=0) == datetime(2026, 11, 4, 16, 30)
    history = FlagdFileBackend(demo_dir / FLAG_FILE).history()
    [line] = [h for h in history if action.action_id in (h.description or "")]
    assert (line.flag, line.before, line.after) == ("support-reply-prompt", "v7.1", "v7")
    assert abs((line.timestamp - action.requested_at).total_seconds()) < 5
    # the change it undid is in the flag system's own history too, at the onset
    [shipped] = [h for h in history if h.after == "v7.1"]
    assert shipped.timestamp.replace(microsecond=0) == datetime(2026, 11, 4, 13)
    # and the flag file ends as the demo week does: v8 served
    flags = json.loads((demo_dir / FLAG_FILE).read_text())["flags"]
    assert flags["support-reply-prompt"]["defaultVariant"] == "v8"


def test_the_logs_agree_with_the_incident_v71_answers_only_between_onset_and_rollback(demo_dir: Path):
    [(first, last)] = Store(demo_dir).rows(
        "SELECT min(timestamp), max(timestamp) FROM requests "
        "WHERE feature = 'support-reply' AND prompt_version = 'v7.1'"
    )
    assert story.ONSET <= first < story.OPENED
    assert last < story.ROLLED_BACK


def test_the_review_of_its_week_shows_ttd_ttm_ttr_and_later_weeks_carry_it_as_still_open(demo_dir: Path):
    store = Store(demo_dir)
    w45 = weekly_review(store, week_bounds("2026-W45"))
    [inc] = w45.incidents
    minutes = story.Minutes()
    assert (minutes.ttd, minutes.ttm, minutes.ttr) == (35, 210, 330)
    assert round(inc.ttd_min, 1) == 35.0
    assert round(inc.ttm_min, 1) == 210.0  # the rollback, seconds after 16:30
    assert round(inc.ttr_min, 1) == 330.0
    assert (inc.rolled_back, inc.detected_by, inc.open_action_items) == (True, "person", 2)
    assert w45.still_open == ()
    w47 = weekly_review(store, week_bounds("2026-W47"))
    assert w47.incidents == ()
    assert [i.id for i in w47.still_open] == ["INC-0001"]
    assert weekly_review(store, week_bounds("2026-W44")).still_open == ()  # not yet opened


def test_the_postmortem_of_the_demo_incident_reads_as_its_story(demo_dir: Path):
    text = postmortem.export(demo_dir, "INC-0001")
    assert "| Time to detect | 35 min |" in text
    assert "| Time to mitigate (from onset) | 3 h 30 min |" in text
    assert "| Time to resolve (from onset) | 5 h 30 min |" in text
    assert "revert-prompt support-reply-prompt (production): v7.1 -> v7: verified" in text
    timeline = text[text.index("## Timeline") : text.index("## Actions taken")]
    # a resolved incident's timeline stops at its resolution: the demo week's v8 is not in it
    assert "v7 -> v8" not in timeline and "2026-11-04 13:00:00 UTC | logs" in timeline


def test_replaying_sets_the_time_for_its_own_thread_only():
    seen: list[datetime] = []
    with replaying(datetime(2026, 11, 4, 16, 30)):
        inside = utcnow()
        other = threading.Thread(target=lambda: seen.append(utcnow()))
        other.start()
        other.join()
    assert datetime(2026, 11, 4, 16, 30) <= inside < datetime(2026, 11, 4, 16, 31)
    assert seen[0] > datetime(2026, 11, 4, 16, 31)  # another thread keeps the real time
    assert utcnow() > datetime(2026, 11, 4, 16, 31)


def test_only_the_demo_replays_time():
    users = []
    for path in (ROOT / "app").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and any(a.name == "replaying" for a in node.names):
                users.append(path.relative_to(ROOT).parts[:2])
    assert users and set(users) == {("app", "demo")}


def test_the_incidents_page_opens_on_the_demo_incident_with_its_numbers(demo_dir: Path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app/ui/streamlit_app.py"), default_timeout=90)
    at.run()
    at.switch_page("views/incidents.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="incident_select").value == "INC-0001"
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Status"], shown["Severity"], shown["Time to detect"]) == ("resolved", "SEV3", "35 min")
    # the same requests the post-mortem counts from the logs
    pm = postmortem.export(demo_dir, "INC-0001")
    [row] = [line for line in pm.splitlines() if line.startswith("| Requests affected |")]
    assert shown["Requests affected"] == row.split("|")[2].strip()


def test_the_demo_is_set_up_with_the_rollups_a_load_defers_already_built(demo_dir: Path):
    # The first page shown does not pay for them (docs/aggregates.md).
    store = Store(demo_dir)
    assert store.scalar("SELECT count(*) FROM rollup_pending") == 0
    dims = store.scalar("SELECT sum(requests) FROM agg_dim_1h WHERE dimension = 'model'")
    assert dims == store.request_count()
