"""Canary guardrails: per-variant metrics with confidence intervals, canary against a control
served at the same time, an always-valid sequential test, and the sample-size advisor.

The sequential test is the normal-mixture SPRT (app/stats.py): the canary-minus-control
difference of each guardrail metric is checked at every look, and the guardrail trips only
when the mixture likelihood ratio passes 1/alpha in the bad direction, which keeps the false
alarm rate below alpha however often `watch` looks. Latency is compared on the log scale
(a ratio of typical latencies); the p95 and its interval are shown alongside.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from app import stats
from app.detection.thresholds import METRIC_DIRECTION, Thresholds
from app.metrics.timeline import hist_quantile
from app.storage import aggregates, rollups, spans
from app.storage.store import Store
from app.timestamps import machine

MIXTURE_SCALE = 3.0


@dataclass(frozen=True)
class ArmStats:
    variant: str
    requests: int
    first_seen: datetime
    error_rate: float
    error_ci: tuple[float, float]
    quality_n: int
    quality_score: float | None
    quality_sd: float | None
    quality_ci: tuple[float, float] | None
    latency_p95_ms: float | None
    latency_p95_ci: tuple[float, float] | None
    log_latency_mean: float | None
    log_latency_var: float | None
    latency_n: int
    cost_per_request_usd: float | None
    negative_feedback_rate: float | None
    feedback_n: int


@dataclass(frozen=True)
class Guardrail:
    metric: str
    control: float | None
    canary: float | None
    difference: float | None  # canary - control (latency: ratio - 1)
    ci: tuple[float, float] | None
    p_value: float  # always-valid
    tripped: bool
    samples: int  # canary observations of this metric


@dataclass(frozen=True)
class VariantComparison:
    feature: str
    control: str | None
    canary: str | None
    since: datetime | None  # both arms are compared from the canary's first request on
    until: datetime | None
    arms: tuple[ArmStats, ...]
    guardrails: tuple[Guardrail, ...]

    @property
    def tripped(self) -> list[Guardrail]:
        return [g for g in self.guardrails if g.tripped]

    def arm(self, variant: str | None) -> ArmStats | None:
        return next((a for a in self.arms if a.variant == variant), None)

    def as_dict(self) -> dict:
        return _plain(asdict(self))


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, datetime):
        return machine(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# Per arm, the sums the comparison needs: from `agg_dim_1h` (dimension `variant`) for whole
# hours, from the requests for the partial hours at the window's ends, under the same names.
_ARM_SUMS = (
    "requests",
    "errors",
    "quality_n",
    "quality_sum",
    "quality_sumsq",
    "latency_n",
    "latency_lnsum",
    "latency_lnsumsq",
    "cost_n",
    "cost_sum",
    "feedback_n",
    "feedback_neg",
)
_LN = "ln(greatest(latency_ms, 0.01))"
_RAW_ARM_SUMS = f"""count(*), count(*) FILTER (WHERE NOT {aggregates.IS_OK}), count(quality_score),
    sum(quality_score), sum(quality_score * quality_score), count(latency_ms), sum({_LN}),
    sum({_LN} * {_LN}), count(cost_usd), sum(cost_usd), count(feedback),
    count(*) FILTER (WHERE feedback = -1)"""


def arm_stats(store: Store, feature: str, since: datetime, until: datetime) -> list[ArmStats]:
    """Per variant over [since, until), largest first. The whole hours come from the aggregate
    tables (`agg_dim_1h` and `hist_dim_1h`, dimension `variant`), the partial hours at the
    ends from the requests; the p95 and its interval are read from 1% latency bins (within
    1% of the exact order statistics, docs/aggregates.md)."""
    cut = spans.cut(since, until, timedelta(hours=1))
    sums: list[tuple] = []
    bins: list[tuple] = []
    with store.session(), store.connect() as con:
        rollups.ensure_deferred(con)
        if cut.inner is not None:
            window = [feature, *cut.inner]
            sums += store.rows(
                f"""SELECT value, min(first_ts), {", ".join(f"sum({c})" for c in _ARM_SUMS)}
                    FROM agg_dim_1h WHERE feature = ? AND dimension = 'variant'
                         AND bucket >= ? AND bucket < ? GROUP BY 1""",
                window,
            )
            bins += store.rows(
                """SELECT value, bin, sum(n) FROM hist_dim_1h WHERE feature = ? AND dimension = 'variant'
                   AND bucket >= ? AND bucket < ? GROUP BY 1, 2""",
                window,
            )
        if cut.edges:
            where, params = spans.edges_sql([cut])
            sums += store.rows(
                f"""SELECT coalesce(variant, '(none)'), min(timestamp), {_RAW_ARM_SUMS}
                    FROM requests WHERE feature = ? AND {where} GROUP BY 1""",
                [feature, *params],
            )
            bins += store.rows(
                f"""SELECT coalesce(variant, '(none)'), {aggregates.bin_sql("latency_ms")}, count(*)
                    FROM requests WHERE feature = ? AND {where} AND latency_ms >= 0 GROUP BY 1, 2""",
                [feature, *params],
            )
    acc: dict[str, dict] = {}
    for variant, first, *values in sums:
        arm = acc.setdefault(variant, {"first": first, **dict.fromkeys(_ARM_SUMS, 0)})
        arm["first"] = min(arm["first"], first)
        for name, v in zip(_ARM_SUMS, values, strict=True):
            arm[name] += v or 0
    hists: dict[str, dict[int, int]] = {}
    for variant, b, n in bins:
        h = hists.setdefault(variant, {})
        h[int(b)] = h.get(int(b), 0) + int(n)
    arms = [_arm(variant, a, hists.get(variant, {})) for variant, a in acc.items() if a["requests"]]
    return sorted(arms, key=lambda a: (-a.requests, a.variant))


def _arm(variant: str, a: dict, hist: dict[int, int]) -> ArmStats:
    n, q_n, lat_n = int(a["requests"]), int(a["quality_n"]), int(a["latency_n"])
    q_mean = a["quality_sum"] / q_n if q_n else None
    q_sd = _sd(a["quality_sum"], a["quality_sumsq"], q_n)
    ll_mean = a["latency_lnsum"] / lat_n if lat_n else None
    ll_sd = _sd(a["latency_lnsum"], a["latency_lnsumsq"], lat_n)
    p95, p95_ci = None, None
    if lat_n and hist:
        p95 = hist_quantile(hist, 0.95)
        lo, hi = stats.quantile_rank_levels(lat_n, 0.95)
        p95_ci = (hist_quantile(hist, lo), hist_quantile(hist, hi))
    fb_n = int(a["feedback_n"])
    return ArmStats(
        variant=variant,
        requests=n,
        first_seen=a["first"],
        error_rate=a["errors"] / n,
        error_ci=stats.wilson_interval(int(a["errors"]), n),
        quality_n=q_n,
        quality_score=q_mean,
        quality_sd=q_sd,
        quality_ci=stats.mean_interval(q_mean, q_sd, q_n) if q_n > 1 and q_sd is not None else None,
        latency_p95_ms=p95,
        latency_p95_ci=p95_ci,
        log_latency_mean=ll_mean,
        log_latency_var=ll_sd**2 if ll_sd is not None else None,
        latency_n=lat_n,
        cost_per_request_usd=a["cost_sum"] / a["cost_n"] if a["cost_n"] else None,
        negative_feedback_rate=a["feedback_neg"] / fb_n if fb_n else None,
        feedback_n=fb_n,
    )


def _sd(total: float, squares: float, n: int) -> float | None:
    """Sample standard deviation from a count, a sum and a sum of squares."""
    if n < 2:
        return None
    return math.sqrt(max((squares - total * total / n) / (n - 1), 0.0))


def find_arms(
    store: Store, feature: str, since: datetime, until: datetime
) -> tuple[str | None, str | None, datetime | None]:
    """(control, canary, canary's first request): the canary is the variant that appeared last
    in the window; the control is the variant most served before it appeared."""
    arms = arm_stats(store, feature, since, until)
    if len(arms) < 2:
        return (arms[0].variant if arms else None), None, None
    canary = max(arms, key=lambda a: a.first_seen)
    others = [a for a in arms if a.variant != canary.variant]
    control = max(others, key=lambda a: a.requests)
    return control.variant, canary.variant, canary.first_seen


def compare_variants(
    store: Store,
    feature: str,
    since: datetime,
    until: datetime,
    t: Thresholds,
    canary_since: datetime | None = None,
    previous_p: dict[str, float] | None = None,
) -> VariantComparison:
    """Canary against control over the same hours; guardrails with always-valid p-values
    (`previous_p`: the running minimum from earlier looks, per metric)."""
    control, canary, first = find_arms(store, feature, since, until)
    if canary is None:
        return VariantComparison(
            feature, control, None, None, None, tuple(arm_stats(store, feature, since, until)), ()
        )
    start = max(first, canary_since or first)
    arms = arm_stats(store, feature, start, until)
    by = {a.variant: a for a in arms}
    c, k = by.get(control), by.get(canary)
    guards = []
    if c is not None and k is not None:
        for metric in t.guardrail_metrics:
            g = guardrail(metric, c, k, t, (previous_p or {}).get(metric, 1.0))
            if g is not None:
                guards.append(g)
    return VariantComparison(feature, control, canary, start, until, tuple(arms), tuple(guards))


def guardrail(
    metric: str, control: ArmStats, canary: ArmStats, t: Thresholds, previous_p: float = 1.0
) -> Guardrail | None:
    direction = METRIC_DIRECTION[metric]
    if metric == "error_rate":
        a, b = canary.error_rate, control.error_rate
        var = a * (1 - a) / canary.requests + b * (1 - b) / control.requests
        tau = max(t.metric(metric).min_effect, t.metric(metric).min_relative * b)
        delta, shown_c, shown_k, n = a - b, b, a, canary.requests
    elif metric == "quality_score":
        if canary.quality_n < 2 or control.quality_n < 2 or canary.quality_sd is None:
            return None
        delta = canary.quality_score - control.quality_score
        var = canary.quality_sd**2 / canary.quality_n + (control.quality_sd or 0) ** 2 / control.quality_n
        tau = max(t.metric(metric).min_effect, t.metric(metric).min_relative * control.quality_score)
        shown_c, shown_k, n = control.quality_score, canary.quality_score, canary.quality_n
    elif metric == "latency_p95_ms":
        if canary.latency_n < 2 or control.latency_n < 2 or canary.log_latency_var is None:
            return None
        delta = canary.log_latency_mean - control.log_latency_mean
        var = canary.log_latency_var / canary.latency_n + (control.log_latency_var or 0) / control.latency_n
        tau = math.log1p(max(t.metric(metric).min_relative, 0.05))
        shown_c, shown_k, n = control.latency_p95_ms, canary.latency_p95_ms, canary.latency_n
    else:
        return None
    # The mixture's scale: effects up to a few times the minimum effect are what a canary must
    # catch quickly; a scale at the minimum itself would make large blow-ups slow to trip.
    tau *= MIXTURE_SCALE
    p = stats.always_valid_p(delta, var, tau * tau, previous_p)
    half = stats.Z95 * math.sqrt(var) if var > 0 else float("nan")
    ci = (delta - half, delta + half)
    if metric == "latency_p95_ms":
        delta, ci = math.expm1(delta), (math.expm1(ci[0]), math.expm1(ci[1]))
    tripped = direction * delta > 0 and p < t.guardrail_significance
    return Guardrail(metric, shown_c, shown_k, delta, ci, p, tripped, n)


# Sample size advisor ------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    requests_per_day: float
    share: float
    canary_per_day: float
    baseline_rate: float
    effect: float
    needed: int
    days: float | None

    @property
    def text(self) -> str:
        per_day = f"{self.canary_per_day:,.0f}" if self.canary_per_day >= 1 else f"{self.canary_per_day:.2f}"
        head = (
            f"At {100 * self.share:g}% of {self.requests_per_day:,.0f} requests a day the canary "
            f"gets {per_day} requests a day."
        )
        need = (
            f" Detecting an error rate rise from {100 * self.baseline_rate:.2f}% by "
            f"{100 * self.effect:.2f} points needs about {self.needed:,} canary requests"
        )
        if self.days is None:
            return head + need + ": it will never get there at this share."
        when = f"{self.days * 24:.1f} hours" if self.days < 2 else f"{self.days:.1f} days"
        return head + need + f", about {when} at this share."


def advise(
    requests_per_day: float,
    share: float,
    baseline_rate: float,
    effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> Advice:
    """How long the current share needs to detect an error-rate rise of `effect`."""
    needed = stats.sample_size_proportion(baseline_rate, effect, alpha, power)
    per_day = requests_per_day * share
    days = needed / per_day if per_day > 0 else None
    return Advice(requests_per_day, share, per_day, baseline_rate, effect, needed, days)


def daily_traffic(store: Store, feature: str, until: datetime) -> float:
    """Requests a day over the last seven days of data before `until`: the whole five
    minutes from rollup_5m, the partial five minutes at the ends from the requests."""
    with store.session():
        return _daily_traffic(store, feature, until)


def _daily_traffic(store: Store, feature: str, until: datetime) -> float:
    lo, _ = store.time_bounds(feature)
    if lo is None:
        return 0.0
    since = max(lo, until - timedelta(days=7))
    cut = spans.cut(since, until, timedelta(minutes=rollups.ROLLUP_MINUTES))
    where, params = spans.edges_sql([cut])
    inner = cut.inner or (since, since)  # an empty range when there is no whole bucket
    n = store.scalar(
        f"""SELECT (SELECT coalesce(sum(requests), 0) FROM rollup_5m
                    WHERE feature = ? AND bucket >= ? AND bucket < ?)
                 + (SELECT count(*) FROM requests WHERE feature = ? AND {where})""",
        [feature, *inner, feature, *params],
    )
    days = max((until - since).total_seconds() / 86400.0, 1 / 24)
    return int(n) / days
