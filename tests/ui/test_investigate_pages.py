"""Explore, Compare and SQL through the router, on the known store: what each view shows,
that links carry the state, and that roles are obeyed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.investigate import querylog
from app.investigate.compare import compare
from app.investigate.filters import Filter, Scope
from app.investigate.roles import Actor
from app.storage.store import Store

ROUTER = str(Path(__file__).resolve().parents[2] / "app" / "ui" / "streamlit_app.py")
FEATURE = "support-bot"


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture(scope="module")
def known_template(tmp_path_factory):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from investigate.conftest import known_rows

    from app.ingest.pipeline import ingest_paths

    folder = tmp_path_factory.mktemp("known-ui")
    logs = folder / "known.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in known_rows()))
    assert ingest_paths(Store(folder / "data"), [str(logs)]).loaded == 3000
    return folder / "data"


@pytest.fixture
def known_dir(known_template: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "data"
    shutil.copytree(known_template, target)
    return target


def open_page(
    data_dir: Path, page: str, monkeypatch, params: dict | None = None, actor: Actor | None = None
) -> AppTest:
    monkeypatch.setenv("ROLLBACK_DESK_DATA", str(data_dir))
    at = AppTest.from_file(ROUTER, default_timeout=60)
    at.query_params.update(params or {})
    if actor is not None:  # without sign-in, the local person's role comes from access.yaml
        (data_dir / "access.yaml").write_text(f"local_role: {actor.role}\n")
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def frames(at: AppTest, *columns: str) -> list:
    """The tables shown that have all these columns, in page order (tables are no widgets,
    so they have no key to find them by)."""
    out = []
    for d in at.dataframe:
        value = d.value
        if all(c in value.columns for c in columns):
            out.append(value)
    return out


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_explore_opens_the_linked_filter_with_its_facets(known_dir, monkeypatch):
    at = open_page(
        known_dir,
        "views/explore.py",
        monkeypatch,
        {
            "feature": FEATURE,
            "where": "prompt_version=v8",
            "since": "2026-11-20T00:00:00Z",
            "until": "2026-11-21T00:00:00Z",
        },
    )
    shown = metrics(at)
    assert shown["Requests"] == "1,000" and shown["Error rate"] == "12.50%"
    facets = {tuple(sorted(f["value"])): f for f in frames(at, "value", "contribution")}
    region = facets[("eu", "us")]
    assert dict(zip(region["value"], region["requests"], strict=True)) == {"eu": 500, "us": 500}
    errors = facets[("(missing)", "timeout")]
    assert list(errors["value"]) == ["timeout", "(missing)"]  # the errors carry the error rate
    table = frames(at, "extra.prompt_text")[0]
    assert len(table) == 50 and set(table["prompt_version"]) == {"v8"}
    assert table["extra.prompt_text"].str.len().max() == 120  # cut for the table
    assert at.query_params["where"] == "prompt_version=v8"


def test_explore_filters_to_a_facet_value_and_puts_it_in_the_url(known_dir, monkeypatch):
    at = open_page(known_dir, "views/explore.py", monkeypatch, {"feature": FEATURE})
    assert metrics(at)["Requests"] == "3,000"
    at.selectbox(key="explore_facet_dim").set_value("region").run()
    at.selectbox(key="explore_facet_value").set_value("eu").run()
    at.button(key="explore_facet_apply").click().run()
    assert not at.exception
    assert metrics(at)["Requests"] == "500"
    assert at.text_input(key="explore_where").value == "region=eu"
    assert at.query_params["where"] == "region=eu"


def test_explore_says_what_is_wrong_with_a_filter(known_dir, monkeypatch):
    at = open_page(known_dir, "views/explore.py", monkeypatch, {"feature": FEATURE, "where": "colour=red"})
    assert any("colour" in e.value for e in at.error)


def test_compare_shows_the_numbers_of_the_logic(known_dir, monkeypatch):
    params = {
        "feature": FEATURE,
        "a": "prompt_version=v7",
        "b": "prompt_version=v8",
        "since": "2026-11-20T00:00:00Z",
        "until": "2026-11-21T00:00:00Z",
    }
    at = open_page(known_dir, "views/compare.py", monkeypatch, params)
    table = at.table[0].value
    rows = {r["metric"]: r for r in table.to_dict("records")}
    assert rows["error_rate"]["a"] == "2.50%" and rows["error_rate"]["b"] == "12.50%"
    assert rows["error_rate"]["difference (b − a)"] == "+10.00%"
    expected = compare(
        Store(known_dir),
        Scope(FEATURE, filter=Filter.parse("prompt_version=v7")),
        Scope(FEATURE, filter=Filter.parse("prompt_version=v8")),
    )
    assert rows["quality_score"]["p-value"] == f"{expected.metric('quality_score').p_value:.3g}"
    assert rows["latency_p95_ms"]["n a / n b"] == "2,000 / 1,000"
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in chart["data"]] == ["a: prompt_version=v7", "b: prompt_version=v8"]
    worst_a, worst_b = frames(at, "request_id", "error", "quality_score")
    assert set(worst_a["prompt_version"]) == {"v7"}
    assert len(worst_b) == 20 and set(worst_b["error"]) == {"timeout"}
    for key, value in params.items():
        assert at.query_params[key] == value


def test_compare_asks_for_arms_when_none_is_given(known_dir, monkeypatch):
    at = open_page(known_dir, "views/compare.py", monkeypatch, {"feature": FEATURE})
    assert any("Give each arm a filter" in i.value for i in at.info)


def test_sql_runs_the_linked_query_and_records_who_ran_it(known_dir, monkeypatch):
    at = open_page(
        known_dir,
        "views/sql.py",
        monkeypatch,
        {"q": "SELECT prompt_version, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1"},
        actor=Actor("ada", "admin"),
    )
    rows = frames(at, "prompt_version", "n")[0]
    assert list(rows["prompt_version"]) == ["v7", "v8"] and list(rows["n"]) == [2000, 1000]
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["data"][0]["type"] == "bar" and chart["data"][0]["y"] == [2000, 1000]
    record = querylog.recent(known_dir)[0]
    assert (record.role, record.outcome, record.rows) == ("admin", "ok", 2)
    assert record.actor.endswith("@local")


@pytest.mark.parametrize(
    "sql, shown",
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "reads a file"),
        ("DELETE FROM requests", "DELETE statement"),
        ("ATTACH 'other.duckdb'", "ATTACH"),
    ],
)
def test_sql_refuses_with_a_clear_message(sql, shown, known_dir, monkeypatch):
    at = open_page(known_dir, "views/sql.py", monkeypatch)
    at.text_area(key="sql_text").set_value(sql)
    at.button(key="sql_run").click().run()
    assert any(shown in e.value for e in at.error)
    assert Store(known_dir).request_count() == 3000


def test_sql_needs_an_admin(known_dir, monkeypatch):
    at = open_page(
        known_dir, "views/sql.py", monkeypatch, {"q": "SELECT 1"}, actor=Actor("rosa", "responder")
    )
    assert any("needs the admin role" in e.value for e in at.error)
    assert not at.text_area


def test_exports_follow_the_role(known_dir, monkeypatch):
    at = open_page(
        known_dir, "views/explore.py", monkeypatch, {"feature": FEATURE}, actor=Actor("vic", "viewer")
    )
    assert any("Exports need the responder role" in c.value for c in at.caption)
    at = open_page(
        known_dir,
        "views/explore.py",
        monkeypatch,
        {"feature": FEATURE, "where": "region=eu"},
        actor=Actor("rosa", "responder"),
    )
    at.button(key="export_go").click().run()
    assert any("500 requests written" in s.value for s in at.success)
    files = list((known_dir / "exports").glob("*.jsonl"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 500


def test_a_comparison_saved_to_an_incident_reaches_its_post_mortem(known_dir, monkeypatch):
    from app.incidents import postmortem
    from app.incidents.log import IncidentLog

    incident = IncidentLog(known_dir).open("support-bot quality", [FEATURE])
    at = open_page(
        known_dir,
        "views/compare.py",
        monkeypatch,
        {"feature": FEATURE, "a": "prompt_version=v7", "b": "prompt_version=v8"},
    )
    at.text_area(key="compare_save_note").set_value("v8 fails four times as often")
    at.button(key="compare_save_go").click().run()
    assert any(f"Saved to {incident.id}" in s.value for s in at.success)
    text = postmortem.export(known_dir, incident.id)
    section = text.split("## Investigation")[1].split("## Timeline")[0]
    assert "Compare prompt_version=v7 with prompt_version=v8" in section
    assert "v8 fails four times as often" in section
    assert "compare?feature=support-bot" in section and "| error_rate | 2.50% | 12.50% |" in section


def test_explore_adds_a_condition_from_the_form(known_dir, monkeypatch):
    at = open_page(known_dir, "views/explore.py", monkeypatch, {"feature": FEATURE})
    at.selectbox(key="explore_new_field").set_value("latency_ms")
    at.selectbox(key="explore_new_op").set_value("at least")
    at.text_input(key="explore_new_value").set_value("1900")
    at.button(key="explore_add").click().run()
    assert at.text_input(key="explore_new_value").value == "1900"
    assert at.text_input(key="explore_where").value == "latency_ms>=1900"
    assert metrics(at)["Requests"] == "200"  # v8 latency 1500 + (i % 500), i < 1000: 1900..1999 twice


def test_detect_offers_the_comparison_of_each_findings_suspect(demo_dir, monkeypatch):
    from urllib.parse import parse_qs

    at = open_page(demo_dir, "views/detect.py", monkeypatch)
    links = [link.proto for link in at.get("page_link") if link.proto.page == "compare"]
    assert links
    by_label = {p.label: {k: v[0] for k, v in parse_qs(p.query_string).items()} for p in links}
    prompt = by_label["⚖️ Compare: prompt_version v7 against v8"]
    assert prompt["feature"] == "support-reply"
    assert (prompt["a"], prompt["b"]) == ("prompt_version=v7", "prompt_version=v8")
    canary = next(q for label, q in by_label.items() if "variant = canary" in label)
    assert canary["a"].startswith("variant!=canary,timestamp>=")
    assert canary["b"].startswith("variant=canary,timestamp>=")
    # following it shows the canary's requests against the rest
    at.query_params.clear()
    at.query_params.update(canary)
    at.switch_page("views/compare.py")
    at.run()
    table = {r["metric"]: r for r in at.table[0].value.to_dict("records")}
    assert float(table["error_rate"]["b"].rstrip("%")) > 5 * float(table["error_rate"]["a"].rstrip("%"))


def test_a_runaway_query_is_stopped_and_the_console_carries_on(known_dir, monkeypatch):
    at = open_page(known_dir, "views/sql.py", monkeypatch)
    at.number_input(key="sql_timeout").set_value(1.0)
    at.text_area(key="sql_text").set_value("SELECT count(*) FROM range(1000000000000) a, requests b")
    at.button(key="sql_run").click().run()
    assert any("ran longer than the 1 s limit and was interrupted" in w.value for w in at.warning)
    at.text_area(key="sql_text").set_value("SELECT 41 + 1 AS answer")
    at.button(key="sql_run").click().run()
    assert frames(at, "answer")[0]["answer"].tolist() == [42]
    assert [r.outcome for r in querylog.recent(known_dir)[:2]] == ["ok", "timeout"]


def test_typing_twice_keeps_the_latest_filter(known_dir, monkeypatch):
    at = open_page(known_dir, "views/explore.py", monkeypatch, {"feature": FEATURE})
    at.text_input(key="explore_where").set_value("region=eu").run()
    assert metrics(at)["Requests"] == "500"
    at.text_input(key="explore_where").set_value("region=us").run()
    assert at.text_input(key="explore_where").value == "region=us"
    assert metrics(at)["Requests"] == "2,500" and at.query_params["where"] == "region=us"


def test_compare_splits_at_a_change_picked_from_the_timeline(demo_dir, monkeypatch):
    at = open_page(demo_dir, "views/compare.py", monkeypatch, {"feature": "support-reply"})
    options = at.selectbox(key="compare_change").options
    prompt = next(o for o in options if "prompt" in o and "v7 → v8" in o)
    at.selectbox(key="compare_change").select_index(options.index(prompt)).run()
    at.button(key="compare_change_go").click().run()
    a, b = at.text_input(key="compare_a").value, at.text_input(key="compare_b").value
    assert a.startswith("timestamp<") and b.startswith("timestamp>=") and a[10:] == b[11:]
    table = {r["metric"]: r for r in at.table[0].value.to_dict("records")}
    assert table["quality_score"]["difference (b − a)"].startswith("−")  # v8 is worse
