"""The incidents page through the router: open (by hand, from a feature, from a finding),
walk the playbook, notes, corrections, post-mortem sections from two sessions."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.incidents.log import IncidentLog

ROUTER = str(Path(__file__).resolve().parents[2] / "app" / "ui" / "streamlit_app.py")
PAGE = "views/incidents.py"


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def page(data_dir: Path, monkeypatch: pytest.MonkeyPatch, **state: object) -> AppTest:
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(data_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def opened_here(data_dir: Path) -> list:
    """The incidents a test opened: all but the one the demo ships (INC-0001)."""
    return [i for i in IncidentLog(data_dir).list() if i.id != "INC-0001"]


def widget(elements, label: str):
    [found] = [w for w in elements if w.label == label]
    return found


def button(at: AppTest, label: str, index: int = 0):
    return [b for b in at.button if b.label == label][index]


def test_the_page_runs_on_an_empty_data_dir(empty_dir, monkeypatch):
    at = page(empty_dir, monkeypatch)
    assert any("No incidents yet" in c.value for c in at.caption)


def test_an_incident_opened_from_the_feature_page_is_prefilled_with_the_feature(flag_demo_dir, monkeypatch):
    at = page(flag_demo_dir, monkeypatch, feature="doc-summarizer")
    assert widget(at.text_input, "Title").value == "doc-summarizer degraded"
    assert widget(at.multiselect, "Features affected").value == ["doc-summarizer"]
    assert any("metric error_rate, change flag, scope partial" in c.value for c in at.caption)
    assert widget(at.selectbox, "Playbook").value == "canary-failure"
    button(at, "🧯 Open incident").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [incident] = opened_here(flag_demo_dir)
    assert (incident.features, incident.playbook, incident.metric, incident.severity) == (
        ["doc-summarizer"],
        "canary-failure",
        "error_rate",
        "SEV2",
    )
    assert incident.onset == datetime(2026, 11, 21, 9) and incident.source == "feature page"
    assert at.session_state["incident_id"] == incident.id
    assert any("partial: variant = canary" in m.value for m in at.markdown)


def test_a_detected_degradation_prefills_the_incident_and_is_used_once(flag_demo_dir, monkeypatch):
    prefill = {
        "feature": "support-reply",
        "metric": "quality_score",
        "onset": "2026-11-20T14:00:00Z",
        "title": "support-reply quality dropped",
        "suspect_change_ids": ["dec-123"],
        "finding": {
            "scope": {"kind": "total"},
            "suspects": [
                {"change_id": "dec-123", "kind": "prompt", "evidence": "quality fell when v8 appeared"}
            ],
        },
    }
    at = page(flag_demo_dir, monkeypatch, incident_prefill=prefill)
    assert any("Pre-filled from a detected degradation" in i.value for i in at.info)
    assert widget(at.selectbox, "Playbook").value == "prompt-regression"
    button(at, "🧯 Open incident").click()
    at.run()
    [incident] = opened_here(flag_demo_dir)
    assert (incident.title, incident.onset, incident.source) == (
        "support-reply quality dropped",
        datetime(2026, 11, 20, 14),
        "detection",
    )
    assert incident.suspect_change_ids == ["dec-123"]
    assert "incident_prefill" not in at.session_state


def test_steps_are_done_or_skipped_and_an_action_step_waits_for_verification(
    flag_demo_dir, canary_incident, monkeypatch
):
    at = page(flag_demo_dir, monkeypatch)
    assert any("0 of 7 steps" in p.proto.text for p in at.get("progress"))
    button(at, "✅ Done", 0).click()
    at.run()
    [reason] = [t for t in at.text_input if t.key == "skip_reason_scope-canary"]
    reason.set_value("scope obvious from the alert")
    button(at, "⏭️ Skip", 1).click()
    at.run()
    incident = IncidentLog(flag_demo_dir).get(canary_incident.id)
    assert incident.step("confirm-canary-signal").state == "done"
    assert (incident.step("scope-canary").state, incident.step("scope-canary").reason) == (
        "skipped",
        "scope obvious from the alert",
    )
    assert button(at, "✅ Done", 2).disabled  # the rollback step: only a verified action completes it
    assert any("2 of 7 steps" in p.proto.text for p in at.get("progress"))


def test_a_viewers_note_is_refused_on_the_page_and_not_recorded(flag_demo_dir, canary_incident, monkeypatch):
    (flag_demo_dir / "access.yaml").write_text("local_role: viewer\n")
    at = page(flag_demo_dir, monkeypatch)
    widget(at.text_area, "Add a note").set_value("I should not be able to write this")
    button(at, "🗒️ Add note").click()
    at.run()
    assert not at.exception
    assert any("is a viewer: may not change an incident (needs responder)" in e.value for e in at.error)
    events = IncidentLog(flag_demo_dir).get(canary_incident.id).events
    assert not [e for e in events if e.kind == "note"]


def test_a_note_lands_on_the_timeline(flag_demo_dir, canary_incident, monkeypatch):
    at = page(flag_demo_dir, monkeypatch)
    widget(at.text_area, "Add a note").set_value("Canary arm only; control is clean")
    button(at, "🗒️ Add note").click()
    at.run()
    events = IncidentLog(flag_demo_dir).get(canary_incident.id).events
    assert [(e.actor, e.data["text"]) for e in events if e.kind == "note"] == [
        (f"{getpass.getuser()}@local (admin)", "Canary arm only; control is clean")
    ]


def test_a_post_mortem_section_saved_in_two_sessions_keeps_the_first_and_warns_the_second(
    flag_demo_dir, canary_incident, monkeypatch
):
    ana, raj = page(flag_demo_dir, monkeypatch), page(flag_demo_dir, monkeypatch)
    key = f"pm_text_{canary_incident.id}_went_well"
    [a_text] = [t for t in ana.text_area if t.key == key]
    a_text.set_value("The canary was small.")
    [b_text] = [t for t in raj.text_area if t.key == key]
    b_text.set_value("Rollback took seconds.")
    ana.run()
    raj.run()
    [save] = [b for b in ana.button if b.key == "pm_save_went_well"]
    save.click()
    ana.run()
    [save] = [b for b in raj.button if b.key == "pm_save_went_well"]
    save.click()
    raj.run()
    assert any("changed 'went_well' since you started editing" in e.value for e in raj.error)
    incident = IncidentLog(flag_demo_dir).get(canary_incident.id)
    assert incident.sections["went_well"][0] == "The canary was small."


def test_an_incident_over_two_features_shows_each_and_their_sum(flag_demo_dir, monkeypatch):
    from app.incidents import postmortem

    incident = IncidentLog(flag_demo_dir).open(
        "Summaries and replies failing",
        ["doc-summarizer", "support-reply"],
        "SEV2",
        metric="error_rate",
        onset=datetime(2026, 11, 21, 9),
        actor="ana",
        at=datetime(2026, 11, 23, 8, 30),
    )
    at = page(flag_demo_dir, monkeypatch)
    [total] = [
        line
        for line in postmortem.export(flag_demo_dir, incident.id).splitlines()
        if line.startswith("| total: 1 of 2 features |")
    ]
    requests = total.split("|")[4].strip()
    assert any(m.label == "Requests affected" and m.value == requests for m in at.metric)
    assert any(md.value.startswith(f"**Total, 1 of 2 features:** {requests} requests") for md in at.markdown)
    [table] = [d for d in at.dataframe if "feature" in d.value.columns]
    assert table.value["feature"].tolist() == ["doc-summarizer", "support-reply"]


def test_the_status_moves_from_the_page(flag_demo_dir, canary_incident, monkeypatch):
    at = page(flag_demo_dir, monkeypatch)
    widget(at.selectbox, "Move to status").set_value("identified")
    button(at, "Update status").click()
    at.run()
    assert IncidentLog(flag_demo_dir).get(canary_incident.id).status == "identified"
    assert any(m.label == "Status" and m.value == "identified" for m in at.metric)


def test_the_rollback_step_runs_its_action_through_the_confirmation_and_is_done_when_verified(
    flag_demo_dir, canary_incident, monkeypatch
):
    before = json.loads((flag_demo_dir / "flags.json").read_text())
    at = page(flag_demo_dir, monkeypatch)
    scope = f"flags-doc-summarizer-{canary_incident.id}"
    # only the step's own action is offered
    assert [b.label for b in at.button if b.key and b.key.startswith(scope)] == ["📉 Canary to 0%"]
    [b for b in at.button if b.key == f"{scope}-rollout"][0].click()
    at.run()
    assert at.get("dialog")
    [reason] = [t for t in at.text_input if t.key == f"{scope}-reason"]
    reason.set_value("canary errors 11%")
    at.run()
    [b for b in at.button if b.key == f"{scope}-confirm"][0].click()
    at.run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    incident = IncidentLog(flag_demo_dir).get(canary_incident.id)
    progress = incident.step("rollback-canary")
    assert progress.state == "done" and progress.verified
    assert progress.actor.startswith(f"{getpass.getuser()}@local")  # the console's local operator
    after = json.loads((flag_demo_dir / "flags.json").read_text())
    assert after["flags"]["doc-summarizer-canary"] != before["flags"]["doc-summarizer-canary"]
    assert any("rollout verified" in s.value for s in at.success)
    assert any(m.value.startswith("✅ rollout doc-summarizer-canary: **verified**") for m in at.markdown)


def test_an_incident_opened_by_hand_gets_the_analysis_finding_and_can_be_analysed_again(
    flag_demo_dir, monkeypatch
):
    at = page(flag_demo_dir, monkeypatch, feature="ticket-triage-agent")
    button(at, "🧯 Open incident").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [incident] = opened_here(flag_demo_dir)
    assert incident.finding is not None and incident.finding["metric"] == "error_rate"
    assert incident.finding["scope"]["kind"] == "single_user"
    assert any("ticket-triage-agent error_rate" in s.value for s in at.success)
    button(at, "🔬 Analyse the features again").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    again = IncidentLog(flag_demo_dir).get(incident.id)
    assert [e.kind for e in again.events].count("finding") == 2
