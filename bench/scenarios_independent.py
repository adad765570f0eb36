"""The independent detection suite: incident logs with known answers, built on other
assumptions than bench/scenarios.py (traffic from bench/independent_traffic.py).

A case is one data directory (a team's features over one period) and one analysis window.
Every incident carries its ground truth: feature, metric (the names of the `analyze --json`
contract), onset (and end for transients), shape, scope (total, a slice named by
dimension = value, single_user, or cross_feature) and the causing change when a change
caused it. Every feature without an incident in a case is a clean feature; its days in the
window count towards the clean feature-weeks.

Incidents are sized so that a one-sided z-test at the true onset, on the requests of the
affected slice after the onset, would give z >= 6: a miss is the detector's, not the data's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bench.independent_cases import (
    Case,
    Cause,
    Draft,
    Incident,
    at_minute,
    cause_of,
    expected_requests,
    proportion_sd,
    quality_sd,
    requests_between,
    z_sized,
)
from bench.independent_traffic import Burst, FeatureModel, Route, Shift

# Incident families -------------------------------------------------------------------------


def _outage(d: Draft, f: FeatureModel, t: datetime, minutes: float, scope: str) -> None:
    n = expected_requests(f, t, minutes)
    add = min(
        0.95, z_sized(f.error_rate, proportion_sd(f.error_rate + 0.3), n, float(d.rng.uniform(0.3, 0.8)))
    )
    end = t + timedelta(minutes=minutes)
    d.shifts.append(Shift(f.name, t, end, error_add=add))
    d.incident(f, "error_rate", t, "transient", scope, end=end)


def provider_outage_all(seed: int) -> Case:
    d = Draft("provider_outage_all", seed, (2, 3, 5, 7), (0, 3, 7))
    feats = [d.add(chr(97 + i), 3000, 20000) for i in range(int(d.rng.integers(3, 5)))]
    t = d.onset()
    minutes = float(d.rng.uniform(20, 90))
    for f in feats:
        _outage(d, f, t, minutes, "cross_feature")
    return d.case()


def outage_one_feature(seed: int) -> Case:
    d = Draft("outage_one_feature", seed, (2, 4, 7, 10), (0, 7))
    f = d.add("svc", 2000, 30000)
    d.companions(1)
    _outage(d, f, d.onset(), float(d.rng.uniform(20, 90)), "total")
    return d.case()


def reverted_prompt(seed: int) -> Case:
    d = Draft("reverted_prompt", seed, (3, 5, 7), (0, 7))
    f = d.add("chat", 1500, 20000)
    d.companions(1)
    t = d.onset()
    hours = float(d.rng.uniform(2, 8))
    back = at_minute(t + timedelta(hours=hours))
    new = f"{f.prompt_version}b"
    d.routes.append(Route(f.name, t, {"prompt_version": new}, until=back, sticky=False))
    e = d.change(t, f, "prompt", "prompt_version", f.prompt_version, new)
    d.change(back, f, "prompt", "prompt_version", new, f.prompt_version)
    n = expected_requests(f, t, hours * 60)
    add = z_sized(f.error_rate, proportion_sd(f.error_rate * 3), n, float(d.rng.uniform(0.03, 0.1)))
    d.shifts.append(Shift(f.name, t, back, {"prompt_version": new}, error_add=add))
    d.incident(f, "error_rate", t, "transient", end=back, cause=cause_of(e))
    return d.case()


def error_step_high_volume(seed: int) -> Case:
    d = Draft("error_step_high_volume", seed, (2, 3), (0, 1), budget=160_000)
    f = d.add("search", 20000, 50000)
    t = d.onset()
    e = d.change(t, f, "config", "upstream_pool", "pool-a", "pool-b")
    add = float(d.rng.uniform(0.006, 0.02)) + f.error_rate * float(d.rng.uniform(0.5, 2))
    d.shifts.append(Shift(f.name, t, error_add=add))
    d.incident(f, "error_rate", t, cause=cause_of(e))
    return d.case()


def canary_errors(seed: int) -> Case:
    share = (0.01, 0.05, 0.1)[seed % 3]
    short = share == 0.01  # a 1% canary needs a busy feature: keep its window short
    d = Draft("canary_errors", seed, (2, 3) if short else (3, 5, 7), (0, 2) if short else (0, 7))
    lo, hi = {0.01: (30000, 50000), 0.05: (5000, 20000), 0.1: (2000, 10000)}[share]
    f = d.add("assist", lo, hi)
    d.companions(1)
    t = d.onset()
    d.routes.append(Route(f.name, t, {"variant": "canary"}, share=share, sticky=False))
    e = d.change(t, f, "flag", f"{f.name}-canary", "0%", f"{share:.0%}")
    d.shifts.append(Shift(f.name, t, where={"variant": "canary"}, error_mult=10.0, error_add=0.01))
    d.incident(f, "error_rate", t, scope="slice", slices=(("variant", "canary"),), cause=cause_of(e))
    return d.case()


def canary_quality(seed: int) -> Case:
    d = Draft("canary_quality", seed, (3, 5, 7), (0, 7))
    share = (0.05, 0.1)[seed % 2]
    f = d.add("summarise", 2000, 12000, graded_share=float(d.rng.uniform(0.3, 0.6)))
    d.companions(1)
    t = d.onset()
    new = f"{f.prompt_version}-exp"
    d.routes.append(Route(f.name, t, {"prompt_version": new}, share=share, sticky=False))
    e = d.change(t, f, "prompt", "prompt_version", f.prompt_version, new)
    d.shifts.append(Shift(f.name, t, where={"prompt_version": new}, quality_delta=-0.25))
    d.incident(
        f,
        "quality_score",
        t,
        scope="slice",
        slices=(("prompt_version", new),),
        cause=cause_of(e),
        also=("negative_feedback_rate",),
    )
    return d.case()


def region_slice(seed: int) -> Case:
    d = Draft("region_slice", seed, (3, 5, 7, 10), (0, 7))
    f = d.add("translate", 2000, 15000)
    d.companions(1)
    t = d.onset()
    region = f.regions[int(d.rng.integers(0, len(f.regions)))][0]
    cause = None
    if seed % 2 == 0:
        cause = cause_of(d.change(t, f, "config", "gateway", f"{region}-gw1", f"{region}-gw2"))
    if seed % 4 < 2:
        d.shifts.append(
            Shift(f.name, t, where={"region": region}, latency_mult=float(d.rng.uniform(1.8, 3.0)))
        )
        metric = "latency_p95_ms"
    else:
        d.shifts.append(
            Shift(f.name, t, where={"region": region}, error_add=float(d.rng.uniform(0.08, 0.25)))
        )
        metric = "error_rate"
    d.incident(f, metric, t, scope="slice", slices=(("region", region),), cause=cause)
    return d.case()


def segment_slice(seed: int) -> Case:
    d = Draft("segment_slice", seed, (4, 7), (0, 7))
    share = float(d.rng.uniform(0.08, 0.15))
    f = d.add(
        "answer", 2000, 10000, segments=(("self-serve", 0.75 - share), ("team", 0.25), ("strategic", share))
    )
    d.companions(1)
    t = d.onset()
    e = d.change(t, f, "config", "retrieval_index", "idx-2025", "idx-2026")
    d.shifts.append(
        Shift(f.name, t, where={"segment": "strategic"}, quality_delta=-float(d.rng.uniform(0.18, 0.3)))
    )
    d.incident(
        f,
        "quality_score",
        t,
        scope="slice",
        slices=(("segment", "strategic"),),
        cause=cause_of(e),
        also=("negative_feedback_rate",),
    )
    return d.case()


def model_slice(seed: int) -> Case:
    d = Draft("model_slice", seed, (3, 5, 7), (0, 7))
    f = d.add("draft", 1500, 10000)
    d.companions(1)
    t = d.onset()
    new, resp = f"{f.model}-next", f"{f.model}-next-0501"
    d.routes.append(
        Route(
            f.name,
            t,
            {"model": new, "response_model": resp},
            share=float(d.rng.uniform(0.2, 0.4)),
            sticky=False,
        )
    )
    e = d.change(t, f, "model", "router", f.model, new)
    d.shifts.append(Shift(f.name, t, where={"model": new}, quality_delta=-float(d.rng.uniform(0.12, 0.2))))
    d.incident(
        f,
        "quality_score",
        t,
        scope="slice",
        slices=(("model", new), ("response_model", resp)),
        cause=cause_of(e),
        also=("negative_feedback_rate",),
    )
    return d.case()


def single_user_burst(seed: int) -> Case:
    d = Draft("single_user_burst", seed, (2, 4, 7), (0, 7))
    f = d.add("api", 500, 20000)
    d.companions(1)
    t = d.onset()
    minutes = float(d.rng.uniform(30, 90))
    user = f"client-{seed:03d}-retry"
    d.bursts.append(
        Burst(f.name, user, t, minutes, int(d.rng.integers(200, 601)), float(d.rng.uniform(0.95, 1.0)))
    )
    d.incident(
        f,
        "error_rate",
        t,
        "transient",
        "single_user",
        slices=(("user_id", user),),
        end=t + timedelta(minutes=minutes),
    )
    return d.case()


def gradual_drift(seed: int) -> Case:
    d = Draft("gradual_drift", seed, (4, 7, 10), (0, 7))
    f = d.add("classify", 3000, 12000)
    d.companions(1)
    t = d.onset(0.2, 0.5)
    if seed % 2 == 0:
        hours = float(d.rng.uniform(6, 36))
        new = f"{f.response_model}-q2"
        d.routes.append(Route(f.name, t, {"response_model": new}, sticky=False))
        d.shifts.append(
            Shift(
                f.name,
                t,
                where={"response_model": new},
                ramp_hours=hours,
                quality_delta=-float(d.rng.uniform(0.08, 0.15)),
            )
        )
        d.incident(
            f,
            "quality_score",
            t,
            "ramp",
            ramp_hours=hours,
            cause=Cause("model", new, t),
            also=("negative_feedback_rate",),
        )
    else:
        hours = float(d.rng.uniform(12, 48))
        e = d.change(t, f, "config", "context_window", "8k", "32k")
        d.shifts.append(Shift(f.name, t, ramp_hours=hours, latency_mult=float(d.rng.uniform(1.5, 2.0))))
        d.incident(f, "latency_p95_ms", t, "ramp", ramp_hours=hours, cause=cause_of(e))
    return d.case()


def quality_step_prompt(seed: int) -> Case:
    d = Draft("quality_step_prompt", seed, (3, 7, 14), (0, 7, 14))
    f = d.add("reply", 500, 8000)
    d.companions(1)
    t = d.onset()
    new = f"{f.prompt_version}r"
    d.routes.append(Route(f.name, t, {"prompt_version": new}, sticky=False))
    e = d.change(t, f, "prompt", "prompt_version", f.prompt_version, new)
    n = requests_between(f, t, d.end) * f.graded_share
    delta = min(0.25, z_sized(0, quality_sd(f), n, float(d.rng.uniform(0.04, 0.1))))
    d.shifts.append(Shift(f.name, t, quality_delta=-delta))
    d.incident(f, "quality_score", t, cause=cause_of(e), also=("negative_feedback_rate",))
    return d.case()


def latency_step(seed: int) -> Case:
    d = Draft("latency_step", seed, (3, 5, 7, 14), (0, 7))
    f = d.add("extract", 800, 20000)
    d.companions(1)
    t = d.onset()
    e = d.change(t, f, "config", "max_output_tokens", "1024", "4096")
    d.shifts.append(Shift(f.name, t, latency_mult=float(d.rng.uniform(1.35, 2.0))))
    d.incident(f, "latency_p95_ms", t, cause=cause_of(e))
    return d.case()


def cost_step_model_switch(seed: int) -> Case:
    d = Draft("cost_step_model_switch", seed, (3, 5, 7), (0, 7))
    f = d.add("code", 800, 15000)
    d.companions(1)
    t = d.onset()
    new = f"{f.model}-next"
    d.routes.append(Route(f.name, t, {"model": new, "response_model": f"{new}-0501"}, sticky=False))
    e = d.change(t, f, "model", "model", f.model, new)
    d.shifts.append(Shift(f.name, t, where={"model": new}, cost_mult=float(d.rng.uniform(1.4, 1.8))))
    d.incident(f, "cost_per_request_usd", t, cause=cause_of(e))
    return d.case()


def two_incidents(seed: int) -> Case:
    d = Draft("two_incidents", seed, (5, 7, 10), (0, 7))
    f = d.add("agent", 3000, 20000)
    d.companions(1)
    t1 = d.onset(0.15, 0.35)
    t2 = at_minute(t1 + timedelta(hours=float(d.rng.uniform(30, 60))))
    _outage(d, f, t1, float(d.rng.uniform(60, 180)), "total")
    e = d.change(t2, f, "config", "tool_timeout_s", "10", "30")
    d.shifts.append(Shift(f.name, t2, latency_mult=float(d.rng.uniform(1.5, 2.0))))
    d.incident(f, "latency_p95_ms", t2, cause=cause_of(e))
    return d.case()


def concurrent_features(seed: int) -> Case:
    d = Draft("concurrent_features", seed, (3, 5, 7), (0, 7))
    a = d.add("a", 1500, 10000)
    b = d.add("b", 1500, 10000)
    c = d.add("c", 1500, 10000)
    t = d.onset()
    new = f"{a.prompt_version}x"
    d.routes.append(Route(a.name, t, {"prompt_version": new}, sticky=False))
    ea = d.change(t, a, "prompt", "prompt_version", a.prompt_version, new)
    n = requests_between(a, t, d.end) * a.graded_share
    d.shifts.append(Shift(a.name, t, quality_delta=-min(0.25, z_sized(0, quality_sd(a), n, 0.08))))
    d.incident(a, "quality_score", t, cause=cause_of(ea), also=("negative_feedback_rate",))
    tb = at_minute(t + timedelta(minutes=float(d.rng.uniform(2, 10))))
    eb = d.change(tb, b, "config", "provider_region", "east", "west")
    d.shifts.append(Shift(b.name, tb, error_add=float(d.rng.uniform(0.03, 0.08))))
    d.incident(b, "error_rate", tb, cause=cause_of(eb))
    d.change(at_minute(t + timedelta(minutes=5)), c, "config", "temperature", "0.2", "0.3")
    return d.case()


def replay_llmdrift(seed: int) -> Case:
    d = Draft("replay_llmdrift", seed, (3, 5, 7), (0, 7))
    task = ("prime", "counthappynumber")[seed % 2]
    f = d.add(
        "math",
        300,
        3000,
        model="gpt-4",
        response_model="gpt-4-0314",
        drift_task=task,
        graded_share=float(d.rng.uniform(0.3, 0.6)),
    )
    d.companions(1)
    t = d.onset()
    if seed % 4 < 2:  # the provider moved the alias: a silent update
        d.routes.append(Route(f.name, t, {"response_model": "gpt-4-0613"}, sticky=False))
        cause = Cause("model", "gpt-4-0613", t)
    else:
        d.routes.append(
            Route(f.name, t, {"model": "gpt-4-0613", "response_model": "gpt-4-0613"}, sticky=False)
        )
        cause = cause_of(d.change(t, f, "model", "model", "gpt-4-0314", "gpt-4-0613"))
    d.incident(f, "quality_score", t, cause=cause, also=("negative_feedback_rate",))
    return d.case()


def replay_arrivals_cost(seed: int) -> Case:
    d = Draft("replay_arrivals_cost", seed, (2, 3, 5), (0, 3))
    trace = ("azure", "burstgpt")[seed % 2]
    lo, hi = (5000, 40000) if trace == "azure" else (500, 3000)
    f = d.add("chat", lo, hi, arrivals=trace, tokens=trace)
    d.companions(1)
    t = d.onset()
    new = f"{f.model}-next"
    d.routes.append(Route(f.name, t, {"model": new, "response_model": f"{new}-0501"}, sticky=False))
    e = d.change(t, f, "model", "model", f.model, new)
    d.shifts.append(Shift(f.name, t, where={"model": new}, cost_mult=float(d.rng.uniform(1.4, 1.8))))
    d.incident(f, "cost_per_request_usd", t, cause=cause_of(e))
    return d.case()


def feedback_step(seed: int) -> Case:
    d = Draft("feedback_step", seed, (4, 7), (0, 7))
    f = d.add("writer", 3000, 20000, feedback_share=float(d.rng.uniform(0.06, 0.12)))
    d.companions(1)
    t = d.onset()
    e = d.change(t, f, "config", "answer_style", "concise", "verbose")
    after = requests_between(f, t, d.end) * f.feedback_share
    before = requests_between(f, max(d.start, t - timedelta(days=7)), t) * f.feedback_share
    n = 1 / (1 / after + 1 / before)  # both sides are noisy
    add = min(0.4, z_sized(0, proportion_sd(f.negative_base + 0.1), n, float(d.rng.uniform(0.1, 0.2))))
    d.shifts.append(Shift(f.name, t, negative_add=add))
    d.incident(f, "negative_feedback_rate", t, cause=cause_of(e))
    return d.case()


def provider_slowdown_all(seed: int) -> Case:
    d = Draft("provider_slowdown_all", seed, (2, 4, 7), (0, 7))
    feats = [d.add(chr(97 + i), 3000, 20000, tail_share=0.0) for i in range(3)]
    t = d.onset()
    minutes = float(d.rng.uniform(45, 120))
    end = t + timedelta(minutes=minutes)
    for f in feats:
        d.shifts.append(Shift(f.name, t, end, latency_mult=float(d.rng.uniform(2.0, 3.0))))
        d.incident(f, "latency_p95_ms", t, "transient", "cross_feature", end=end)
    return d.case()


def _day_in_window(d: Draft, weekend: bool) -> datetime:
    """Midnight of a random day in the window (a Saturday or Sunday when `weekend`, a weekday
    otherwise, when the window has one), leaving a day before and after it."""
    days = [d.window_start + timedelta(days=k) for k in range(1, int(d.window) - 1)]
    fitting = [day for day in days if (day.weekday() >= 5) == weekend] or days
    return fitting[int(d.rng.integers(0, len(fitting)))]


def weekend_step(seed: int) -> Case:
    d = Draft("weekend_step", seed, (7, 10, 14), (0, 7))
    f = d.add("help", 1500, 10000, weekend_level=float(d.rng.uniform(0.25, 0.4)))
    d.companions(1)
    t = at_minute(_day_in_window(d, weekend=True) + timedelta(hours=float(d.rng.uniform(8, 20))))
    e = d.change(t, f, "config", "reranker", "off", "on")
    if seed % 2 == 0:
        n = requests_between(f, t, d.end) * f.graded_share * 0.5  # weekend-thin traffic
        d.shifts.append(Shift(f.name, t, quality_delta=-min(0.25, z_sized(0, quality_sd(f), n, 0.06))))
        d.incident(f, "quality_score", t, cause=cause_of(e), also=("negative_feedback_rate",))
    else:
        d.shifts.append(Shift(f.name, t, error_add=float(d.rng.uniform(0.03, 0.08))))
        d.incident(f, "error_rate", t, cause=cause_of(e))
    return d.case()


def night_outage(seed: int) -> Case:
    d = Draft("night_outage", seed, (3, 5, 7), (0, 7))
    f = d.add("sync", 3000, 20000, night_floor=float(d.rng.uniform(0.08, 0.2)))
    d.companions(1)
    day = _day_in_window(d, weekend=False)
    quiet = (f.peak_hour + 12) % 24
    t = at_minute(day + timedelta(hours=quiet + float(d.rng.uniform(-1, 1))))
    _outage(d, f, t, float(d.rng.uniform(45, 90)), "total")
    return d.case()


def long_window_weekly(seed: int) -> Case:
    d = Draft("long_window_weekly", seed, (21, 28), (0, 7))
    f = d.add("digest", 300, 2000, weekend_level=0.3, quality_weekend=-0.012)
    d.companions(1, 300, 1500)
    t = d.onset(0.6, 0.8, min_after_h=48)
    e = d.change(t, f, "config", "retriever", "bm25", "hybrid")
    if seed % 2 == 0:
        d.shifts.append(Shift(f.name, t, latency_mult=float(d.rng.uniform(1.4, 1.8))))
        d.incident(f, "latency_p95_ms", t, cause=cause_of(e))
    else:
        n = requests_between(f, t, d.end) * f.graded_share
        d.shifts.append(Shift(f.name, t, quality_delta=-min(0.25, z_sized(0, quality_sd(f), n, 0.05))))
        d.incident(f, "quality_score", t, cause=cause_of(e), also=("negative_feedback_rate",))
    return d.case()


# Clean families ----------------------------------------------------------------------------


def clean_weekly(seed: int) -> Case:
    d = Draft("clean_weekly", seed, (14,), (7,))
    for i in range(3):
        d.add(f"w{i}", 300, 8000, quality_weekend=float(d.rng.uniform(-0.015, -0.008)))
    return d.case()


def clean_evening_edge(seed: int) -> Case:
    d = Draft("clean_evening_edge", seed, (3, 5, 7), (0, 7))
    for i in range(3):
        d.add(f"e{i}", 1000, 10000, evening_slowdown=float(d.rng.uniform(1.4, 1.6)), quality_wave=0.012)
    d.until = d.end - timedelta(hours=float(d.rng.uniform(1, 3)))
    return d.case()


def clean_no_history(seed: int) -> Case:
    d = Draft("clean_no_history", seed, (2, 3, 5), (0,))
    for i in range(3):
        d.add(f"n{i}", 200, 20000)
    return d.case()


def clean_replay(seed: int) -> Case:
    d = Draft("clean_replay", seed, (7,), (0, 7))
    d.add("az", 5000, 30000, arrivals="azure", tokens="azure")
    d.add("bg", 500, 3000, arrivals="burstgpt", tokens="burstgpt")
    return d.case()


def clean_heavy_users(seed: int) -> Case:
    d = Draft("clean_heavy_users", seed, (7,), (0, 7))
    for i in range(3):
        d.add(f"h{i}", 500, 8000, clumps_per_day=10.0, heavy_users=4)
    return d.case()


FAMILIES: dict[str, tuple[Callable[[int], Case], int]] = {
    "provider_outage_all": (provider_outage_all, 5),
    "outage_one_feature": (outage_one_feature, 10),
    "reverted_prompt": (reverted_prompt, 10),
    "error_step_high_volume": (error_step_high_volume, 8),
    "canary_errors": (canary_errors, 12),
    "canary_quality": (canary_quality, 10),
    "region_slice": (region_slice, 8),
    "segment_slice": (segment_slice, 8),
    "model_slice": (model_slice, 8),
    "single_user_burst": (single_user_burst, 10),
    "gradual_drift": (gradual_drift, 10),
    "quality_step_prompt": (quality_step_prompt, 10),
    "latency_step": (latency_step, 10),
    "cost_step_model_switch": (cost_step_model_switch, 8),
    "two_incidents": (two_incidents, 6),
    "concurrent_features": (concurrent_features, 6),
    "replay_llmdrift": (replay_llmdrift, 8),
    "replay_arrivals_cost": (replay_arrivals_cost, 8),
    "feedback_step": (feedback_step, 8),
    "long_window_weekly": (long_window_weekly, 6),
    "provider_slowdown_all": (provider_slowdown_all, 4),
    "weekend_step": (weekend_step, 6),
    "night_outage": (night_outage, 6),
    "clean_weekly": (clean_weekly, 6),
    "clean_evening_edge": (clean_evening_edge, 5),
    "clean_no_history": (clean_no_history, 6),
    "clean_replay": (clean_replay, 4),
    "clean_heavy_users": (clean_heavy_users, 4),
}


def cases(families: list[str] | None = None, quick: bool = False) -> list[Case]:
    """Every case of the suite (or of some families); `quick`: the first case of each."""
    out = []
    for name, (build, n) in FAMILIES.items():
        if families and name not in families:
            continue
        out += [build(seed) for seed in range(1 if quick else n)]
    return out


__all__ = ["FAMILIES", "Case", "Cause", "Incident", "cases"]
