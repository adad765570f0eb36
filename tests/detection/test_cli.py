"""`rollback-desk analyze --json` on the demo week: the contract, and the stories it tells."""

from __future__ import annotations

import json

import pytest

from app.cli import main

FINDING_KEYS = {"feature", "metric", "onset", "end", "baseline", "current", "p_value", "scope", "suspects"}
SUSPECT_KEYS = {
    "change_id",
    "timestamp",
    "feature",
    "kind",
    "key",
    "from",
    "to",
    "source",
    "score",
    "evidence",
}
SLICE_KEYS = {"dimension", "value", "share", "baseline", "current"}
METRICS = {"quality_score", "error_rate", "latency_p95_ms", "cost_per_request_usd", "negative_feedback_rate"}


@pytest.fixture(scope="module")
def demo_json(demo_template) -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["analyze", "--data-dir", str(demo_template), "--json"]) == 0
    return json.loads(out.getvalue())


def test_the_output_is_exactly_the_contract(demo_json):
    assert set(demo_json) == {"findings", "inconclusive", "events"}
    assert demo_json["findings"]
    for f in demo_json["findings"]:
        assert set(f) == FINDING_KEYS
        assert f["metric"] in METRICS
        assert f["onset"].endswith("Z")
        assert 0 <= f["p_value"] <= 1
        assert f["scope"]["kind"] in {"total", "partial", "single_user"}
        for s in f["scope"]["slices"]:
            assert set(s) == SLICE_KEYS
        scores = [s["score"] for s in f["suspects"]]
        assert scores == sorted(scores, reverse=True)
        for s in f["suspects"]:
            assert set(s) == SUSPECT_KEYS
            assert s["source"] in {"declared", "inferred", "flag-audit", "rollback-desk"}
    for i in demo_json["inconclusive"]:
        assert set(i) == {"feature", "metric", "reason"}


def _first(demo_json: dict, feature: str, metric: str) -> dict:
    found = [f for f in demo_json["findings"] if f["feature"] == feature and f["metric"] == metric]
    assert found, f"no {metric} finding for {feature}"
    return found[0]


def test_the_demo_stories_are_found_and_the_clean_feature_is_not(demo_json):
    features = {f["feature"] for f in demo_json["findings"]}
    assert features == {"support-reply", "doc-summarizer", "search-answers", "ticket-triage-agent"}

    prompt = _first(demo_json, "support-reply", "quality_score")
    assert prompt["onset"].startswith("2026-11-20T14")
    assert (prompt["suspects"][0]["kind"], prompt["suspects"][0]["to"]) == ("prompt", "v8")

    canary = _first(demo_json, "doc-summarizer", "error_rate")
    assert canary["scope"]["kind"] == "partial"
    assert {"dimension": "variant", "value": "canary"}.items() <= canary["scope"]["slices"][0].items()
    assert canary["suspects"][0]["kind"] == "flag"

    silent = _first(demo_json, "search-answers", "quality_score")
    top = silent["suspects"][0]
    assert (top["kind"], top["to"], top["source"]) == ("model", "gpt-4o-2024-11-20", "inferred")

    noisy = _first(demo_json, "ticket-triage-agent", "error_rate")
    assert noisy["scope"]["kind"] == "single_user"
    assert noisy["scope"]["slices"][0]["value"] == "u-04242"


def test_a_bad_time_argument_is_refused(demo_template, capsys):
    assert main(["analyze", "--data-dir", str(demo_template), "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err


def test_an_empty_data_dir_gives_an_empty_result(empty_dir, capsys):
    assert main(["analyze", "--data-dir", str(empty_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"findings": [], "inconclusive": [], "events": []}


def test_rollout_status_says_the_canary_sits_between_ladder_steps(demo_dir, capsys):
    # The demo canary serves 10%: past the 5% step, short of the 20% one, and failing.
    assert main(["rollout", "status", "doc-summarizer", "--data-dir", str(demo_dir), "--json"]) in (0, 1)
    status = json.loads(capsys.readouterr().out)
    assert status["serving_percent"] == 10
    assert status["step_percent"] == 5 and status["next_percent"] == 20
    assert status["verdict"] == "rollback"
