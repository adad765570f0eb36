"""The weekly reliability review: objectives and error budgets, week-over-week metrics, the
changes that failed, the incidents of the period, the top regressions and the cost.

`weekly_review()` is the one entry point the Review page, `rollback-desk review` and the
exports share; `as_dict()` is the `review --json` contract (docs/review.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.changes import timeline as changes
from app.detection.analysis import analyze
from app.detection.findings import AnalysisResult, Finding
from app.incidents.log import Incident, IncidentLog
from app.incidents.timeline import action_entries, first_verified_rollback
from app.metrics.timeline import overview, timeline
from app.review import failures
from app.review.budget import SloStatus, iso_z, slo_status
from app.review.sli import count_events
from app.review.slos import SloConfig, load_slos
from app.storage.store import Store

WEEK = timedelta(days=7)
# A week counts as complete when the data reaches this close to its end.
COMPLETE_TOLERANCE = timedelta(hours=1)
WOW_METRICS = {
    "quality_score": "quality_score",
    "error_rate": "error_rate",
    "latency_p95_ms": "latency_p95_ms",
    "cost_per_request_usd": "cost_per_request_usd",
}
TOOL_SOURCES = {"detection", "watch"}


class ReviewError(ValueError):
    """A period that cannot be reviewed (bad week, empty store); says what to do."""


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime
    week: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"since": iso_z(self.since), "until": iso_z(self.until), "week": self.week}

    @property
    def label(self) -> str:
        last = self.until - timedelta(microseconds=1)
        dates = f"{self.since.date().isoformat()} to {last.date().isoformat()}"
        return f"{self.week} ({dates})" if self.week else dates


def week_bounds(week: str) -> Period:
    """`2026-W47` as [Monday 00:00, next Monday 00:00) UTC."""
    try:
        year, num = week.upper().split("-W")
        monday = date.fromisocalendar(int(year), int(num), 1)
    except ValueError as exc:
        raise ReviewError(f"week {week!r} is not an ISO week like 2026-W47") from exc
    since = datetime(monday.year, monday.month, monday.day)
    return Period(since, since + WEEK, f"{int(year)}-W{int(num):02d}")


def week_of(t: datetime) -> str:
    y, w, _ = t.isocalendar()
    return f"{y}-W{w:02d}"


def default_week(store: Store) -> Period:
    """The last complete ISO week, measured from the newest data (not the clock)."""
    _, newest = store.time_bounds()
    if newest is None:
        raise ReviewError("no requests loaded: load logs (rollback-desk ingest) or the demo first")
    current = week_bounds(week_of(newest))
    if newest >= current.until - COMPLETE_TOLERANCE:
        return current
    return week_bounds(week_of(current.since - WEEK))


def weeks_with_data(store: Store) -> list[str]:
    """Every ISO week that holds requests, newest first."""
    oldest, newest = store.time_bounds()
    if newest is None:
        return []
    out, t = [], week_bounds(week_of(newest)).since
    while t + WEEK > oldest:
        out.append(week_of(t))
        t -= WEEK
    return out


@dataclass(frozen=True)
class FeatureReview:
    feature: str
    requests: int
    cost_usd: float | None
    slos: tuple[SloStatus, ...]
    has_slos: bool
    week_over_week: dict[str, tuple[float | None, float | None]]
    daily: dict[str, list[tuple[datetime, float | None]]]  # sparklines: metric -> per day
    cost_by_model: list[tuple[str, int, float]]  # model, requests, cost
    cost_budget: dict[str, Any] | None = None

    @property
    def cost_per_request_usd(self) -> float | None:
        return None if not self.requests or self.cost_usd is None else self.cost_usd / self.requests

    @property
    def burning(self) -> bool:
        return any(s.alerts for s in self.slos)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "requests": self.requests,
            "cost_usd": _num(self.cost_usd, 4),
            "cost_per_request_usd": _num(self.cost_per_request_usd, 6),
            "has_slos": self.has_slos,
            "slos": [s.as_dict() for s in self.slos],
            "cost_budget": self.cost_budget,
            "week_over_week": {k: [_num(p), _num(n)] for k, (p, n) in self.week_over_week.items()},
            "cost_by_model": [
                {"model": m, "requests": r, "cost_usd": _num(c, 4)} for m, r, c in self.cost_by_model
            ],
        }


@dataclass(frozen=True)
class IncidentReview:
    id: str
    title: str
    severity: str
    status: str
    features: tuple[str, ...]
    opened_at: datetime
    ttd_min: float | None
    ttm_min: float | None
    ttr_min: float | None
    rolled_back: bool
    detected_by: str  # tool | person
    open_action_items: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "features": list(self.features),
            "opened_at": iso_z(self.opened_at),
            "ttd_min": _num(self.ttd_min, 4),
            "ttm_min": _num(self.ttm_min, 4),
            "ttr_min": _num(self.ttr_min, 4),
            "rolled_back": self.rolled_back,
            "detected_by": self.detected_by,
            "open_action_items": self.open_action_items,
        }


@dataclass(frozen=True)
class WeeklyReview:
    period: Period
    features: tuple[FeatureReview, ...]
    changes: tuple[failures.ChangeOutcome, ...]
    incidents: tuple[IncidentReview, ...]
    regressions: tuple[Finding, ...]
    config: SloConfig = field(default_factory=SloConfig)
    # Incidents opened before the period that are still open: not resolved, or with
    # post-mortem action items not done (the review's "what is still open").
    still_open: tuple[IncidentReview, ...] = ()

    @property
    def failed_changes(self) -> list[failures.ChangeOutcome]:
        return [o for o in self.changes if o.failed]

    @property
    def by_kind(self) -> dict[str, failures.KindStats]:
        return failures.by_kind(list(self.changes))

    @property
    def by_feature(self) -> dict[str, failures.KindStats]:
        return failures.by_feature(list(self.changes))

    @property
    def alerts(self):
        return [a for f in self.features for s in f.slos for a in s.alerts]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.as_dict(),
            "features": [f.as_dict() for f in self.features],
            "changes": {
                "by_kind": {k: v.as_dict() for k, v in self.by_kind.items()},
                "by_feature": {k: v.as_dict() for k, v in self.by_feature.items()},
                "failed": [o.as_dict() for o in self.failed_changes],
            },
            "incidents": [i.as_dict() for i in self.incidents],
            "still_open": [i.as_dict() for i in self.still_open],
            "regressions": [f.as_dict() | {"title": f.title} for f in self.regressions],
        }


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def weekly_review(
    store: Store, period: Period, config: SloConfig | None = None, analysis: AnalysisResult | None = None
) -> WeeklyReview:
    """Everything the review shows for [period.since, period.until). `analysis`: the
    findings of `analysis_window` when the caller has them already (analyze runs otherwise)."""
    config = config or load_slos(store.data_dir)
    horizon = timedelta(hours=config.failure_horizon_hours)
    # One DuckDB connection for every query of the review, the analysis's included.
    with store.session():
        names = store.features()
        features = _features(store, config, period, names)
        if analysis is None:
            since, until = analysis_window(store, period, config)
            analysis = analyze(store, since=since, until=until)
        last = period.until - timedelta(microseconds=1)
        period_changes, same_as = failures.one_per_change(
            changes.timeline_changes(store, since=period.since, until=last)
        )
        later = changes.timeline_changes(store, since=period.since, until=period.until + horizon)
        all_incidents = IncidentLog(store.data_dir).list() if _has_ledger(store.data_dir) else []
        incidents, still_open = _incidents(store.data_dir, period, all_incidents)
        outcomes = failures.classify(
            store, period_changes, later, analysis.findings, all_incidents, horizon, same_as
        )
    regressions = tuple(f for f in analysis.findings if period.since <= f.onset < period.until)
    return WeeklyReview(
        period, tuple(features), tuple(outcomes), tuple(incidents), regressions, config, tuple(still_open)
    )


def analysis_window(store: Store, period: Period, config: SloConfig) -> tuple[datetime, datetime]:
    """What the review analyses: the week, and the failure horizon after it as far as there
    is data (a change late in the week can be blamed by a finding that starts after it).
    Never the objectives' 28 days or the burn-rate windows: they are counted, not analysed."""
    horizon = timedelta(hours=config.failure_horizon_hours)
    _, newest = store.time_bounds()
    end = min(period.until + horizon, newest + timedelta(microseconds=1)) if newest else period.until
    return period.since, max(end, period.until)


