"""The documented walk-through: example OTLP and Langfuse files -> timeline -> finding.

The example files carry a known incident each (app/demo/telemetry.py): a model switch that
raises the error rate, and a prompt version that lowers the quality score.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from app.cli import main
from app.demo.telemetry import CHANGE_AT
from app.detection.analysis import analyze
from app.metrics.timeline import timeline
from app.storage.store import Store

CHANGE = CHANGE_AT.replace(tzinfo=None)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("examples")
    data = folder / "data"
    assert main(["demo", "--examples", str(folder), "--json"]) == 0
    assert main(["ingest", str(folder / "support-traces.jsonl"), "--data-dir", str(data), "--json"]) == 0
    assert (
        main(
            [
                "ingest",
                str(folder / "observations.jsonl"),
                "--mapping",
                str(folder / "langfuse-mapping.yaml"),
                "--data-dir",
                str(data),
                "--json",
            ]
        )
        == 0
    )
    return Store(data)


def _before_after(store: Store, feature: str, metric: str) -> tuple[float, float]:
    frame = timeline(store, feature, datetime(2026, 3, 2), datetime(2026, 3, 5), bucket="1 hour")
    before = frame.filter(frame["bucket"] < CHANGE)[metric].mean()
    after = frame.filter(frame["bucket"] >= CHANGE)[metric].mean()
    return before, after


def test_the_otlp_example_shows_the_error_rate_jump_and_its_model_change(loaded: Store):
    before, after = _before_after(loaded, "support-reply", "error_rate")
    assert before < 0.02 and after > 0.07
    result = analyze(loaded, feature="support-reply")
    finding = next(f for f in result.findings if f.metric == "error_rate")
    assert abs((finding.onset - CHANGE).total_seconds()) <= 3600
    top = finding.suspects[0]
    assert (top.change.kind, top.change.from_value, top.change.to_value) == (
        "model",
        "gpt-4o-mini",
        "gpt-4.1-mini",
    )


def test_the_langfuse_example_shows_the_quality_drop_and_its_prompt_change(loaded: Store):
    before, after = _before_after(loaded, "ticket-triage", "quality_score")
    assert before == pytest.approx(0.86, abs=0.02) and after == pytest.approx(0.70, abs=0.02)
    result = analyze(loaded, feature="ticket-triage")
    finding = next(f for f in result.findings if f.metric == "quality_score")
    assert abs((finding.onset - CHANGE).total_seconds()) <= 3600
    top = finding.suspects[0]
    assert (top.change.kind, top.change.from_value, top.change.to_value) == ("prompt", "triage:3", "triage:4")
