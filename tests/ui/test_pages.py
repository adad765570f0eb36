"""Every page runs, through the router, on the demo data and on an empty data directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROUTER = str(Path(__file__).resolve().parents[2] / "app" / "ui" / "streamlit_app.py")
PAGES_DIR = Path(ROUTER).parent / "views"
PAGES = sorted(f"views/{p.name}" for p in PAGES_DIR.glob("*.py"))


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def run_page(data_dir: Path, page: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(data_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    at.run()
    at.switch_page(page)
    at.run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_on_demo_data(page: str, demo_dir: Path, monkeypatch: pytest.MonkeyPatch):
    at = run_page(demo_dir, page, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_on_empty_data_dir(page: str, empty_dir: Path, monkeypatch: pytest.MonkeyPatch):
    at = run_page(empty_dir, page, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture(scope="module")
def sparse_template(tmp_path_factory) -> Path:
    """Logs with only the two required fields, over three hours: no metric but volume has a
    value, and there is no previous period to compare with."""
    from app.ingest.pipeline import ingest_paths
    from app.storage.store import Store

    folder = tmp_path_factory.mktemp("sparse")
    logs = folder / "minimal.jsonl"
    logs.write_text("".join(
        json.dumps({"timestamp": f"2026-11-25T{10 + i // 60:02d}:{i % 60:02d}:00Z",
                    "feature": "bare-minimum"}) + "\n" for i in range(180)))
    assert ingest_paths(Store(folder / "data"), [str(logs)]).loaded == 180
    return folder / "data"


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_on_logs_with_only_the_required_fields(page: str, sparse_template: Path,
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    data = tmp_path / "data"
    shutil.copytree(sparse_template, data)
    at = run_page(data, page, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]


def test_feature_timeline_draws_every_change_as_a_marker(demo_dir: Path, monkeypatch):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    at.session_state["feature"] = "support-reply"
    at.run()
    at.switch_page("views/feature.py")
    at.run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    shapes = spec["layout"]["shapes"]
    hover = " ".join(" ".join(t.get("hovertext") or []) for t in spec["data"])
    # The prompt change v7 -> v8 and the retrieval-index change are drawn across all panels.
    assert any(s["x0"].startswith("2026-11-20T14:00") for s in shapes)
    assert any(s["x0"].startswith("2026-11-18T16:00") for s in shapes)
    assert all(s["yref"] == "paper" and s["y0"] == 0 and s["y1"] == 1 for s in shapes
               if s.get("line", {}).get("dash") != "dash")
    assert "v7 → v8" in hover and "maria" in hover and "declared" in hover
    panels = [a["text"] for a in spec["layout"]["annotations"]]
    for title in ("Quality score", "Error rate", "p95 latency", "Cost per request", "Requests",
                  "Negative feedback rate"):
        assert any(p.startswith(title) for p in panels)


def test_feature_timeline_splits_by_variant(demo_dir: Path, monkeypatch):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    at.session_state["feature"] = "doc-summarizer"
    at.run()
    at.switch_page("views/feature.py")
    at.run()
    at.selectbox(key="split").select("variant")
    at.run()
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {t.get("name") for t in spec["data"]}
    assert {"canary", "control"} <= names


def test_search_answers_silent_update_is_marked(demo_dir: Path, monkeypatch):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    at.session_state["feature"] = "search-answers"
    at.run()
    at.switch_page("views/feature.py")
    at.run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    hover = " ".join(" ".join(t.get("hovertext") or []) for t in spec["data"])
    assert "silent provider update" in hover and "gpt-4o-2024-11-20" in hover
    dotted = [s for s in spec["layout"]["shapes"] if s.get("line", {}).get("dash") == "dot"]
    assert dotted and dotted[0]["x0"].startswith("2026-11-19T03:00")


def test_registry_warns_about_floating_alias(demo_dir: Path, monkeypatch):
    at = run_page(demo_dir, "views/registry.py", monkeypatch)
    warnings = " ".join(w.value for w in at.warning)
    assert "gpt-4o is a floating alias" in warnings
    assert "provider answers with gpt-4o-2024-11-20" in warnings
    assert "support-reply" not in warnings  # pinned, dated model: nothing to warn about


def test_feature_timeline_marks_the_detected_onset_and_opens_an_incident(demo_dir: Path,
                                                                         monkeypatch):
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(demo_dir))
    at = AppTest.from_file(ROUTER, default_timeout=90)
    at.session_state["feature"] = "support-reply"
    at.run()
    at.switch_page("views/feature.py")
    at.run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    onsets = [s for s in spec["layout"]["shapes"] if s.get("line", {}).get("dash") == "dash"]
    assert any(s["x0"].startswith("2026-11-20T14:00") for s in onsets)
    assert any("prompt prompt_version" in w.value and "v8" in w.value for w in at.warning)
    at.button(key="open_incident").click()
    at.run()
    assert not at.exception
    prefill = at.session_state["incident_prefill"]
    assert prefill["feature"] == "support-reply" and prefill["onset"].startswith("2026-11-20T14")


def test_data_page_loads_a_file_by_path_and_shows_it(empty_dir: Path, tmp_path: Path,
                                                           monkeypatch):
    import polars as pl

    rows = 1_500_000
    logs = tmp_path / "logs.parquet"
    pl.DataFrame({
        "timestamp": pl.datetime_range(pl.datetime(2026, 3, 1), pl.datetime(2026, 4, 1),
                                       interval="1s", eager=True).head(rows),
        "feature": pl.Series(["chat"] * rows),
        "latency_ms": pl.Series(range(rows), dtype=pl.Float64),
    }).write_parquet(logs, row_group_size=50_000)
    at = run_page(empty_dir, "views/data.py", monkeypatch)
    at.text_input(key="paths").set_value(str(logs))
    at.button(key="load").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"{rows:,} loaded" in s.value for s in at.success)
    # The page ran again after the load: its counts include the new file.
    assert at.metric[0].value == f"{rows:,}" and at.metric[1].value == "1"


def test_data_page_refuses_a_load_by_a_responder(empty_dir: Path, tmp_path: Path, monkeypatch):
    (empty_dir / "access.yaml").write_text("local_role: responder\n")
    logs = tmp_path / "a.jsonl"
    logs.write_text('{"timestamp": "2026-03-02T10:00:00Z", "feature": "chat"}\n')
    at = run_page(empty_dir, "views/data.py", monkeypatch)
    assert any("Loading data needs the admin role; you are a responder" in c.value for c in at.caption)
    at.text_input(key="paths").set_value(str(logs))
    at.button(key="load").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("may not load or upload data (needs admin)" in e.value for e in at.error)
    assert at.metric[0].value == "0"
