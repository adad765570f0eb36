"""Cached reads for the Review page and the Overview's burn-rate banner."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from app.review import alerting, report
from app.review.slos import slos_path
from app.storage.store import Store


def slos_version(dd: str) -> str:
    """Changes when slos.yaml is edited: part of the cache key."""
    path = slos_path(Path(dd))
    return str(path.stat().st_mtime_ns) if path.exists() else "none"


@st.cache_data(show_spinner="Computing the review…", max_entries=8)
def weekly_review(
    dd: str, version: str, slos: str, since: datetime, until: datetime, week: str | None
) -> report.WeeklyReview:
    return report.weekly_review(Store(Path(dd)), report.Period(since, until, week))


@st.cache_data(show_spinner=False, max_entries=8)
def weeks(dd: str, version: str) -> tuple[list[str], str | None]:
    store = Store(Path(dd))
    try:
        default = report.default_week(store).week
    except report.ReviewError:
        return [], None
    return report.weeks_with_data(store), default


@st.cache_data(show_spinner=False, max_entries=8)
def burning_now(dd: str, version: str, slos: str) -> list[alerting.Alert]:
    return alerting.firing_now(Store(Path(dd)))
