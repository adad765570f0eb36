"""Triage from the logs: where a degradation sits (scope) and what it cost so far (impact).

Definitions (docs/playbooks.md, "Triage and impact"):
- the *window* is [onset, end): end is the first verified rollback, else the resolution,
  else now, never later than the feature's last logged request;
- the *baseline* is the feature's requests in the 24 hours before the onset;
- a slice's *excess* is what it adds to the metric beyond the baseline: extra errors
  (errors - requests x baseline error rate), lost quality ((baseline - mean) x scored
  requests), extra thumbs-down, extra cost or extra latency;
- scope is `none` when the metric did not get worse by 2 standard errors or more; otherwise
  the scope rule `analyze` uses (app/detection/scope.py, with the `scope` settings of
  detection.yaml): `single_user` when one user carries the excess, `partial` for the smallest
  slice carrying it with a minority of the requests, `total` otherwise; a value set by the
  failure itself (no response_model on an error) is never the scope;
- impact counts the requests of the scope (the slice, or the whole feature when total):
  requests, distinct users, extra errors, quality delta against the baseline, extra cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app import stats
from app.detection.scope import SliceExcess, choose_scope
from app.detection.thresholds import DEFAULTS, Thresholds, ThresholdsError, load_thresholds
from app.storage import aggregates, rollups, spans
from app.storage.store import Store

BASELINE = timedelta(hours=24)
SCOPE_DIMENSIONS: tuple[str, ...] = (
    "variant",
    "prompt_version",
    "model",
    "response_model",
    "region",
    "segment",
    "user_id",
)
MIN_SLICE_REQUESTS = 20
MIN_Z = 2.0  # below this many standard errors there is no degradation to scope
_SUMS = f"""count(*) AS n, count(*) FILTER (WHERE NOT {aggregates.IS_OK}) AS errors,
           sum(quality_score) AS q_sum, count(quality_score) AS q_n,
           sum(quality_score * quality_score) AS q_sq,
           count(feedback) AS fb_n,
           count(*) FILTER (WHERE feedback = -1) AS neg, sum(cost_usd) AS cost,
           sum(latency_ms) AS lat_sum, count(latency_ms) AS lat_n"""


@dataclass(frozen=True)
class Sums:
    n: int = 0
    errors: int = 0
    q_sum: float = 0.0
    q_n: int = 0
    q_sq: float = 0.0
    fb_n: int = 0
    neg: int = 0
    cost: float = 0.0
    lat_sum: float = 0.0
    lat_n: int = 0

    def rate(self, metric: str) -> float | None:
        """The metric's value over these requests (None without data)."""
        num, den = {
            "error_rate": (self.errors, self.n),
            "quality_score": (self.q_sum, self.q_n),
            "negative_feedback_rate": (self.neg, self.fb_n),
            "cost_per_request_usd": (self.cost, self.n),
            "latency_p95_ms": (self.lat_sum, self.lat_n),  # excess is measured on the mean
        }.get(metric, (self.errors, self.n))
        return num / den if den else None

    def excess(self, metric: str, baseline: Sums) -> float:
        """How much worse these requests made the metric, in units of the metric x requests."""
        base, cur = baseline.rate(metric), self.rate(metric)
        if base is None or cur is None:
            return 0.0
        if metric == "quality_score":
            return (base - cur) * self.q_n
        if metric == "negative_feedback_rate":
            return (cur - base) * self.fb_n
        if metric == "latency_p95_ms":
            return (cur - base) * self.lat_n
        return (cur - base) * self.n


@dataclass(frozen=True)
class SliceImpact:
    dimension: str
    value: str
    requests: int
    request_share: float
    current: float | None  # the metric in the window
    baseline: float | None  # the slice's own baseline, else the feature's
    excess_share: float  # share of the feature's excess this slice carries


