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


@pytest.mark.parametrize("page", ["views/detect.py", "views/rollout.py"])
def test_pages_run_on_an_empty_data_dir(page, empty_dir, monkeypatch):
    open_page(empty_dir, page, monkeypatch)


@pytest.fixture(scope="module")
def outage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.detection.adversarial import load
    from tests.detection.adversarial_cases import outage

    folder = tmp_path_factory.mktemp("outage")
    load(folder, outage().logs)
    return folder


def test_a_provider_outage_is_said_once_at_the_top_and_each_transient_shows_its_end(outage_dir, monkeypatch):
    at = open_page(outage_dir, "views/detect.py", monkeypatch)
    [event] = [w.value for w in at.warning if "Cross-feature event" in w.value]
    assert "4 features at" in event and "no change of ours" in event
    ends = [m for m in at.metric if m.label == "End"]
    assert len(ends) == 4 and all(m.value != "ongoing" for m in ends)
    assert all("lasted" in (m.delta or "") for m in ends)


def test_the_feature_timeline_shades_a_transient_from_its_onset_to_its_end(outage_dir, monkeypatch):
    import json

    at = open_page(outage_dir, "views/feature.py", monkeypatch, feature="chat")
    [chart] = [c for c in at.get("plotly_chart")]
    shapes = json.loads(chart.proto.spec)["layout"]["shapes"]
    bands = [s for s in shapes if s["type"] == "rect"]
    assert len(bands) == 1
    assert bands[0]["x0"].startswith("2026-06-02T13:10") and bands[0]["x1"].startswith("2026-06-02T13:5")


def test_each_finding_states_its_onset_end_and_scope_in_full(demo_dir, monkeypatch):
    import re

    at = open_page(demo_dir, "views/detect.py", monkeypatch)
    lines = [m.value for m in at.markdown if m.value.startswith("**Onset**")]
    assert len(lines) == len(at.subheader) > 0  # one line per finding
    pattern = (
        r"\*\*Onset\*\* \d{4}-\d\d-\d\d \d\d:\d\d UTC · \*\*End\*\* (ongoing|\d{4}-.+ UTC) · \*\*Scope\*\* .+"
    )
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    scopes = " ".join(lines)
    # the demo's findings: whole-feature regressions, the canary's slice, one user's burst
    assert "whole feature" in scopes and "partial" in scopes and "single user" in scopes
