"""Detection and guardrail thresholds: defaults embedded here, overrides in `detection.yaml`.

The file lives in the data directory (`<data_dir>/detection.yaml`); every key is optional and
a missing file means the defaults. A bad value is an error that names the file and the key.
docs/detection.md is the reference for every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.textfiles import FileProblem, load_yaml

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


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used; the message names the file and the key."""


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

_TOP_KEYS = {"significance", "lookback_days", "min_window_hours", "metrics", "scope",
             "suspects", "rollout"}


def thresholds_path(data_dir: Path) -> Path:
    return Path(data_dir) / THRESHOLDS_FILE


def load_thresholds(data_dir: Path | None = None, path: Path | None = None) -> Thresholds:
    """The defaults, overridden by the YAML file when it exists. Raises ThresholdsError."""
    if path is None:
        if data_dir is None:
            return DEFAULTS
        path = thresholds_path(data_dir)
    path = Path(path)
    if not path.exists():
        return DEFAULTS
    try:
        doc = load_yaml(path) or {}
    except FileProblem as exc:
        raise ThresholdsError(str(exc)) from None
    if not isinstance(doc, dict):
        raise ThresholdsError(f"{path}: expected a mapping at the top level")
    return parse_thresholds(doc, str(path))


def parse_thresholds(doc: dict[str, Any], where: str = "thresholds") -> Thresholds:
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ThresholdsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"expected {', '.join(sorted(_TOP_KEYS))}")
    t = DEFAULTS
    changes: dict[str, Any] = {}
    if "significance" in doc:
        changes["significance"] = _number(doc, "significance", where, lo=0, hi=0.5, open_lo=True)
    if "lookback_days" in doc:
        changes["lookback_days"] = _number(doc, "lookback_days", where, lo=0)
    if "min_window_hours" in doc:
        changes["min_window_hours"] = _number(doc, "min_window_hours", where, lo=1)
    if "metrics" in doc:
        changes["metrics"] = _metrics(doc["metrics"], where)
    scope = _section(doc, "scope", where)
    if "coverage" in scope:
        changes["scope_coverage"] = _number(scope, "coverage", f"{where} scope", lo=0.5, hi=1)
    if "max_share" in scope:
        changes["scope_max_share"] = _number(scope, "max_share", f"{where} scope", lo=0, hi=1)
    suspects = _section(doc, "suspects", where)
    if "min_score" in suspects:
        changes["suspect_min_score"] = _number(suspects, "min_score", f"{where} suspects", lo=0, hi=1)
    rollout = _section(doc, "rollout", where)
    if "steps" in rollout:
        changes["ladder"] = _ladder(rollout["steps"], f"{where} rollout.steps")
    if "metrics" in rollout:
        names = rollout["metrics"]
        if not isinstance(names, list) or any(n not in METRIC_DIRECTION for n in names):
            raise ThresholdsError(f"{where} rollout.metrics: expected a list of "
                                  f"{', '.join(METRIC_NAMES)}")
        changes["guardrail_metrics"] = tuple(names)
    if "significance" in rollout:
        changes["guardrail_significance"] = _number(rollout, "significance", f"{where} rollout",
                                                    lo=0, hi=0.5, open_lo=True)
    return replace(t, **changes)


def _section(doc: dict, key: str, where: str) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise ThresholdsError(f"{where}: {key} must be a mapping")
    return value


def _number(doc: dict, key: str, where: str, lo: float | None = None, hi: float | None = None,
            open_lo: bool = False) -> float:
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ThresholdsError(f"{where}: {key} must be a number, got {value!r}")
    if lo is not None and (value < lo or (open_lo and value == lo)):
        raise ThresholdsError(f"{where}: {key} must be {'>' if open_lo else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        raise ThresholdsError(f"{where}: {key} must be <= {hi}, got {value}")
    return float(value)


def _metrics(section: Any, where: str) -> dict[str, MetricThreshold]:
    if not isinstance(section, dict):
        raise ThresholdsError(f"{where}: metrics must be a mapping of metric name to settings")
    out = dict(DEFAULT_METRICS)
    for name, settings in section.items():
        key = f"{where} metrics.{name}"
        if name not in METRIC_DIRECTION:
            raise ThresholdsError(f"{key}: unknown metric; expected one of {', '.join(METRIC_NAMES)}")
        if not isinstance(settings, dict):
            raise ThresholdsError(f"{key}: expected a mapping with min_effect, min_relative, "
                                  f"min_samples")
        extra = set(settings) - {"min_effect", "min_relative", "min_samples"}
        if extra:
            raise ThresholdsError(f"{key}: unknown key(s) {', '.join(sorted(extra))}")
        current = out[name]
        out[name] = MetricThreshold(
            min_effect=_number(settings, "min_effect", key, lo=0)
            if "min_effect" in settings else current.min_effect,
            min_relative=_number(settings, "min_relative", key, lo=0)
            if "min_relative" in settings else current.min_relative,
            min_samples=int(_number(settings, "min_samples", key, lo=1))
            if "min_samples" in settings else current.min_samples,
        )
    return out


def _ladder(steps: Any, where: str) -> tuple[LadderStep, ...]:
    if not isinstance(steps, list) or not steps:
        raise ThresholdsError(f"{where}: expected a non-empty list of steps")
    out: list[LadderStep] = []
    for i, step in enumerate(steps):
        key = f"{where}[{i}]"
        if not isinstance(step, dict) or "percent" not in step:
            raise ThresholdsError(f"{key}: expected a mapping with percent, min_hours, min_samples")
        percent = _number(step, "percent", key, lo=0, hi=100, open_lo=True)
        if out and percent <= out[-1].percent:
            raise ThresholdsError(f"{key}: percent must grow from step to step")
        out.append(LadderStep(
            percent=percent,
            min_hours=_number(step, "min_hours", key, lo=0) if "min_hours" in step else 0.0,
            min_samples=int(_number(step, "min_samples", key, lo=0)) if "min_samples" in step else 0,
        ))
    if out[-1].percent != 100:
        raise ThresholdsError(f"{where}: the last step must be 100 percent")
    return tuple(out)
