"""Deterministic synthetic request logs with changes and injected effects of known cause.

The demo data, the tests and the benchmarks all use this generator: a scenario is a list of
features (baseline behaviour), switches (from a time on, a share of requests carries new
dimension values: a prompt version, a canary variant, a provider's new response model) and
effects (requests matching some dimension values behave differently: lower quality, more
errors, slower, dearer, more thumbs-down), optionally ramping in gradually.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

ERROR_TYPES = np.array(["timeout", "rate_limit", "server_error", "invalid_response"])


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    requests_per_hour: float
    dims: dict[str, list[tuple[str, float]]]
    quality: float = 0.90
    quality_sample: float = 0.3
    error_rate: float = 0.01
    latency_ms: float = 900.0
    cost_usd: float = 0.002
    feedback_rate: float = 0.08
    negative_share: float = 0.10
    daily_amplitude: float = 0.5
    quality_daily_amplitude: float = 0.01
    users: int = 2000


@dataclass(frozen=True)
class Switch:
    """From `at` (until `until`), a `share` of the feature's requests matching `where` get `set`."""

    at: datetime
    feature: str
    set: dict[str, str]
    share: float = 1.0
    until: datetime | None = None
    where: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Effect:
    """Requests of `feature` matching `where`, from `start`, behave differently.

    `ramp_hours` > 0 makes the effect grow linearly (a gradual drift)."""

    feature: str
    start: datetime
    where: dict[str, str] = field(default_factory=dict)
    end: datetime | None = None
    quality_delta: float = 0.0
    error_rate_add: float = 0.0
    latency_factor: float = 1.0
    cost_factor: float = 1.0
    negative_feedback_add: float = 0.0
    ramp_hours: float = 0.0


@dataclass(frozen=True)
class Scenario:
    start: datetime
    days: float
    features: list[FeatureSpec]
    switches: list[Switch] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    seed: int = 7
    scale: float = 1.0  # multiplies every feature's traffic


def generate(s: Scenario) -> pl.DataFrame:
    """All requests of the scenario, sorted by timestamp."""
    rng = np.random.default_rng(s.seed)
    frames = [_feature_frame(s, f, rng) for f in s.features]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal").sort("timestamp")


def _hour_counts(s: Scenario, f: FeatureSpec, rng: np.random.Generator) -> np.ndarray:
    hours = int(round(s.days * 24))
    h = np.arange(hours)
    hour_of_day = (s.start.hour + h) % 24
    # Busy afternoons (peak 15:00 UTC), quiet nights.
    cycle = 1 + f.daily_amplitude * np.cos((hour_of_day - 15) / 24 * 2 * np.pi)
    return rng.poisson(f.requests_per_hour * s.scale * cycle)


