"""Detection and guardrail thresholds: defaults embedded here, overrides in `detection.yaml`.

The file lives in the data directory (`<data_dir>/detection.yaml`); every key is optional and
a missing file means the defaults. A bad value is an error that names the file and the key.
docs/detection.md is the reference for every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.configuration import ConfigFileError, Document, load_yaml

THRESHOLDS_FILE = "detection.yaml"

# Which direction is worse, per metric: +1 higher is worse, -1 lower is worse.
METRIC_DIRECTION: dict[str, int] = {
    "quality_score": -1,
    "error_rate": 1,
    "latency_p95_ms": 1,
    "cost_per_request_usd": 1,
    "negative_feedback_rate": 1,
}
METRIC_NAMES: tuple[str, ...] = tuple(METRIC_DIRECTION)


class ThresholdsError(ConfigFileError):
    """A thresholds file that cannot be used; the message names the file, the line and the key."""


@dataclass(frozen=True)
class MetricThreshold:
    """A degradation counts only when it is at least `min_effect` (absolute, in the metric's
    unit) and at least `min_relative` (a fraction of the baseline), with `min_samples`
    observations on each side of the onset."""

    min_effect: float = 0.0
    min_relative: float = 0.0
    min_samples: int = 50


@dataclass(frozen=True)
class LadderStep:
    percent: float
    min_hours: float
    min_samples: int


@dataclass(frozen=True)
class Thresholds:
    significance: float = 0.01
    lookback_days: float = 7.0
    min_window_hours: float = 1.0
    metrics: dict[str, MetricThreshold] = field(default_factory=lambda: dict(DEFAULT_METRICS))
    scope_coverage: float = 0.7
    scope_max_share: float = 0.6
    suspect_min_score: float = 0.05
    ladder: tuple[LadderStep, ...] = ()
    guardrail_metrics: tuple[str, ...] = ("error_rate", "quality_score", "latency_p95_ms")
    guardrail_significance: float = 0.05

    def metric(self, name: str) -> MetricThreshold:
        return self.metrics[name]


DEFAULT_METRICS: dict[str, MetricThreshold] = {
    "quality_score": MetricThreshold(min_effect=0.02, min_relative=0.0, min_samples=50),
    "error_rate": MetricThreshold(min_effect=0.005, min_relative=0.25, min_samples=200),
    "latency_p95_ms": MetricThreshold(min_effect=0.0, min_relative=0.20, min_samples=100),
    "cost_per_request_usd": MetricThreshold(min_effect=0.0, min_relative=0.15, min_samples=100),
    "negative_feedback_rate": MetricThreshold(min_effect=0.03, min_relative=0.20, min_samples=50),
}

DEFAULT_LADDER: tuple[LadderStep, ...] = (
    LadderStep(1, 4, 200),
    LadderStep(5, 24, 1000),
    LadderStep(20, 48, 2000),
    LadderStep(50, 24, 5000),
    LadderStep(100, 0, 0),
)

DEFAULTS = Thresholds(ladder=DEFAULT_LADDER)


def thresholds_path(data_dir: Path) -> Path:
    return Path(data_dir) / THRESHOLDS_FILE


def load_thresholds(data_dir: Path | None = None, path: Path | None = None) -> Thresholds:
    """The defaults, overridden by the YAML file when it exists. Raises ThresholdsError.

    The shape and ranges are checked by schemas/detection.json; this module checks only what
    a schema cannot say: ladder steps that grow and end at 100 percent."""
    if path is None:
        if data_dir is None:
            return DEFAULTS
        path = thresholds_path(data_dir)
    path = Path(path)
    if not path.exists():
        return DEFAULTS
    doc = load_yaml(path, "detection", error=ThresholdsError, empty={}, vocabularies={"metric": METRIC_NAMES})
    return parse_thresholds(doc)


def parse_thresholds(doc: Document) -> Thresholds:
    """Thresholds from a document that passed the schema."""
    data: dict[str, Any] = doc.data
    changes: dict[str, Any] = {}
    for key in ("significance", "lookback_days", "min_window_hours"):
        if key in data:
            changes[key] = float(data[key])
    if "metrics" in data:
        changes["metrics"] = _metrics(data["metrics"])
    scope = data.get("scope") or {}
    if "coverage" in scope:
        changes["scope_coverage"] = float(scope["coverage"])
    if "max_share" in scope:
        changes["scope_max_share"] = float(scope["max_share"])
    suspects = data.get("suspects") or {}
    if "min_score" in suspects:
        changes["suspect_min_score"] = float(suspects["min_score"])
    rollout = data.get("rollout") or {}
    if "steps" in rollout:
        changes["ladder"] = _ladder(doc, rollout["steps"])
    if "metrics" in rollout:
        changes["guardrail_metrics"] = tuple(rollout["metrics"])
    if "significance" in rollout:
        changes["guardrail_significance"] = float(rollout["significance"])
    return replace(DEFAULTS, **changes)


def _metrics(section: dict[str, dict[str, Any]]) -> dict[str, MetricThreshold]:
    out = dict(DEFAULT_METRICS)
    for name, settings in section.items():
        current = out[name]
        out[name] = MetricThreshold(
            min_effect=float(settings.get("min_effect", current.min_effect)),
            min_relative=float(settings.get("min_relative", current.min_relative)),
            min_samples=int(settings.get("min_samples", current.min_samples)),
        )
    return out


def _ladder(doc: Document, steps: list[dict[str, Any]]) -> tuple[LadderStep, ...]:
    out: list[LadderStep] = []
    problems = []
    for i, step in enumerate(steps):
        percent = float(step["percent"])
        if out and percent <= out[-1].percent:
            problems.append(
                doc.problem(
                    ("rollout", "steps", i, "percent"),
                    f"expected more than the step before ({out[-1].percent:g}), "
                    f"got {percent:g}: percent must grow from step to step",
                )
            )
        out.append(
            LadderStep(
                percent=percent,
                min_hours=float(step.get("min_hours", 0.0)),
                min_samples=int(step.get("min_samples", 0)),
            )
        )
    if out[-1].percent != 100:
        problems.append(
            doc.problem(
                ("rollout", "steps", len(steps) - 1, "percent"),
                f"expected the last step to be 100 percent, got {out[-1].percent:g}",
            )
        )
    if problems:
        raise ThresholdsError(problems)
    return tuple(out)
