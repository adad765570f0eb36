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

A feature with no entry has no objective: the review says so, it invents none. Every error
names the file, the line and the key, and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SLOS_FILE = "slos.yaml"
SLIS: dict[str, str] = {
    "success_rate": "share of requests without an error",
    "latency": "share of requests faster than threshold_ms",
    "quality": "share of scored requests with quality_score >= threshold",
    "feedback": "share of feedback that is not negative",
}
WINDOW_UNITS = {"m": 1, "h": 60, "d": 1440}


class SloConfigError(ValueError):
    """slos.yaml cannot be used; the message names the file, line and key."""


@dataclass(frozen=True)
class AlertRule:
    """Alert when the burn rate over both `long_min` and `short_min` is >= burn_rate."""

    name: str
    severity: str  # page | ticket
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
    """The SLOs of a data directory; no file means no objectives (and default alert rules)."""
    path = Path(path) if path is not None else slos_path(Path(data_dir or "."))
    if not path.exists():
        return SloConfig()
    text = path.read_text()
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SloConfigError(f"{path}:{where} {problem}") from exc
    return parse_slos(doc or {}, _Lines(node), path)


class _Lines:
    """Line numbers of the keys and items of a composed YAML document."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.node = node

    def line(self, *keys: str | int) -> int | None:
        node, line = self.node, None
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if k.value == key), None)
                if found is None:
                    return line
                line, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
                line = node.start_mark.line + 1
            else:
                return line
        return line


class _Ctx:
    def __init__(self, path: Path | None, lines: _Lines) -> None:
        self.path, self.lines = path, lines

    def error(self, keys: tuple[str | int, ...], message: str) -> SloConfigError:
        line = self.lines.line(*keys)
        dotted = ".".join(str(k) if isinstance(k, str) else f"[{k}]" for k in keys).replace(".[", "[")
        where = f"{self.path or SLOS_FILE}" + (f": line {line}" if line else "")
        return SloConfigError(f"{where}: {dotted}: {message}")

    def mapping(self, value: Any, keys: tuple, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(keys, f"expected a mapping, got {_kind(value)}")
        unknown = sorted(str(k) for k in set(value) - allowed)
        if unknown:
            raise self.error((*keys, unknown[0]), f"unknown key; expected one of "
                                                  f"{', '.join(sorted(allowed))}")
        return value

    def number(self, value: Any, keys: tuple, lo: float | None = None, hi: float | None = None,
               open_range: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(keys, f"expected a number, got {_kind(value)} {value!r}")
        x = float(value)
        if open_range and ((lo is not None and x <= lo) or (hi is not None and x >= hi)):
            raise self.error(keys, f"expected a number strictly between {lo:g} and {hi:g}, got {x:g}")
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            bounds = f">= {lo:g}" if hi is None else f"between {lo:g} and {hi:g}"
            raise self.error(keys, f"expected a number {bounds}, got {x:g}")
        return x


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}.get(
        type(value), type(value).__name__)


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


def parse_slos(doc: Any, lines: _Lines | None = None, path: Path | None = None) -> SloConfig:
    ctx = _Ctx(path, lines or _Lines(None))
    top = ctx.mapping(doc, (), {"window_days", "min_requests", "failure_horizon_hours", "alerts",
                                "features"})
    window = ctx.number(top.get("window_days", 28), ("window_days",), lo=1, hi=366)
    min_requests = ctx.number(top.get("min_requests", 100), ("min_requests",), lo=1)
    horizon = ctx.number(top.get("failure_horizon_hours", 24), ("failure_horizon_hours",), lo=0.1)
    alerts = DEFAULT_ALERTS if "alerts" not in top else _alerts(ctx, top["alerts"])
    features_doc = top.get("features") or {}
    features_doc = ctx.mapping(features_doc, ("features",), set(features_doc) if isinstance(
        features_doc, dict) else set())
    features = {str(name): _feature(ctx, str(name), spec, window)
                for name, spec in features_doc.items()}
    return SloConfig(window_days=window, min_requests=int(min_requests),
                     failure_horizon_hours=horizon, alerts=alerts, features=features, path=path)


def _alerts(ctx: _Ctx, value: Any) -> tuple[AlertRule, ...]:
    if not isinstance(value, list) or not value:
        raise ctx.error(("alerts",), f"expected a non-empty list of rules, got {_kind(value)}")
    rules = []
    for i, item in enumerate(value):
        keys = ("alerts", i)
        spec = ctx.mapping(item, keys, {"name", "severity", "burn_rate", "long", "short"})
        for required in ("burn_rate", "long", "short"):
            if required not in spec:
                raise ctx.error(keys, f"missing key {required}")
        severity = spec.get("severity", "page")
        if severity not in ("page", "ticket"):
            raise ctx.error((*keys, "severity"), f"expected page or ticket, got {severity!r}")
        windows = {}
        for w in ("long", "short"):
            windows[w] = parse_window(spec[w])
            if windows[w] is None:
                raise ctx.error((*keys, w), f"expected a window like 5m, 1h or 3d, got {spec[w]!r}")
        if windows["short"] >= windows["long"]:
            raise ctx.error((*keys, "short"), f"the short window ({spec['short']}) must be "
                                              f"shorter than the long one ({spec['long']})")
        rules.append(AlertRule(str(spec.get("name", f"rule-{i + 1}")), severity,
                               ctx.number(spec["burn_rate"], (*keys, "burn_rate"), lo=0,
                                          hi=float("inf"), open_range=True),
                               windows["long"], windows["short"]))
    return tuple(rules)


def _feature(ctx: _Ctx, name: str, spec: Any, default_window: float) -> FeatureSlos:
    keys: tuple = ("features", name)
    spec = ctx.mapping(spec, keys, {"window_days", "objectives", "cost"})
    window = ctx.number(spec.get("window_days", default_window), (*keys, "window_days"), lo=1, hi=366)
    objectives: list[Objective] = []
    raw = spec.get("objectives") or []
    if not isinstance(raw, list):
        raise ctx.error((*keys, "objectives"), f"expected a list, got {_kind(raw)}")
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        okeys = (*keys, "objectives", i)
        o = ctx.mapping(item, okeys, {"name", "sli", "objective", "threshold_ms", "threshold"})
        sli = o.get("sli")
        if sli not in SLIS:
            raise ctx.error((*okeys, "sli"), f"expected one of {', '.join(SLIS)}, got {sli!r}")
        if sli in seen:
            # One threshold per SLI and feature keeps the review to one pass over the requests.
            raise ctx.error((*okeys, "sli"), f"{name} already has a {sli} objective "
                                             f"(objectives[{seen[sli]}]); one per SLI")
        seen[sli] = i
        if "objective" not in o:
            raise ctx.error(okeys, "missing key objective (the target share, e.g. 0.99)")
        target = ctx.number(o["objective"], (*okeys, "objective"), lo=0, hi=1, open_range=True)
        threshold = None
        if sli == "latency":
            if "threshold_ms" not in o:
                raise ctx.error(okeys, "a latency objective needs threshold_ms")
            threshold = ctx.number(o["threshold_ms"], (*okeys, "threshold_ms"), lo=0, hi=float("inf"),
                                   open_range=True)
        elif sli == "quality":
            if "threshold" not in o:
                raise ctx.error(okeys, "a quality objective needs threshold (a score in [0, 1])")
            threshold = ctx.number(o["threshold"], (*okeys, "threshold"), lo=0, hi=1)
        for extra, belongs in (("threshold_ms", "latency"), ("threshold", "quality")):
            if extra in o and sli != belongs:
                raise ctx.error((*okeys, extra), f"only a {belongs} objective takes {extra}")
        objectives.append(Objective(str(o.get("name", sli)), sli, target, threshold))
    cost = None
    if "cost" in spec:
        c = ctx.mapping(spec["cost"], (*keys, "cost"), {"per_request_usd", "per_day_usd"})
        if not c:
            raise ctx.error((*keys, "cost"), "expected per_request_usd and/or per_day_usd")
        cost = CostBudget(*(ctx.number(c[k], (*keys, "cost", k), lo=0, hi=float("inf"),
                                       open_range=True) if k in c else None
                            for k in ("per_request_usd", "per_day_usd")))
    return FeatureSlos(name, window, tuple(objectives), cost)
