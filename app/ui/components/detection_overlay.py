"""Cached analysis for the pages: findings, and their onsets as timeline markers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from app.detection.analysis import analyze
from app.detection.findings import AnalysisResult, Finding, format_value, iso_z
from app.detection.thresholds import load_thresholds
from app.storage.store import Store
from app.ui import common
from app.ui.charts import OnsetMarker


@st.cache_data(show_spinner="Analysing…", max_entries=32)
def cached_analysis(dd: str, version: str, feature: str | None, since: datetime | None,
                    until: datetime | None) -> AnalysisResult:
    data_dir = Path(dd)
    return analyze(Store(data_dir), feature=feature, since=since, until=until,
                   thresholds=load_thresholds(data_dir))


def analysis(feature: str | None = None, since: datetime | None = None,
             until: datetime | None = None) -> AnalysisResult:
    return cached_analysis(str(common.data_dir()), common.data_version(), feature, since, until)


def onsets_for(feature: str, since: datetime, until: datetime) -> list[OnsetMarker]:
    """Onsets of the feature's findings within [since, until), for the timeline."""
    try:
        result = analysis(feature, since, until)
    except Exception:  # noqa: BLE001 - a marker overlay must never break the timeline page
        return []
    return [OnsetMarker(f.onset, f"{f.metric}: {format_value(f.metric, f.baseline)} → "
                                 f"{format_value(f.metric, f.current)}"
                                 + (f" until {f.ended:%H:%M}" if f.ended else ""), f.ended)
            for f in result.findings]


def open_incident(f: Finding | None, feature: str) -> None:
    """Pre-fill the incident form from a finding (or just the feature) and go there."""
    if f is None:
        st.session_state.pop("incident_prefill", None)
    else:
        st.session_state["incident_prefill"] = {
            "feature": f.feature, "metric": f.metric, "onset": iso_z(f.onset),
            "title": f"{f.feature}: {f.metric} {format_value(f.metric, f.baseline)} → "
                     f"{format_value(f.metric, f.current)}",
            "suspect_change_ids": [s.change.change_id for s in f.suspects],
            "finding": f.as_dict(),
        }
    st.session_state["feature"] = feature
    st.switch_page("views/incidents.py")
