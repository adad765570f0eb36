"""The Weekly review page on the demo data: its numbers are the review's, and the demo's
stories show (the failed prompt and model changes, the burn-rate page)."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.review.export import pct
from app.review.report import week_bounds, weekly_review
from app.storage.store import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app/ui/streamlit_app.py"), default_timeout=90)
    at.run()
    at.switch_page("views/review.py")
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frame(at: AppTest, first_column: str, contains: str | None = None):
    for df in at.dataframe:
        value = df.value
        if value.columns[0] == first_column and (contains is None or contains in value.columns):
            return value
    raise AssertionError(f"no table starting with {first_column}")


def test_the_default_week_is_the_last_complete_one_and_its_numbers_are_the_reviews(
    app: AppTest, demo_dir: Path
):
    assert app.selectbox(key="review_week").value == "2026-W47"
    review = weekly_review(Store(demo_dir), week_bounds("2026-W47"))
    shown = metrics(app)
    for f in review.features:
        for s in f.slos:
            assert shown[f"{f.feature} · {s.objective.name}"] == pct(s.attainment, 2)
    # search-answers has no objectives: the page says so rather than inventing any.
    assert any("No objectives for search-answers" in i.value for i in app.info)
    kinds = frame(app, "Change kind").set_index("Change kind")
    for kind, stats in review.by_kind.items():
        assert int(kinds.loc[kind, "Changes"]) == stats.count
        assert int(kinds.loc[kind, "Failed"]) == stats.failed
    failed = frame(app, "When", "Why failed")
    assert set(failed["Change"]) >= {"prompt_version: v7 → v8"}
    assert len(failed) == len(review.failed_changes)


def test_an_earlier_week_shows_the_failed_model_change_and_its_burn_rate_page(app: AppTest):
    app.selectbox(key="review_week").set_value("2026-W44").run()
    assert not app.exception
    failed = frame(app, "When", "Why failed")
    [row] = failed.to_dicts() if hasattr(failed, "to_dicts") else failed.to_dict("records")
    assert row["Feature"] == "code-assistant" and row["Kind"] == "model"
    assert "stopped answering in the logs" in row["Why failed"]
    slos = frame(app, "Feature", "Alerts this week")
    alerts = slos[(slos["Feature"] == "code-assistant") & (slos["Objective"] == "availability")]
    assert "page-fast" in alerts["Alerts this week"].iloc[0]
    charts = [el for el in app.get("plotly_chart")]
    assert len(charts) >= 5  # burn-downs, sparklines and the cost chart


def test_the_prompt_change_that_was_reverted_in_the_logs_fails_in_its_week(app: AppTest):
    app.selectbox(key="review_week").set_value("2026-W45").run()
    failed = frame(app, "When", "Why failed")
    row = failed[failed["Feature"] == "support-reply"].iloc[0]
    assert row["Change"] == "prompt_version: v7 → v7.1"
    assert row["Recovery"] == "3.5 h"


def test_the_incidents_of_a_week_show_their_ttd_ttm_ttr_and_later_weeks_what_is_still_open(app: AppTest):
    # The default week (2026-W47) has no incident of its own; the demo's incident of
    # 2026-W45 is resolved with two action items open, so it is still open.
    still_open = frame(app, "Incident", "Open action items")
    assert still_open.to_dict("records") == [
        {
            "Incident": "INC-0001",
            "Title": "support-reply answers got worse after prompt v7.1",
            "Severity": "SEV3",
            "Status": "resolved",
            "TTD": "35 min",
            "TTM": "3.5 h",
            "TTR": "5.5 h",
            "Rolled back": "yes",
            "Detected by": "person",
            "Open action items": "2",
        }
    ]
    # W47 has no incident of its own: the only incident table is the still-open one
    assert len([df for df in app.dataframe if df.value.columns[0] == "Incident"]) == 1
    app.selectbox(key="review_week").set_value("2026-W45").run()
    assert not app.exception
    tables = [df.value for df in app.dataframe if df.value.columns[0] == "Incident"]
    assert len(tables) == 1  # the week's own incidents; none earlier still open
    [row] = tables[0].to_dict("records")
    assert (row["Incident"], row["TTD"], row["TTM"], row["TTR"]) == ("INC-0001", "35 min", "3.5 h", "5.5 h")
    assert (row["Rolled back"], row["Detected by"], row["Open action items"]) == ("yes", "person", "2")
    # the failed prompt change names the console's rollback and the incident as evidence
    failed = frame(app, "When", "Why failed")
    why = failed[failed["Feature"] == "support-reply"].iloc[0]["Why failed"]
    assert "rolled back by the console" in why and "top suspect of INC-0001" in why


def test_the_overview_names_the_features_burning_budget_now(demo_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from app.review.alerting import firing_now

    burning = {a.feature for a in firing_now(Store(demo_dir))}
    assert burning  # the demo week ends with the noisy client's errors and the canary
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app/ui/streamlit_app.py"), default_timeout=90)
    at.run()
    assert not at.exception
    warned = {
        w.value.split(" is burning", 1)[0].removeprefix("🔥 ")
        for w in at.warning
        if "is burning its error budget" in w.value
    }
    assert warned == burning


def test_a_bad_slos_yaml_is_shown_with_every_problem_named_by_line_and_key(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    slos = demo_dir / "slos.yaml"
    slos.write_text(
        "window_days: 0\nfeatures:\n  support-reply:\n    objectives:\n      - {sli: speed, objective: 0.9}\n"
    )
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app/ui/streamlit_app.py"), default_timeout=90)
    at.run()
    at.switch_page("views/review.py")
    at.run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error if "slos.yaml cannot be used" in e.value]
    assert f"{slos}: line 1: window_days: expected a number of days from 1 to 366, got 0" in error
    assert (
        f"{slos}: line 5: features.support-reply.objectives[0].sli: expected an SLI: one of "
        "success_rate, latency, quality, feedback, got 'speed'"
    ) in error
    assert not at.metric  # no attainment is shown from a file that cannot be used


def test_an_incident_opened_after_the_review_was_computed_shows_at_the_next_rerun(
    app: AppTest, demo_dir: Path
):
    from datetime import datetime

    from app.incidents.log import IncidentLog

    week = [df.value for df in app.dataframe if df.value.columns[0] == "Incident"]
    assert [list(t["Incident"]) for t in week] == [["INC-0001"]]  # still open from W45 only
    IncidentLog(demo_dir).open(
        "Summaries failing on the canary",
        ["doc-summarizer"],
        "SEV2",
        onset=datetime(2026, 11, 21, 9),
        at=datetime(2026, 11, 21, 9, 50),
        source="detection",
    )
    app.run()
    assert not app.exception
    tables = [df.value for df in app.dataframe if df.value.columns[0] == "Incident"]
    assert [list(t["Incident"]) for t in tables] == [["INC-0002"], ["INC-0001"]]
    [row] = tables[0].to_dict("records")
    assert (row["TTD"], row["Detected by"], row["TTM"]) == ("50 min", "tool", "n/a")
