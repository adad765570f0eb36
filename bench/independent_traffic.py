"""Request logs for the independent detection suite (bench/scenarios_independent.py).

Built on other assumptions than the demo generator, on purpose:

- **Arrivals**: a non-homogeneous Poisson process per minute with an hour-of-day profile
  (one or two peaks at a feature's own local hours), a day-of-week profile (quiet weekends),
  a day-to-day level drawn from a gamma distribution (over-dispersion) and clumps (a few
  minutes to forty minutes at 1.5 to 4 times the rate, half of the extra traffic from one
  heavy user). Replay features instead take the real inter-arrival gaps of a public trace
  (Azure LLM inference 2023, BurstGPT) as operational time and map it through the same
  daily/weekly envelope, so the bursts are the trace's own.
- **Users**: many users with lognormal activity plus a few heavy ones (1 to 4% of traffic
  each). Region and segment belong to the user, not to the request; each user has its own
  error propensity and quality offset.
- **Latency**: time to first token plus a per-token time times the output tokens, lognormal
  noise and a Pareto tail on a small share of requests; optionally slower evenings.
- **Quality**: beta-distributed grader scores with a per-feature concentration, graded on a
  sample of successful requests; optionally a weekend offset and a daily wave.
- **Failures** answer fast, carry no response_model, no output tokens and cost nothing.
- **Feedback**: thumbs up/down from a share of successful requests; the chance of a thumbs
  down follows the request's true quality.

Changes are `Route`s (from a time on, a share of traffic, per request or sticky per user,
gets new dimension values), `Shift`s (matching requests behave differently, optionally
ramping in) and `Burst`s (one client sends many extra requests).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]


# Samples of the same files kept in the repository (tests/fixtures/datasets), read when the
# shared datasets are not beside it: the replays then draw from a few hundred real rows.
FIXTURES = ROOT / "tests" / "fixtures" / "datasets"
_AZURE = "azure_llm_trace_2023/AzureLLMInferenceTrace"
SAMPLES = {
    f"{_AZURE}_conv.csv": f"{_AZURE}_conv_head300.csv",
    f"{_AZURE}_code.csv": f"{_AZURE}_code_head300.csv",
    "burstgpt/burstgpt1_head400.csv": "burstgpt/burstgpt1_head400.csv",
    "llmdrift/llmdrift_labeled_requests.csv": "llmdrift/llmdrift_labeled_sample.csv",
}


def dataset_file(rel: str) -> Path:
    """A shared dataset's file, else its sample in the repository."""
    try:
        full = datasets_dir() / rel
        if full.exists():
            return full
    except FileNotFoundError:
        pass
    return FIXTURES / SAMPLES[rel]


def datasets_dir() -> Path:
    """The shared public datasets: $ROLLBACK_DESK_DATASETS, else ../shared/datasets next to the
    repository (or next to the folder of worktrees it sits in)."""
    candidates = [ROOT.parent / "shared" / "datasets", ROOT.parent.parent / "shared" / "datasets"]
    if os.environ.get("ROLLBACK_DESK_DATASETS"):
        candidates.insert(0, Path(os.environ["ROLLBACK_DESK_DATASETS"]))
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        "the shared datasets are needed for the replay families; looked in "
        + ", ".join(str(c) for c in candidates)
        + " (set ROLLBACK_DESK_DATASETS)"
    )


EPOCH = datetime(1970, 1, 1)
ERROR_KINDS = np.array(["upstream_5xx", "rate_limited", "bad_gateway", "content_filter"])
PRICES = {  # USD per 1000 input / output tokens
    "sonnet-4": (0.003, 0.015),
    "haiku-4": (0.0008, 0.004),
    "gpt-5": (0.00125, 0.01),
    "gpt-5-mini": (0.00025, 0.002),
    "llama-70b": (0.0006, 0.0008),
    "gemini-pro": (0.00125, 0.005),
    "gpt-4": (0.03, 0.06),
    "mistral-large": (0.002, 0.006),
}


