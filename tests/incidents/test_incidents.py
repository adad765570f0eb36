"""Incident lifecycle, corrections, post-mortem sections, durability and concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from app.incidents.log import IncidentError, IncidentLog, IncidentNotFound, StaleEdit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log(tmp_path: Path) -> IncidentLog:
    return IncidentLog(tmp_path)


def test_an_incident_opens_investigating_and_moves_through_its_lifecycle(log):
    inc = log.open("Quality drop", ["support-reply"], "SEV2", commander="ana", actor="ana")
    assert (inc.id, inc.status, inc.severity, inc.commander) == ("INC-0001", "investigating", "SEV2", "ana")
    for status in ("identified", "mitigated", "resolved"):
        inc = log.set_status(inc.id, status, actor="ana")
    assert inc.status == "resolved"
    moves = [(e.data.get("from"), e.data["to"]) for e in inc.events if e.kind == "status"]
    assert moves == [("investigating", "identified"), ("identified", "mitigated"), ("mitigated", "resolved")]
    assert inc.first_time_in("mitigated") is not None


def test_status_may_skip_ahead_or_reopen_but_not_step_back_or_repeat(log):
    inc = log.open("Errors", ["doc-summarizer"])
    log.set_status(inc.id, "mitigated")
    with pytest.raises(IncidentError, match="can move forward, or be reopened"):
        log.set_status(inc.id, "identified")
    with pytest.raises(StaleEdit, match="already mitigated"):
        log.set_status(inc.id, "mitigated")
    assert log.set_status(inc.id, "investigating").status == "investigating"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda log: log.open(" ", ["f"]), "needs a title"),
        (lambda log: log.open("t", ["f"], "SEV5"), "severity 'SEV5' is not one of SEV1"),
        (lambda log: log.get("INC-0099"), "no incident INC-0099"),
    ],
)
def test_bad_writes_are_refused_with_a_message(log, call, message):
    with pytest.raises(IncidentError, match=message):
        call(log)


def test_ids_are_sequential_and_the_list_is_newest_first(log):
    ids = [log.open(f"incident {i}", ["f"]).id for i in range(3)]
    assert ids == ["INC-0001", "INC-0002", "INC-0003"]
    assert [i.id for i in log.list()] == ids[::-1]


def test_fields_notes_and_steps_are_recorded(log):
    inc = log.open("Errors", ["doc-summarizer"], playbook="canary-failure")
    log.set_field(inc.id, "severity", "SEV1", actor="ana")
    log.set_field(inc.id, "onset", datetime(2026, 11, 21, 9), actor="ana")
    log.add_note(inc.id, "Only the canary arm errors", actor="raj")
    log.mark_step(inc.id, "confirm-canary-signal", "done", actor="raj")
    inc = log.mark_step(inc.id, "scope-canary", "skipped", actor="raj", reason="scope is obvious")
    assert inc.severity == "SEV1" and inc.onset == datetime(2026, 11, 21, 9)
    assert inc.step("confirm-canary-signal").state == "done"
    skipped = inc.step("scope-canary")
    assert (skipped.state, skipped.reason) == ("skipped", "scope is obvious")
    assert inc.step("rollback-canary").state == "pending"
    assert [e.data["text"] for e in inc.events if e.kind == "note"] == ["Only the canary arm errors"]


def test_a_step_with_a_flag_action_is_done_only_after_a_verified_action(log):
    inc = log.open("Errors", ["doc-summarizer"], playbook="canary-failure")
    with pytest.raises(IncidentError, match="done once an action is verified"):
        log.mark_step(inc.id, "rollback-canary", "done", needs_verified_action=True)
    log.record_step_action(inc.id, "rollback-canary", {"action_id": "a1", "outcome": "unverified"})
    assert log.get(inc.id).step("rollback-canary").state == "pending"
    inc = log.record_step_action(inc.id, "rollback-canary", {"action_id": "a2", "outcome": "verified"})
    assert inc.step("rollback-canary").state == "done" and inc.step("rollback-canary").verified


def test_a_post_mortem_section_edited_from_a_stale_version_is_refused(log):
    inc = log.open("Errors", ["f"])
    base = inc.version
    log.set_section(inc.id, "went_well", "Rollback took seconds", actor="ana", base_version=base)
    with pytest.raises(StaleEdit, match="ana changed 'went_well' since you started editing"):
        log.set_section(inc.id, "went_well", "Something else", actor="raj", base_version=base)
    inc = log.get(inc.id)
    assert inc.sections["went_well"][0] == "Rollback took seconds"
    log.set_section(inc.id, "went_well", "Rollback took seconds; alerts fired", base_version=inc.version)
    assert log.get(inc.id).sections["went_well"][0].endswith("alerts fired")


def test_action_items_are_added_updated_and_removed(log):
    inc = log.open("Errors", ["f"])
    inc = log.set_action_item(inc.id, "Auto-rollback canaries", "lee", "prevent")
    [item_id] = inc.action_items
    log.set_action_item(inc.id, "Auto-rollback canaries on error rate", "lee", "prevent", item_id=item_id)
    inc = log.set_action_item(inc.id, "Page on-call from the canary gate", "ana", "process")
    assert [i["text"] for i in inc.action_items.values()] == [
        "Auto-rollback canaries on error rate",
        "Page on-call from the canary gate",
    ]
    inc = log.set_action_item(inc.id, "", None, "prevent", item_id=item_id, removed=True)
    assert len(inc.action_items) == 1
    with pytest.raises(IncidentError, match="type 'fix' is not one of mitigate"):
        log.set_action_item(inc.id, "x", None, "fix")


def test_incidents_survive_a_restart(tmp_path):
    inc = IncidentLog(tmp_path).open("Errors", ["doc-summarizer"], "SEV2")
    IncidentLog(tmp_path).add_note(inc.id, "before the restart")
    # a new process, as after a restart of the app
    argv = [sys.executable, "-m", "app", "incidents", "list", "--json", "--data-dir", str(tmp_path)]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    [listed] = json.loads(out)["incidents"]
    assert (listed["id"], listed["severity"], listed["version"]) == (inc.id, "SEV2", 2)


def test_a_write_that_fails_raises_instead_of_vanishing(tmp_path):
    log = IncidentLog(tmp_path)
    inc = log.open("Errors", ["f"])
    # the database refuses the write, as a full disk or a broken file would
    with log.ledger.connect() as con:
        con.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON incident_events "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(IncidentError, match="could not save the note on INC-0001: database or disk is full"):
        log.add_note(inc.id, "lost?")
    assert [e.kind for e in log.get(inc.id).events] == ["opened"]


def test_a_corrupt_incident_store_is_reported(tmp_path):
    (tmp_path / "ledger.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IncidentError, match="unavailable"):
        IncidentLog(tmp_path).open("Errors", ["f"])


WRITER = """
import sys
from pathlib import Path
from app.incidents.log import IncidentLog, StaleEdit
log = IncidentLog(Path(sys.argv[1]))
who = sys.argv[2]
for i in range(40):
    log.add_note("INC-0001", f"{who} note {i}", actor=who)
