"""Canary guardrails, the rollout ladder and `watch`, on logs whose right answer is known."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from app.cli import main
from app.demo.synth import Effect, Scenario, Switch
from app.detection.thresholds import DEFAULTS
from app.rollout import guardrails
from app.rollout import ladder as rollout

from .stories import START, load, spec


def canary_scenario(hours_of_canary: float, error_add: float = 0.0, share: float = 0.05) -> Scenario:
    end = START + timedelta(days=3)
    begin = end - timedelta(hours=hours_of_canary)
    return Scenario(
        start=START,
        days=3,
        features=[spec("guarded", rate=300)],
        switches=[Switch(begin, "guarded", {"variant": "canary"}, share=share)],
        effects=[Effect("guarded", begin, {"variant": "canary"}, error_rate_add=error_add)],
        seed=3,
    )


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_advance_refuses_while_the_canary_has_too_little_data(tmp_path: Path):
    store = load(tmp_path / "young", canary_scenario(hours_of_canary=2), [])
    status = rollout.ladder_status(store, "guarded", DEFAULTS)
    assert status.verdict == "extend"
    assert status.samples < status.samples_needed
    code, out = run_cli("rollout", "advance", "guarded", "--data-dir", str(store.data_dir), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["advanced"] is False and "not enough data" in doc["message"]
    assert rollout.ladder_status(store, "guarded", DEFAULTS).step == status.step
    assert rollout.actions_log(store.data_dir, "guarded")[0]["kind"] == "advance-refused"


def test_advance_moves_one_step_when_guardrails_pass_with_enough_data(tmp_path: Path):
    store = load(tmp_path / "healthy", canary_scenario(hours_of_canary=40, share=0.1), [])
    before = rollout.ladder_status(store, "guarded", DEFAULTS)
    assert before.verdict == "pass", before.reason
    outcome = rollout.advance(store, "guarded", DEFAULTS)
    assert outcome.advanced
    after = rollout.ladder_status(store, "guarded", DEFAULTS)
    assert after.step == before.step + 1
    assert after.step_percent == before.next_percent


def test_a_bad_canary_trips_the_sequential_guardrail_and_advance_is_refused(tmp_path: Path):
    store = load(tmp_path / "bad", canary_scenario(hours_of_canary=20, error_add=0.08), [])
    status = rollout.ladder_status(store, "guarded", DEFAULTS)
    assert status.verdict == "rollback"
    assert [g.metric for g in status.comparison.tripped] == ["error_rate"]
    assert not rollout.advance(store, "guarded", DEFAULTS).advanced


def test_variant_comparison_compares_canary_and_control_over_the_same_hours(tmp_path: Path):
    store = load(tmp_path / "compare", canary_scenario(hours_of_canary=24, error_add=0.05), [])
    end = START + timedelta(days=3)
    cmp = guardrails.compare_variants(store, "guarded", START, end, DEFAULTS)
    assert (cmp.control, cmp.canary) == ("control", "canary")
    assert cmp.since >= end - timedelta(hours=24, minutes=5)
    canary, control = cmp.arm("canary"), cmp.arm("control")
    lo, hi = canary.error_ci
    assert lo < 0.06 < hi
    assert control.error_ci[0] < 0.01 < control.error_ci[1]
    assert canary.latency_p95_ci[0] < canary.latency_p95_ms < canary.latency_p95_ci[1]


def test_sample_size_advisor_says_when_a_share_is_too_small():
    advice = guardrails.advise(requests_per_day=1000, share=0.01, baseline_rate=0.01, effect=0.01)
    assert advice.canary_per_day == pytest.approx(10)
    assert "10 requests a day" in advice.text
    assert advice.days > 30
    assert guardrails.advise(1000, 0.5, 0.01, 0.01).days < advice.days


def test_watch_once_without_apply_records_what_it_would_do_and_changes_nothing(
    demo_dir: Path, tmp_path: Path
):
    flags_before = (demo_dir / "flags.json").read_text()
    args = ("watch", "--once", "--folder", str(tmp_path / "incoming"), "--data-dir", str(demo_dir), "--json")
    (tmp_path / "incoming").mkdir()
    code, out = run_cli(*args)
    assert code == 0
    look = json.loads(out)
    assert {"feature": "doc-summarizer", "verdict": "rollback"}.items() <= look["canaries"][0].items()
    assert [a["kind"] for a in look["actions"]] == ["would-rollback"]
    assert (demo_dir / "flags.json").read_text() == flags_before
    logged = rollout.actions_log(demo_dir, "doc-summarizer")
    assert logged[0]["kind"] == "would-rollback" and logged[0]["applied"] == 0
    # A second look records nothing new for the same canary step.
    _, again = run_cli(*args)
    assert json.loads(again)["actions"] == []


def test_watch_once_with_apply_rolls_the_canary_back_and_opens_an_incident(demo_dir: Path, tmp_path: Path):
    from app.incidents.log import IncidentLog

    (tmp_path / "incoming").mkdir()
    code, out = run_cli(
        "watch",
        "--once",
        "--apply",
        "--folder",
        str(tmp_path / "incoming"),
        "--data-dir",
        str(demo_dir),
        "--json",
    )
    assert code == 0
    (action,) = json.loads(out)["actions"]
    assert action["kind"] == "rollback"
    assert action["detail"]["flag"]["outcome"] == "verified"
    assert action["detail"]["flag"]["after"]["rollout_percentage"] == 0
    flags = json.loads((demo_dir / "flags.json").read_text())["flags"]
    assert ["canary", 0] in flags["doc-summarizer-canary"]["targeting"]["fractional"]
    incident = IncidentLog(demo_dir).get(action["detail"]["incident"])
    assert incident.features == ["doc-summarizer"]