@dataclass(frozen=True)
class FeatureModel:
    """One feature's healthy behaviour."""

    name: str
    daily: float  # mean requests per weekday
    peak_hour: float = 14.0  # UTC hour of the main peak
    second_peak: float | None = None
    night_floor: float = 0.25  # quietest hour relative to the peak shape
    weekend_level: float = 0.55  # weekend traffic relative to weekdays
    clumps_per_day: float = 3.0
    arrivals: str = "nhpp"  # nhpp | azure | burstgpt
    tokens: str = "lognormal"  # lognormal | azure | burstgpt
    users: int = 3000
    heavy_users: int = 3
    regions: tuple[tuple[str, float], ...] = (("eu-central", 0.45), ("us-west", 0.35), ("sa-east", 0.2))
    segments: tuple[tuple[str, float], ...] = (("self-serve", 0.7), ("team", 0.22), ("strategic", 0.08))
    model: str = "sonnet-4"
    response_model: str = "sonnet-4-20260301"
    prompt_version: str = "v7"
    variant: str = "stable"
    error_rate: float = 0.012
    quality_mean: float = 0.8
    quality_concentration: float = 12.0
    graded_share: float = 0.3
    quality_weekend: float = 0.0  # added on Saturdays and Sundays
    quality_wave: float = 0.0  # daily amplitude
    ttft_ms: float = 450.0
    ms_per_token: float = 9.0
    latency_sigma: float = 0.35
    tail_share: float = 0.02
    evening_slowdown: float = 1.0  # latency factor from 18:00 to 23:59 UTC
    input_tokens: float = 900.0
    output_tokens: float = 220.0
    feedback_share: float = 0.06
    negative_base: float = 0.12
    drift_task: str | None = None  # LLMDrift task replayed for quality, latency and cost


@dataclass(frozen=True)
class Route:
    """From `at` (until `until`), a `share` of the feature's requests matching `where` get the
    dimension values in `set`; `sticky` draws the share per user instead of per request."""

    feature: str
    at: datetime
    set: dict[str, str]
    share: float = 1.0
    until: datetime | None = None
    where: dict[str, str] = field(default_factory=dict)
    sticky: bool = True


@dataclass(frozen=True)
class Shift:
    """Requests of `feature` matching `where` behave differently in [start, end)."""

    feature: str
    start: datetime
    end: datetime | None = None
    where: dict[str, str] = field(default_factory=dict)
    ramp_hours: float = 0.0
    error_add: float = 0.0
    error_mult: float = 1.0
    quality_delta: float = 0.0
    latency_mult: float = 1.0
    cost_mult: float = 1.0
    negative_add: float = 0.0


@dataclass(frozen=True)
class Burst:
    """One client sends `count` extra requests in [start, start + minutes), a share failing."""

    feature: str
    user: str
    start: datetime
    minutes: float
    count: int
    error_share: float = 1.0


@dataclass(frozen=True)
class World:
    start: datetime  # midnight UTC
    end: datetime
    features: tuple[FeatureModel, ...]
    routes: tuple[Route, ...] = ()
    shifts: tuple[Shift, ...] = ()
    bursts: tuple[Burst, ...] = ()
    seed: int = 0


# Arrivals ----------------------------------------------------------------------------------


def hour_profile(f: FeatureModel) -> np.ndarray:
    """Relative traffic per UTC hour of day, mean 1."""
    h = np.arange(24) + 0.5
    shape = np.exp(2.5 * np.cos((h - f.peak_hour) / 24 * 2 * np.pi))
    if f.second_peak is not None:
        shape += 0.7 * np.exp(3.0 * np.cos((h - f.second_peak) / 24 * 2 * np.pi))
    shape = shape / shape.max()
    shape = f.night_floor + (1 - f.night_floor) * shape
    return shape / shape.mean()