@dataclass(frozen=True)
class Triage:
    kind: str  # total | partial | single_user | none
    metric: str
    dimension: str | None = None
    value: str | None = None
    same_requests_as: tuple[str, ...] = ()  # other slices holding exactly these requests
    carried_by: tuple[str, ...] = ()  # total scope: values new since onset serving most requests
    z: float = 0.0  # standard errors by which the metric got worse
    slices: dict[str, list[SliceImpact]] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "none":
            return "no significant degradation in the window"
        if self.kind == "total":
            new = f" (now served by {', '.join(self.carried_by)})" if self.carried_by else ""
            return f"total: the whole feature{new}"
        label = "single user" if self.kind == "single_user" else "partial"
        return f"{label}: {self.dimension} = {self.value}"


@dataclass(frozen=True)
class Impact:
    feature: str
    metric: str
    onset: datetime
    end: datetime
    scope: Triage
    requests: int
    users: int
    errors: int
    error_rate: float | None
    baseline_error_rate: float | None
    extra_errors: int
    quality: float | None
    baseline_quality: float | None
    quality_delta: float | None
    cost_usd: float
    extra_cost_usd: float

    @property
    def duration(self) -> timedelta:
        return self.end - self.onset

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scope"] = {
            "kind": self.scope.kind,
            "dimension": self.scope.dimension,
            "value": self.scope.value,
            "describe": self.scope.describe(),
        }
        d["duration_s"] = self.duration.total_seconds()
        return d


def window_end(store: Store, feature: str, until: datetime) -> datetime:
    """`until`, or just after the feature's last logged request when the logs end earlier."""
    last = store.time_bounds(feature)[1]
    if last is None:
        return until
    return min(until, last + timedelta(microseconds=1))


def _sums_by_slice(
    store: Store, feature: str, onset: datetime, end: datetime
) -> dict[tuple[str, str, bool], Sums]:
    """Every slice's sums in the baseline (False) and since the onset (True); the whole
    feature is the slice ('', '').

    The whole hours come from the hourly aggregate tables (agg_dim_1h, whose `model` rows
    partition the feature, and agg_user_1h for users) and only the partial hours at the
    window's ends and around the onset from the requests, in the embedded store and in lake
    mode alike. agg_user_1h keeps the 20 busiest users of each hour, so a user's slice counts
    the hours in which they were among them (docs/aggregates.md)."""
    rows = _table_slice_sums(store, feature, onset, end)
    return {
        (r[0], r[1], bool(r[2])): Sums(
            int(r[3]),
            int(r[4]),
            float(r[5] or 0),
            int(r[6]),
            float(r[7] or 0),
            int(r[8]),
            int(r[9]),
            float(r[10] or 0),
            float(r[11] or 0),
            int(r[12]),
        )
        for r in sorted(rows, key=lambda r: (r[0], r[1], bool(r[2])))
    }


def _raw_slice_sums(store: Store, feature: str, onset: datetime, where: str, params: list) -> list[tuple]:
    parts = [
        f"SELECT '{d}' AS dim, coalesce(CAST({d} AS VARCHAR), '(none)') AS value, cur, {_SUMS} "
        f"FROM base GROUP BY ALL"
        for d in SCOPE_DIMENSIONS
    ]
    parts.append(f"SELECT '' AS dim, '' AS value, cur, {_SUMS} FROM base GROUP BY ALL")
    sql = (
        f"WITH base AS (SELECT *, timestamp >= ? AS cur FROM requests WHERE feature = ? AND ({where})) "
        + " UNION ALL ".join(parts)
    )
    return store.rows(sql, [onset, feature, *params])


# the aggregate tables' measures under the names of _SUMS, in its order
_TABLE_SUMS = """sum(requests), sum(errors), sum(quality_sum), sum(quality_n), sum(quality_sumsq),
    sum(feedback_n), sum(feedback_neg), sum(cost_sum), sum(latency_sum), sum(latency_n)"""


