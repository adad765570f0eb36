"""The feature timeline says so when the detection markers cannot be drawn, instead of
silently drawing a chart without them."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROUTER = str(Path(__file__).resolve().parents[2] / "app" / "ui" / "streamlit_app.py")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def feature_page(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(data_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    at.session_state["feature"] = "support-reply"
    at.run()
    at.switch_page("views/feature.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_broken_thresholds_file_is_shown_on_the_timeline(demo_dir: Path, monkeypatch: pytest.MonkeyPatch):
    at = feature_page(demo_dir, monkeypatch)
    assert not [w for w in at.warning if "Detection markers" in w.value]
    (demo_dir / "detection.yaml").write_text("metrics: [not, closed")
    st.cache_data.clear()
    at.run()
    [warning] = [w for w in at.warning if "Detection markers are not shown" in w.value]
    assert "detection.yaml" in warning.value
    assert not [c for c in at.caption if "No degradation detected" in c.value]
    assert at.get("plotly_chart")  # the chart itself still renders