def minute_intensity(w: World, f: FeatureModel, rng: np.random.Generator) -> np.ndarray:
    """Expected requests per minute over the world, before clumps."""
    minutes = int((w.end - w.start).total_seconds() // 60)
    m = np.arange(minutes)
    hod = (m // 60) % 24
    day = m // 1440
    dow = (w.start.weekday() + day) % 7
    week = np.where(dow >= 5, f.weekend_level, 1.0)
    week = week / ((5 + 2 * f.weekend_level) / 7)
    level = rng.gamma(40.0, 1 / 40.0, size=int(day.max()) + 1)[day]  # day-to-day level
    return f.daily / 1440 * hour_profile(f)[hod] * week * level


def clumps(minutes: int, f: FeatureModel, rng: np.random.Generator) -> list[tuple[int, int, float]]:
    """(first minute, length, extra multiplier) of each clump."""
    n = rng.poisson(f.clumps_per_day * minutes / 1440)
    starts = rng.integers(0, max(1, minutes - 1), n)
    lengths = rng.integers(3, 41, n)
    mult = rng.uniform(0.5, 3.0, n)
    return [(int(s), int(k), float(x)) for s, k, x in zip(starts, lengths, mult, strict=True)]


@lru_cache(maxsize=4)
def trace_gaps(name: str) -> np.ndarray:
    """Real inter-arrival gaps of a public trace, normalised to mean 1."""
    if name == "azure":
        ts = pl.read_csv(dataset_file("azure_llm_trace_2023/AzureLLMInferenceTrace_conv.csv"))
        t = ts["TIMESTAMP"].str.to_datetime("%Y-%m-%d %H:%M:%S%.f").dt.epoch("us").to_numpy() / 1e6
    else:
        ts = pl.read_csv(dataset_file("burstgpt/burstgpt1_head400.csv"))
        t = ts["Timestamp"].to_numpy().astype(float)
    t = np.sort(t)
    gaps = np.diff(t)
    gaps = gaps[gaps >= 0] + 1e-3
    return gaps / gaps.mean()


@lru_cache(maxsize=4)
def trace_tokens(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "azure":
        d = pl.read_csv(dataset_file("azure_llm_trace_2023/AzureLLMInferenceTrace_code.csv"))
        return d["ContextTokens"].to_numpy(), d["GeneratedTokens"].to_numpy()
    d = pl.read_csv(dataset_file("burstgpt/burstgpt1_head400.csv"))
    d = d.filter(pl.col("Response tokens") > 0)
    return d["Request tokens"].to_numpy(), d["Response tokens"].to_numpy()


def arrival_offsets(w: World, f: FeatureModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from the world's start of every request, and the index of the clump each one
    belongs to (-1 outside clumps)."""
    lam = minute_intensity(w, f, rng)
    minutes = lam.size
    if f.arrivals in ("azure", "burstgpt"):
        # Real gaps as operational time, mapped through the cumulative intensity.
        cum = np.concatenate([[0.0], np.cumsum(lam)])
        gaps = trace_gaps(f.arrivals)
        need = int(cum[-1] * 1.2) + 10
        reps = need // gaps.size + 2
        start = int(rng.integers(0, gaps.size))
        seq = np.tile(np.roll(gaps, -start), reps)[:need]
        op = np.cumsum(seq)
        op = op[op < cum[-1]]
        return np.interp(op, cum, np.arange(minutes + 1)) * 60.0, np.full(op.size, -1)
    counts = rng.poisson(lam)
    clump_of = np.full(minutes, -1)
    extra = np.zeros(minutes)
    for i, (s, k, x) in enumerate(clumps(minutes, f, rng)):
        e = min(minutes, s + k)
        extra[s:e] += lam[s:e] * x
        clump_of[s:e] = i
    extra_counts = rng.poisson(extra)
    minute = np.concatenate(
        [np.repeat(np.arange(minutes), counts), np.repeat(np.arange(minutes), extra_counts)]
    )
    owner = np.concatenate([np.full(int(counts.sum()), -1), np.repeat(clump_of, extra_counts)])
    offsets = (minute + rng.random(minute.size)) * 60.0
    order = np.argsort(offsets, kind="stable")
    return offsets[order], owner[order]


# Users -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Users:
    ids: np.ndarray
    weights: np.ndarray
    region: np.ndarray
    segment: np.ndarray
    error_factor: np.ndarray
    quality_offset: np.ndarray
    sticky: np.ndarray  # a uniform draw per user, for sticky routes
    heavy: np.ndarray  # indexes of the heavy users


def make_users(f: FeatureModel, rng: np.random.Generator) -> Users:
    n = f.users
    w = rng.lognormal(0.0, 1.3, n)
    heavy = rng.choice(n, size=min(f.heavy_users, n), replace=False)
    w = w / w.sum()
    w[heavy] = rng.uniform(0.01, 0.04, heavy.size)
    rest = np.setdiff1d(np.arange(n), heavy)
    w[rest] *= (1 - w[heavy].sum()) / w[rest].sum()
    tag = zlib.crc32(f.name.encode()) % 10_000
    ids = np.array([f"usr-{tag:04d}-{i:05d}" for i in range(n)], dtype=object)

    def pick(choices: tuple[tuple[str, float], ...]) -> np.ndarray:
        values = np.array([c[0] for c in choices], dtype=object)
        p = np.array([c[1] for c in choices])
        return values[rng.choice(values.size, size=n, p=p / p.sum())]

    err = rng.lognormal(0.0, 0.5, n)
    return Users(
        ids,
        w,
        pick(f.regions),
        pick(f.segments),
        err / np.average(err, weights=w),
        rng.normal(0.0, 0.03, n),
        rng.random(n),
        heavy,
    )


# Requests ----------------------------------------------------------------------------------


def _seconds(w: World, t: datetime) -> float:
    return (t - w.start).total_seconds()


def feature_frame(w: World, f: FeatureModel, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    users = make_users(f, rng)
    offsets, clump = arrival_offsets(w, f, rng)
    user = rng.choice(users.ids.size, size=offsets.size, p=users.weights)
    in_clump = (clump >= 0) & (rng.random(offsets.size) < 0.5)
    if in_clump.any() and users.heavy.size:
        by_clump = users.heavy[rng.integers(0, users.heavy.size, int(clump.max()) + 1)]
        user = np.where(in_clump, by_clump[np.maximum(clump, 0)], user)
    cols: dict[str, np.ndarray] = {
        "user_id": users.ids[user],
        "region": users.region[user],
        "segment": users.segment[user],
    }
    user_error, user_quality, user_sticky = (
        users.error_factor[user],
        users.quality_offset[user],
        users.sticky[user],
    )
    for b in (b for b in w.bursts if b.feature == f.name):
        extra = _seconds(w, b.start) + np.sort(rng.random(b.count)) * b.minutes * 60
        offsets = np.concatenate([offsets, extra])
        for name, value in (("user_id", b.user), ("region", f.regions[0][0]), ("segment", f.segments[0][0])):
            cols[name] = np.concatenate([cols[name], np.full(b.count, value, dtype=object)])
        user_error = np.concatenate([user_error, np.full(b.count, np.inf)])  # marks burst rows
        user_quality = np.concatenate([user_quality, np.zeros(b.count)])
        user_sticky = np.concatenate([user_sticky, rng.random(b.count)])
    order = np.argsort(offsets, kind="stable")
    offsets = offsets[order]
    cols = {k: v[order] for k, v in cols.items()}
    user_error, user_quality, user_sticky = user_error[order], user_quality[order], user_sticky[order]
    n = offsets.size
    for dim, value in (
        ("model", f.model),
        ("response_model", f.response_model),
        ("prompt_version", f.prompt_version),
        ("variant", f.variant),
    ):
        cols[dim] = np.full(n, value, dtype=object)
    for r in sorted((r for r in w.routes if r.feature == f.name), key=lambda r: r.at):
        mask = offsets >= _seconds(w, r.at)
        if r.until is not None:
            mask &= offsets < _seconds(w, r.until)
        for dim, value in r.where.items():
            mask &= cols[dim] == value
        draw = user_sticky if r.sticky else rng.random(n)
        mask &= draw < r.share
        for dim, value in r.set.items():
            cols[dim] = np.where(mask, value, cols[dim])
    return _behaviour(w, f, rng, offsets, cols, user_error, user_quality)


def _behaviour(
    w: World,
    f: FeatureModel,
    rng: np.random.Generator,
    offsets: np.ndarray,
    cols: dict[str, np.ndarray],
    user_error: np.ndarray,
    user_quality: np.ndarray,
) -> pl.DataFrame:
    n = offsets.size
    hod = ((offsets // 3600) % 24).astype(int)
    dow = (w.start.weekday() + (offsets // 86400).astype(int)) % 7
    burst_row = np.isinf(user_error)
    quality = (
        f.quality_mean
        + user_quality
        + np.where(dow >= 5, f.quality_weekend, 0.0)
        + f.quality_wave * np.sin((hod - 3) / 24 * 2 * np.pi)
    )
    error_p = f.error_rate * np.where(burst_row, 1.0, user_error)
    latency_f, cost_f, neg_add = np.ones(n), np.ones(n), np.zeros(n)
    for s in (s for s in w.shifts if s.feature == f.name):
        since = offsets - _seconds(w, s.start)
        mask = since >= 0
        if s.end is not None:
            mask &= offsets < _seconds(w, s.end)
        for dim, value in s.where.items():
            mask &= cols[dim] == value
        k = mask.astype(float)
        if s.ramp_hours > 0:
            k *= np.clip(since / (s.ramp_hours * 3600), 0, 1)
        quality += k * s.quality_delta
        error_p = error_p * (1 + k * (s.error_mult - 1)) + k * s.error_add
        latency_f *= 1 + k * (s.latency_mult - 1)
        cost_f *= 1 + k * (s.cost_mult - 1)
        neg_add += k * s.negative_add
    quality = np.clip(quality, 0.02, 0.98)
    failed = rng.random(n) < np.clip(error_p, 0, 1)
    for b in w.bursts:
        if b.feature == f.name:
            failed |= burst_row & (rng.random(n) < b.error_share)

    if f.tokens == "lognormal":
        tin = np.maximum(1, rng.lognormal(np.log(f.input_tokens), 0.6, n)).astype(np.int64)
        tout = np.maximum(1, rng.lognormal(np.log(f.output_tokens), 0.8, n)).astype(np.int64)
    else:
        real_in, real_out = trace_tokens(f.tokens)
        pick = rng.integers(0, real_in.size, n)
        tin, tout = np.maximum(1, real_in[pick]), np.maximum(1, real_out[pick])
    tout = np.where(failed, 0, tout)
    evening = np.where(hod >= 18, f.evening_slowdown, 1.0)
    latency = (f.ttft_ms * rng.lognormal(0, 0.3, n) + f.ms_per_token * tout) * evening
    latency *= rng.lognormal(0, f.latency_sigma, n) * latency_f
    tail = rng.random(n) < f.tail_share
    latency = np.where(tail, latency * (1 + rng.pareto(1.3, n)), latency)
    latency = np.where(failed, rng.uniform(30, 800, n), latency)
    names, which = np.unique(cols["model"].astype(str), return_inverse=True)
    model_price = np.array([PRICES.get(m.removesuffix("-next"), (0.001, 0.004)) for m in names]).reshape(
        -1, 2
    )[which]
    cost = (tin * model_price[:, 0] + tout * model_price[:, 1]) / 1000 * cost_f
    cost = np.where(failed, 0.0, cost)
    score = rng.beta(quality * f.quality_concentration, (1 - quality) * f.quality_concentration)
    graded = ~failed & (rng.random(n) < f.graded_share)
    gives = ~failed & (rng.random(n) < f.feedback_share)
    p_neg = np.clip(f.negative_base + 1.2 * (f.quality_mean - quality) + neg_add, 0, 1)
    feedback = np.where(gives, np.where(rng.random(n) < p_neg, -1, 1), 0)
    if f.drift_task is not None:
        score, latency, cost, tout = _drift_replay(
            f.drift_task, cols["response_model"], failed, score, latency, cost, tout, rng
        )
    kinds = ERROR_KINDS[rng.integers(0, ERROR_KINDS.size, n)]
    start_us = int((w.start - EPOCH).total_seconds() * 1e6)
    ts = start_us + (offsets * 1e6).astype(np.int64)
    return pl.DataFrame(
        {
            "timestamp": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("us")),
            "feature": pl.Series([f.name] * n, dtype=pl.Utf8),
            "request_id": pl.Series(np.arange(n)).cast(pl.Utf8),
            "model": pl.Series(cols["model"].tolist(), dtype=pl.Utf8),
            "response_model": pl.Series(
                np.where(failed, None, cols["response_model"]).tolist(), dtype=pl.Utf8
            ),
            "prompt_version": pl.Series(cols["prompt_version"].tolist(), dtype=pl.Utf8),
            "variant": pl.Series(cols["variant"].tolist(), dtype=pl.Utf8),
            "user_id": pl.Series(cols["user_id"].tolist(), dtype=pl.Utf8),
            "segment": pl.Series(cols["segment"].tolist(), dtype=pl.Utf8),
            "region": pl.Series(cols["region"].tolist(), dtype=pl.Utf8),
            "latency_ms": np.round(latency, 1),
            "input_tokens": tin.astype(np.int64),
            "output_tokens": tout.astype(np.int64),
            "cost_usd": np.round(cost, 7),
            "error": pl.Series(np.where(failed, kinds, None).tolist(), dtype=pl.Utf8),
            "quality_score": pl.Series(np.where(graded, np.round(score, 4), np.nan)).fill_nan(None),
            "feedback": pl.Series(np.where(feedback == 0, None, feedback).tolist(), dtype=pl.Int8),
        }
    ).with_columns(request_id=pl.lit(f"{f.name}-{w.seed}-") + pl.col("request_id"))


@lru_cache(maxsize=8)
def drift_rows(task: str, snapshot: str) -> tuple[np.ndarray, ...]:
    """LLMDrift's GPT-4 answers to one task from one snapshot: 0/1 quality, latency (ms),
    cost (USD) and answer tokens."""
    d = pl.read_csv(dataset_file("llmdrift/llmdrift_labeled_requests.csv"), infer_schema_length=0)
    d = d.filter(
        (pl.col("model_family") == "gpt-4") & (pl.col("dataset") == task) & (pl.col("snapshot") == snapshot)
    )
    return (
        d["quality"].cast(pl.Float64).to_numpy(),
        d["latency"].cast(pl.Float64).to_numpy() * 1000,
        d["cost"].cast(pl.Float64).to_numpy(),
        d["answer_token"].cast(pl.Int64).to_numpy(),
    )


def _drift_replay(
    task: str,
    response_model: np.ndarray,
    failed: np.ndarray,
    score: np.ndarray,
    latency: np.ndarray,
    cost: np.ndarray,
    tout: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, ...]:
    """Requests answered by a gpt-4 snapshot take a real answer of that snapshot."""
    score, latency, cost, tout = score.copy(), latency.copy(), cost.copy(), tout.copy()
    for snapshot in ("0314", "0613"):
        rows = ~failed & np.array([snapshot in str(r) for r in response_model])
        q, lat, c, tok = drift_rows(task, snapshot)
        pick = rng.integers(0, q.size, int(rows.sum()))
        score[rows], latency[rows], cost[rows], tout[rows] = q[pick], lat[pick], c[pick], tok[pick]
    return score, latency, cost, tout


def generate(w: World) -> pl.DataFrame:
    """Every request of the world, sorted by time."""
    frames = [feature_frame(w, f, w.seed * 1000 + i) for i, f in enumerate(w.features)]
    frames = [x for x in frames if x.height]
    return pl.concat(frames).sort("timestamp") if frames else pl.DataFrame()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