def _table_slice_sums(store: Store, feature: str, onset: datetime, end: datetime) -> list[tuple]:
    hour = timedelta(hours=1)
    cuts = [spans.cut(onset - BASELINE, onset, hour), spans.cut(onset, end, hour)]
    inner = [c.inner for c in cuts if c.inner is not None]
    rows: list[tuple] = []
    with store.session(), store.connect() as con:
        rollups.ensure_deferred(con)
        if inner:
            when = " OR ".join("(bucket >= ? AND bucket < ?)" for _ in inner)
            window = [x for lo, hi in inner for x in (lo, hi)]
            dims = [d for d in SCOPE_DIMENSIONS if d in aggregates.SPLIT_DIMENSIONS]
            listed = ", ".join(f"'{d}'" for d in dims)
            tables = [
                ("dimension", "value", f"agg_dim_1h WHERE dimension IN ({listed}) AND"),
                ("'user_id'", "user_id", "agg_user_1h WHERE"),
                ("''", "''", "agg_dim_1h WHERE dimension = 'model' AND"),
            ]
            for dim, value, source in tables:
                rows += store.rows(
                    f"""SELECT {dim}, {value}, bucket >= ? AS cur, {_TABLE_SUMS}
                        FROM {source} feature = ? AND ({when}) GROUP BY 1, 2, 3""",
                    [onset, feature, *window],
                )
        where, params = spans.edges_sql(cuts)
        if params:
            rows += _raw_slice_sums(store, feature, onset, where, params)
    merged: dict[tuple, list] = {}
    for dim, value, cur, *sums in rows:
        slot = merged.setdefault((dim, value, bool(cur)), [0] * len(sums))
        for i, v in enumerate(sums):
            slot[i] += v or 0
    return [(*key, *sums) for key, sums in merged.items()]


def _z_worse(metric: str, cur: Sums, base: Sums) -> float:
    """How many standard errors the metric got worse (two-sample normal approximation)."""
    if metric == "quality_score":
        return stats.two_means_z(base.q_sum, base.q_sq, base.q_n, cur.q_sum, cur.q_sq, cur.q_n)
    if metric == "error_rate":
        return stats.two_proportions_z(cur.errors, cur.n, base.errors, base.n)
    return stats.two_proportions_z(cur.neg, cur.fb_n, base.neg, base.fb_n)


def choose_metric(current: Sums, baseline: Sums) -> str:
    """The metric that got worse by the most standard errors: errors, quality or thumbs-down."""
    candidates = ("error_rate", "quality_score", "negative_feedback_rate")
    return max(candidates, key=lambda m: _z_worse(m, current, baseline))


def triage(store: Store, feature: str, onset: datetime, end: datetime, metric: str | None = None) -> Triage:
    """Where the degradation since onset sits, with every dimension's slices."""
    return _triage(store, _sums_by_slice(store, feature, onset, end), metric)


def _triage(store: Store, sums: dict[tuple[str, str, bool], Sums], metric: str | None) -> Triage:
    current, baseline = sums.get(("", "", True), Sums()), sums.get(("", "", False), Sums())
    if metric not in {
        "error_rate",
        "quality_score",
        "negative_feedback_rate",
        "cost_per_request_usd",
        "latency_p95_ms",
    }:
        metric = choose_metric(current, baseline)
    total_excess = current.excess(metric, baseline)
    slices: dict[str, list[SliceImpact]] = {}
    rows_for_scope: list[SliceExcess] = []
    carried_by: list[str] = []
    for dim in SCOPE_DIMENSIONS:
        rows = []
        for (d, value, cur), s in sums.items():
            if d != dim or not cur:
                continue
            own_base = sums.get((d, value, False))
            base_rate = (
                own_base.rate(metric)
                if own_base and own_base.n >= MIN_SLICE_REQUESTS
                else baseline.rate(metric)
            )
            excess = s.excess(metric, baseline)
            share = excess / total_excess if total_excess > 0 else 0.0
            rows.append(
                SliceImpact(
                    dim, value, s.n, s.n / current.n if current.n else 0.0, s.rate(metric), base_rate, share
                )
            )
            if (own_base is None or own_base.n < MIN_SLICE_REQUESTS) and rows[-1].request_share >= 0.9:
                carried_by.append(f"{dim} = {value}")
            seen_n = s.n + (own_base.n if own_base else 0)
            failed = (s.errors + (own_base.errors if own_base else 0)) / seen_n if seen_n else 0.0
            if s.n >= MIN_SLICE_REQUESTS:
                rows_for_scope.append(SliceExcess(dim, value, s.n, excess, failed))
        slices[dim] = sorted(rows, key=lambda sl: -sl.excess_share)
    z = _z_worse(metric, current, baseline)
    if total_excess <= 0 or z < MIN_Z:
        return Triage("none", metric, slices=slices, z=z)
    t = _thresholds(store)
    choice = choose_scope(rows_for_scope, total_excess, current.n, t.scope_coverage, t.scope_max_share)
    if choice.kind == "total":
        return Triage("total", metric, slices=slices, carried_by=tuple(carried_by), z=z)
    top = next(sl for sl in slices[choice.picks[0].dimension] if sl.value == choice.picks[0].value)
    same = [f"{r.dimension} = {r.value}" for r in choice.same_requests]
    same += [
        f"{sl.dimension} = {sl.value}"
        for d, rows in slices.items()
        if d != top.dimension
        for sl in rows
        if sl.requests == top.requests
        and abs(sl.excess_share - top.excess_share) < 1e-9
        and f"{sl.dimension} = {sl.value}" not in same
    ]
    return Triage(
        choice.kind, metric, top.dimension, top.value, same_requests_as=tuple(same), slices=slices, z=z
    )


