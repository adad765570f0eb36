"""The review's period: ISO weeks, the default week from the newest data, and the review of
a period with known changes and incidents."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.incidents.log import IncidentLog
from app.review.report import ReviewError, default_week, week_bounds, weekly_review, weeks_with_data

from .stores import load, per_bucket

MONDAY = datetime(2026, 11, 16)  # 2026-W47


def test_an_iso_week_runs_monday_to_monday():
    p = week_bounds("2026-W47")
    assert (p.since, p.until, p.week) == (MONDAY, MONDAY + timedelta(days=7), "2026-W47")
    assert week_bounds("2026-w01").since == datetime(2025, 12, 29)
    with pytest.raises(ReviewError, match="not an ISO week"):
        week_bounds("2026-W54")


def test_the_default_week_is_the_last_complete_one_of_the_data(data_dir: Path):
    # Data from Monday of W46 to Wednesday of W47: W47 is not complete, W46 is.
    store = load(data_dir, per_bucket(MONDAY - timedelta(days=7), 9 * 288, 1))
    assert default_week(store).week == "2026-W46"
    assert weeks_with_data(store) == ["2026-W47", "2026-W46"]


def test_a_week_whose_data_reaches_its_last_hour_is_complete(data_dir: Path):
    store = load(data_dir, per_bucket(MONDAY, 7 * 288 - 6, 1))  # ends 23:30 on Sunday
    assert default_week(store).week == "2026-W47"


def test_incidents_of_the_week_with_their_times_from_the_onset(data_dir: Path):
    store = load(data_dir, per_bucket(MONDAY, 7 * 288, 2))
    log = IncidentLog(data_dir)
    onset = MONDAY + timedelta(days=2, hours=10)
    inc = log.open(
        "Errors up", ["f"], "SEV2", onset=onset, source="detection", at=onset + timedelta(minutes=25)
    )
    log.set_status(inc.id, "identified", at=onset + timedelta(minutes=40))
    log.set_status(inc.id, "resolved", at=onset + timedelta(hours=3))
    log.set_action_item(inc.id, "Add a canary", "ana", "prevent")
    log.open("Last week's", ["f"], "SEV3", onset=MONDAY - timedelta(days=3), at=MONDAY - timedelta(days=3))
    review = weekly_review(store, week_bounds("2026-W47"))
    [got] = review.incidents
    assert got.as_dict() | {"opened_at": None} == {
        "id": inc.id,
        "title": "Errors up",
        "severity": "SEV2",
        "status": "resolved",
        "features": ["f"],
        "opened_at": None,
        "ttd_min": 25.0,
        "ttm_min": None,
        "ttr_min": 180.0,
        "rolled_back": False,
        "detected_by": "tool",
        "open_action_items": 1,
    }
    assert review.features[0].has_slos is False  # no slos.yaml: none invented
