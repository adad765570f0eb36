"""A data directory in lake mode answers exactly as the embedded store does on the same logs:
analyze, the timeline, the overview and the pages."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from app.detection.analysis import analyze
from app.lake.ingest import ingest_to_lake
from app.metrics import timeline as metrics
from app.storage.lake import LakeConfigError, load_lake
from app.storage.store import Store

ROUTER = str(Path(__file__).resolve().parents[2] / "app" / "ui" / "streamlit_app.py")


def test_requests_live_in_the_lake_not_in_the_database(pair):
    embedded, lake = pair
    s = Store(lake)
    assert s.lake is not None
    assert s.request_count() == Store(embedded).request_count() > 100_000
    parquet = list((lake / "lake" / "requests").glob("date=*/feature=*/*.parquet"))
    assert len(parquet) >= 5
    import duckdb

    con = duckdb.connect(str(lake / "rollback.duckdb"), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert "changes" in tables and not tables & {"requests", "rollup_5m", "hist_1h"}


def test_analyze_gives_the_same_findings(pair):
    embedded, lake = pair
    a = analyze(Store(embedded)).as_dict()
    b = analyze(Store(lake)).as_dict()
    assert a["findings"] and a == b


def test_detections_hourly_frames_are_the_same(pair):
    # Detection's hourly sums and histograms come from rollup_5m and hist_1h: tables of the
    # embedded store, views over agg_versions_5m and hist_1h in lake mode.
    import numpy as np

    from app.detection.hourly import load_hourly

    a, b = (Store(p) for p in pair)
    _, newest = a.time_bounds()
    since, until = newest - timedelta(days=8), newest + timedelta(microseconds=1)
    ha, hb = load_hourly(a, since, until), load_hourly(b, since, until)
    assert ha.keys() == hb.keys() and len(ha) >= 3
    for name in ha:
        for col, arr in ha[name].sums.items():
            np.testing.assert_allclose(arr, hb[name].sums[col], rtol=1e-9, err_msg=f"{name} {col}")
        for metric, h in ha[name].hists.items():
            np.testing.assert_array_equal(h.counts, hb[name].hists[metric].counts)
            np.testing.assert_allclose(h.edges, hb[name].hists[metric].edges)


def test_timelines_and_overview_are_the_same(pair):
    embedded, lake = pair
    e, k = Store(embedded), Store(lake)
    lo, hi = e.time_bounds(None)
    for feature in e.features():
        for bucket in ("1 hour", "5 minutes"):
            since = hi - timedelta(days=2) if bucket == "5 minutes" else lo
            same(
                metrics.timeline(e, feature, since, hi, bucket=bucket),
                metrics.timeline(k, feature, since, hi, bucket=bucket),
            )
        same(
            metrics.timeline(e, feature, lo, hi, split="region"),
            metrics.timeline(k, feature, lo, hi, split="region"),
        )
    same(metrics.overview(e, hi - timedelta(days=1), hi), metrics.overview(k, hi - timedelta(days=1), hi))


def same(a, b) -> None:
    """Equal but for the order in which floating-point sums were added (1e-9 relative, and
    1e-12 absolute for a difference near zero)."""
    from polars.testing import assert_frame_equal

    assert a.height > 0
    assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def test_loading_a_file_again_changes_nothing(pair, tmp_path: Path):
    _, lake = pair
    data = tmp_path / "copy"
    shutil.copytree(lake, data)
    (data / "lake.yaml").write_text(
        yaml.safe_dump({"requests": "lake/requests", "aggregates": "lake/aggregates"})
    )
    store = Store(data)
    before = store.request_count()
    logs = sorted((lake / "demo").glob("*.parquet"))[:1]  # the paths the copy has on record
    result, built = ingest_to_lake(store, [str(p) for p in logs])
    assert [f.skipped for f in result.files] == [True] and built is None
    assert Store(data).request_count() == before


def test_a_bad_row_is_quarantined_and_the_rest_reaches_the_lake(tmp_path: Path):
    data = tmp_path / "desk"
    data.mkdir()
    (data / "lake.yaml").write_text("requests: lake/requests\naggregates: lake/aggregates\n")
    logs = tmp_path / "logs.jsonl"
    logs.write_text(
        '{"timestamp": "2026-05-01T10:00:00Z", "feature": "chat", "latency_ms": 120}\n'
        '{"timestamp": "not a time", "feature": "chat"}\n'
        '{"timestamp": "2026-05-01T10:01:00Z", "feature": "chat", "latency_ms": 130}\n'
    )
    result, built = ingest_to_lake(Store(data), [str(logs)])
    assert result.loaded == 2 and result.files[0].quarantined == 1
    store = Store(data)
    assert store.request_count() == 2
    assert store.quarantine_count() == 1
    assert built is not None and built.built == 1


def test_lake_yaml_errors_name_the_file_and_key(tmp_path: Path):
    (tmp_path / "lake.yaml").write_text("requests: s3://key:secret@bucket/x\naggregates: agg\n")
    with pytest.raises(LakeConfigError, match=r"lake.yaml: line 1: requests: holds credentials") as info:
        load_lake(tmp_path)
    assert "secret" not in str(info.value).replace("holds credentials", "")
    (tmp_path / "lake.yaml").write_text("requests: r\nbucket: b\n")
    with pytest.raises(LakeConfigError, match="line 2: bucket: unknown key"):
        load_lake(tmp_path)
    (tmp_path / "lake.yaml").write_text("requests: [unclosed\n")
    with pytest.raises(LakeConfigError, match=r"lake.yaml: line \d+: not valid YAML"):
        load_lake(tmp_path)


@pytest.mark.parametrize("page", ["views/overview.py", "views/feature.py", "views/detect.py"])
def test_pages_show_the_same_numbers_in_lake_mode(page: str, pair, monkeypatch):
    shown = []
    for data in pair:
        st.cache_data.clear()
        st.cache_resource.clear()
        monkeypatch.setenv("ROLLBACK_DESK_DATA", str(data))
        at = AppTest.from_file(ROUTER, default_timeout=90)
        at.run()
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown.append(
            (
                [(m.label, m.value) for m in at.metric],
                [c.value.replace(str(data), "DATA") for c in at.caption],
            )
        )
    assert shown[0] == shown[1]
    assert shown[0][0] or shown[0][1]