def _thresholds(store: Store) -> Thresholds:
    """The scope settings of the data directory's detection.yaml (defaults when it is broken:
    triage must still answer; `analyze` reports the file's error)."""
    try:
        return load_thresholds(store.data_dir)
    except ThresholdsError:
        return DEFAULTS


def measure(
    store: Store, feature: str, onset: datetime, until: datetime, metric: str | None = None
) -> Impact:
    """Triage and impact of a degradation of `feature` from `onset` until `until`."""
    end = window_end(store, feature, until)
    sums = _sums_by_slice(store, feature, onset, end)
    scope = _triage(store, sums, metric)
    key = (scope.dimension, scope.value) if scope.kind in ("partial", "single_user") else ("", "")
    hit, base = sums.get((*key, True), Sums()), sums.get(("", "", False), Sums())
    n, errors, cost = hit.n, hit.errors, hit.cost
    q_mean = hit.q_sum / hit.q_n if hit.q_n else None
    b_n, b_errors, b_cost = base.n, base.errors, base.cost
    b_q = base.q_sum / base.q_n if base.q_n else None
    # Distinct users do not add up over hours or slices: the one figure read from the
    # requests (the user_id of the affected slice's requests).
    where, params = _affected(feature, onset, end, scope)
    users = store.scalar(f"SELECT count(DISTINCT user_id) FROM requests WHERE {where}", params) or 0
    base_rate = b_errors / b_n if b_n else None
    base_cost = b_cost / b_n if b_n else 0.0
    return Impact(
        feature=feature,
        metric=scope.metric,
        onset=onset,
        end=end,
        scope=scope,
        requests=int(n),
        users=int(users),
        errors=int(errors),
        error_rate=errors / n if n else None,
        baseline_error_rate=base_rate,
        extra_errors=round(errors - n * (base_rate or 0.0)),
        quality=q_mean,
        baseline_quality=b_q,
        quality_delta=(q_mean - b_q) if q_mean is not None and b_q is not None else None,
        cost_usd=float(cost),
        extra_cost_usd=float(cost) - n * base_cost,
    )


def _affected(feature: str, onset: datetime, end: datetime, scope: Triage) -> tuple[str, list]:
    """SQL condition (and its parameters) for the requests a degradation affected: the
    feature's requests in the window, in the scope's slice when it has one."""
    where, params = "feature = ? AND timestamp >= ? AND timestamp < ?", [feature, onset, end]
    if scope.kind in ("partial", "single_user"):
        where += f" AND coalesce(CAST({scope.dimension} AS VARCHAR), '(none)') = ?"
        params.append(scope.value)
    return where, params


def users_across(store: Store, impacts: list[Impact]) -> int:
    """Distinct users among the requests affected in any of the impacts (a user of two
    affected features counts once)."""
    if not impacts:
        return 0
    parts = [_affected(im.feature, im.onset, im.end, im.scope) for im in impacts]
    where = " OR ".join(f"({w})" for w, _ in parts)
    params = [p for _, ps in parts for p in ps]
    return int(store.scalar(f"SELECT count(DISTINCT user_id) FROM requests WHERE {where}", params) or 0)
