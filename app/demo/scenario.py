"""The built-in demo: a deterministic week of logs for five AI features that tells a story.

- support-reply: prompt v7 -> v8 on Thursday 14:00 drops quality (a prompt regression).
- doc-summarizer: a 10% canary on a new model from Saturday 09:00 errors far more often.
- search-answers: the provider silently swaps the model behind the `gpt-4o` alias on
  Wednesday 03:00; quality slips while latency improves.
- code-assistant: a clean week with harmless declared changes.
- ticket-triage-agent: one noisy client (u-04242) fails a lot from Sunday; the feature is fine.

Four quieter weeks come before it (15% of the traffic, so the first start stays fast),
for the weekly review's 28-day objectives. They end in the state the week starts from:
- search-answers: prompt q11 -> q12 on 2026-10-22 (a change that went well);
- ticket-triage-agent: model gpt-4o-mini -> gpt-4.1-mini on 2026-10-26 (went well too);
- code-assistant: on 2026-10-29 10:00 someone ships gpt-4.1 without declaring it; a third of
  the requests fail (a burn-rate page) and the logs show claude back at 11:30;
- support-reply: prompt v7 -> v7.1 on 2026-11-04 13:00 hurts quality and feedback; the logs
  show v7 back at 16:30.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import yaml

from app.demo.synth import Effect, FeatureSpec, Scenario, Switch, generate

DEMO_START = datetime(2026, 11, 16)
DEMO_DAYS = 7
REGIONS = [("us-east", 0.5), ("eu-west", 0.35), ("ap-south", 0.15)]
SEGMENTS = [("free", 0.6), ("pro", 0.3), ("enterprise", 0.1)]


def _dims(**extra: list[tuple[str, float]]) -> dict[str, list[tuple[str, float]]]:
    return {"region": REGIONS, "segment": SEGMENTS, **extra}


def demo_scenario(scale: float = 1.0, seed: int = 7) -> Scenario:
    t = DEMO_START
    features = [
        FeatureSpec(
            "support-reply",
            420,
            _dims(
                model=[("gpt-4o-mini-2024-07-18", 1.0)],
                response_model=[("gpt-4o-mini-2024-07-18", 1.0)],
                prompt_version=[("v7", 1.0)],
                variant=[("default", 1.0)],
            ),
            quality=0.91,
            latency_ms=1100,
            cost_usd=0.0012,
        ),
        FeatureSpec(
            "doc-summarizer",
            260,
            _dims(
                model=[("gpt-4.1-2025-04-14", 1.0)],
                response_model=[("gpt-4.1-2025-04-14", 1.0)],
                prompt_version=[("s3", 1.0)],
                variant=[("control", 1.0)],
            ),
            quality=0.88,
            error_rate=0.012,
            latency_ms=2400,
            cost_usd=0.006,
        ),
        FeatureSpec(
            "search-answers",
            340,
            _dims(
                model=[("gpt-4o", 1.0)],
                response_model=[("gpt-4o-2024-08-06", 1.0)],
                prompt_version=[("q12", 1.0)],
                variant=[("default", 1.0)],
            ),
            quality=0.87,
            latency_ms=1500,
            cost_usd=0.004,
        ),
        FeatureSpec(
            "code-assistant",
            200,
            _dims(
                model=[("claude-sonnet-4-5-20250929", 1.0)],
                response_model=[("claude-sonnet-4-5-20250929", 1.0)],
                prompt_version=[("c3", 1.0)],
                variant=[("default", 1.0)],
            ),
            quality=0.84,
            latency_ms=3200,
            cost_usd=0.011,
        ),
        FeatureSpec(
            "ticket-triage-agent",
            120,
            _dims(
                model=[("gpt-4.1-mini-2025-04-14", 1.0)],
                response_model=[("gpt-4.1-mini-2025-04-14", 1.0)],
                prompt_version=[("a5", 1.0)],
                variant=[("default", 1.0)],
            ),
            quality=0.86,
            latency_ms=4200,
            cost_usd=0.003,
        ),
    ]
    switches = [
        Switch(t.replace(day=20, hour=14), "support-reply", {"prompt_version": "v8"}),
        Switch(
            t.replace(day=21, hour=9),
            "doc-summarizer",
            {
                "variant": "canary",
                "model": "claude-sonnet-4-5-20250929",
                "response_model": "claude-sonnet-4-5-20250929",
            },
            share=0.10,
        ),
        Switch(t.replace(day=19, hour=3), "search-answers", {"response_model": "gpt-4o-2024-11-20"}),
        Switch(t.replace(day=18, hour=11), "code-assistant", {"prompt_version": "c4"}),
        Switch(t.replace(day=22), "ticket-triage-agent", {"user_id": "u-04242"}, share=0.06),
    ]
    effects = [
        Effect(
            "support-reply",
            t.replace(day=20, hour=14),
            {"prompt_version": "v8"},
            quality_delta=-0.13,
            negative_feedback_add=0.08,
        ),
        Effect(
            "doc-summarizer",
            t.replace(day=21, hour=9),
            {"variant": "canary"},
            error_rate_add=0.10,
            latency_factor=1.5,
        ),
        Effect(
            "search-answers",
            t.replace(day=19, hour=3),
            {"response_model": "gpt-4o-2024-11-20"},
            quality_delta=-0.07,
            latency_factor=0.85,
            cost_factor=0.9,
        ),
        Effect("ticket-triage-agent", t.replace(day=22), {"user_id": "u-04242"}, error_rate_add=0.55),
    ]
    return Scenario(
        start=t, days=DEMO_DAYS, features=features, switches=switches, effects=effects, seed=seed, scale=scale
    )


HISTORY_WEEKS = 4
HISTORY_START = DEMO_START - timedelta(weeks=HISTORY_WEEKS)
HISTORY_SCALE = 0.15


def history_scenario(scale: float = 1.0, seed: int = 11) -> Scenario:
    """The four weeks before the demo week, at HISTORY_SCALE of its traffic."""
    t = HISTORY_START
    initial = {
        "search-answers": {"prompt_version": [("q11", 1.0)]},
        "ticket-triage-agent": {
            "model": [("gpt-4o-mini-2024-07-18", 1.0)],
            "response_model": [("gpt-4o-mini-2024-07-18", 1.0)],
        },
    }
    features = [replace(f, dims={**f.dims, **initial.get(f.name, {})}) for f in demo_scenario().features]
    at = datetime(2026, 10, 22, 10)
    switches = [
        Switch(at, "search-answers", {"prompt_version": "q12"}),
        Switch(
            datetime(2026, 10, 26, 9),
            "ticket-triage-agent",
            {"model": "gpt-4.1-mini-2025-04-14", "response_model": "gpt-4.1-mini-2025-04-14"},
        ),
        Switch(
            datetime(2026, 10, 29, 10),
            "code-assistant",
            {"model": "gpt-4.1-2025-04-14", "response_model": "gpt-4.1-2025-04-14"},
            until=datetime(2026, 10, 29, 11, 30),
        ),
        Switch(
            datetime(2026, 11, 4, 13),
            "support-reply",
            {"prompt_version": "v7.1"},
            until=datetime(2026, 11, 4, 16, 30),
        ),
    ]
    effects = [
        Effect(
            "code-assistant",
            datetime(2026, 10, 29, 10),
            {"model": "gpt-4.1-2025-04-14"},
            error_rate_add=0.32,
            latency_factor=1.4,
        ),
        Effect(
            "support-reply",
            datetime(2026, 11, 4, 13),
            {"prompt_version": "v7.1"},
            quality_delta=-0.16,
            negative_feedback_add=0.12,
        ),
    ]
    return Scenario(
        start=t,
        days=7 * HISTORY_WEEKS,
        features=features,
        switches=switches,
        effects=effects,
        seed=seed,
        scale=HISTORY_SCALE * scale,
    )


def history_changes() -> list[dict]:
    """What the teams wrote down in the four weeks before (the code-assistant model switch
    and both reverts were not written down: the logs tell them)."""
    return [
        {
            "timestamp": "2026-10-22T10:00:00Z",
            "feature": "search-answers",
            "kind": "prompt",
            "key": "prompt_version",
            "from": "q11",
            "to": "q12",
            "author": "lee",
            "description": "Cite sources inline",
        },
        {
            "timestamp": "2026-10-26T09:00:00Z",
            "feature": "ticket-triage-agent",
            "kind": "model",
            "key": "model",
            "from": "gpt-4o-mini-2024-07-18",
            "to": "gpt-4.1-mini-2025-04-14",
            "author": "ops-bot",
            "description": "Move the agent to gpt-4.1-mini",
        },
        {
            "timestamp": "2026-11-04T13:00:00Z",
            "feature": "support-reply",
            "kind": "prompt",
            "key": "prompt_version",
            "from": "v7",
            "to": "v7.1",
            "author": "maria",
            "description": "Warmer greeting",
        },
        {
            "timestamp": "2026-11-10T16:00:00Z",
            "feature": "doc-summarizer",
            "kind": "config",
            "key": "max_tokens",
            "from": "900",
            "to": "1200",
            "author": "lee",
            "description": "Longer summaries for long documents",
        },
    ]


def demo_changes() -> list[dict]:
    """Declared changes: what the teams wrote down (the silent update is, by nature, absent)."""
    return [
        {
            "timestamp": "2026-11-17T10:30:00Z",
            "feature": "code-assistant",
            "kind": "config",
            "key": "temperature",
            "from": "0.2",
            "to": "0.3",
            "author": "devi",
            "description": "Slightly more varied suggestions",
        },
        {
            "timestamp": "2026-11-18T11:00:00Z",
            "feature": "code-assistant",
            "kind": "prompt",
            "key": "prompt_version",
            "from": "c3",
            "to": "c4",
            "author": "devi",
            "description": "Clarify test-writing instructions",
        },
        {
            "timestamp": "2026-11-18T16:00:00Z",
            "feature": "support-reply",
            "kind": "config",
            "key": "retrieval_index",
            "from": "kb-2026-11-01",
            "to": "kb-2026-11-15",
            "author": "sam",
            "description": "Refresh help-centre index",
        },
        {
            "timestamp": "2026-11-20T14:00:00Z",
            "feature": "support-reply",
            "kind": "prompt",
            "key": "prompt_version",
            "from": "v7",
            "to": "v8",
            "author": "maria",
            "description": "Shorter, friendlier replies",
        },
        {
            "timestamp": "2026-11-20T14:05:00Z",
            "feature": "search-answers",
            "kind": "config",
            "key": "max_tokens",
            "from": "600",
            "to": "800",
            "author": "lee",
            "description": "Allow longer answers",
        },
        {
            "timestamp": "2026-11-21T09:00:00Z",
            "feature": "doc-summarizer",
            "kind": "flag",
            "key": "doc-summarizer-rollout",
            "from": "0%",
            "to": "10%",
            "author": "lee",
            "description": "Canary claude-sonnet-4-5 for summaries",
        },
        {
            "timestamp": "2026-11-21T15:00:00Z",
            "feature": "ticket-triage-agent",
            "kind": "config",
            "key": "tool_timeout_s",
            "from": "20",
            "to": "30",
            "author": "ops-bot",
            "description": "Raise tool timeout",
        },
    ]


def write_demo_files(folder: Path, scale: float = 1.0, seed: int = 7) -> list[Path]:
    """Write the demo logs (one Parquet file per day: the four quieter weeks, then the demo
    week) and changes.yaml into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    # Two scenarios, two generators: the demo week is the same with or without the history.
    # The history is one file per week (each file loaded costs a fixed overhead), the demo
    # week one per day.
    history = generate(history_scenario(scale=scale))
    week = generate(demo_scenario(scale=scale, seed=seed))
    paths = []
    parts = [
        (f"requests-{k[0]:%Y-%m-%d}-week.parquet", part)
        for k, part in history.group_by(pl.col("timestamp").dt.truncate("1w"), maintain_order=True)
    ]
    parts += [
        (f"requests-{k[0]:%Y-%m-%d}.parquet", part)
        for k, part in week.group_by(pl.col("timestamp").dt.date(), maintain_order=True)
    ]
    for name, part in parts:
        path = folder / name
        tmp = path.with_suffix(".tmp")
        part.write_parquet(tmp)
        tmp.replace(path)
        paths.append(path)
    (folder / "changes.yaml").write_text(
        yaml.safe_dump({"changes": history_changes() + demo_changes()}, sort_keys=False)
    )
    return paths
