"""The detection benchmark's scenario suite: feature-weeks with injected incidents of known
cause, onset, metric and scope, and clean weeks full of harmless changes.

Every scenario is one feature for seven days, built on app/synth.py; a suite puts one of each
kind side by side (one data directory = one team's features) for a given seed. Times and
sizes vary with the seed; harmless changes are placed at least three hours from the cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from app.changes.events import ChangeEvent
from app.demo.synth import Effect, FeatureSpec, Scenario, Switch

START = datetime(2026, 5, 4)
DAYS = 7
REGIONS = [("us-east", 0.5), ("eu-west", 0.3), ("ap-south", 0.2)]


@dataclass(frozen=True)
class Cause:
    """How to recognise the right suspect: kind and new value (and roughly when)."""

    kind: str
    to: str
    at: datetime


@dataclass
class Case:
    name: str  # scenario kind, e.g. prompt_step
    feature: str
    spec: FeatureSpec
    switches: list[Switch] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    declared: list[ChangeEvent] = field(default_factory=list)
    metric: str | None = None  # None: a clean week
    also: tuple[str, ...] = ()  # metrics that move with it (quality drops raise thumbs-down)
    onset: datetime | None = None
    cause: Cause | None = None
    scope: str | None = None


def _spec(name: str, rng: np.random.Generator, **kw) -> FeatureSpec:
    dims = {
        "region": REGIONS,
        "segment": [("free", 0.6), ("pro", 0.3), ("enterprise", 0.1)],
        "model": [("gpt-4o", 1.0)],
        "response_model": [("gpt-4o-2024-08-06", 1.0)],
        "prompt_version": [("p1", 1.0)],
        "variant": [("control", 1.0)],
    }
    return FeatureSpec(
        name,
        float(rng.uniform(150, 300)),
        dims,
        quality=float(rng.uniform(0.82, 0.92)),
        latency_ms=float(rng.uniform(800, 3000)),
        **kw,
    )


def _declared(when: datetime, feature: str, kind: str, key: str, old: str, new: str) -> ChangeEvent:
    return ChangeEvent(
        timestamp=when,
        feature=feature,
        kind=kind,
        key=key,
        from_value=old,
        to_value=new,
        author="bench",
        description=None,
        source="declared",
    )


def _harmless(
    feature: str, rng: np.random.Generator, avoid: datetime | None, n: int = 3
) -> list[ChangeEvent]:
    """Config changes that change nothing, kept three hours or more from the cause."""
    out = []
    keys = ["temperature", "max_tokens", "retrieval_index", "top_p", "timeout_s"]
    while len(out) < n:
        when = START + timedelta(hours=float(rng.uniform(12, DAYS * 24 - 6)))
        when = when.replace(second=0, microsecond=0)
        if avoid is not None and abs(when - avoid) < timedelta(hours=3):
            continue
        key = keys[len(out) % len(keys)]
        out.append(_declared(when, feature, "config", key, "a", f"b{len(out)}"))
    return out


def _when(rng: np.random.Generator) -> datetime:
    """An incident time between day 2 and day 5, at a random minute."""
    return (START + timedelta(hours=float(rng.uniform(48, 120)))).replace(second=0, microsecond=0)


def suite(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases: list[Case] = []

    f, t = f"prompt-step-{seed}", _when(rng)
    cases.append(
        Case(
            "prompt_step",
            f,
            _spec(f, rng),
            [Switch(t, f, {"prompt_version": "p2"})],
            [Effect(f, t, {"prompt_version": "p2"}, quality_delta=-float(rng.uniform(0.06, 0.12)))],
            [_declared(t, f, "prompt", "prompt_version", "p1", "p2"), *_harmless(f, rng, t)],
            "quality_score",
            ("negative_feedback_rate",),
            t,
            Cause("prompt", "p2", t),
            "total",
        )
    )

    f, t = f"canary-errors-{seed}", _when(rng)
    cases.append(
        Case(
            "canary_errors",
            f,
            _spec(f, rng),
            [Switch(t, f, {"variant": "canary", "model": "claude-x"}, share=0.1)],
            [Effect(f, t, {"variant": "canary"}, error_rate_add=float(rng.uniform(0.08, 0.2)))],
            [_declared(t, f, "flag", f"{f}-rollout", "0%", "10%"), *_harmless(f, rng, t)],
            "error_rate",
            (),
            t,
            Cause("flag", "10%", t),
            "partial",
        )
    )

    f, t = f"silent-update-{seed}", _when(rng)
    cases.append(
        Case(
            "silent_update",
            f,
            _spec(f, rng),
            [Switch(t, f, {"response_model": "gpt-4o-2024-11-20"})],
            [
                Effect(
                    f,
                    t,
                    {"response_model": "gpt-4o-2024-11-20"},
                    quality_delta=-float(rng.uniform(0.05, 0.09)),
                )
            ],
            _harmless(f, rng, t),
            "quality_score",
            ("negative_feedback_rate",),
            t,
            Cause("model", "gpt-4o-2024-11-20", t),
            "total",
        )
    )

    f, t = f"gradual-drift-{seed}", _when(rng) - timedelta(hours=24)
    cases.append(
        Case(
            "gradual_drift",
            f,
            _spec(f, rng),
            [Switch(t, f, {"model": "gpt-4o-mini"})],
            [
                Effect(
                    f, t, {"model": "gpt-4o-mini"}, quality_delta=-0.10, ramp_hours=float(rng.uniform(24, 48))
                )
            ],
            [_declared(t, f, "model", "model", "gpt-4o", "gpt-4o-mini"), *_harmless(f, rng, t)],
            "quality_score",
            ("negative_feedback_rate",),
            t,
            Cause("model", "gpt-4o-mini", t),
            "total",
        )
    )

    f, t = f"latency-{seed}", _when(rng)
    cases.append(
        Case(
            "latency_regression",
            f,
            _spec(f, rng),
            [],
            [Effect(f, t, latency_factor=float(rng.uniform(1.4, 1.8)))],
            [_declared(t, f, "config", "retrieval_top_k", "5", "20"), *_harmless(f, rng, t)],
            "latency_p95_ms",
            ("cost_per_request_usd",),
            t,
            Cause("config", "20", t),
            "total",
        )
    )

    f, t = f"region-break-{seed}", _when(rng)
    cases.append(
        Case(
            "region_breakage",
            f,
            _spec(f, rng),
            [],
            [Effect(f, t, {"region": "ap-south"}, error_rate_add=float(rng.uniform(0.1, 0.3)))],
            [_declared(t, f, "config", "region", "ap-south-old", "ap-south"), *_harmless(f, rng, t)],
            "error_rate",
            (),
            t,
            Cause("config", "ap-south", t),
            "partial",
        )
    )

    f, t = f"provider-outage-{seed}", _when(rng)
    cases.append(
        Case(
            "provider_outage",
            f,
            _spec(f, rng),
            [],
            [
                Effect(
                    f,
                    t,
                    end=t + timedelta(hours=float(rng.uniform(1.5, 4))),
                    error_rate_add=float(rng.uniform(0.2, 0.5)),
                )
            ],
            _harmless(f, rng, t),
            "error_rate",
            (),
            t,
            None,
            "total",
        )
    )

    f, t = f"noisy-user-{seed}", _when(rng)
    cases.append(
        Case(
            "single_user",
            f,
            _spec(f, rng),
            [Switch(t, f, {"user_id": "u-77777"}, share=0.05)],
            [Effect(f, t, {"user_id": "u-77777"}, error_rate_add=0.5)],
            _harmless(f, rng, t),
            "error_rate",
            (),
            t,
            None,
            "single_user",
        )
    )

    for k in range(2):
        f = f"clean-{k}-{seed}"
        t1, t2 = _when(rng), _when(rng)
        cases.append(
            Case(
                "clean",
                f,
                _spec(f, rng, quality_daily_amplitude=0.03, daily_amplitude=0.7),
                [Switch(t1, f, {"prompt_version": "p2"}), Switch(t2, f, {"variant": "canary"}, share=0.05)],
                [],
                [
                    _declared(t1, f, "prompt", "prompt_version", "p1", "p2"),
                    _declared(t2, f, "flag", f"{f}-rollout", "0%", "5%"),
                    *_harmless(f, rng, None, n=4),
                ],
            )
        )
    return cases


def scenario(cases: list[Case], seed: int) -> Scenario:
    return Scenario(
        start=START,
        days=DAYS,
        features=[c.spec for c in cases],
        switches=[s for c in cases for s in c.switches],
        effects=[e for c in cases for e in c.effects],
        seed=seed,
    )
