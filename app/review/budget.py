"""Error budgets, burn rates and multiwindow burn-rate alerts (the SRE workbook's method).

For an objective of target `o` over a window with `total` events of which `bad` were bad:
- attainment = 1 - bad / total (None with no events, or fewer than `min_requests`);
- budget_total = (1 - o) * total: the bad events the objective allows;
- budget_spent = bad; budget_remaining = budget_total - budget_spent (negative: overspent);
- the burn rate over a window = (bad / total in that window) / (1 - o): 1 spends the budget
  exactly over the SLO window, 14.4 spends 2% of a 30-day budget in an hour.

An alert rule fires at a moment when the burn rate over both its long and its short window
is at least its threshold; a window with no events has no burn rate and fires nothing.
Moments are the ends of five-minute buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from app.review.sli import STEP, Series
from app.review.slos import AlertRule, FeatureSlos, Objective
from app.timestamps import machine

BURN_WINDOWS: dict[str, int] = {"5m": 5, "30m": 30, "1h": 60, "6h": 360, "3d": 4320}
_STEP_MIN = int(STEP.total_seconds() // 60)


def iso_z(t: datetime | None) -> str | None:
    return None if t is None else machine(t)


@dataclass(frozen=True)
class Alert:
    feature: str
    slo: str
    rule: str
    severity: str
    threshold: float
    start: datetime  # first moment both windows burned at or above the threshold
    end: datetime  # last such moment
    peak_burn_rate: float  # the long window's highest burn rate while firing

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "threshold": self.threshold,
            "start": iso_z(self.start),
            "end": iso_z(self.end),
            "peak_burn_rate": round(self.peak_burn_rate, 3),
        }

    @property
    def key(self) -> str:
        """Stable identity of one alert episode: sent once, whatever the number of looks."""
        return f"{self.feature}|{self.slo}|{self.rule}|{iso_z(self.start)}"


@dataclass(frozen=True)
class SloStatus:
    feature: str
    objective: Objective
    window_days: float
    window_since: datetime
    until: datetime
    events: int
    bad: int
    attainment: float | None
    budget_total: float | None
    budget_spent: int | None
    budget_remaining: float | None
    burn_rates: dict[str, float | None]
    alerts: tuple[Alert, ...] = ()
    reason: str | None = None  # why attainment is None
    burndown: list[tuple[datetime, float]] = field(default_factory=list)

    @property
    def met(self) -> bool | None:
        return None if self.attainment is None else self.attainment >= self.objective.objective

    @property
    def budget_remaining_share(self) -> float | None:
        if not self.budget_total or self.budget_remaining is None:
            return None
        return self.budget_remaining / self.budget_total

    def as_dict(self) -> dict[str, Any]:
        o = self.objective
        return {
            "name": o.name,
            "sli": o.sli,
            "objective": o.objective,
            "threshold": o.threshold,
            "window_days": self.window_days,
            "events": self.events,
            "bad": self.bad,
            "attainment": _round(self.attainment),
            "met": self.met,
            "budget_total": _round(self.budget_total, 3),
            "budget_spent": self.budget_spent,
            "budget_remaining": _round(self.budget_remaining, 3),
            "budget_remaining_share": _round(self.budget_remaining_share),
            "burn_rates": {k: _round(v, 4) for k, v in self.burn_rates.items()},
            "alerts": [a.as_dict() for a in self.alerts],
            "reason": self.reason,
        }


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


def _cumsum(a: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(a)])


def burn_rate_series(total: np.ndarray, bad: np.ndarray, objective: float, window_min: int) -> np.ndarray:
    """Burn rate over the `window_min` minutes ending at the end of each bucket; NaN where
    that window holds no event. Entry i covers buckets (i - w + 1 .. i)."""
    w = max(window_min // _STEP_MIN, 1)
    ct, cb = _cumsum(total), _cumsum(bad)
    idx = np.arange(1, len(total) + 1)
    lo = np.maximum(idx - w, 0)
    n = ct[idx] - ct[lo]
    b = cb[idx] - cb[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, b / n / (1 - objective), np.nan)


def burn_rate(
    total: np.ndarray, bad: np.ndarray, objective: float, window_min: int, end: int
) -> float | None:
    """Burn rate over the window ending at bucket index `end` (exclusive)."""
    w = max(window_min // _STEP_MIN, 1)
    n = int(total[max(end - w, 0) : end].sum())
    if n == 0:
        return None
    return float(bad[max(end - w, 0) : end].sum()) / n / (1 - objective)


def find_alerts(
    series: Series, objective: Objective, rules: tuple[AlertRule, ...], since: datetime, until: datetime
) -> tuple[Alert, ...]:
    """Alert episodes whose firing moments fall in [since, until]: runs of consecutive
    five-minute moments at which both windows of a rule burned at or above its threshold."""
    total, bad = series.events(objective.sli)
    lo, hi = series.index(since), series.index(until)
    alerts = []
    for rule in rules:
        long_rate = burn_rate_series(total, bad, objective.objective, rule.long_min)
        short_rate = burn_rate_series(total, bad, objective.objective, rule.short_min)
        firing = (long_rate >= rule.burn_rate) & (short_rate >= rule.burn_rate)  # NaN: False
        firing[:lo] = False
        firing[hi:] = False
        i = lo
        while i < hi:
            if not firing[i]:
                i += 1
                continue
            j = i
            while j + 1 < hi and firing[j + 1]:
                j += 1
            alerts.append(
                Alert(
                    series.feature,
                    objective.name,
                    rule.name,
                    rule.severity,
                    rule.burn_rate,
                    series.time(i + 1),
                    series.time(j + 1),
                    float(np.nanmax(long_rate[i : j + 1])),
                )
            )
            i = j + 1
    return tuple(sorted(alerts, key=lambda a: (a.start, a.rule)))


def slo_status(
    series: Series,
    slos: FeatureSlos,
    objective: Objective,
    until: datetime,
    rules: tuple[AlertRule, ...],
    alert_since: datetime,
    min_requests: int,
    burndown_step: timedelta = timedelta(hours=6),
) -> SloStatus:
    """One objective over its rolling window ending at `until`, with the burn rates at
    `until` and the alerts that fired in [alert_since, until]."""
    window_since = until - timedelta(days=slos.window_days)
    total, bad = series.events(objective.sli)
    lo, hi = series.index(window_since), series.index(until)
    n, b = int(total[lo:hi].sum()), int(bad[lo:hi].sum())
    rates = {
        name: burn_rate(total, bad, objective.objective, minutes, hi)
        for name, minutes in BURN_WINDOWS.items()
    }
    alerts = find_alerts(series, objective, rules, alert_since, until)
    common = dict(
        feature=series.feature,
        objective=objective,
        window_days=slos.window_days,
        window_since=window_since,
        until=until,
        events=n,
        bad=b,
        burn_rates=rates,
        alerts=alerts,
    )
    if n == 0:
        return SloStatus(
            **common,
            attainment=None,
            budget_total=None,
            budget_spent=None,
            budget_remaining=None,
            reason="no events in the window",
        )
    if n < min_requests:
        return SloStatus(
            **common,
            attainment=None,
            budget_total=None,
            budget_spent=None,
            budget_remaining=None,
            reason=f"too few events to judge ({n} < {min_requests})",
        )
    allowed = (1 - objective.objective) * n
    step = max(int(burndown_step // STEP), 1)
    spent = np.cumsum(bad[lo:hi])
    burndown = [
        (series.time(lo + k), 1 - float(spent[k - 1] if k else 0) / allowed)
        for k in range(0, hi - lo + 1, step)
    ]
    return SloStatus(
        **common,
        attainment=1 - b / n,
        budget_total=allowed,
        budget_spent=b,
        budget_remaining=allowed - b,
        burndown=burndown,
    )
