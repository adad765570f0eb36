"""An incident opened with only a feature and a title gets the analysis' finding attached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.incidents.attach import attach_finding
from app.incidents.log import IncidentLog
from app.incidents.playbooks import load_playbooks
from app.storage.store import Store


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_an_incident_opened_from_the_cli_gets_onset_metric_suspects_and_a_playbook(demo_dir: Path, capsys):
    d = ["--data-dir", str(demo_dir)]
    code, out = run(
        capsys, "incidents", "open", "--feature", "doc-summarizer", "--title", "Summaries fail", "--json", *d
    )
    assert code == 0
    opened = json.loads(out)
    finding = opened["analysis"]["finding"]
    assert finding["feature"] == "doc-summarizer"  # the canary's errors and latency: the worse one
    assert finding["scope"]["kind"] == "partial"
    assert {"dimension": "variant", "value": "canary"}.items() <= finding["scope"]["slices"][0].items()

    incident = IncidentLog(demo_dir).get(opened["id"])
    assert incident.metric == finding["metric"]
    assert incident.onset is not None and incident.onset.strftime("%Y-%m-%dT%H:%M:%SZ") == finding["onset"]
    assert incident.suspect_change_ids and incident.finding == finding
    assert incident.playbook == opened["analysis"]["playbook"] is not None
    assert [e.kind for e in incident.events].count("finding") == 1

    code, out = run(capsys, "postmortem", opened["id"], *d)
    assert code == 0 and "No numbers" not in out


def test_without_a_degradation_the_incident_records_why_no_finding_was_attached(demo_dir: Path):
    log = IncidentLog(demo_dir)
    incident = log.open("Feels slow", ["no-such-feature"], "SEV3")
    result = attach_finding(Store(demo_dir), log, incident.id, load_playbooks()[0])
    assert result.finding is None and "no logged requests for no-such-feature" in result.reason
    again = log.get(incident.id)
    assert again.onset is None and again.playbook is None
    assert again.events[-1].kind == "finding" and again.events[-1].data["reason"] == result.reason


def test_the_analysis_runs_again_on_demand_without_overwriting_what_the_incident_has(demo_dir: Path, capsys):
    d = ["--data-dir", str(demo_dir)]
    code, out = run(
        capsys,
        "incidents",
        "open",
        "--feature",
        "doc-summarizer",
        "--title",
        "t",
        "--metric",
        "error_rate",
        "--playbook",
        "canary-failure",
        "--no-analysis",
        "--json",
        *d,
    )
    incident_id = json.loads(out)["id"]
    assert IncidentLog(demo_dir).get(incident_id).finding is None
    code, out = run(capsys, "incidents", "analyze", incident_id, "--json", *d)
    assert code == 0 and json.loads(out)["finding"]["metric"] == "error_rate"
    incident = IncidentLog(demo_dir).get(incident_id)
    assert incident.playbook == "canary-failure" and incident.finding is not None
