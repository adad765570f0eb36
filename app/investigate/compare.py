"""Two arms of one feature side by side: every metric of `analyze` with a 95% interval, the
difference (b - a) and a two-sided p-value, from the tests in app/stats.py.

- error_rate, negative_feedback_rate: Wilson intervals; Cochran-Mantel-Haenszel on one
  stratum (the two-proportion test with a continuity correction).
- quality_score: mean with a normal interval (mean +- 1.96 sd / sqrt(n)); Mann-Whitney.
- cost_per_request_usd: mean with a normal interval; Mann-Whitney.
- latency_p95_ms: p95 (linear interpolation) with a distribution-free interval (the order
  statistics at the binomial bounds of the 0.95 level); Mann-Whitney on the whole
  distribution (a shift in latency, not only in its tail).
The Mann-Whitney tests run on binned counts with the ties handled exactly: quality in 0.001
steps, latency and cost in 0.5%-wide log bins. The arms may overlap (a = all, b = canary):
each arm is read on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from app import stats
from app.changes.events import ChangeEvent
from app.detection.findings import Finding, iso_z
from app.detection.thresholds import METRIC_NAMES
from app.investigate.filters import Condition, Filter, Scope, where_sql
from app.metrics.timeline import BUCKET_NAMES
from app.storage.store import Store

# One pass per arm gives the rank tests' histograms and every count and sum, in three
# GROUP BYs glued with UNION ALL (kind 1 quality, 2 latency, 3 cost; order-preserving bins).
# The latency part keeps rows without a latency (bin NULL), so it also counts every request,
# error and feedback. Means and standard deviations come from the sums (n, sum, sum of
# squares), which saves a scan over reading them with avg() and stddev_samp().
_PASS = """
SELECT 1 AS k, CAST(round(quality_score * 1000) AS BIGINT) AS b, count(*) AS n,
       sum(quality_score) AS s1, sum(quality_score * quality_score) AS s2,
       0 AS rows, 0 AS errors, 0 AS feedback, 0 AS negative
FROM requests WHERE {where} AND quality_score IS NOT NULL GROUP BY 2
UNION ALL
SELECT 2, CAST(floor(ln(greatest(latency_ms, 0.001)) * 200) AS BIGINT), count(latency_ms),
       0, 0, count(*), count(error), count(feedback), count_if(feedback = -1)
FROM requests WHERE {where} GROUP BY 2
UNION ALL
SELECT 3, CAST(floor(ln(greatest(cost_usd, 1e-12)) * 200) AS BIGINT), count(*),
       sum(cost_usd), sum(cost_usd * cost_usd), 0, 0, 0, 0
