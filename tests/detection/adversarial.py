"""Request logs built on other assumptions than app/demo/synth.py, for the detector's hard cases.

Traffic has two daily peaks, quieter weekends and bursts (a gamma-modulated rate per ten
minutes); failed requests carry no response model and no output tokens; latency has an
evening hump. Incidents are written as `Change`s (from a time on, a share of requests gets new
dimension values) and `Hit`s (requests matching some values, in [start, end), behave worse).
Every analysis in these tests covers only the logged range (no history before it), the way a
new user runs `analyze --since <first request> --until <last request>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from app.changes.declared import save_events
from app.changes.events import ChangeEvent
from app.ingest.pipeline import ingest_paths
from app.storage.store import Store

START = datetime(2026, 6, 1)  # a Monday
ERRORS = np.array(["timeout", "rate_limit", "server_error", "bad_gateway"])


@dataclass(frozen=True)
class Traffic:
    name: str
    per_day: float
    quality: float = 0.82
    error_rate: float = 0.01
    latency_ms: float = 1200.0
    cost_usd: float = 0.003
    weekend: float = 0.55  # weekend traffic relative to weekdays
    weekend_quality: float = 0.0  # added to quality on weekends
    evening_latency: float = 1.0  # latency factor 18:00-23:00
    burstiness: float = 4.0  # gamma shape of the ten-minute rate multiplier (lower = burstier)
    variants: tuple[tuple[str, float], ...] = (("control", 1.0),)


@dataclass(frozen=True)
class Change:
    at: datetime
    feature: str
    set: dict[str, str]
    share: float = 1.0
    until: datetime | None = None


@dataclass(frozen=True)
class Hit:
    feature: str
    start: datetime
    end: datetime | None = None
    where: dict[str, str] = field(default_factory=dict)
    error_rate: float | None = None  # replaces the error probability of matching requests
    quality_delta: float = 0.0
    latency_factor: float = 1.0
    cost_factor: float = 1.0
    ramp_hours: float = 0.0


@dataclass
class Logs:
    start: datetime
    days: float
    traffic: list[Traffic]
    changes: list[Change] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    extra: list[Callable[[np.random.Generator], pl.DataFrame]] = field(default_factory=list)
    seed: int = 11


def _weekday(start: datetime, hours: np.ndarray) -> np.ndarray:
    return (start.weekday() + (start.hour + hours) // 24).astype(int) % 7


def _rates(t: Traffic, start: datetime, minutes: int, rng: np.random.Generator) -> np.ndarray:
    m = np.arange(minutes)
    hour = (start.hour + m / 60.0) % 24
    daily = 0.25 + np.exp(-((hour - 10) ** 2) / 8) + 0.8 * np.exp(-((hour - 20) ** 2) / 6)
    dow = _weekday(start, m / 60.0)
    weekly = np.where(dow >= 5, t.weekend, 1.0)
    bursts = rng.gamma(t.burstiness, 1 / t.burstiness, size=minutes // 10 + 1).repeat(10)[:minutes]
    shape = daily * weekly * bursts
    return t.per_day * shape / (shape.sum() / (minutes / 1440))


def _frame(logs: Logs, t: Traffic, rng: np.random.Generator) -> pl.DataFrame:
    minutes = int(logs.days * 1440)
    counts = rng.poisson(_rates(t, logs.start, minutes, rng))
    n = int(counts.sum())
    sec = np.sort((np.repeat(np.arange(minutes), counts) + rng.random(n)) * 60.0)
    ts = np.datetime64(logs.start) + (sec * 1e6).astype("timedelta64[us]")
    hours = sec / 3600.0
    hod = (logs.start.hour + hours) % 24
    weekend = _weekday(logs.start, hours) >= 5

    def pick(choices: tuple[tuple[str, float], ...]) -> np.ndarray:
        vals = np.array([c[0] for c in choices], dtype=object)
        p = np.array([c[1] for c in choices])
        return vals[rng.choice(len(vals), size=n, p=p / p.sum())]

    users = np.array([f"user-{i:05d}" for i in range(3000)], dtype=object)
    w = 1.0 / np.arange(1, 3001) ** 0.6
    cols = {
        "model": np.full(n, "model-a", dtype=object),
        "response_model": np.full(n, "model-a-0601", dtype=object),
        "prompt_version": np.full(n, "v7", dtype=object),
        "variant": pick(t.variants),
        "region": pick((("na", 0.45), ("eu", 0.35), ("apac", 0.2))),
        "segment": pick((("consumer", 0.8), ("business", 0.2))),
        "user_id": users[rng.choice(3000, size=n, p=w / w.sum())],
    }
    since = lambda at: (at - logs.start).total_seconds() / 3600.0  # noqa: E731
    for c in (c for c in logs.changes if c.feature == t.name):
        mask = (hours >= since(c.at)) & (rng.random(n) < c.share)
        if c.until is not None:
            mask &= hours < since(c.until)
        for dim, value in c.set.items():
            cols[dim] = np.where(mask, value, cols[dim])
    error_p = np.full(n, t.error_rate)
    quality = t.quality + np.where(weekend, t.weekend_quality, 0.0)
    lat = np.where((hod >= 18) & (hod < 23), t.evening_latency, 1.0)
    cost = np.ones(n)
    for h in (h for h in logs.hits if h.feature == t.name):
        mask = hours >= since(h.start)
        if h.end is not None:
            mask &= hours < since(h.end)
        for dim, value in h.where.items():
            mask &= cols[dim] == value
        weight = mask * (np.clip((hours - since(h.start)) / h.ramp_hours, 0, 1) if h.ramp_hours else 1.0)
        if h.error_rate is not None:
            error_p = error_p + weight * (h.error_rate - error_p)
        quality = quality + weight * h.quality_delta
        lat = lat * (1 + weight * (h.latency_factor - 1))
        cost = cost * (1 + weight * (h.cost_factor - 1))
    failed = rng.random(n) < error_p
    quality = np.clip(quality, 0.02, 0.98)
    score = rng.beta(quality * 8, (1 - quality) * 8)
    scored = (rng.random(n) < 0.2) & ~failed
    out_tokens = np.where(failed, 0, rng.gamma(2.0, 150.0, n).astype(np.int64) + 1)
    in_tokens = rng.gamma(3.0, 300.0, n).astype(np.int64) + 1
    latency = t.latency_ms * lat * rng.gamma(3.0, 1 / 3.0, n)
    fb = rng.random(n)
    feedback = np.where(
        failed | (fb > 0.1), None, np.where(rng.random(n) < 0.15 + 1.2 * (t.quality - quality), -1, 1)
    )
    return pl.DataFrame(
        {
            "timestamp": pl.Series(ts).cast(pl.Datetime("us")),
            "feature": [t.name] * n,
            "request_id": [f"{t.name}-{logs.seed}-{i}" for i in range(n)],
            **{k: pl.Series(v.tolist(), dtype=pl.Utf8) for k, v in cols.items()},
            "latency_ms": np.round(latency, 1),
            "input_tokens": in_tokens,
            "output_tokens": out_tokens.astype(np.int64),
            "cost_usd": np.round(t.cost_usd * cost * (in_tokens + 3 * out_tokens) / 1500, 7),
            "error": pl.Series(np.where(failed, ERRORS[rng.integers(0, 4, n)], None).tolist(), dtype=pl.Utf8),
            "quality_score": pl.Series(np.where(scored, np.round(score, 3), np.nan)).fill_nan(None),
            "feedback": pl.Series(feedback.tolist(), dtype=pl.Int8),
        }
    ).with_columns(response_model=pl.when(pl.col("error").is_null()).then(pl.col("response_model")))


def build(logs: Logs) -> pl.DataFrame:
    rng = np.random.default_rng(logs.seed)
    frames = [_frame(logs, t, rng) for t in logs.traffic]
    frames += [make(rng) for make in logs.extra]
    return pl.concat([f for f in frames if f.height], how="diagonal_relaxed").sort("timestamp")


def load(folder: Path, logs: Logs, events: list[ChangeEvent] = ()) -> Store:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "requests.parquet"
    build(logs).write_parquet(path)
    store = Store(folder)
    assert ingest_paths(store, [str(path)]).ok
    save_events(store, list(events))
    return store


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return START + timedelta(days=day, hours=hour, minutes=minute)


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


def burst(
    feature: str, user: str, start: datetime, count: int, minutes: int = 60
) -> Callable[[np.random.Generator], pl.DataFrame]:
    """One client retrying `count` times in `minutes`, every call failing."""

    def make(rng: np.random.Generator) -> pl.DataFrame:
        sec = np.sort(rng.random(count) * minutes * 60)
        ts = np.datetime64(start) + (sec * 1e6).astype("timedelta64[us]")
        return pl.DataFrame(
            {
                "timestamp": pl.Series(ts).cast(pl.Datetime("us")),
                "feature": [feature] * count,
                "request_id": [f"{feature}-retry-{i}" for i in range(count)],
                "model": ["model-a"] * count,
                "prompt_version": ["v7"] * count,
                "variant": ["control"] * count,
                "region": ["eu"] * count,
                "segment": ["business"] * count,
                "user_id": [user] * count,
                "latency_ms": np.round(rng.gamma(3.0, 100.0, count), 1),
                "input_tokens": np.full(count, 900),
                "output_tokens": np.zeros(count, dtype=np.int64),
                "cost_usd": np.full(count, 0.0018),
                "error": ["rate_limit"] * count,
            }
        )

    return make
