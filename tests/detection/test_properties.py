"""Properties of `analyze` (hypothesis): what must hold for any traffic shape, not one case.

- a clean series with any daily and weekly pattern and any harmless changes has no finding;
- shifting every timestamp by k hours shifts every onset by k hours and changes nothing else;
- rescaling latency or cost by a constant changes no verdict;
- a request logged twice with the same id changes nothing.

Each example ingests real logs into a real DuckDB file and analyses its whole logged range
(no history before it), so the examples are few and derandomised.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.changes.declared import save_events
from app.changes.events import ChangeEvent
from app.detection.analysis import analyze
from app.detection.findings import AnalysisResult
from app.ingest.pipeline import ingest_paths
from app.storage.store import Store

from .adversarial import START, Change, Hit, Logs, Traffic, at, build, declared

# No shrinking: each example is an ingest and an analysis; the failing example is printed as drawn.
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_folders = itertools.count()


def analysed(base: Path, frame: pl.DataFrame, events: list[ChangeEvent]) -> AnalysisResult:
    folder = base / f"run-{next(_folders)}"
    folder.mkdir(parents=True)
    path = folder / "requests.parquet"
    frame.write_parquet(path)
    store = Store(folder)
    assert ingest_paths(store, [str(path)]).ok
    save_events(store, events)
    first, last = store.time_bounds()
    return analyze(store, since=first, until=last + timedelta(microseconds=1))


def verdicts(result: AnalysisResult, shift: timedelta = timedelta(0)) -> set[tuple]:
    return {
        (
            f.feature,
            f.metric,
            f.onset - shift,
            f.scope.kind,
            tuple((s.dimension, s.value) for s in f.scope.slices),
        )
        for f in result.findings
    }


traffic = st.builds(
    Traffic,
    name=st.just("f"),
    per_day=st.sampled_from([300, 2_000, 12_000]),
    quality=st.floats(0.6, 0.92),
    error_rate=st.floats(0.002, 0.05),
    weekend=st.floats(0.3, 1.0),
    weekend_quality=st.floats(-0.015, 0.0),
    evening_latency=st.floats(1.0, 1.5),
    burstiness=st.sampled_from([1.5, 4.0, 50.0]),
)


@SETTINGS
@given(
    t=traffic,
    days=st.integers(3, 9),
    start_hour=st.integers(0, 23),
    harmless=st.lists(st.integers(20, 200), max_size=3),
    seed=st.integers(0, 10_000),
)
def test_a_clean_series_with_any_cycle_and_harmless_changes_has_no_finding(
    tmp_path, t, days, start_hour, harmless, seed
):
    start = START + timedelta(hours=start_hour)
    changes = [
        Change(start + timedelta(hours=h), "f", {"prompt_version": f"v{8 + i}"})
        for i, h in enumerate(sorted(harmless))
        if h < days * 24
    ]
    events = [declared(c.at, "f", "prompt", "prompt_version", "v7", c.set["prompt_version"]) for c in changes]
    result = analysed(tmp_path, build(Logs(start, days, [t], changes=changes, seed=seed)), events)
    assert [f.as_dict() for f in result.findings] == []


def incident_logs(seed: int, metric: str, onset_hour: int) -> tuple[Logs, list[ChangeEvent]]:
    on = at(0, 0) + timedelta(hours=onset_hour, minutes=17)
    hit = {
        "error_rate": Hit("f", on, error_rate=0.08),
        "latency_p95_ms": Hit("f", on, latency_factor=1.8),
        "cost_per_request_usd": Hit("f", on, cost_factor=1.7),
    }[metric]
    logs = Logs(
        START,
        4,
        [Traffic("f", 6000)],
        changes=[Change(on, "f", {"model": "model-b", "response_model": "model-b-1"})],
        hits=[hit],
        seed=seed,
    )
    return logs, [declared(on, "f", "model", "model", "model-a", "model-b")]


incident = st.tuples(
    st.integers(0, 10_000),
    st.sampled_from(["error_rate", "latency_p95_ms", "cost_per_request_usd"]),
    st.integers(40, 80),
)


@SETTINGS
@given(case=incident, k=st.integers(-30, 30))
def test_shifting_every_timestamp_by_k_hours_shifts_every_onset_by_k(tmp_path, case, k):
    logs, events = incident_logs(*case)
    frame = build(logs)
    shift = timedelta(hours=k)
    moved = [ChangeEvent(**{**e.__dict__, "timestamp": e.timestamp + shift, "change_id": ""}) for e in events]
    before = verdicts(analysed(tmp_path, frame, events))
    after = verdicts(analysed(tmp_path, frame.with_columns(pl.col("timestamp") + shift), moved), shift)
    assert before and after == before


@SETTINGS
@given(case=incident, factor=st.floats(0.01, 100.0))
def test_rescaling_latency_or_cost_by_a_constant_changes_no_verdict(tmp_path, case, factor):
    logs, events = incident_logs(*case)
    frame = build(logs)
    scaled = frame.with_columns(pl.col("latency_ms") * factor, pl.col("cost_usd") * factor)
    before = analysed(tmp_path, frame, events)
    after = analysed(tmp_path, scaled, events)
    assert {(f.feature, f.metric, f.scope.kind) for f in before.findings} == {
        (f.feature, f.metric, f.scope.kind) for f in after.findings
    }
    for f, g in zip(
        sorted(before.findings, key=lambda f: f.metric),
        sorted(after.findings, key=lambda f: f.metric),
        strict=True,
    ):
        assert abs(f.onset - g.onset) <= timedelta(minutes=10)
        assert [s.change.change_id for s in f.suspects][:1] == [s.change.change_id for s in g.suspects][:1]


@SETTINGS
@given(case=incident, share=st.floats(0.01, 0.3), seed=st.integers(0, 1000))
def test_a_request_logged_twice_with_the_same_id_changes_nothing(tmp_path, case, share, seed):
    logs, events = incident_logs(*case)
    frame = build(logs)
    twice = pl.concat([frame, frame.sample(fraction=share, seed=seed)]).sort("timestamp")
    once = analysed(tmp_path, frame, events)
    again = analysed(tmp_path, twice, events)
    assert [f.as_dict() for f in again.findings] == [f.as_dict() for f in once.findings]
