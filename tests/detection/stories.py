"""Small synthetic data sets whose right answers are known: each feature carries one story."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.changes.declared import save_events
from app.changes.events import ChangeEvent
from app.demo.synth import Effect, FeatureSpec, Scenario, Switch, generate
from app.ingest.pipeline import ingest_paths
from app.storage.store import Store

START = datetime(2026, 3, 2)
DAYS = 5
REGIONS = [("us-east", 0.5), ("eu-west", 0.3), ("ap-south", 0.2)]


def spec(name: str, rate: float = 150, **kw) -> FeatureSpec:
    dims = {
        "region": REGIONS,
        "segment": [("free", 0.7), ("pro", 0.3)],
        "model": [("gpt-4o", 1.0)],
        "response_model": [("gpt-4o-2024-08-06", 1.0)],
        "prompt_version": [("p1", 1.0)],
        "variant": [("control", 1.0)],
    }
    return FeatureSpec(name, rate, dims, **kw)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return START.replace(day=START.day + day, hour=hour, minute=minute)


def declared(when: datetime, feature: str, kind: str, key: str, old: str, new: str) -> ChangeEvent:
    return ChangeEvent(
        timestamp=when,
        feature=feature,
        kind=kind,
        key=key,
        from_value=old,
        to_value=new,
        author="test",
        description=None,
        source="declared",
    )


def load(folder: Path, scenario: Scenario, events: list[ChangeEvent]) -> Store:
    """Write the scenario's logs as Parquet, ingest them and store the declared changes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "requests.parquet"
    generate(scenario).write_parquet(path)
    store = Store(folder)
    assert ingest_paths(store, [str(path)]).ok
    save_events(store, events)
    return store


def story_scenario() -> tuple[Scenario, list[ChangeEvent]]:
    """One feature per story, in one data directory (one ingest for the whole module)."""
    features = [
        spec("prompt-step"),
        spec("clean", quality_daily_amplitude=0.04, daily_amplitude=0.8),
        spec("single-user", rate=120),
        spec("region-break"),
        spec("silent-update"),
        spec("canary", rate=250),
        spec("drift"),
        spec("tiny", rate=0.4),
    ]
    switches = [
        Switch(at(3, 14, 20), "prompt-step", {"prompt_version": "p2"}),
        Switch(at(2, 10), "clean", {"prompt_version": "p2"}),
        Switch(at(3, 0), "single-user", {"user_id": "u-09999"}, share=0.06),
        Switch(at(2, 5, 10), "silent-update", {"response_model": "gpt-4o-2024-11-20"}),
        Switch(at(3, 9, 30), "canary", {"variant": "canary", "model": "claude-x"}, share=0.1),
        Switch(at(2, 8), "drift", {"model": "gpt-4o-mini"}),
        Switch(at(3, 12), "tiny", {"prompt_version": "p2"}),
    ]
    effects = [
        Effect("prompt-step", at(3, 14, 20), {"prompt_version": "p2"}, quality_delta=-0.10),
        Effect("single-user", at(3, 0), {"user_id": "u-09999"}, error_rate_add=0.5),
        Effect("region-break", at(2, 16, 40), {"region": "ap-south"}, error_rate_add=0.15),
        Effect("silent-update", at(2, 5, 10), {"response_model": "gpt-4o-2024-11-20"}, quality_delta=-0.07),
        Effect("canary", at(3, 9, 30), {"variant": "canary"}, error_rate_add=0.12),
        Effect("drift", at(2, 8), {"model": "gpt-4o-mini"}, quality_delta=-0.10, ramp_hours=36),
        Effect("tiny", at(3, 12), {"prompt_version": "p2"}, quality_delta=-0.2),
    ]
    events = [
        declared(at(3, 14, 20), "prompt-step", "prompt", "prompt_version", "p1", "p2"),
        declared(at(3, 14, 30), "prompt-step", "config", "temperature", "0.2", "0.3"),
        declared(at(1, 9), "clean", "config", "temperature", "0.2", "0.4"),
        declared(at(2, 10), "clean", "prompt", "prompt_version", "p1", "p2"),
        declared(at(3, 15), "clean", "flag", "clean-rollout", "0%", "5%"),
        declared(at(2, 16, 30), "region-break", "config", "retrieval_index", "a", "b"),
        declared(at(3, 9, 30), "canary", "flag", "canary-rollout", "0%", "10%"),
        declared(at(3, 9, 40), "canary", "config", "max_tokens", "600", "800"),
        declared(at(2, 8), "drift", "model", "model", "gpt-4o", "gpt-4o-mini"),
        declared(at(2, 20), "drift", "config", "top_p", "1", "0.9"),
    ]
    scenario = Scenario(
        start=START, days=DAYS, features=features, switches=switches, effects=effects, seed=11
    )
    return scenario, events