def _features(store: Store, config: SloConfig, period: Period, names: list[str]) -> list[FeatureReview]:
    longest_alert = max((r.long_min for r in config.alerts), default=0)
    with_slos = [f for f in names if config.for_feature(f) and config.for_feature(f).objectives]
    start = min(
        [period.since - timedelta(minutes=longest_alert)]
        + [period.until - timedelta(days=config.features[f].window_days) for f in with_slos]
    )
    series = count_events(store, config, start, period.until, with_slos)
    wow = overview(store, period.since, period.until)
    wow_rows = {r["feature"]: r for r in wow.iter_rows(named=True)} if not wow.is_empty() else {}
    # The cost per model and per day of every feature: one pass over the week's rollups.
    by_model: dict[str, dict[str, tuple[int, float]]] = {}
    by_day: dict[str, dict[date, float]] = {}
    for feature, day, model, n, cost in store.rows(
        """SELECT feature, CAST(date_trunc('day', bucket) AS DATE), coalesce(model, '(none)'),
                  sum(requests), coalesce(sum(cost_sum), 0)
           FROM rollup_5m WHERE bucket >= ? AND bucket < ? GROUP BY ALL""",
        [period.since, period.until],
    ):
        models = by_model.setdefault(feature, {})
        requests, spent = models.get(model, (0, 0.0))
        models[model] = (requests + int(n), spent + float(cost))
        days = by_day.setdefault(feature, {})
        days[day] = days.get(day, 0.0) + float(cost)
    costs = {
        feature: sorted(((m, n, c) for m, (n, c) in models.items()), key=lambda r: (-r[2], r[0]))
        for feature, models in by_model.items()
    }
    out = []
    for name in names:
        slos = config.for_feature(name)
        statuses = (
            tuple(
                slo_status(
                    series[name], slos, o, period.until, config.alerts, period.since, config.min_requests
                )
                for o in slos.objectives
            )
            if name in series
            else ()
        )
        row = wow_rows.get(name, {})
        by_model = costs.get(name, [])
        requests = sum(n for _, n, _ in by_model)
        cost = sum(c for _, _, c in by_model) if by_model else None
        out.append(
            FeatureReview(
                feature=name,
                requests=requests,
                cost_usd=cost,
                slos=statuses,
                has_slos=bool(statuses),
                week_over_week={k: (row.get(f"{col}_prev"), row.get(col)) for k, col in WOW_METRICS.items()},
                daily=_daily(store, name, period),
                cost_by_model=by_model,
                cost_budget=_cost_budget(slos, by_day.get(name, {}), requests, cost),
            )
        )
    return out


