"""Links carry a view's state and read back the same; evidence saved to an incident shows on
its timeline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.incidents.log import IncidentLog
from app.incidents.playbooks import fill
from app.incidents.timeline import assemble
from app.investigate.evidence import MAX_ROWS, evidence_of, save_evidence
from app.investigate.filters import Filter, Scope
from app.investigate.links import (
    compare_link,
    explore_link,
    parse_link,
    sql_link,
    time_param,
)


def test_an_explore_link_reads_back_as_the_same_scope():
    scope = Scope(
        "support-bot",
        datetime(2026, 11, 20),
        datetime(2026, 11, 21),
        Filter.parse("prompt_version=v7|v8,latency_ms>=1200,error=(missing)"),
    )
    view, params = parse_link("http://127.0.0.1:8501/" + explore_link(scope, "quality_score", page=3))
    assert view == "explore"
    assert params == {
        "feature": "support-bot",
        "since": "2026-11-20T00:00:00Z",
        "until": "2026-11-21T00:00:00Z",
        "where": scope.filter.text(),
        "metric": "quality_score",
        "page": "3",
    }
    assert Filter.parse(params["where"]) == scope.filter
    assert time_param(params["since"]) == scope.since


def test_compare_and_sql_links_round_trip():
    view, params = parse_link(
        compare_link("f", Filter.parse("variant=control"), Filter.parse("variant=canary,region=eu"))
    )
    assert view == "compare" and params == {
        "feature": "f",
        "a": "variant=control",
        "b": "variant=canary,region=eu",
    }
    sql = "SELECT error, count(*) FROM requests WHERE feature = 'a&b' GROUP BY 1"
    view, params = parse_link(sql_link(sql))
    assert view == "sql" and params == {"q": sql}


def test_a_playbook_link_template_is_filled_by_the_incident():
    template = (
        "compare?feature={feature}&a=prompt_version={suspect_change.from}"
        "&b=prompt_version={suspect_change.to}"
    )
    link = fill(template, {"feature": "support-bot", "suspect_change.from": "v7", "suspect_change.to": "v8"})
    view, params = parse_link(link)
    assert params == {"feature": "support-bot", "a": "prompt_version=v7", "b": "prompt_version=v8"}


def test_saved_evidence_is_on_the_incident_and_its_timeline(tmp_path: Path):
    log = IncidentLog(tmp_path)
    incident = log.open("quality drop", ["support-bot"])
    rows = [{"metric": f"m{i}", "value": "x" * 200} for i in range(30)]
    save_evidence(
        tmp_path,
        incident.id,
        title="Compare v7 with v8",
        link="compare?feature=f",
        note="v8 drops the citation rule",
        rows=rows,
        actor="ana",
    )
    saved = evidence_of(log.get(incident.id))
    assert len(saved) == 1
    e = saved[0]
    assert e["title"] == "Compare v7 with v8" and e["actor"] == "ana"
    assert e["columns"] == ["metric", "value"] and len(e["rows"]) == MAX_ROWS
    assert e["rows_total"] == 30 and len(e["rows"][0][1]) == 80
    entries = assemble(tmp_path, None, log.get(incident.id), datetime(2030, 1, 1))
    assert any(
        x.kind == "evidence" and "Compare v7 with v8" in x.text and "citation rule" in x.text for x in entries
    )
