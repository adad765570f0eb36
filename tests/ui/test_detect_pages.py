"""The Detect and Rollouts pages on the demo data and on an empty data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROUTER = str(Path(__file__).resolve().parents[2] / "app" / "ui" / "streamlit_app.py")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def open_page(data_dir: Path, page: str, monkeypatch: pytest.MonkeyPatch, **state) -> AppTest:
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(data_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_detect_lists_the_findings_with_suspects_and_prefills_an_incident(demo_dir, monkeypatch):
    at = open_page(demo_dir, "views/detect.py", monkeypatch)
    assert at.metric[0].value == str(len(at.button))  # one "open incident" button per finding
    headers = " ".join(h.value for h in at.subheader)
    for feature in ("support-reply", "doc-summarizer", "search-answers", "ticket-triage-agent"):
        assert feature in headers
    assert "code-assistant" not in headers
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    prefill = at.session_state["incident_prefill"]
    assert set(prefill) == {"feature", "metric", "onset", "title", "suspect_change_ids", "finding"}
    assert prefill["finding"]["feature"] == prefill["feature"]
    assert prefill["suspect_change_ids"] == [s["change_id"] for s in prefill["finding"]["suspects"]]


def test_rollouts_shows_the_canary_against_control_with_its_tripped_guardrail(demo_dir, monkeypatch):
    at = open_page(demo_dir, "views/rollout.py", monkeypatch, feature="doc-summarizer")
    assert "rollback" in at.subheader[0].value
    frames = [df.value for df in at.dataframe]
    variants = set(frames[0]["variant"])
    assert variants == {"control", "canary"}
    guards = frames[1]
    tripped = dict(zip(guards["metric"], guards["status"], strict=True))
    assert "tripped" in tripped["error_rate"]
    assert "requests a day" in at.info[0].value
