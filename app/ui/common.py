"""What every page shares: the data directory, the store, cached queries, the time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import streamlit as st

from app.changes import timeline as changes
from app.changes.events import ChangeEvent
from app.config import resolve_data_dir
from app.metrics import timeline as metrics
from app.storage.datadir import DataDir
from app.storage.store import Store

RANGES: dict[str, timedelta | None] = {
    "Last 24 hours": timedelta(hours=24),
    "Last 3 days": timedelta(days=3),
    "Last 7 days": timedelta(days=7),
    "Last 14 days": timedelta(days=14),
    "Last 30 days": timedelta(days=30),
    "All data": None,
}


def data_dir() -> Path:
    return resolve_data_dir()


def datadir() -> DataDir:
    """The data directory of this run: its store, ledger and flag configuration, opened once."""
    return DataDir(data_dir())


def store() -> Store:
    return Store(data_dir())


def data_version() -> str:
    """The cache key of every page query: changes whenever files or change events are
    loaded (DuckDB) and whenever the ledger gains a row (a flag action, a ladder step, a
    fetched flag history, an incident event), so the next rerun shows it."""
    dd = datadir()
    row = dd.store.rows("""SELECT (SELECT count(*) FROM files), (SELECT max(loaded_at) FROM files),
                                  (SELECT count(*) FROM changes)""")[0]
    return "|".join(str(v) for v in row) + "#" + dd.ledger.version()


@st.cache_data(show_spinner=False, max_entries=64)
def cached_timeline(
    dd: str,
    version: str,
    feature: str,
    since: datetime,
    until: datetime,
    bucket: str | None,
    split: str | None,
) -> pl.DataFrame:
    return metrics.timeline(Store(Path(dd)), feature, since, until, bucket=bucket, split=split)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_overview(dd: str, version: str, since: datetime, until: datetime) -> pl.DataFrame:
    return metrics.overview(Store(Path(dd)), since, until)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_bounds(dd: str, version: str, feature: str | None) -> tuple:
    return Store(Path(dd)).time_bounds(feature)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_features(dd: str, version: str) -> list[str]:
    return Store(Path(dd)).features()


def timeline_changes(feature: str, since: datetime, until: datetime) -> list[ChangeEvent]:
    return changes.timeline_changes(store(), feature, since, until)


def features() -> list[str]:
    return cached_features(str(data_dir()), data_version())


def pick_range(
    key: str, feature: str | None = None, default: str = "Last 7 days"
) -> tuple[datetime, datetime] | None:
    """A time range relative to the newest data (logs are often historical), or custom dates."""
    lo, hi = cached_bounds(str(data_dir()), data_version(), feature)
    if lo is None:
        return None
    end = hi + timedelta(microseconds=1)
    options = [*RANGES, "Custom"]
    choice = st.selectbox(
        "Time range",
        options,
        index=options.index(default),
        key=f"{key}_range",
        help="Measured back from the newest request in the data, not the clock.",
    )
    if choice == "Custom":
        picked = st.date_input(
            "Dates (UTC)",
            value=(lo.date(), hi.date()),
            key=f"{key}_dates",
            min_value=lo.date(),
            max_value=hi.date(),
        )
        if isinstance(picked, tuple) and len(picked) == 2:
            since = datetime.combine(picked[0], datetime.min.time())
            until = datetime.combine(picked[1], datetime.min.time()) + timedelta(days=1)
            return since, until
        return lo, end
    width = RANGES[choice]
    return (lo if width is None else max(lo, end - width)), end


def empty_state() -> None:
    st.info(
        "No request logs loaded yet. Load the demo with `rollback-desk demo`, or load "
        "your own logs on the **Data** page or with `rollback-desk ingest PATH`.",
        icon="📭",
    )


def selected_feature(options: list[str]) -> str:
    """The feature chosen on any page (kept across pages and in the URL as ?feature=)."""
    wanted = st.query_params.get("feature") or st.session_state.get("feature")
    index = options.index(wanted) if wanted in options else 0
    feature = st.selectbox("Feature", options, index=index, key="feature_select")
    st.session_state["feature"] = feature
    st.query_params["feature"] = feature
    return feature
