"""The detector's hard cases, one data directory each, with the answers they must give."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.changes.events import ChangeEvent

from .adversarial import START, Change, Hit, Logs, Traffic, at, burst, declared


@dataclass(frozen=True)
class Expect:
    feature: str
    metric: str
    onset: datetime
    end: datetime | None = None  # a transient's end
    scope: str = "total"
    slice: tuple[str, str] | None = None  # (dimension, value) the scope must name
    cause: tuple[str, str] | None = None  # (kind, to) of the right first suspect
    shape: str | None = None


@dataclass
class Case:
    name: str
    logs: Logs
    events: list[ChangeEvent] = field(default_factory=list)
    expect: list[Expect] = field(default_factory=list)
    clean: list[str] = field(default_factory=list)  # features that must have no finding
    since_days: float = 0.0  # analyse from this many days after the first request
    event: bool = False  # a cross-feature event is expected


def outage() -> Case:
    sizes = {"search": 200_0, "chat": 8000, "summaries": 30_000, "tags": 600}
    start, end = at(1, 13, 10), at(1, 13, 55)
    logs = Logs(
        START,
        3,
        [Traffic(n, v) for n, v in sizes.items()],
        hits=[Hit(n, start, end, error_rate=0.6) for n in sizes],
    )
    return Case(
        "outage_all_features",
        logs,
        expect=[Expect(n, "error_rate", start, end, shape="transient") for n in sizes],
        event=True,
    )


def prompt_transient() -> Case:
    on, off = at(2, 9, 20), at(2, 15, 20)
    logs = Logs(
        START,
        4,
        [Traffic("writer", 5000)],
        changes=[Change(on, "writer", {"prompt_version": "v8"}, until=off)],
        hits=[Hit("writer", on, off, {"prompt_version": "v8"}, error_rate=0.08)],
    )
    events = [
        declared(on, "writer", "prompt", "prompt_version", "v7", "v8"),
        declared(off, "writer", "prompt", "prompt_version", "v8", "v7"),
        declared(at(1, 11), "writer", "config", "temperature", "0.3", "0.5"),
    ]
    return Case(
        "prompt_transient",
        logs,
        events,
        [Expect("writer", "error_rate", on, off, cause=("prompt", "v8"), shape="transient")],
    )


def error_step_large() -> Case:
    on = at(2, 16, 5)
    logs = Logs(START, 4, [Traffic("extract", 40_000)], hits=[Hit("extract", on, error_rate=0.03)])
    return Case("error_step_40k", logs, expect=[Expect("extract", "error_rate", on)])


def two_incidents() -> Case:
    first, second = at(1, 8, 30), at(4, 19, 40)
    logs = Logs(
        START,
        6,
        [Traffic("alpha", 3000), Traffic("beta", 3000)],
        changes=[Change(first, "alpha", {"model": "model-b", "response_model": "model-b-1"})],
        hits=[Hit("alpha", first, error_rate=0.05), Hit("beta", second, error_rate=0.05)],
    )
    events = [declared(first, "alpha", "model", "model", "model-a", "model-b")]
    return Case(
        "two_incidents",
        logs,
        events,
        [
            Expect("alpha", "error_rate", first, cause=("model", "model-b")),
            Expect("beta", "error_rate", second),
        ],
    )


def canary(share: float, per_day: float, metric: str, name: str) -> Case:
    on = at(3, 10)
    dim, value = ("variant", "canary") if metric == "error_rate" else ("prompt_version", "v8")
    hit = (
        Hit("f", on, where={dim: value}, error_rate=0.10)
        if metric == "error_rate"
        else Hit("f", on, where={dim: value}, quality_delta=-0.25)
    )
    logs = Logs(
        START, 5, [Traffic("f", per_day)], changes=[Change(on, "f", {dim: value}, share=share)], hits=[hit]
    )
    kind = "flag" if dim == "variant" else "prompt"
    events = [
        declared(
            on,
            "f",
            kind,
            "canary-rollout" if kind == "flag" else "prompt_version",
            "0%" if kind == "flag" else "v7",
            f"{share:.0%}" if kind == "flag" else "v8",
        ),
        declared(at(2, 12), "f", "config", "max_tokens", "600", "700"),
    ]
    cause = (kind, f"{share:.0%}" if kind == "flag" else "v8")
    return Case(
        name, logs, events, [Expect("f", metric, on, scope="partial", slice=(dim, value), cause=cause)]
    )


def single_user_burst() -> Case:
    logs = Logs(START, 4, [Traffic("assist", 3000)], extra=[burst("assist", "user-retry", at(2, 15), 400)])
    return Case(
        "single_user_burst",
        logs,
        expect=[
            Expect("assist", "error_rate", at(2, 15), scope="single_user", slice=("user_id", "user-retry"))
        ],
    )


def evening_latency_edge() -> Case:
    logs = Logs(START, 3 - 1.5 / 24, [Traffic("evening", 5000, evening_latency=1.6)])
    return Case("clean_evening_latency_edge", logs, clean=["evening"])


def weekends() -> Case:
    logs = Logs(START, 14, [Traffic("weekly", 2000, weekend=0.35, weekend_quality=-0.04)])
    return Case("clean_weekends", logs, clean=["weekly"], since_days=7)


def cost_step() -> Case:
    on = at(3, 13, 37)
    logs = Logs(
        START,
        5,
        [Traffic("costly", 10_000, burstiness=200)],
        changes=[Change(on, "costly", {"model": "model-c", "response_model": "model-c-1"})],
        hits=[Hit("costly", on, cost_factor=1.6)],
    )
    events = [
        declared(on, "costly", "model", "model", "model-a", "model-c"),
        declared(at(2, 9), "costly", "config", "top_p", "1", "0.9"),
    ]
    return Case(
        "cost_step_even_traffic",
        logs,
        events,
        [Expect("costly", "cost_per_request_usd", on, cause=("model", "model-c"))],
    )


def drift() -> Case:
    on = at(2, 6)
    logs = Logs(
        START,
        5,
        [Traffic("drifty", 6000)],
        changes=[Change(on, "drifty", {"response_model": "model-a-0901"})],
        hits=[Hit("drifty", on, quality_delta=-0.12, ramp_hours=24)],
    )
    return Case("quality_ramp", logs, expect=[Expect("drifty", "quality_score", on, shape="ramp")])


def latency_ramp() -> Case:
    """Latency creeping up over 18 hours (a length the scan's ramps do not have), from a time
    that is not on the hour."""
    on = at(2, 7, 30)
    logs = Logs(
        START, 5, [Traffic("creep", 6000)], hits=[Hit("creep", on, latency_factor=1.8, ramp_hours=18)]
    )
    return Case("latency_ramp", logs, expect=[Expect("creep", "latency_p95_ms", on, shape="ramp")])


def night_latency_step() -> Case:
    """Latency 1.4x from 01:40, in the quietest hours: the share of requests above the old p95
    barely moves there, every request's latency does."""
    on = at(2, 1, 40)
    logs = Logs(START, 4, [Traffic("nightly", 2500)], hits=[Hit("nightly", on, latency_factor=1.4)])
    return Case("night_latency_step", logs, expect=[Expect("nightly", "latency_p95_ms", on, shape="step")])


def first_evening_slowdown() -> Case:
    """No history: the logs start at midnight and latency is 2.5x for 80 minutes from 17:05 on
    the first day, an hour of day seen only after it (the second evening is its baseline)."""
    on = at(0, 17, 5)
    logs = Logs(
        START,
        2,
        [Traffic("fresh", 4000)],
        hits=[Hit("fresh", on, on + timedelta(minutes=80), latency_factor=2.5)],
    )
    return Case(
        "first_evening_slowdown", logs, expect=[Expect("fresh", "latency_p95_ms", on, shape="transient")]
    )


def night_config_step() -> Case:
    """A config change at 23:20 doubles a small feature's errors from then on. The night's
    few dozen requests cannot date it (the data alone put it at dawn, hours late); the change
    on record, at a time the data cannot tell apart from the best fit, is the onset. A
    harmless flag change three hours before, in busier hours that show no step, is not
    taken for it."""
    on = at(2, 23, 20)
    logs = Logs(START, 5, [Traffic("notes", 1200, error_rate=0.03)], hits=[Hit("notes", on, error_rate=0.06)])
    events = [
        declared(on, "notes", "config", "max_retries", "3", "0"),
        declared(at(2, 20, 10), "notes", "flag", "notes-beta", "off", "on"),
    ]
    return Case(
        "night_config_step",
        logs,
        events,
        [Expect("notes", "error_rate", on, cause=("config", "0"), shape="step")],
    )


def evening_drift() -> Case:
    """A silent provider update at 21:40 (the same model alias answered by a new response
    model) makes quality slide over 30 hours, through the night: the broken-line fit dates
    the slide within hours; the update seen in the logs, at a start the fit cannot tell from
    its best, is the onset. A config change five hours before it is not taken for it."""
    on = at(2, 21, 40)
    logs = Logs(
        START,
        5,
        [Traffic("slide", 3000)],
        changes=[Change(on, "slide", {"response_model": "model-a-0901"})],
        hits=[Hit("slide", on, quality_delta=-0.1, ramp_hours=30)],
    )
    events = [declared(at(2, 16, 35), "slide", "config", "top_k", "40", "20")]
    return Case(
        "evening_drift",
        logs,
        events,
        [Expect("slide", "quality_score", on, cause=("model", "model-a-0901"), shape="ramp")],
    )


def cases() -> list[Case]:
    return [
        outage(),
        prompt_transient(),
        error_step_large(),
        two_incidents(),
        canary(0.10, 6000, "error_rate", "canary_10pct_errors"),
        canary(0.05, 8000, "quality_score", "canary_5pct_prompt_quality"),
        canary(0.01, 30_000, "error_rate", "canary_1pct_errors"),
        single_user_burst(),
        evening_latency_edge(),
        weekends(),
        cost_step(),
        drift(),
        latency_ramp(),
        night_latency_step(),
        first_evening_slowdown(),
        night_config_step(),
        evening_drift(),
    ]


def window(case: Case) -> tuple[datetime, datetime]:
    return (
        case.logs.start + timedelta(days=case.since_days),
        case.logs.start + timedelta(days=case.logs.days),
    )
