"""Facets: for each dimension, its values with counts and metrics, the worst contributors first.

One DuckDB query and one scan per call: a grouping set per dimension plus the empty set for
the scope as a whole (measured faster here than one scan per dimension glued by UNION ALL,
bench/investigate_bench.py).

How much a value contributes to a degradation of the chosen metric, in the metric's units
summed over requests ("excess"):
- error_rate: errors of the value minus its requests x the overall error rate (excess errors);
- quality_mean: its scored requests x (overall mean - its mean) (missing quality points);
- latency_p95_ms: its requests x (its p95 - overall p95), in request-milliseconds;
- cost_per_request_usd: its cost minus its requests x the overall mean cost (excess dollars).
A value that is worse than the whole and large ranks first; a value better than the whole
has a negative contribution.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.investigate.filters import MISSING, Scope, dimension_sql, where_sql
from app.storage.schema import SPLIT_DIMENSIONS
from app.storage.store import Store

FACET_METRICS = ("error_rate", "quality_mean", "latency_p95_ms", "cost_per_request_usd")
DEFAULT_DIMENSIONS: tuple[str, ...] = (*SPLIT_DIMENSIONS, "error")
DEFAULT_TOP = 8

_AGGREGATES = """count(*) AS requests, count(error) AS errors,
    count(quality_score) AS quality_n, avg(quality_score) AS quality_mean,
    quantile_cont(latency_ms, 0.95) AS latency_p95_ms, avg(cost_usd) AS cost_per_request_usd,
    coalesce(sum(cost_usd), 0) AS cost_sum"""

_CONTRIBUTION = {
    "error_rate": "p.errors - p.requests * o.errors / o.requests",
    "quality_mean": "p.quality_n * (o.quality_mean - p.quality_mean)",
    "latency_p95_ms": "p.requests * (p.latency_p95_ms - o.latency_p95_ms)",
    "cost_per_request_usd": "p.cost_sum - p.requests * o.cost_per_request_usd",
}


@dataclass(frozen=True)
class FacetValue:
    value: str
    requests: int
    error_rate: float
    quality_mean: float | None
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


def facets(store: Store, scope: Scope, metric: str = "error_rate",
           dimensions: Sequence[str] = DEFAULT_DIMENSIONS, extras: Iterable[str] = (),
           top: int = DEFAULT_TOP) -> Facets:
    """The top `top` values of every dimension by contribution to a degradation of `metric`."""
    if metric not in _CONTRIBUTION:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(FACET_METRICS)}")
    extras = tuple(extras)
    where, params = where_sql(scope, extras)
    exprs = [dimension_sql(dim, extras) for dim in dimensions]
    # One scan: a grouping set per dimension plus the empty set (the scope as a whole).
    which = "CASE " + " ".join(f"WHEN GROUPING({e}) = 0 THEN {i}" for i, e in enumerate(exprs)) \
        + " ELSE -1 END" if exprs else "-1"
    value = "CASE " + " ".join(f"WHEN GROUPING({e}) = 0 THEN CAST({e} AS VARCHAR)"
                               for e in exprs) + " END" if exprs else "NULL"
    sets = ", ".join([*(f"({e})" for e in exprs), "()"])
    sql = f"""
        WITH g AS (
            SELECT {which} AS d, {value} AS raw_value, {_AGGREGATES}
            FROM requests WHERE {where} GROUP BY GROUPING SETS ({sets})),
        o AS (SELECT * FROM g WHERE d = -1),
        p AS (SELECT * REPLACE (coalesce(raw_value, '{MISSING}') AS raw_value) FROM g
              WHERE d >= 0)
        SELECT p.*, {_CONTRIBUTION[metric]} AS contribution FROM p, o
        WHERE o.requests > 0
        QUALIFY row_number() OVER (PARTITION BY p.d
                                   ORDER BY contribution DESC NULLS LAST, p.requests DESC) <= ?
        UNION ALL
        SELECT o.*, NULL FROM o
        ORDER BY d, contribution DESC NULLS LAST, requests DESC"""
    rows = store.rows(sql, params + [top])
    grouped: dict[int, list[FacetValue]] = {}
    overall = FacetValue("(all)", 0, 0.0, None, None, None, None)
    for d, value, n, errors, _q_n, q, p95, cost, _cost_sum, contribution in rows:
        fv = FacetValue("(all)" if d < 0 else str(value), int(n), (errors / n) if n else 0.0, q, p95, cost,
                        None if contribution is None else float(contribution))
        if d < 0:
            overall = fv
        else:
            grouped.setdefault(int(d), []).append(fv)
    out = tuple(Facet(dim, tuple(grouped.get(i, ()))) for i, dim in enumerate(dimensions))
    return Facets(metric, overall.requests, overall, out)
