"""What the Investigate pages share: state kept in the URL, the signed-in actor, the time
window, cached queries, and the figures."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app.changes.events import ChangeEvent
from app.detection.findings import Finding, format_value, iso_z
from app.investigate import compare as comparing
from app.investigate import facets as faceting
from app.investigate import request_table
from app.investigate.filters import Filter, Scope
from app.investigate.links import compare_params, time_param
from app.investigate.roles import Actor
from app.storage.store import Store
from app.ui import auth, common

ARM_COLOURS = {"a": "#1f77b4", "b": "#d62728"}


def current_actor() -> Actor:
    """The person using the page: signed in, or the local person (app/ui/auth.py)."""
    return Actor.of(auth.identity())


def _seen() -> dict[str, str | None]:
    """The value of each URL parameter as this session last read or wrote it."""
    return st.session_state.setdefault("_url_seen", {})


def from_url(key: str, param: str, default: Any = "") -> None:
    """Seed a widget's state from the URL: the first time the page shows, and whenever the URL
    holds a value this session neither read nor wrote there (a link followed from another
    page)."""
    url = st.query_params.get(param)
    seen = _seen()
    if key not in st.session_state:
        st.session_state[key] = url if url is not None else default
    elif url is not None and url != seen.get(param) and url != st.session_state[key]:
        st.session_state[key] = url
    seen[param] = url


def to_url(**values: Any) -> None:
    """Write the view's state into the URL (empty values are removed)."""
    seen = _seen()
    for name, value in values.items():
        text = iso_z(value) if isinstance(value, datetime) else ("" if value is None else str(value))
        if text:
            st.query_params[name] = text
        elif name in st.query_params:
            del st.query_params[name]
        seen[name] = text or None


def pick_window(prefix: str, feature: str) -> tuple[datetime, datetime] | None:
    """Since and until as text inputs (ISO 8601 UTC), seeded from the URL, else the last 7
    days of the feature's data; None (with a message) when a time does not parse."""
    lo, hi = common.cached_bounds(str(common.data_dir()), common.data_version(), feature)
    if hi is None:
        return None
    end = (hi + timedelta(seconds=1)).replace(microsecond=0)
    start = max(lo.replace(microsecond=0), end - timedelta(days=7))
    for name, default in (("since", start), ("until", end)):
        from_url(f"{prefix}_{name}", name, iso_z(default))
    c1, c2 = st.columns(2)
    since_text = c1.text_input("Since (UTC)", key=f"{prefix}_since")
    until_text = c2.text_input("Until (UTC, exclusive)", key=f"{prefix}_until")
    since, until = time_param(since_text), time_param(until_text)
    if since is None or until is None:
        st.error("Since and until must be times such as 2026-11-21T14:00:00Z.", icon="⚠️")
        return None
    if since >= until:
        st.error("Since must come before until.", icon="⚠️")
        return None
    return since, until


def pick_feature(features: list[str], key: str) -> str:
    """The feature from the URL, else the one chosen on another page, else the first."""
    from_url(key, "feature", st.session_state.get("feature"))
    if st.session_state[key] not in features:
        st.session_state[key] = features[0]
    feature = st.selectbox("Feature", features, key=key)
    st.session_state["feature"] = feature
    return feature


# Cached queries, keyed by plain arguments ---------------------------------------------------


def _store(dd: str) -> Store:
    return Store(Path(dd))


@st.cache_data(show_spinner=False, max_entries=32)
def cached_extras(dd: str, version: str, feature: str) -> tuple[str, ...]:
    return tuple(_store(dd).extra_columns(feature))


@st.cache_data(show_spinner="Counting…", max_entries=32)
def cached_facets(
    dd: str, version: str, scope: Scope, metric: str, extras: tuple[str, ...]
) -> faceting.Facets:
    return faceting.facets(_store(dd), scope, metric, extras=extras)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_page(
    dd: str, version: str, scope: Scope, offset: int, order: str, extras: tuple[str, ...]
) -> request_table.RequestPage:
    return request_table.page(_store(dd), scope, offset=offset, order=order, extras=extras)


