"""The one scope rule, as `analyze` and incident triage both use it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.detection.scope import SliceExcess, choose_scope, is_symptom
from app.incidents.impact import triage
from app.storage.store import Store


def rows(*items: tuple[str, str, int, float, float]) -> list[SliceExcess]:
    return [SliceExcess(*i) for i in items]


def test_a_canary_carrying_the_excess_with_few_requests_is_partial_and_names_its_model_too():
    choice = choose_scope(
        rows(
            ("variant", "canary", 100, 9.0, 0.1),
            ("variant", "control", 900, 1.0, 0.01),
            ("model", "m2", 100, 9.0, 0.1),
            ("model", "m1", 900, 1.0, 0.01),
        ),
        total_excess=10.0,
        total_requests=1000,
        coverage=0.7,
        max_share=0.6,
    )
    assert (choice.kind, choice.dimension, choice.picks[0].value) == ("partial", "variant", "canary")
    assert [(r.dimension, r.value) for r in choice.same_requests] == [("model", "m2")]


def test_a_value_seen_only_on_failed_requests_is_a_symptom_never_the_scope():
    missing = ("response_model", "(none)", 60, 10.0, 1.0)
    assert is_symptom(SliceExcess(*missing))
    choice = choose_scope(
        rows(missing, ("response_model", "gpt-x", 940, 0.0, 0.0)),
        total_excess=10.0,
        total_requests=1000,
        coverage=0.7,
        max_share=0.6,
    )
    assert choice.kind == "total"


def test_a_user_whose_requests_all_failed_is_still_a_cause():
    assert not is_symptom(SliceExcess("user_id", "client-7", 400, 390.0, 1.0))


def test_one_user_carrying_the_excess_is_single_user_even_with_most_of_the_requests():
    choice = choose_scope(
        rows(
            ("user_id", "retry-bot", 700, 95.0, 1.0),
            ("user_id", "u1", 10, 0.1, 0.0),
            ("region", "eu", 800, 96.0, 0.9),
        ),
        total_excess=100.0,
        total_requests=1000,
        coverage=0.7,
        max_share=0.6,
    )
    assert (choice.kind, choice.picks[0].value) == ("single_user", "retry-bot")


def test_spread_excess_is_total():
    choice = choose_scope(
        rows(("region", "eu", 500, 5.0, 0.0), ("region", "us", 500, 5.0, 0.0)),
        total_excess=10.0,
        total_requests=1000,
        coverage=0.7,
        max_share=0.6,
    )
    assert choice.kind == "total"


def test_incident_triage_follows_the_scope_settings_of_detection_yaml(demo_dir: Path):
    store = Store(demo_dir)
    onset, end = datetime(2026, 11, 21, 9), datetime(2026, 11, 23)
    assert triage(store, "doc-summarizer", onset, end).kind == "partial"
    (demo_dir / "detection.yaml").write_text("scope:\n  max_share: 0.01\n")
    assert triage(store, "doc-summarizer", onset, end).kind == "total"
