"""Ground truth and building blocks of the independent detection suite's cases
(bench/scenarios_independent.py): what an incident is, a case under construction (`Draft`),
random features with their own shapes, harmless changes, and effect sizing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from app.changes.events import ChangeEvent
from bench.independent_traffic import Burst, FeatureModel, Route, Shift, World, hour_profile

BASE = datetime(2026, 2, 2)  # a Monday
ROW_BUDGET = 120_000  # requests per feature and case, unless the family needs more per day


@dataclass(frozen=True)
class Cause:
    """The change that caused an incident: its id when it is declared, and kind, new value and
    time, which also recognise the same change inferred from the logs."""

    kind: str
    to: str
    at: datetime
    change_id: str | None = None


@dataclass(frozen=True)
class Incident:
    family: str
    feature: str
    metric: str
    onset: datetime
    shape: str  # step | transient | ramp
    scope: str  # total | slice | single_user | cross_feature
    slices: tuple[tuple[str, str], ...] = ()  # (dimension, value) pairs that name it rightly
    end: datetime | None = None
    ramp_hours: float = 0.0
    cause: Cause | None = None
    also: tuple[str, ...] = ()  # metrics that legitimately move with it


@dataclass
class Case:
    name: str
    family: str
    world: World
    declared: list[ChangeEvent] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    history_days: float = 7.0  # 0: the window starts at the first request
    until: datetime | None = None  # None: the end of the data

    @property
    def since(self) -> datetime | None:
        return None if self.history_days == 0 else self.world.start + timedelta(days=self.history_days)

    @property
    def clean_features(self) -> list[str]:
        hit = {i.feature for i in self.incidents}
        return [f.name for f in self.world.features if f.name not in hit]


# Building blocks ---------------------------------------------------------------------------

MODELS = [
    ("sonnet-4", "sonnet-4-20260301"),
    ("gpt-5", "gpt-5-2026-01-10"),
    ("gemini-pro", "gemini-pro-002"),
    ("llama-70b", "llama-70b-instruct-q8"),
    ("mistral-large", "mistral-large-2601"),
]


def feature(rng: np.random.Generator, name: str, daily: float, **kw) -> FeatureModel:
    """A feature with its own daily and weekly shape, users and noise."""
    model, response = MODELS[int(rng.integers(0, len(MODELS)))]
    base = dict(
        name=name,
        daily=daily,
        peak_hour=float(rng.uniform(7, 21)),
        second_peak=None if rng.random() < 0.5 else float(rng.uniform(0, 24)),
        night_floor=float(rng.uniform(0.08, 0.5)),
        weekend_level=float(rng.uniform(0.3, 0.9)),
        clumps_per_day=float(rng.uniform(0, 6)),
        users=int(np.clip(daily / 2, 120, 15000)),
        heavy_users=int(rng.integers(1, 5)),
        model=model,
        response_model=response,
        prompt_version=f"v{int(rng.integers(3, 20))}",
        error_rate=float(rng.uniform(0.003, 0.03)),
        quality_mean=float(rng.uniform(0.62, 0.9)),
        quality_concentration=float(rng.uniform(4, 30)),
        graded_share=float(rng.uniform(0.15, 0.6)),
        quality_weekend=float(rng.uniform(-0.012, 0.008)),
        quality_wave=float(rng.uniform(0, 0.012)),
        ttft_ms=float(rng.uniform(200, 1200)),
        ms_per_token=float(rng.uniform(3, 18)),
        latency_sigma=float(rng.uniform(0.2, 0.55)),
        tail_share=float(rng.uniform(0, 0.03)),
        evening_slowdown=1.0 if rng.random() < 0.6 else float(rng.uniform(1.1, 1.5)),
        input_tokens=float(rng.uniform(200, 3000)),
        output_tokens=float(rng.uniform(60, 600)),
        feedback_share=float(rng.uniform(0.03, 0.12)),
        negative_base=float(rng.uniform(0.05, 0.2)),
    )
    base.update(kw)
    return FeatureModel(**base)


def daily_volume(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Log-uniform requests per day."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def declared(at: datetime, feature: str, kind: str, key: str, old: str, new: str) -> ChangeEvent:
    return ChangeEvent(
        timestamp=at,
        feature=feature,
        kind=kind,
        key=key,
        from_value=old,
        to_value=new,
        author="suite",
        description=None,
        source="declared",
    )


def cause_of(e: ChangeEvent) -> Cause:
    return Cause(e.kind, e.to_value or "", e.timestamp, e.change_id)


def at_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def when(rng: np.random.Generator, start: datetime, lo_h: float, hi_h: float) -> datetime:
    return at_minute(start + timedelta(hours=float(rng.uniform(lo_h, hi_h))))


def harmless(
    rng: np.random.Generator,
    f: FeatureModel,
    start: datetime,
    end: datetime,
    avoid: list[datetime],
    n: int = 3,
) -> tuple[list[ChangeEvent], list[Route]]:
    """Changes that change nothing: a prompt wording update, a no-op flag canary, a silent
    provider update with the same behaviour, config tweaks; three hours or more from any
    incident."""
    events: list[ChangeEvent] = []
    routes: list[Route] = []
    span_h = (end - start).total_seconds() / 3600
    tries = 0
    while len(events) < n and tries < 200:
        tries += 1
        t = when(rng, start, 6, span_h - 4)
        if any(abs(t - a) < timedelta(hours=3) for a in avoid):
            continue
        avoid = [*avoid, t]
        kind = ["prompt", "flag", "silent", "config", "config"][len(events) % 5]
        if kind == "prompt":
            new = f"{f.prompt_version}.{len(events) + 1}"
            routes.append(
                Route(
                    f.name,
                    t,
                    {"prompt_version": new},
                    sticky=False,
                    where={"prompt_version": f.prompt_version},
                )
            )
            events.append(declared(t, f.name, "prompt", "prompt_version", f.prompt_version, new))
        elif kind == "flag":
            share = float(rng.choice([0.01, 0.05, 0.1, 0.25]))
            routes.append(
                Route(f.name, t, {"variant": "noop-arm"}, share=share, where={"variant": f.variant})
            )
            events.append(declared(t, f.name, "flag", f"{f.name}-noop", "0%", f"{share:.0%}"))
        elif kind == "silent":
            routes.append(
                Route(
                    f.name,
                    t,
                    {"response_model": f"{f.response_model}-r2"},
                    sticky=False,
                    where={"response_model": f.response_model},
                )
            )
        else:
            key = ["temperature", "top_k", "max_output_tokens", "cache_ttl_s"][int(rng.integers(0, 4))]
            events.append(declared(t, f.name, "config", key, "a", f"b{len(events)}"))
    return events, routes


def z_sized(base: float, per_unit_sd: float, n_after: float, wanted: float, z: float = 8.0) -> float:
    """The larger of the wanted effect and the effect a one-sample z-test would see at `z`
    sigmas (8 rather than 6: the control's own noise and the traffic's dips cost the rest)."""
    return max(wanted, z * per_unit_sd / math.sqrt(max(n_after, 1.0)))


def proportion_sd(p: float) -> float:
    return math.sqrt(max(p, 1e-4) * (1 - p))


def quality_sd(f: FeatureModel) -> float:
    q = f.quality_mean
    return math.sqrt(q * (1 - q) / (f.quality_concentration + 1) + 0.03**2)


def requests_between(f: FeatureModel, start: datetime, end: datetime) -> float:
    return f.daily * (end - start).total_seconds() / 86400


class Draft:
    """A case under construction."""

    def __init__(
        self,
        family: str,
        seed: int,
        windows: tuple[float, ...],
        histories: tuple[float, ...],
        budget: float = 0.0,
    ) -> None:
        self.family, self.seed = family, seed
        self.budget = budget or ROW_BUDGET
        self.rng = np.random.default_rng(abs(hash_name(family)) * 1000 + seed)
        self.start = BASE + timedelta(days=int(self.rng.integers(0, 56)))
        self.history = float(self.rng.choice(histories))
        self.window = float(self.rng.choice(windows))
        self.end = self.start + timedelta(days=self.history + self.window)
        self.features: list[FeatureModel] = []
        self.routes: list[Route] = []
        self.shifts: list[Shift] = []
        self.bursts: list[Burst] = []
        self.declared: list[ChangeEvent] = []
        self.incidents: list[Incident] = []
        self.until: datetime | None = None

    @property
    def window_start(self) -> datetime:
        return self.start + timedelta(days=self.history)

    def onset(
        self, lo: float = 0.3, hi: float = 0.75, min_before_h: float = 14, min_after_h: float = 12
    ) -> datetime:
        """A time inside the window, leaving data before (history or not) and after it."""
        span = self.window * 24
        a = max(lo * span, min_before_h)
        b = max(a + 1, min(hi * span, span - min_after_h))
        return when(self.rng, self.window_start, a, b)

    def add(self, name: str, lo: float, hi: float, **kw) -> FeatureModel:
        days = self.history + self.window
        daily = min(daily_volume(self.rng, lo, hi), max(lo, self.budget / days))
        f = feature(self.rng, f"{self.family.replace('_', '-')}-{self.seed}-{name}", daily, **kw)
        self.features.append(f)
        return f

    def change(self, at: datetime, f: FeatureModel, kind: str, key: str, old: str, new: str) -> ChangeEvent:
        e = declared(at, f.name, kind, key, old, new)
        self.declared.append(e)
        return e

    def incident(
        self, f: FeatureModel, metric: str, onset: datetime, shape: str = "step", scope: str = "total", **kw
    ) -> None:
        self.incidents.append(Incident(self.family, f.name, metric, onset, shape, scope, **kw))

    def companions(self, k: int = 1, lo: float = 200, hi: float = 5000) -> None:
        for i in range(k):
            self.add(f"quiet{i}", lo, hi)

    def case(self) -> Case:
        avoid = [i.onset for i in self.incidents] + [i.end for i in self.incidents if i.end]
        for f in self.features:
            events, routes = harmless(
                self.rng,
                f,
                self.window_start - timedelta(hours=self.history * 12),
                self.end,
                avoid,
                n=int(self.rng.integers(2, 5)),
            )
            self.declared += events
            self.routes += routes
        world = World(
            self.start,
            self.end,
            tuple(self.features),
            tuple(self.routes),
            tuple(self.shifts),
            tuple(self.bursts),
            seed=self.seed,
        )
        return Case(
            f"{self.family}-{self.seed}",
            self.family,
            world,
            self.declared,
            self.incidents,
            self.history,
            self.until,
        )


def hash_name(name: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def expected_requests(f: FeatureModel, start: datetime, minutes: float) -> float:
    """Requests expected in [start, start + minutes) from the hour and weekday profiles."""
    prof = hour_profile(f)
    week = (f.weekend_level if start.weekday() >= 5 else 1.0) / ((5 + 2 * f.weekend_level) / 7)
    total, t = 0.0, start
    while minutes > 0:
        step = min(minutes, 60 - t.minute)
        total += f.daily / 1440 * prof[t.hour] * week * step
        t += timedelta(minutes=step)
        minutes -= step
    return total
