"""Cached analysis for the pages: findings, and their onsets as timeline markers."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import streamlit as st

from app.detection.analysis import analyze
from app.detection.findings import AnalysisResult, Finding, format_value, iso_z
from app.detection.thresholds import ThresholdsError, load_thresholds, thresholds_path
from app.storage.store import Store
from app.timestamps import display
from app.ui import common
from app.ui.charts import OnsetMarker

log = logging.getLogger(__name__)


@st.cache_data(show_spinner="Analysing…", max_entries=32)
def cached_analysis(
    dd: str,
    version: str,
    thresholds: str,
    feature: str | None,
    since: datetime | None,
    until: datetime | None,
) -> AnalysisResult:
    """The analysis, computed once per data version, thresholds file and range: reruns that
    only change what a page shows read it back."""
    data_dir = Path(dd)
    return analyze(
        Store(data_dir), feature=feature, since=since, until=until, thresholds=load_thresholds(data_dir)
    )


def analysis(
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
) -> AnalysisResult:
    """The cached analysis; `version`: the data version when the page has already read it."""
    data_dir = common.data_dir()
    return cached_analysis(
        str(data_dir), version or common.data_version(), thresholds_version(data_dir), feature, since, until
    )


def thresholds_version(data_dir: Path) -> str:
    """Part of the analysis' cache key: an edited thresholds file is read again on the next
    rerun (the data version does not cover it)."""
    try:
        stat = thresholds_path(data_dir).stat()
    except OSError:
        return "absent"
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def findings_for(feature: str, since: datetime, until: datetime) -> list[Finding] | None:
    """The feature's findings within [since, until); None when the analysis cannot run,
    which is shown (and logged), never taken for "nothing detected"."""
    try:
        return analysis(feature, since, until).findings
    except ThresholdsError as exc:
        st.warning(f"Detection markers are not shown: thresholds file problem: {exc}", icon="⚠️")
    except Exception as exc:  # noqa: BLE001 - shown and logged: the chart still renders
        log.exception("analysis for the %s timeline markers failed", feature)
        st.error(
            f"Detection markers are not shown: the analysis failed ({type(exc).__name__}: {exc})", icon="🛑"
        )
    return None


def onsets_of(findings: list[Finding] | None) -> list[OnsetMarker]:
    """The findings' onsets as timeline markers; a transient's episode as a band to its end."""
    return [
        OnsetMarker(
            f.onset,
            f"{f.metric}: {format_value(f.metric, f.baseline)} → "
            f"{format_value(f.metric, f.current)}" + (f" until {display(f.ended)}" if f.ended else ""),
            f.ended,
        )
        for f in findings or []
    ]


def open_incident(f: Finding | None, feature: str) -> None:
    """Pre-fill the incident form from a finding (or just the feature) and go there."""
    if f is None:
        st.session_state.pop("incident_prefill", None)
    else:
        st.session_state["incident_prefill"] = {
            "feature": f.feature,
            "metric": f.metric,
            "onset": iso_z(f.onset),
            "title": f"{f.feature}: {f.metric} {format_value(f.metric, f.baseline)} → "
            f"{format_value(f.metric, f.current)}",
            "suspect_change_ids": [s.change.change_id for s in f.suspects],
            "finding": f.as_dict(),
        }
    st.session_state["feature"] = feature
    st.switch_page("views/incidents.py")
