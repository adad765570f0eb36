"""Facets: for each dimension, its values with counts and metrics, the worst contributors first.

Two DuckDB queries, one scan each:
- the *cube*: the scope grouped by every low-cardinality dimension at once (model, response
  model, prompt version, variant, region, segment, error) and a 1%-wide log bin of latency.
  Counts and sums roll up exactly to each dimension's values; a value's p95 latency comes
  from its histogram, interpolated within a bin (so within 1% of the exact p95). One hash
  table over the rows instead of one per dimension: measured at about half the time of
  grouping sets with exact quantiles at 10 million rows (bench/investigate_bench.py);
- the rest (user_id, extra columns: many values): a GROUP BY (grouping sets for several)
  with exact quantiles.
The scope's totals are the cube's sums (exact) and its p95 comes from the cube's histogram
(within 1%): an exact p95 of the whole would sort every latency of the scope once more,
which measured as long as the users' query itself.

How much a value contributes to a degradation of the chosen metric, in the metric's units
summed over requests ("excess"):
- error_rate: errors of the value minus its requests x the overall error rate (excess errors);
- quality_score: its scored requests x (overall mean - its mean) (missing quality points);
- latency_p95_ms: its requests x (its p95 - overall p95), in request-milliseconds;
- cost_per_request_usd: its cost minus its requests x the overall mean cost (excess dollars).
A value that is worse than the whole and large ranks first; a value better than the whole
has a negative contribution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from app.investigate.filters import MISSING, Scope, dimension_sql, where_sql
from app.storage.schema import SPLIT_DIMENSIONS
from app.storage.store import Store

FACET_METRICS = ("error_rate", "quality_score", "latency_p95_ms", "cost_per_request_usd")
DEFAULT_DIMENSIONS: tuple[str, ...] = (*SPLIT_DIMENSIONS, "error")
DEFAULT_TOP = 8

# Dimensions grouped together in the cube: few values each, so their combinations stay few.
CUBE_DIMENSIONS = frozenset(
    {"model", "response_model", "prompt_version", "variant", "region", "segment", "error"}
)
LATENCY_BINS_PER_UNIT = 100  # ln-scale bins: exp(1/100) = 1.005, i.e. 1% wide
_SUMS = """count(*) AS requests, count(error) AS errors, count(quality_score) AS quality_n,
    coalesce(sum(quality_score), 0) AS quality_sum, count(cost_usd) AS cost_n,
    coalesce(sum(cost_usd), 0) AS cost_sum, count(latency_ms) AS latency_n"""


@dataclass
class _Sums:
    requests: int = 0
    errors: int = 0
    quality_n: int = 0
    quality_sum: float = 0.0
    cost_n: int = 0
    cost_sum: float = 0.0
    p95: float | None = None
    hist: dict[int, int] = field(default_factory=dict)

    def add(self, row: tuple) -> None:
        self.requests += row[0]
        self.errors += row[1]
        self.quality_n += row[2]
        self.quality_sum += row[3]
        self.cost_n += row[4]
        self.cost_sum += row[5]

    def value(self, name: str) -> FacetValue:
        return FacetValue(
            name,
            self.requests,
            self.errors / self.requests if self.requests else 0.0,
            self.quality_sum / self.quality_n if self.quality_n else None,
            self.p95 if self.p95 is not None else _histogram_p95(self.hist),
            self.cost_sum / self.cost_n if self.cost_n else None,
            None,
        )


def _histogram_p95(hist: dict[int, int]) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    target = 0.95 * total
    seen = 0
    for b in sorted(hist):
        if seen + hist[b] >= target:
            frac = (target - seen) / hist[b]
            lo, hi = math.exp(b / LATENCY_BINS_PER_UNIT), math.exp((b + 1) / LATENCY_BINS_PER_UNIT)
            return lo + frac * (hi - lo)
        seen += hist[b]
    return math.exp((max(hist) + 1) / LATENCY_BINS_PER_UNIT)


def _contribution(metric: str, v: FacetValue, o: FacetValue, quality_n: int, cost_sum: float) -> float | None:
    if metric == "error_rate":
        return v.requests * (v.error_rate - o.error_rate)
    if metric == "quality_score":
        if v.quality_score is None or o.quality_score is None:
            return None
        return quality_n * (o.quality_score - v.quality_score)
    if metric == "latency_p95_ms":
        if v.latency_p95_ms is None or o.latency_p95_ms is None:
            return None
        return v.requests * (v.latency_p95_ms - o.latency_p95_ms)
    if o.cost_per_request_usd is None:
        return None
    return cost_sum - v.requests * o.cost_per_request_usd


@dataclass(frozen=True)
class FacetValue:
    value: str
    requests: int
    error_rate: float
    quality_score: float | None
    latency_p95_ms: float | None
    cost_per_request_usd: float | None
    contribution: float | None  # to a degradation of the chosen metric; see the module doc

    def metric(self, name: str) -> float | None:
        return getattr(self, name)


@dataclass(frozen=True)
class Facet:
    dimension: str
    values: tuple[FacetValue, ...]


@dataclass(frozen=True)
class Facets:
    metric: str
    total: int
    overall: FacetValue  # the scope as a whole (value "(all)")
    facets: tuple[Facet, ...]

    def facet(self, dimension: str) -> Facet | None:
        return next((f for f in self.facets if f.dimension == dimension), None)


def facets(
    store: Store,
    scope: Scope,
    metric: str = "error_rate",
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
    extras: Iterable[str] = (),
    top: int = DEFAULT_TOP,
) -> Facets:
    """The top `top` values of every dimension by contribution to a degradation of `metric`."""
    if metric not in FACET_METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(FACET_METRICS)}")
    extras = tuple(extras)
    where, params = where_sql(scope, extras)
    cube_dims = [d for d in dimensions if d in CUBE_DIMENSIONS]
    other_dims = [d for d in dimensions if d not in CUBE_DIMENSIONS]
    per: dict[str, dict[str, _Sums]] = {d: {} for d in dimensions}
    overall = _Sums()
    with store.session():
        bin_sql = f"CAST(floor(ln(greatest(latency_ms, 0.001)) * {LATENCY_BINS_PER_UNIT}) AS INTEGER)"
        keys = [dimension_sql(d, extras) for d in cube_dims]
        for row in store.rows(
            f"""SELECT {", ".join([*keys, bin_sql])}, {_SUMS}
                                  FROM requests WHERE {where} GROUP BY ALL""",
            params,
        ):
            values, b, sums = row[: len(keys)], row[len(keys)], row[len(keys) + 1 :]
            overall.add(sums)
            if b is not None:
                overall.hist[b] = overall.hist.get(b, 0) + sums[6]
            for dim, value in zip(cube_dims, values, strict=True):
                slot = per[dim].setdefault(MISSING if value is None else str(value), _Sums())
                slot.add(sums)
                if b is not None:
                    slot.hist[b] = slot.hist.get(b, 0) + sums[6]
        if other_dims:
            exprs = [dimension_sql(d, extras) for d in other_dims]
            if len(exprs) == 1:  # a plain GROUP BY: grouping sets cost more even for one set
                which, value, group = "0", f"CAST({exprs[0]} AS VARCHAR)", "GROUP BY 2"
            else:
                which = (
                    "CASE "
                    + " ".join(f"WHEN GROUPING({e}) = 0 THEN {i}" for i, e in enumerate(exprs))
                    + " END"
                )
                value = (
                    "CASE "
                    + " ".join(f"WHEN GROUPING({e}) = 0 THEN CAST({e} AS VARCHAR)" for e in exprs)
                    + " END"
                )
                group = "GROUP BY GROUPING SETS (" + ", ".join(f"({e})" for e in exprs) + ")"
            for row in store.rows(
                f"""SELECT {which}, {value}, {_SUMS},
                                             quantile_cont(latency_ms, 0.95)
                                      FROM requests WHERE {where} {group}""",
                params,
            ):
                d, raw, sums, p95 = row[0], row[1], row[2:9], row[9]
                slot = per[other_dims[d]].setdefault(MISSING if raw is None else str(raw), _Sums())
                slot.add(sums)
                slot.p95 = p95
    whole = overall.value("(all)")
    out = []
    for dim in dimensions:
        ranked = []
        for name, sums in per[dim].items():
            v = sums.value(name)
            c = _contribution(metric, v, whole, sums.quality_n, sums.cost_sum)
            ranked.append(replace(v, contribution=c))
        ranked.sort(key=lambda v: (v.contribution is None, -(v.contribution or 0.0), -v.requests))
        out.append(Facet(dim, tuple(ranked[:top])))
    return Facets(metric, whole.requests, whole, tuple(out))
