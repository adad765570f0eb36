"""The detector on logs built on other assumptions than the demo generator, each analysed over
its own logged range only (no history before it): outages across features, reverted prompts,
large-volume steps, two incidents in one window, canaries at 1/5/10%, one client's burst, the
evening latency hump at the window's edge, weekends, cost steps and quality ramps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.detection.analysis import analyze
from app.detection.findings import AnalysisResult

from .adversarial import load
from .adversarial_cases import Case, cases

CASES = {c.name: c for c in cases()}
MATCH_TOLERANCE = timedelta(hours=3)  # a finding this near the true onset is the incident's
ONSET_TOLERANCE = timedelta(minutes=15)  # a transient's end and an event's start
RAMP_TOLERANCE = timedelta(hours=1)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory):
    done: dict[str, AnalysisResult] = {}

    def run(name: str) -> tuple[Case, AnalysisResult]:
        case = CASES[name]
        if name not in done:
            store = load(tmp_path_factory.mktemp(name), case.logs, case.events)
            first, last = store.time_bounds()
            done[name] = analyze(
                store, since=first + timedelta(days=case.since_days), until=last + timedelta(microseconds=1)
            )
        return case, done[name]

    return run


@pytest.mark.parametrize("name", [c.name for c in cases() if c.expect])
def test_each_incident_is_found_with_its_metric_onset_scope_and_cause(analysed, name):
    case, result = analysed(name)
    for e in case.expect:
        hits = [f for f in result.findings if f.feature == e.feature and f.metric == e.metric]
        assert hits, f"{name}: no {e.metric} finding for {e.feature}: {result.as_dict()}"
        f = hits[0]
        tolerance = RAMP_TOLERANCE if e.shape == "ramp" else MATCH_TOLERANCE
        assert abs(f.onset - e.onset) <= tolerance, (name, f.onset, e.onset)
        if e.scope == "single_user":
            assert f.scope.kind in ("single_user",), (name, f.scope)
        else:
            assert f.scope.kind == e.scope, (name, f.scope)
        if e.slice is not None:
            assert e.slice in [(s.dimension, s.value) for s in f.scope.slices], (name, f.scope)
        if e.cause is not None:
            top = f.suspects[0].change
            assert (top.kind, top.to_value) == e.cause, (name, [s.change for s in f.suspects])
        if e.end is not None:
            assert f.ended is not None and abs(f.ended - e.end) <= ONSET_TOLERANCE, (name, f.ended)
        if e.shape is not None:
            assert f.shape == e.shape


def test_the_median_onset_error_of_steps_and_transients_is_at_most_ten_minutes(analysed):
    errors = []
    for case in cases():
        for e in case.expect:
            if e.shape == "ramp":
                continue
            _, result = analysed(case.name)
            f = next(f for f in result.findings if f.feature == e.feature and f.metric == e.metric)
            errors.append(abs(f.onset - e.onset))
    errors.sort()
    assert errors[len(errors) // 2] <= timedelta(minutes=10), errors


def test_a_latency_step_in_the_quiet_hours_is_dated_within_half_an_hour(analysed):
    case, result = analysed("night_latency_step")
    (e,) = case.expect
    f = next(f for f in result.findings if f.feature == e.feature and f.metric == e.metric)
    assert abs(f.onset - e.onset) <= timedelta(minutes=30), (f.onset, e.onset)


def test_a_night_step_the_data_cannot_date_is_dated_by_the_change_on_record(analysed):
    case, result = analysed("night_config_step")
    (e,) = case.expect
    f = next(f for f in result.findings if f.feature == e.feature and f.metric == e.metric)
    assert f.onset == e.onset, (f.onset, e.onset)
    assert f.suspects[0].change.to_value == "0"


def test_a_drift_through_the_night_is_dated_by_the_update_not_by_an_earlier_change(analysed):
    case, result = analysed("evening_drift")
    (e,) = case.expect
    f = next(f for f in result.findings if f.feature == e.feature and f.metric == e.metric)
    assert abs(f.onset - e.onset) <= timedelta(minutes=15), (f.onset, e.onset)
    assert f.suspects[0].change.kind == "model"


@pytest.mark.parametrize("name", [c.name for c in cases() if c.clean])
def test_clean_features_have_no_finding(analysed, name):
    case, result = analysed(name)
    assert [f.as_dict() for f in result.findings if f.feature in case.clean] == []


def test_an_outage_across_features_is_one_cross_feature_event(analysed):
    case, result = analysed("outage_all_features")
    assert len(result.events) == 1
    event = result.events[0]
    assert set(event.features) == {e.feature for e in case.expect}
    assert abs(event.start - case.expect[0].onset) <= ONSET_TOLERANCE
    assert result.as_dict()["events"][0]["features"] == sorted(event.features)


def test_a_value_missing_because_the_request_failed_is_never_a_scope(analysed):
    for name in ("outage_all_features", "error_step_40k", "prompt_transient"):
        _, result = analysed(name)
        for f in result.findings:
            assert all(s.value != "(none)" and s.dimension != "response_model" for s in f.scope.slices), (
                name,
                f.scope,
            )


def test_a_lasting_step_has_no_end_and_a_transient_reports_its_duration(analysed):
    _, result = analysed("prompt_transient")
    f = result.findings[0]
    assert f.as_dict()["end"] is not None and f.duration is not None
    assert timedelta(hours=5) <= f.duration <= timedelta(hours=7)
    _, result = analysed("error_step_40k")
    assert result.findings[0].as_dict()["end"] is None