def _feature_frame(s: Scenario, f: FeatureSpec, rng: np.random.Generator) -> pl.DataFrame:
    counts = _hour_counts(s, f, rng)
    n = int(counts.sum())
    if n == 0:
        return pl.DataFrame()
    hour_index = np.repeat(np.arange(counts.size), counts)
    offset_s = (hour_index + rng.random(n)) * 3600.0
    offset_s.sort()
    start_us = (
        int(s.start.timestamp() * 1_000_000)
        if s.start.tzinfo
        else int((s.start - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
    )
    ts_us = start_us + (offset_s * 1_000_000).astype(np.int64)
    t_hours = offset_s / 3600.0

    cols: dict[str, np.ndarray] = {}
    for dim, choices in f.dims.items():
        values = np.array([c[0] for c in choices], dtype=object)
        p = np.array([c[1] for c in choices], dtype=float)
        cols[dim] = values[rng.choice(len(values), size=n, p=p / p.sum())]
    users = np.array([f"u-{i:05d}" for i in range(f.users)], dtype=object)
    weights = 1.0 / np.arange(1, f.users + 1) ** 0.8
    cols["user_id"] = users[rng.choice(f.users, size=n, p=weights / weights.sum())]

    def hours_since(t: datetime) -> float:
        return (t - s.start.replace(tzinfo=None)).total_seconds() / 3600.0

    for sw in sorted((x for x in s.switches if x.feature == f.name), key=lambda x: x.at):
        mask = t_hours >= hours_since(sw.at)
        if sw.until is not None:
            mask &= t_hours < hours_since(sw.until)
        for dim, value in sw.where.items():
            mask &= cols.get(dim, np.full(n, None)) == value
        mask &= rng.random(n) < sw.share
        for dim, value in sw.set.items():
            if dim not in cols:
                cols[dim] = np.full(n, None, dtype=object)
            cols[dim] = np.where(mask, value, cols[dim])

    quality = np.full(n, f.quality) + f.quality_daily_amplitude * np.cos(
        ((t_hours + s.start.hour) % 24 - 15) / 24 * 2 * np.pi
    )
    error_p = np.full(n, f.error_rate)
    latency_f = np.ones(n)
    cost_f = np.ones(n)
    neg_add = np.zeros(n)
    for e in (x for x in s.effects if x.feature == f.name):
        since = t_hours - hours_since(e.start)
        mask = since >= 0
        if e.end is not None:
            mask &= t_hours < hours_since(e.end)
        for dim, value in e.where.items():
            mask &= cols.get(dim, np.full(n, None)) == value
        weight = np.where(mask, 1.0, 0.0)
        if e.ramp_hours > 0:
            weight *= np.clip(since / e.ramp_hours, 0, 1)
        quality += weight * e.quality_delta
        error_p += weight * e.error_rate_add
        latency_f *= 1 + weight * (e.latency_factor - 1)
        cost_f *= 1 + weight * (e.cost_factor - 1)
        neg_add += weight * e.negative_feedback_add
    quality = np.clip(quality, 0.01, 0.99)

    is_error = rng.random(n) < np.clip(error_p, 0, 1)
    error = np.where(is_error, ERROR_TYPES[rng.integers(0, len(ERROR_TYPES), n)], None)
    k = 12.0
    score = rng.beta(quality * k, (1 - quality) * k)
    sampled = (rng.random(n) < f.quality_sample) & ~is_error
    latency = f.latency_ms * latency_f * np.exp(rng.normal(0, 0.45, n))
    input_tokens = np.maximum(1, rng.lognormal(np.log(800), 0.5, n)).astype(np.int64)
    output_tokens = np.where(is_error, 0, np.maximum(1, rng.lognormal(np.log(250), 0.6, n)))
    output_tokens = output_tokens.astype(np.int64)
    cost = f.cost_usd * cost_f * (input_tokens + 4 * output_tokens) / 1800.0
    gives_feedback = (rng.random(n) < f.feedback_rate) & ~is_error
    neg_p = np.clip(f.negative_share + 1.5 * (f.quality - quality) + neg_add, 0, 1)
    negative = rng.random(n) < neg_p
    positive = rng.random(n) < 0.5
    feedback = np.where(gives_feedback, np.where(negative, -1, np.where(positive, 1, 0)), None)

    data = {
        "timestamp": pl.Series(ts_us, dtype=pl.Int64).cast(pl.Datetime("us")),
        "feature": pl.Series([f.name] * n),
        "request_id": pl.Series([f"{f.name}-{s.seed}-{i:08d}" for i in range(n)]),
    }
    for dim in ("model", "response_model", "prompt_version", "variant", "user_id", "segment", "region"):
        if dim in cols:
            data[dim] = pl.Series(cols[dim].tolist(), dtype=pl.Utf8)
    data.update(
        {
            "latency_ms": pl.Series(np.round(latency, 1)),
            "input_tokens": pl.Series(input_tokens),
            "output_tokens": pl.Series(output_tokens),
            "cost_usd": pl.Series(np.round(cost, 6)),
            "error": pl.Series(error.tolist(), dtype=pl.Utf8),
            "quality_score": pl.Series(np.where(sampled, np.round(score, 4), np.nan)).fill_nan(None),
            "feedback": pl.Series(feedback.tolist(), dtype=pl.Int8),
        }
    )
    for dim in cols:
        if dim not in data:
            data[dim] = pl.Series(cols[dim].tolist(), dtype=pl.Utf8)
    return pl.DataFrame(data)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
