"""Service-level objectives as data: `<data_dir>/slos.yaml`, validated on load.

    window_days: 28            # rolling window of every objective (default 28)
    min_requests: 100          # fewer requests in a window: too few to judge
    failure_horizon_hours: 24  # a change rolled back or blamed within this is failed
    alerts:                    # multiwindow burn-rate rules (defaults: the SRE workbook's)
      - {name: page-fast, severity: page, burn_rate: 14.4, long: 1h, short: 5m}
    features:
      support-reply:
        objectives:
          - {name: availability, sli: success_rate, objective: 0.99}
          - {name: fast, sli: latency, threshold_ms: 3000, objective: 0.95}
          - {name: good-answers, sli: quality, threshold: 0.7, objective: 0.9}
          - {name: happy-users, sli: feedback, objective: 0.85}
        cost: {per_request_usd: 0.002, per_day_usd: 40}

A feature with no entry has no objective: the review says so, it invents none. The shape and
ranges are checked by `app/configuration/schemas/slos.json`; this module checks what a
schema cannot say (windows that parse and a short window shorter than the long one, one
objective per SLI, the threshold each SLI needs). Every error names the file, the line and
the key, and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.configuration import ConfigFileError, Document, Problem, check, load_yaml

SLOS_FILE = "slos.yaml"
SLIS: dict[str, str] = {
    "success_rate": "share of requests without an error",
    "latency": "share of requests faster than threshold_ms",
    "quality": "share of scored requests with quality_score >= threshold",
    "feedback": "share of feedback that is not negative",
}
# The threshold key each SLI needs; the other SLIs take none.
THRESHOLD_KEYS: dict[str, str] = {"latency": "threshold_ms", "quality": "threshold"}
THRESHOLD_NEEDS: dict[str, str] = {"threshold_ms": "in milliseconds", "threshold": "a score in [0, 1]"}
SEVERITIES: tuple[str, ...] = ("page", "ticket")
WINDOW_UNITS = {"m": 1, "h": 60, "d": 1440}
VOCABULARIES = {"sli": tuple(SLIS), "severity": SEVERITIES}


class SloConfigError(ConfigFileError):
    """slos.yaml cannot be used; the message names the file, the line and the key."""


@dataclass(frozen=True)
class AlertRule:
    """Alert when the burn rate over both `long_min` and `short_min` is >= burn_rate."""

    name: str
    severity: str  # one of SEVERITIES
    burn_rate: float
    long_min: int
    short_min: int


DEFAULT_ALERTS: tuple[AlertRule, ...] = (
    AlertRule("page-fast", "page", 14.4, 60, 5),
    AlertRule("page-slow", "page", 6.0, 360, 30),
    AlertRule("ticket", "ticket", 1.0, 3 * 1440, 360),
)


@dataclass(frozen=True)
class Objective:
    name: str
    sli: str  # one of SLIS
    objective: float  # target share of good events, in (0, 1)
    threshold: float | None = None  # latency_ms for latency, score for quality


@dataclass(frozen=True)
class CostBudget:
    per_request_usd: float | None = None
    per_day_usd: float | None = None


@dataclass(frozen=True)
class FeatureSlos:
    feature: str
    window_days: float
    objectives: tuple[Objective, ...] = ()
    cost: CostBudget | None = None


@dataclass(frozen=True)
class SloConfig:
    window_days: float = 28.0
    min_requests: int = 100
    failure_horizon_hours: float = 24.0
    alerts: tuple[AlertRule, ...] = DEFAULT_ALERTS
    features: dict[str, FeatureSlos] = field(default_factory=dict)
    path: Path | None = None

    def for_feature(self, feature: str) -> FeatureSlos | None:
        return self.features.get(feature)


def slos_path(data_dir: Path) -> Path:
    return Path(data_dir) / SLOS_FILE


def load_slos(data_dir: Path | None = None, path: Path | None = None) -> SloConfig:
    """The SLOs of a data directory; no file (or an empty one) means no objectives and the
    default alert rules. Raises SloConfigError listing every problem of the file."""
    path = Path(path) if path is not None else slos_path(Path(data_dir or "."))
    if not path.exists():
        return SloConfig()
    doc = load_yaml(path, "slos", error=SloConfigError, empty={}, vocabularies=VOCABULARIES)
    return parse_slos(doc, path)


def parse_window(text: Any) -> int | None:
    """`5m`, `1h`, `3d` as minutes; None when not of that form."""
    if not isinstance(text, str) or len(text) < 2 or text[-1] not in WINDOW_UNITS:
        return None
    try:
        n = float(text[:-1])
    except ValueError:
        return None
    minutes = n * WINDOW_UNITS[text[-1]]
    return int(minutes) if n > 0 and minutes == int(minutes) else None


def parse_slos(doc: Document | Any, path: Path | None = None) -> SloConfig:
    """The SLOs of a document read by `load_slos`, or of a plain mapping built in code (checked
    against the same schema; its messages name no line). Raises SloConfigError."""
    built_in_code = not isinstance(doc, Document)
    if built_in_code:
        doc = Document(path=Path(path or SLOS_FILE), data={} if doc is None else doc)
        _raise_any(check(doc, "slos", VOCABULARIES), built_in_code)
    top: dict[str, Any] = doc.data
    problems: list[Problem] = []
    window = float(top.get("window_days", 28))
    alerts = DEFAULT_ALERTS if "alerts" not in top else _alerts(doc, top["alerts"], problems)
    features = {
        str(name): _feature(doc, name, spec, window, problems)
        for name, spec in (top.get("features") or {}).items()
    }
    _raise_any(problems, built_in_code)
    return SloConfig(
        window_days=window,
        min_requests=int(top.get("min_requests", 100)),
        failure_horizon_hours=float(top.get("failure_horizon_hours", 24)),
        alerts=alerts,
        features=features,
        path=path,
    )


def _raise_any(problems: list[Problem], built_in_code: bool) -> None:
    if built_in_code:  # a mapping built in code has no lines to name
        problems = [replace(p, line=None) for p in problems]
    if problems:
        raise SloConfigError(problems)


def _alerts(doc: Document, rules: list[dict[str, Any]], problems: list[Problem]) -> tuple[AlertRule, ...]:
    out = []
    for i, spec in enumerate(rules):
        at = ("alerts", i)
        windows = {w: parse_window(spec[w]) for w in ("long", "short")}
        for w, minutes in windows.items():
            if minutes is None:
                problems.append(
                    doc.problem(
                        (*at, w),
                        f"expected a window like 5m, 1h or 3d "
                        f"(a whole number of minutes > 0), got {spec[w]!r}",
                    )
                )
        if None in windows.values():
            continue
        if windows["short"] >= windows["long"]:
            problems.append(
                doc.problem(
                    (*at, "short"),
                    f"the short window ({spec['short']}) must be shorter than the long one ({spec['long']})",
                )
            )
            continue
        out.append(
            AlertRule(
                str(spec.get("name", f"rule-{i + 1}")),
                spec.get("severity", "page"),
                float(spec["burn_rate"]),
                windows["long"],
                windows["short"],
            )
        )
    return tuple(out)


def _feature(
    doc: Document, name: Any, spec: dict[str, Any], default_window: float, problems: list[Problem]
) -> FeatureSlos:
    at: tuple = ("features", name)
    objectives: list[Objective] = []
    seen: dict[str, int] = {}
    for i, o in enumerate(spec.get("objectives") or []):
        okeys = (*at, "objectives", i)
        sli = o["sli"]
        if sli in seen:
            # One threshold per SLI and feature keeps the review to one pass over the requests.
            first = (*at, "objectives", seen[sli])
            where = f", line {doc.line(first)}" if doc.lines else ""
            problems.append(
                doc.problem(
                    (*okeys, "sli"),
                    f"{name} already has a {sli} objective (objectives[{seen[sli]}]{where}); one per SLI",
                )
            )
            continue
        seen[sli] = i
        needed = THRESHOLD_KEYS.get(sli)
        if needed and needed not in o:
            problems.append(
                doc.problem(
                    (*okeys, needed), f"missing; a {sli} objective needs {needed} ({THRESHOLD_NEEDS[needed]})"
                )
            )
        for key, belongs in ((k, s) for s, k in THRESHOLD_KEYS.items()):
            if key in o and sli != belongs:
                problems.append(doc.problem((*okeys, key), f"only a {belongs} objective takes {key}"))
        threshold = float(o[needed]) if needed and needed in o else None
        objectives.append(Objective(str(o.get("name", sli)), sli, float(o["objective"]), threshold))
    cost = None
    if "cost" in spec:
        cost = CostBudget(
            *(
                float(spec["cost"][k]) if k in spec["cost"] else None
                for k in ("per_request_usd", "per_day_usd")
            )
        )
    return FeatureSlos(str(name), float(spec.get("window_days", default_window)), tuple(objectives), cost)