FROM requests WHERE {where} AND cost_usd IS NOT NULL GROUP BY 2"""
TIMELINE_SQL = {
    "error_rate": "avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END)",
    "quality_score": "avg(quality_score)",
    "latency_p95_ms": "quantile_cont(latency_ms, 0.95)",
    "cost_per_request_usd": "avg(cost_usd)",
    "negative_feedback_rate": "avg(CASE WHEN feedback = -1 THEN 1.0 WHEN feedback IS NOT NULL THEN 0.0 END)",
}


@dataclass(frozen=True)
class ArmSummary:
    filter: str
    requests: int
    errors: int
    scored: int  # requests with a quality score
    feedback_n: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "filter": self.filter,
            "requests": self.requests,
            "errors": self.errors,
            "scored": self.scored,
            "with_feedback": self.feedback_n,
        }


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    a: float | None
    a_ci: tuple[float, float] | None
    b: float | None
    b_ci: tuple[float, float] | None
    difference: float | None  # b - a
    p_value: float | None  # two-sided; None when an arm has no observation
    n_a: int
    n_b: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "a": _clean(self.a),
            "a_ci": _ci(self.a_ci),
            "b": _clean(self.b),
            "b_ci": _ci(self.b_ci),
            "difference": _clean(self.difference),
            "p_value": _clean(self.p_value),
            "n_a": self.n_a,
            "n_b": self.n_b,
        }


@dataclass(frozen=True)
class Comparison:
    feature: str
    since: datetime | None
    until: datetime | None
    a: ArmSummary
    b: ArmSummary
    metrics: tuple[MetricComparison, ...]

    def metric(self, name: str) -> MetricComparison:
        return next(m for m in self.metrics if m.metric == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "since": iso_z(self.since),
            "until": iso_z(self.until),
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "metrics": [m.as_dict() for m in self.metrics],
        }


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _ci(ci: tuple[float, float] | None) -> list[float | None] | None:
    return None if ci is None else [_clean(ci[0]), _clean(ci[1])]


def _two_sided(result: stats.TestResult) -> float:
    return min(1.0, 2.0 * min(result.p_greater, result.p_less))


@dataclass
class _Arm:
    scope: Scope
    agg: dict[str, Any]
    p95: float | None = None
    p95_ci: tuple[float, float] | None = None
    hists: dict[int, dict[int, int]] | None = None


def _moments(parts: list[tuple[int, float, float]]) -> tuple[int, float | None, float | None]:
    """(n, mean, sample sd) from per-bin (n, sum, sum of squares)."""
    n = sum(p[0] for p in parts)
    if not n:
        return 0, None, None
    s1 = math.fsum(p[1] for p in parts)
    s2 = math.fsum(p[2] for p in parts)
    mean = s1 / n
    sd = math.sqrt(max(0.0, (s2 - s1 * mean) / (n - 1))) if n > 1 else None
    return n, mean, sd


def _read_arm(store: Store, scope: Scope, extras: tuple[str, ...]) -> _Arm:
    where, params = where_sql(scope, extras)
    hists: dict[int, dict[int, int]] = {1: {}, 2: {}, 3: {}}
    moments: dict[int, list[tuple[int, float, float]]] = {1: [], 3: []}
    counts = [0, 0, 0, 0]  # requests, errors, with feedback, negative feedback
    for k, b, n, s1, s2, *rest in store.rows(_PASS.format(where=where), params * 3):
        if b is not None and n:
            hists[int(k)][int(b)] = int(n)
        if k == 2:
            counts = [c + int(x or 0) for c, x in zip(counts, rest, strict=True)]
        else:
            moments[int(k)].append((int(n), float(s1), float(s2)))
    scored, q_mean, q_sd = _moments(moments[1])
    cost_n, c_mean, c_sd = _moments(moments[3])
    agg = {
        "requests": counts[0],
        "errors": counts[1],
        "scored": scored,
        "quality_mean": q_mean,
        "quality_sd": q_sd,
        "latency_n": sum(hists[2].values()),
        "cost_n": cost_n,
        "cost_mean": c_mean,
        "cost_sd": c_sd,
        "feedback_n": counts[2],
        "negative_feedback": counts[3],
    }
    arm = _Arm(scope, agg, hists=hists)
    n_lat = agg["latency_n"]
    if n_lat:
        lo, hi = stats.quantile_rank_levels(n_lat, 0.95)
        q = store.scalar(
            f"SELECT quantile_cont(latency_ms, [0.95, ?, ?]) FROM requests WHERE {where}", [lo, hi, *params]
        )
        arm.p95, arm.p95_ci = q[0], (q[1], q[2])
    return arm


def _rank_p(a: _Arm, b: _Arm, kind: int) -> float | None:
    ha, hb = a.hists[kind], b.hists[kind]
    if not ha or not hb:
        return None
    bins = sorted(set(ha) | set(hb))
    base = np.array([[ha.get(x, 0) for x in bins]], dtype=float)
    win = np.array([[hb.get(x, 0) for x in bins]], dtype=float)
    return _two_sided(stats.stratified_rank_test(base, win))


def _proportion(metric: str, xa: int, na: int, xb: int, nb: int) -> MetricComparison:
    if not na or not nb:
        pa = xa / na if na else None
        pb = xb / nb if nb else None
        return MetricComparison(
            metric,
            pa,
            stats.wilson_interval(xa, na) if na else None,
            pb,
            stats.wilson_interval(xb, nb) if nb else None,
            None,
            None,
            na,
            nb,
        )
    test = stats.stratified_proportions(np.array([xa]), np.array([na]), np.array([xb]), np.array([nb]))
    return MetricComparison(
        metric,
        xa / na,
        stats.wilson_interval(xa, na),
        xb / nb,
        stats.wilson_interval(xb, nb),
        xb / nb - xa / na,
        _two_sided(test),
        na,
        nb,
    )


def _mean(metric: str, a: _Arm, b: _Arm, prefix: str, n_key: str, kind: int) -> MetricComparison:
    def one(arm: _Arm) -> tuple[float | None, tuple[float, float] | None, int]:
        n = int(arm.agg[n_key] or 0)
        mean = arm.agg[f"{prefix}_mean"]
        if not n or mean is None:
            return None, None, n
        sd = arm.agg[f"{prefix}_sd"]
        return float(mean), stats.mean_interval(mean, sd if sd is not None else math.nan, n), n

    ma, ca, na = one(a)
    mb, cb, nb = one(b)
    diff = None if ma is None or mb is None else mb - ma
    return MetricComparison(metric, ma, ca, mb, cb, diff, _rank_p(a, b, kind), na, nb)


def compare(store: Store, a: Scope, b: Scope, extras: tuple[str, ...] = ()) -> Comparison:
    """Both arms' metrics, intervals, differences and p-values. Both scopes must be of one
    feature; their time ranges and filters may differ."""
    if a.feature != b.feature:
        raise ValueError("both arms must be of the same feature")
    with store.session():
        arm_a, arm_b = _read_arm(store, a, extras), _read_arm(store, b, extras)
    metrics = []
    for name in METRIC_NAMES:
        if name == "error_rate":
            metrics.append(
                _proportion(
                    name,
                    arm_a.agg["errors"],
                    arm_a.agg["requests"],
                    arm_b.agg["errors"],
                    arm_b.agg["requests"],
                )
            )
        elif name == "negative_feedback_rate":
            metrics.append(
                _proportion(
                    name,
                    arm_a.agg["negative_feedback"],
                    arm_a.agg["feedback_n"],
                    arm_b.agg["negative_feedback"],
                    arm_b.agg["feedback_n"],
                )
            )
        elif name == "quality_score":
            metrics.append(_mean(name, arm_a, arm_b, "quality", "scored", 1))
        elif name == "cost_per_request_usd":
            metrics.append(_mean(name, arm_a, arm_b, "cost", "cost_n", 3))
        elif name == "latency_p95_ms":
            diff = None if arm_a.p95 is None or arm_b.p95 is None else arm_b.p95 - arm_a.p95
            metrics.append(
                MetricComparison(
                    name,
                    arm_a.p95,
                    arm_a.p95_ci,
                    arm_b.p95,
                    arm_b.p95_ci,
                    diff,
                    _rank_p(arm_a, arm_b, 2),
                    int(arm_a.agg["latency_n"] or 0),
                    int(arm_b.agg["latency_n"] or 0),
                )
            )

    def summary(arm: _Arm) -> ArmSummary:
        return ArmSummary(
            arm.scope.filter.text(),
            int(arm.agg["requests"]),
            int(arm.agg["errors"]),
            int(arm.agg["scored"]),
            int(arm.agg["feedback_n"]),
        )

    since = min((t for t in (a.since, b.since) if t is not None), default=None)
    until = max((t for t in (a.until, b.until) if t is not None), default=None)
    return Comparison(a.feature, since, until, summary(arm_a), summary(arm_b), tuple(metrics))


def arm_timeline(
    store: Store, a: Scope, b: Scope, metric: str, bucket: str, extras: tuple[str, ...] = ()
) -> list[tuple[str, datetime, float | None, int]]:
    """(arm, bucket start, metric value, requests) of both arms, bucket by bucket.
    `bucket` is a DuckDB interval such as '1 hour'."""
    if metric not in TIMELINE_SQL:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(TIMELINE_SQL)}")
    if bucket not in BUCKET_NAMES:
        raise ValueError(f"bucket {bucket!r} is not one of {', '.join(BUCKET_NAMES)}")
    out = []
    with store.session():
        for name, scope in (("a", a), ("b", b)):
            where, params = where_sql(scope, extras)
            for t, value, n in store.rows(
                f"""SELECT time_bucket(INTERVAL '{bucket}', timestamp), {TIMELINE_SQL[metric]},
                               count(*) FROM requests WHERE {where} GROUP BY 1 ORDER BY 1""",
                params,
            ):
                out.append((name, t, value, int(n)))
    return out


# Presets -----------------------------------------------------------------------------------

_CHANGE_FIELD = {"model": "model", "prompt": "prompt_version"}


def before_after(at: datetime, base: Filter | None = None) -> tuple[Filter, Filter]:
    """Arms before and after a moment (a change, an onset), within an optional filter."""
    base = base or Filter()
    iso = at.strftime("%Y-%m-%dT%H:%M:%S")
    return (
        base.with_condition(Condition("timestamp", "lt", (iso,))),
        base.with_condition(Condition("timestamp", "ge", (iso,))),
    )


def preset(
    onset: datetime, change: ChangeEvent | None = None, where: tuple[str, str] | None = None
) -> tuple[Filter, Filter, str]:
    """The suspect's requests against the baseline, and a sentence saying which arms these are:
    - a model or prompt change with both values: requests of the old value against the new;
    - a slice where the degradation sits (`where` = dimension, value): the rest of the
      feature against that slice, both since the onset (the same hours, so the same
      time-of-day and traffic; a canary or a new region has no "before");
    - otherwise: the whole feature before the onset against after."""
    if change is not None:
        field = _CHANGE_FIELD.get(change.kind)
        if field and change.from_value and change.to_value and change.from_value != change.to_value:
            return (
                Filter((Condition(field, "eq", (change.from_value,)),)),
                Filter((Condition(field, "eq", (change.to_value,)),)),
                f"{field} {change.from_value} against {change.to_value}",
            )
    if where is not None:
        dimension, value = where
        since = Condition("timestamp", "ge", (onset.strftime("%Y-%m-%dT%H:%M:%S"),))
        return (
            Filter((Condition(dimension, "ne", (value,)), since)),
            Filter((Condition(dimension, "eq", (value,)), since)),
            f"the rest against {dimension} = {value}, since the onset",
        )
    a, b = before_after(onset)
    return a, b, "the whole feature before the onset against after"


def preset_from_finding(finding: Finding) -> tuple[Filter, Filter, str]:
    """`preset` for a finding of `analyze`: its best suspect, else its first slice."""
    change = finding.suspects[0].change if finding.suspects else None
    first = finding.scope.slices[0] if finding.scope.slices else None
    return preset(finding.onset, change, (first.dimension, first.value) if first else None)