@st.cache_data(show_spinner="Comparing…", max_entries=32)
def cached_compare(
    dd: str, version: str, a: Scope, b: Scope, extras: tuple[str, ...]
) -> comparing.Comparison:
    return comparing.compare(_store(dd), a, b, extras)


@st.cache_data(show_spinner=False, max_entries=32)
def cached_arm_timeline(
    dd: str, version: str, a: Scope, b: Scope, metric: str, bucket: str, extras: tuple[str, ...]
) -> list[tuple]:
    return comparing.arm_timeline(_store(dd), a, b, metric, bucket, extras)


def extras_of(feature: str) -> tuple[str, ...]:
    return cached_extras(str(common.data_dir()), common.data_version(), feature)


def parse_filter(text: str, label: str) -> Filter | None:
    try:
        return Filter.parse(text)
    except ValueError as exc:
        st.error(f"{label}: {exc}", icon="⚠️")
        return None


# Figures -------------------------------------------------------------------------------------


def arms_figure(rows: list[tuple], metric: str, labels: dict[str, str]) -> go.Figure:
    """The metric over time for both arms, on one chart."""
    fig = go.Figure()
    for arm in ("a", "b"):
        points = [(t, v, n) for name, t, v, n in rows if name == arm]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=f"{arm}: {labels[arm]}",
                line={"color": ARM_COLOURS[arm]},
                customdata=[p[2] for p in points],
                hovertemplate="%{x}<br>%{y}<br>%{customdata} requests<extra>" + arm + "</extra>",
            )
        )
    fig.update_layout(
        height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=metric, legend={"orientation": "h"}
    )
    return fig


def result_figure(columns: tuple[str, ...], rows: list[tuple]) -> go.Figure | None:
    """A chart of a query result: the first column along x, every numeric column as a series;
    lines when x is a time, bars otherwise. None when there is nothing to draw."""
    if len(columns) < 2 or not rows:
        return None
    numeric = [
        i
        for i in range(1, len(columns))
        if all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
        and any(r[i] is not None for r in rows)
    ]
    if not numeric:
        return None
    x = [r[0] for r in rows]
    is_time = all(isinstance(v, datetime) for v in x if v is not None)
    fig = go.Figure()
    for i in numeric:
        y = [r[i] for r in rows]
        if is_time:
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=columns[i]))
        else:
            fig.add_trace(go.Bar(x=[str(v) for v in x], y=y, name=columns[i]))
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def p_text(p: float | None) -> str:
    """A p-value as text; one below the smallest double shows as a bound, not as 0."""
    if p is None:
        return "n/a"
    return "< 1e-300" if p < 1e-300 else f"{p:.3g}"


def shown(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return format_value(metric, value)


# Presets -------------------------------------------------------------------------------------

PRESET_BEFORE = timedelta(days=3)


def compare_preset_link(
    feature: str,
    onset: datetime,
    end: datetime | None,
    change: ChangeEvent | None = None,
    where: tuple[str, str] | None = None,
) -> None:
    """One click to Compare the suspect's requests with the baseline (from a finding, the
    feature timeline or an incident's triage). The range: three days before the onset to the
    end of the degraded window."""
    a, b, label = comparing.preset(onset, change, where)
    since = onset - PRESET_BEFORE
    until = (end or onset + PRESET_BEFORE) + timedelta(seconds=1)
    st.page_link(
        "views/compare.py",
        label=f"⚖️ Compare: {label}",
        query_params=compare_params(
            feature, a, b, since.replace(microsecond=0), until.replace(microsecond=0)
        ),
    )


def compare_finding(finding: Finding) -> None:
    """The preset link for a finding of `analyze`: its best suspect, else its first slice."""
    change = finding.suspects[0].change if finding.suspects else None
    first = finding.scope.slices[0] if finding.scope.slices else None
    compare_preset_link(
        finding.feature, finding.onset, finding.end, change, (first.dimension, first.value) if first else None
    )
