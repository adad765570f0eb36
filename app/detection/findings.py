"""Typed results of an analysis; `as_dict()` gives the `analyze --json` contract."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.changes.events import ChangeEvent
from app.timestamps import machine


def iso_z(t: datetime | None) -> str | None:
    return machine(t)


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


@dataclass(frozen=True)
class Slice:
    dimension: str
    value: str
    share: float  # of the requests since the onset
    baseline: float | None
    current: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "value": self.value,
            "share": _num(self.share, 4),
            "baseline": _num(self.baseline),
            "current": _num(self.current),
        }


@dataclass(frozen=True)
class Scope:
    kind: str  # total | partial | single_user
    slices: tuple[Slice, ...] = ()
    coverage: float = 1.0  # share of the degradation the slices carry

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "slices": [s.as_dict() for s in self.slices]}


@dataclass(frozen=True)
class Suspect:
    change: ChangeEvent
    score: float
    evidence: str
    timing: float = 0.0
    coverage: float = 0.0
    purity: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        c = self.change
        return {
            "change_id": c.change_id,
            "timestamp": iso_z(c.timestamp),
            "feature": c.feature,
            "kind": c.kind,
            "key": c.key,
            "from": c.from_value,
            "to": c.to_value,
            "source": c.source,
            "score": round(self.score, 3),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Finding:
    feature: str
    metric: str
    onset: datetime
    end: datetime  # end of the degraded window (the analysis end while it lasts)
    baseline: float
    current: float
    p_value: float
    n_baseline: int
    n_current: int
    shape: str  # step | ramp | transient
    severity: float  # effect / minimum effect
    scope: Scope = field(default_factory=lambda: Scope("total"))
    suspects: tuple[Suspect, ...] = ()
    ended: datetime | None = None  # a transient's end; None while it lasts

    @property
    def duration(self) -> timedelta | None:
        """How long a transient lasted (None while ongoing)."""
        return None if self.ended is None else self.ended - self.onset

    @property
    def title(self) -> str:
        return f"{self.feature}: {self.metric} {_fmt(self.baseline)} -> {_fmt(self.current)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "metric": self.metric,
            "onset": iso_z(self.onset),
            "end": iso_z(self.ended),
            "baseline": _num(self.baseline),
            "current": _num(self.current),
            "p_value": float(f"{self.p_value:.3g}"),
            "scope": self.scope.as_dict(),
            "suspects": [s.as_dict() for s in self.suspects],
        }


@dataclass(frozen=True)
class Inconclusive:
    feature: str
    metric: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "metric": self.metric, "reason": self.reason}


@dataclass(frozen=True)
class CrossFeatureEvent:
    """The same metric breaking at the same time in several features, with no change of ours
    explaining it: said once (the per-feature findings stay)."""

    metric: str
    start: datetime
    end: datetime | None  # None while it lasts
    features: tuple[str, ...]

    @property
    def summary(self) -> str:
        until = f"{self.end:%H:%M}" if self.end else "ongoing"
        return (
            f"{len(self.features)} features at {self.start:%Y-%m-%d %H:%M}–{until} UTC "
            f"({self.metric}), no change of ours: likely the provider or a shared dependency"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "start": iso_z(self.start),
            "end": iso_z(self.end),
            "features": list(self.features),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class AnalysisResult:
    findings: tuple[Finding, ...]
    inconclusive: tuple[Inconclusive, ...]
    since: datetime | None = None
    until: datetime | None = None
    events: tuple[CrossFeatureEvent, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.as_dict() for f in self.findings],
            "inconclusive": [i.as_dict() for i in self.inconclusive],
            "events": [e.as_dict() for e in self.events],
        }


def _fmt(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.4g}"


def format_value(metric: str, x: float | None) -> str:
    """A metric value as a person reads it."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if metric in ("error_rate", "negative_feedback_rate"):
        return f"{100 * x:.2f}%"
    if metric == "latency_p95_ms":
        return f"{x:,.0f} ms"
    if metric == "cost_per_request_usd":
        return f"${x:.5f}"
    return f"{x:.3f}"
