"""The flag action panel and the audit page, driven through AppTest."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
import streamlit as st
from flag_components import ROOT
from streamlit.testing.v1 import AppTest

from app.rollback import actions
from app.storage import trail

PANEL = str(Path(__file__).with_name("panel_app.py"))
LOCAL = f"{getpass.getuser()}@local"  # the console's operator in local mode
AUDIT_PAGE = str(ROOT / "app" / "ui" / "views" / "audit.py")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()


def panel(flag_dir: Path, monkeypatch, feature: str, incident: str = "") -> AppTest:
    monkeypatch.setenv("PANEL_DATA_DIR", str(flag_dir))
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(flag_dir))
    monkeypatch.setenv("PANEL_FEATURE", feature)
    monkeypatch.setenv("PANEL_INCIDENT", incident)
    at = AppTest.from_file(PANEL, default_timeout=30)
    at.run()
    return at


def button(at: AppTest, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def test_the_panel_shows_live_state_and_one_button_per_action(flag_dir, monkeypatch) -> None:
    at = panel(flag_dir, monkeypatch, "doc-summarizer")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["state"]) == ["on", "10%", "gpt-4.1-2025-04-14"]
    assert [b.label for b in at.button] == [
        "🛑 Kill switch (feature off)",
        "▶️ Resume feature",
        "📉 Canary to 0%",
        "📌 Pin model version",
    ]


def test_confirming_the_dialog_rolls_back_and_shows_verified(flag_dir, monkeypatch) -> None:
    at = panel(flag_dir, monkeypatch, "support-reply", incident="INC-11")
    button(at, "⏪").click().run()
    [dialog] = at.get("dialog")
    [plan] = [m.value for m in at.markdown if "Before:**" in m.value]
    assert "Before:** v8" in plan and "After:** v7" in plan
    assert any(m.value == f"**Acting as:** {LOCAL} (admin)" for m in at.markdown)
    at.text_input(key="flags-support-reply-INC-11-reason").input("prompt v8 regression")
    at.run()
    at.button(key="flags-support-reply-INC-11-confirm").click().run()
    assert not at.exception
    assert not at.get("dialog")
    assert "verified" in at.success[0].value and "v7" in at.success[0].value
    [entry] = trail.entries(flag_dir)
    assert (entry.operator, entry.operator_role, entry.reason, entry.incident_id, entry.outcome) == (
        LOCAL,
        "admin",
        "prompt v8 regression",
        "INC-11",
        "verified",
    )
    assert list(at.dataframe[0].value["state"])[1] == "v7"


def test_dismissing_the_dialog_changes_nothing(flag_dir, monkeypatch) -> None:
    at = panel(flag_dir, monkeypatch, "support-reply")
    button(at, "🛑").click().run()
    assert at.get("dialog")
    at.session_state["flags-support-reply-none-dialog"] = None  # what on_dismiss does
    del at.session_state["flags-support-reply-none-dialog"]
    at.run()
    assert not at.get("dialog") and not trail.entries(flag_dir)


def test_a_failure_is_never_shown_as_success(flag_dir, monkeypatch) -> None:
    at = panel(flag_dir, monkeypatch, "search-answers")
    button(at, "📌").click().run()
    (flag_dir / "flags.yaml").write_text(
        (flag_dir / "flags.yaml").read_text().replace("search-answers-model", "search-answers-model-gone")
    )
    at.text_input(key="flags-search-answers-none-reason").input("drill").run()
    assert not at.success
    assert any("not found" in e.value for e in at.error)


def test_the_audit_page_lists_presses_with_filters(flag_dir, monkeypatch) -> None:
    actions.execute(flag_dir, "support-reply", "kill", operator="ana", incident_id="INC-1")
    actions.execute(flag_dir, "doc-summarizer", "rollout", 150, operator="bo")
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(flag_dir))
    at = AppTest.from_file(AUDIT_PAGE, default_timeout=30)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["outcome"]) == ["failed", "verified"]
    at.selectbox(key="audit_outcome").select("verified").run()
    assert list(at.dataframe[0].value["operator"]) == ["ana"]
    at.selectbox(key="audit_outcome").select("(all)").run()
    at.text_input(key="audit_incident").input("INC-1").run()
    assert list(at.dataframe[0].value["feature"]) == ["support-reply"]
    at.button(key="audit_sync").click().run()
    assert "support-reply-prompt" in list(at.dataframe[-1].value["flag"])


def test_a_viewer_pressing_a_button_is_refused_by_the_action_code_and_recorded(flag_dir, monkeypatch):
    (flag_dir / "access.yaml").write_text("local_role: viewer\n")  # this console is read-only
    at = panel(flag_dir, monkeypatch, "support-reply")
    assert any("You are a viewer" in c.value for c in at.caption)
    button(at, "🛑").click().run()
    at.button(key="flags-support-reply-none-confirm").click().run()
    assert not at.exception and not at.success
    assert any("is a viewer: may not act on a flag (needs responder)" in e.value for e in at.error)
    [entry] = trail.entries(flag_dir)
    assert (entry.operator, entry.operator_role, entry.outcome) == (LOCAL, "viewer", "failed")
    flags = json.loads((flag_dir / "flags.json").read_text())["flags"]
    assert flags["support-reply-enabled"]["state"] == "ENABLED"
