"""Every page, through the router, shows what the data holds: the demo week, an empty data
directory, and logs with only the required fields."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import duckdb
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


def router_pages() -> dict[str, str]:
    """Page file -> the title it shows ("📊 Overview"), read from the router's SECTIONS."""
    tree = ast.parse(Path(ROUTER).read_text())
    sections = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign | ast.Assign)
        and "SECTIONS" in ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target)
    )
    return {path: f"{icon} {title}" for entries in sections.values() for path, title, icon in entries}


def sql(data_dir: Path, query: str) -> list[tuple]:
    """The answer of the store itself, read before the page runs, to compare the page with."""
    con = duckdb.connect(str(data_dir / "rollback.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def shown(at: AppTest) -> str:
    """Every text the page shows: titles, captions, alerts, markdown."""
    kinds = ("title", "header", "subheader", "caption", "info", "warning", "error", "success", "markdown")
    return "\n".join(e.value for kind in kinds for e in getattr(at, kind))


def test_every_page_file_is_in_the_router():
    assert sorted(router_pages()) == PAGES


NO_LOGS = "No request logs loaded yet."
EMPTY = {  # what each page tells someone who has loaded nothing yet
    "views/overview.py": NO_LOGS,
    "views/feature.py": NO_LOGS,
    "views/detect.py": NO_LOGS,
    "views/registry.py": NO_LOGS,
    "views/rollout.py": NO_LOGS,
    "views/audit.py": "No flag actions recorded yet",
    "views/incidents.py": "No incidents yet.",
    "views/data.py": "No files loaded yet.",
    "views/review.py": NO_LOGS,
    "views/explore.py": NO_LOGS,
    "views/compare.py": NO_LOGS,
    "views/sql.py": "Read-only: one SELECT",
}
# Pages that show a table even with nothing loaded: the SQL console lists what can be queried.
TABLE_WHEN_EMPTY = {"views/sql.py"}


@pytest.mark.parametrize("page", PAGES)
def test_each_page_on_an_empty_data_dir_says_what_is_missing(
    page: str, empty_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    at = run_page(empty_dir, page, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == router_pages()[page]
    assert EMPTY[page] in shown(at)
    assert not at.get("plotly_chart")
    assert bool(at.dataframe) == (page in TABLE_WHEN_EMPTY)
    if page == "views/data.py":
        assert {m.label: m.value for m in at.metric} == {
            "Requests stored": "0",
            "Files loaded": "0",
            "Rows quarantined": "0",
        }


def test_overview_shows_each_feature_with_its_volume_of_the_last_day(demo_dir: Path, monkeypatch):
    volumes = dict(
        sql(
            demo_dir,
            """SELECT feature, count(*) FROM requests
                                    WHERE timestamp > (SELECT max(timestamp) FROM requests) - INTERVAL 1 DAY
                                    GROUP BY 1""",
        )
    )
    at = run_page(demo_dir, "views/overview.py", monkeypatch)
    table = at.dataframe[0].value
    assert sorted(table["Feature"]) == sorted(volumes)
    for feature, volume in zip(table["Feature"], table["Volume"], strict=True):
        assert str(volume).split()[0] == f"{volumes[feature]:,}", feature
    # The demo's agent error spike is the one change for the worse larger than noise.
    flagged = [f for f, rate in zip(table["Feature"], table["Error rate"], strict=True) if "⚠️" in rate]
    assert flagged == ["ticket-triage-agent"]


def test_data_page_counts_what_the_store_holds(demo_dir: Path, monkeypatch):
    ((requests,),) = sql(demo_dir, "SELECT count(*) FROM requests")
    days = sorted(p.name for p in (demo_dir / "demo").glob("*.parquet"))  # one file per day
    at = run_page(demo_dir, "views/data.py", monkeypatch)
    assert {m.label: m.value for m in at.metric} == {
        "Requests stored": f"{requests:,}",
        "Files loaded": str(len(days)),
        "Rows quarantined": "0",
    }
    files = at.dataframe[0].value
    assert sorted(Path(p).name for p in files["path"]) == days
    assert files["loaded"].sum() == requests
    assert "No quarantined rows." in shown(at)


def test_registry_lists_every_feature_with_its_prompt_and_quality(demo_dir: Path, monkeypatch):
    features = [f for (f,) in sql(demo_dir, "SELECT DISTINCT feature FROM requests ORDER BY 1")]
    at = run_page(demo_dir, "views/registry.py", monkeypatch)
    table = at.dataframe[0].value
    assert list(table["feature"]) == features
    row = table.set_index("feature").loc["support-reply"]
    assert row["prompt"] == "v8" and row["prompt changed"] == "2026-11-20 14:00 UTC"
    assert row["Δ"] < -0.05  # the demo's prompt regression
    assert "Quality now = last 24 h of data" in shown(at)


def test_incidents_page_offers_every_shipped_playbook(demo_dir: Path, monkeypatch):
    from app.incidents.playbooks import load_playbooks

    at = run_page(demo_dir, "views/incidents.py", monkeypatch)
    # the demo ships one resolved incident (app/demo/incident.py): the page opens on it
    assert at.selectbox(key="incident_select").value == "INC-0001"
    playbook = next(s for s in at.selectbox if s.label == "Playbook")
    assert [o for o in playbook.options if o != "(none)"] == [p.id for p in load_playbooks()[0]]


def test_audit_page_filters_by_the_features_in_the_logs(demo_dir: Path, monkeypatch):
    features = [f for (f,) in sql(demo_dir, "SELECT DISTINCT feature FROM requests ORDER BY 1")]
    at = run_page(demo_dir, "views/audit.py", monkeypatch)
    assert next(s for s in at.selectbox if s.label == "Feature").options == ["(all)", *features]
    # the demo's one press: the prompt revert of its incident, replayed at its time
    assert (
        "Latest press: **sam** (responder) · revert-prompt support-reply · verified · 2026-11-04 16:30:"
        in shown(at)
    )


@pytest.fixture(scope="module")
def sparse_template(tmp_path_factory) -> Path:
    """Logs with only the two required fields, over three hours: no metric but volume has a
    value, and there is no previous period to compare with."""
    from app.ingest.pipeline import ingest_paths
    from app.storage.store import Store

    folder = tmp_path_factory.mktemp("sparse")
    logs = folder / "minimal.jsonl"
    logs.write_text(
        "".join(
            json.dumps(
                {"timestamp": f"2026-11-25T{10 + i // 60:02d}:{i % 60:02d}:00Z", "feature": "bare-minimum"}
            )
            + "\n"
            for i in range(180)
        )
    )
    assert ingest_paths(Store(folder / "data"), [str(logs)]).loaded == 180
    return folder / "data"


SPARSE = {  # what each page shows of 180 requests with only a timestamp and a feature
    "views/overview.py": lambda at: at.dataframe[0].value["Volume"].iloc[0].split()[0] == "180",
    "views/feature.py": lambda at: (
        shown(at).count("180 requests") == 1 and "No flags configured for bare-minimum" in shown(at)
    ),
    "views/detect.py": lambda at: (
        {m.label: m.value for m in at.metric}
        == {"Findings": "0", "Features affected": "0", "Inconclusive": "1"}
        and list(at.dataframe[0].value["feature"]) == ["bare-minimum"]
    ),
    "views/registry.py": lambda at: list(at.dataframe[0].value["feature"]) == ["bare-minimum"],
    "views/rollout.py": lambda at: at.selectbox[0].value == "bare-minimum",
    "views/audit.py": lambda at: "No flag actions recorded yet" in shown(at),
    "views/incidents.py": lambda at: "No incidents yet." in shown(at),
    "views/data.py": lambda at: (
        {m.label: m.value for m in at.metric}
        == {"Requests stored": "180", "Files loaded": "1", "Rows quarantined": "0"}
    ),
    "views/review.py": lambda at: (
        "No objectives for bare-minimum in slos.yaml: none is assumed." in shown(at)
        and "2026-W48 (2026-11-23 to 2026-11-29), UTC. 0 of 0 objectives met" in shown(at)
    ),
    "views/explore.py": lambda at: (
        {m.label: m.value for m in at.metric}["Requests"] == "180" and "Requests 1 to 50 of 180." in shown(at)
    ),
    "views/compare.py": lambda at: "Give each arm a filter" in shown(at),
    "views/sql.py": lambda at: "Read-only: one SELECT" in shown(at),
}


@pytest.mark.parametrize("page", PAGES)
def test_each_page_shows_logs_with_only_the_required_fields(
    page: str, sparse_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data = tmp_path / "data"
    shutil.copytree(sparse_template, data)
    at = run_page(data, page, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == router_pages()[page]
    assert SPARSE[page](at), shown(at)


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
    assert all(
        s["yref"] == "paper" and s["y0"] == 0 and s["y1"] == 1
        for s in shapes
        if s.get("line", {}).get("dash") != "dash"
    )
    assert "v7 → v8" in hover and "maria" in hover and "declared" in hover
    panels = [a["text"] for a in spec["layout"]["annotations"]]
    for title in (
        "Quality score",
        "Error rate",
        "p95 latency",
        "Cost per request",
        "Requests",
        "Negative feedback rate",
    ):
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


def test_feature_timeline_marks_the_detected_onset_and_opens_an_incident(demo_dir: Path, monkeypatch):
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


def test_data_page_loads_a_file_by_path_and_shows_it(empty_dir: Path, tmp_path: Path, monkeypatch):
    import polars as pl

    rows = 1_500_000
    logs = tmp_path / "logs.parquet"
    pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                pl.datetime(2026, 3, 1), pl.datetime(2026, 4, 1), interval="1s", eager=True
            ).head(rows),
            "feature": pl.Series(["chat"] * rows),
            "latency_ms": pl.Series(range(rows), dtype=pl.Float64),
        }
    ).write_parquet(logs, row_group_size=50_000)
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