try:
    log.set_status("INC-0001", "mitigated", actor=who)
    print("moved")
except StaleEdit:
    print("already")
"""


def test_two_processes_writing_the_same_incident_lose_no_update(tmp_path):
    IncidentLog(tmp_path).open("Errors", ["doc-summarizer"])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), who], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for who in ("ana", "raj")
    ]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert all(p.returncode == 0 for p in procs)
    inc = IncidentLog(tmp_path).get("INC-0001")
    notes = [e.data["text"] for e in inc.events if e.kind == "note"]
    assert len(notes) == 80 and len(set(notes)) == 80
    # exactly one of the two status moves happened; the other saw it and was refused
    assert outputs == ["already", "moved"]
    assert [e.data["to"] for e in inc.events if e.kind == "status"] == ["mitigated"]


def test_two_sessions_opening_incidents_at_once_get_distinct_ids(tmp_path):
    code = (
        "import sys; from pathlib import Path; from app.incidents.log import IncidentLog\n"
        "log = IncidentLog(Path(sys.argv[1]))\n"
        "print(' '.join(log.open(f'i{n}', ['f']).id for n in range(15)))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    ids = " ".join(p.communicate(timeout=60)[0] for p in procs).split()
    assert len(ids) == 30 and len(set(ids)) == 30


def test_missing_incident_is_not_found(log):
    with pytest.raises(IncidentNotFound):
        log.add_note("INC-0404", "hello")