def _daily(store: Store, feature: str, period: Period) -> dict[str, list]:
    df = timeline(store, feature, period.since - WEEK, period.until, bucket="1 day")
    if df.is_empty():
        return {k: [] for k in WOW_METRICS}
    return {
        k: list(zip(df["bucket"].to_list(), df[col].to_list(), strict=True)) for k, col in WOW_METRICS.items()
    }


def _cost_budget(slos, days: dict[date, float], requests: int, cost: float | None) -> dict[str, Any] | None:
    if slos is None or slos.cost is None:
        return None
    per_request = cost / requests if requests and cost is not None else None
    budget: dict[str, Any] = {
        "per_request_usd": slos.cost.per_request_usd,
        "actual_per_request_usd": _num(per_request),
        "per_day_usd": slos.cost.per_day_usd,
        "max_day_usd": _num(max(days.values(), default=None), 4),
        "days_over": None,
        "within": None,
    }
    checks = []
    if slos.cost.per_request_usd is not None and per_request is not None:
        checks.append(per_request <= slos.cost.per_request_usd)
    if slos.cost.per_day_usd is not None and days:
        over = sum(1 for c in days.values() if c > slos.cost.per_day_usd)
        budget["days_over"] = over
        checks.append(over == 0)
    budget["within"] = all(checks) if checks else None
    return budget


def _has_ledger(data_dir: Path) -> bool:
    return (Path(data_dir) / "ledger.sqlite").exists()


def _incidents(
    data_dir: Path, period: Period, every: list[Incident]
) -> tuple[list[IncidentReview], list[IncidentReview]]:
    """The incidents of the period, and those opened before it that are still open."""
    of_period, still_open = [], []
    for inc in every:
        start = inc.onset or inc.opened_at
        if period.since <= inc.opened_at < period.until or period.since <= start < period.until:
            of_period.append(incident_review(data_dir, inc))
        elif inc.opened_at < period.since:
            review = incident_review(data_dir, inc)
            if review.status != "resolved" or review.open_action_items:
                still_open.append(review)
    return sorted(of_period, key=lambda i: i.opened_at), sorted(still_open, key=lambda i: i.opened_at)


def incident_review(data_dir: Path, inc: Incident) -> IncidentReview:
    """TTD, TTM and TTR as the post-mortem computes them: from the onset to the opening, to
    the first verified rollback, to the first time resolved."""
    mitigated = first_verified_rollback(action_entries(data_dir, inc))
    resolved = inc.first_time_in("resolved")

    def minutes(t: datetime | None) -> float | None:
        return None if t is None or inc.onset is None else (t - inc.onset).total_seconds() / 60

    open_items = sum(1 for i in inc.action_items.values() if not i.get("done"))
    return IncidentReview(
        id=inc.id,
        title=inc.title,
        severity=inc.severity,
        status=inc.status,
        features=tuple(inc.features),
        opened_at=inc.opened_at,
        ttd_min=minutes(inc.opened_at),
        ttm_min=minutes(mitigated),
        ttr_min=minutes(resolved),
        rolled_back=mitigated is not None,
        detected_by="tool" if inc.source in TOOL_SOURCES else "person",
        open_action_items=open_items,
    )
