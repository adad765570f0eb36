"""Playbooks: guided incident procedures, loaded from `playbooks/*.yaml` and validated on load.

A playbook says when it applies (features, metrics, change kinds, scope) and lists steps.
Each step belongs to a phase of the incident (detect, triage, rollback, communicate,
investigate, postmortem), has markdown instructions with placeholders filled from the
incident (`{feature}`, `{suspect_change}`, `{impact.requests}`, ...), optional checks to show
(a chart, a split, a query) and optional flag actions, which run through `app/actions.py`
like every other flag action. docs/playbooks.md is the reference for the format.

Every problem in a file is reported with the file, the line, the key and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.storage.schema import CHANGE_KINDS, SPLIT_DIMENSIONS
from app.textfiles import FileProblem, read_text, yaml_problem

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"

PHASES: tuple[str, ...] = ("detect", "triage", "rollback", "communicate", "investigate", "postmortem")
METRICS: tuple[str, ...] = (
    "error_rate", "quality_mean", "latency_p95_ms", "cost_per_request_usd", "negative_feedback_rate",
    "requests",
)
SCOPE_KINDS: tuple[str, ...] = ("total", "partial", "single_user")
# "none": no change of ours explains it (a provider outage); "silent_update": a provider swap.
APPLIES_CHANGE_KINDS: tuple[str, ...] = (*CHANGE_KINDS, "silent_update", "none")
CHECK_KINDS: tuple[str, ...] = ("chart", "split", "query")

# The flag actions a step may offer (those of app/actions.py), with the parameters each
# accepts (name -> type). `pause` turns an agent's dry-run flag on: it logs instead of acting.
ACTIONS: dict[str, dict[str, type]] = {
    "kill": {},
    "resume": {},
    "rollout": {"percentage": float},
    "pin-model": {"version": str},
    "revert-prompt": {"version": str},
    "pause": {},
    "resume-agent": {},
}

# Placeholders instructions and templates may use; docs/playbooks.md explains each.
PLACEHOLDERS: tuple[str, ...] = (
    "incident_id", "title", "severity", "status", "commander", "comms_lead", "feature",
    "features", "metric", "onset", "opened_at", "now", "next_update", "playbook",
    "suspect_change", "suspect_change.kind", "suspect_change.key", "suspect_change.from",
    "suspect_change.to", "suspect_change.time", "suspect_change.author",
    "scope", "scope.kind", "scope.slice",
    "impact.requests", "impact.users", "impact.extra_errors", "impact.error_rate",
    "impact.baseline_error_rate", "impact.quality_delta", "impact.extra_cost", "impact.duration",
    "actions_done", "rollout_flag",
)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_READ_ONLY_SQL = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
_FORBIDDEN_SQL = re.compile(r"\b(insert|update|delete|drop|create|alter|attach|copy|pragma|install|load)\b",
                            re.IGNORECASE)


class PlaybookError(ValueError):
    """One or more problems in a playbook file; `errors` lists each, file and line included."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Check:
    kind: str  # chart | split | query
    title: str
    metric: str | None = None
    split: str | None = None
    sql: str | None = None


@dataclass(frozen=True)
class StepAction:
    action: str
    params: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.action}({args})" if args else self.action


@dataclass(frozen=True)
class Step:
    id: str
    phase: str
    title: str
    instructions: str
    checks: tuple[Check, ...] = ()
    actions: tuple[StepAction, ...] = ()


@dataclass(frozen=True)
class AppliesWhen:
    features: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    change_kinds: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    description: str
    applies_when: AppliesWhen
    steps: tuple[Step, ...]
    path: Path | None = None

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


# Loading ---------------------------------------------------------------------------------


def load_playbook(path: str | Path) -> Playbook:
    """Parse and validate one playbook file; raises PlaybookError listing every problem."""
    path = Path(path)
    try:
        text = read_text(path)
    except FileProblem as exc:
        raise PlaybookError([str(exc)]) from None
    return parse_playbook(text, path)


def parse_playbook(text: str, path: Path) -> Playbook:
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlaybookError([yaml_problem(exc, path)]) from None
    v = _Validator(path, _line_index(node))
    playbook = v.playbook(raw)
    if v.errors:
        raise PlaybookError(v.errors)
    assert playbook is not None
    return playbook


def load_playbooks(folder: str | Path = PLAYBOOKS_DIR) -> tuple[list[Playbook], list[str]]:
    """Every valid playbook in folder (sorted by id) and the errors of the invalid ones."""
    playbooks: list[Playbook] = []
    errors: list[str] = []
    seen: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            pb = load_playbook(path)
        except PlaybookError as exc:
            errors.extend(exc.errors)
            continue
        if pb.id in seen:
            errors.append(f"{path}: id: expected a unique id, {pb.id!r} is also used by {seen[pb.id]}")
            continue
        seen[pb.id] = path
        playbooks.append(pb)
    return sorted(playbooks, key=lambda p: p.id), errors


def _line_index(node: yaml.Node | None, path: tuple = ()) -> dict[tuple, int]:
    """Line number (1-based) of every key path in a composed YAML document."""
    lines: dict[tuple, int] = {}
    if node is None:
        return lines
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, key_node.value)
            lines.update(_line_index(value_node, key))
            lines[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, i)))
    return lines


class _Validator:
    """Collects every problem of one file, each naming the line and the key."""

    def __init__(self, path: Path, lines: dict[tuple, int]) -> None:
        self.path = path
        self.lines = lines
        self.errors: list[str] = []

    def fail(self, at: tuple, expected: str, got: Any = ...) -> None:
        line = None
        for i in range(len(at), -1, -1):
            line = self.lines.get(at[:i])
            if line is not None:
                break
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at).lstrip(".")
        tail = "" if got is ... else f", got {got!r}"
        self.errors.append(f"{self.path}: line {line or 1}: {key or '(top level)'}: "
                           f"expected {expected}{tail}")

    def text(self, raw: dict, at: tuple, key: str, required: bool = True) -> str:
        value = raw.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail((*at, key), "a non-empty string", value if key in raw else ...)
            return ""
        return value

    def choices(self, raw: dict, at: tuple, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        value = raw.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail((*at, key), f"a list of {', '.join(allowed)}", value)
            return ()
        for i, item in enumerate(value):
            if allowed and item not in allowed:
                self.fail((*at, key, i), f"one of {', '.join(allowed)}", item)
        return tuple(str(v) for v in value)

    def only(self, raw: dict, at: tuple, allowed: set[str]) -> None:
        for key in raw:
            if key not in allowed:
                self.fail((*at, key), f"a key among {', '.join(sorted(allowed))}", key)

    def placeholders(self, text: str, at: tuple) -> None:
        for name in _PLACEHOLDER.findall(text):
            if name not in PLACEHOLDERS:
                self.fail(at, f"placeholders among {{{'}, {'.join(PLACEHOLDERS)}}}", f"{{{name}}}")

    def playbook(self, raw: Any) -> Playbook | None:
        if not isinstance(raw, dict):
            self.fail((), "a mapping with id, title, applies_when and steps")
            return None
        self.only(raw, (), {"id", "title", "description", "applies_when", "steps"})
        pid = self.text(raw, (), "id")
        if pid and not _ID.match(pid):
            self.fail(("id",), "lowercase letters, digits and dashes", pid)
        title = self.text(raw, (), "title")
        description = self.text(raw, (), "description", required=False)
        applies = self.applies_when(raw.get("applies_when", {}))
        steps_raw = raw.get("steps")
        steps: list[Step] = []
        if not isinstance(steps_raw, list) or not steps_raw:
            self.fail(("steps",), "a non-empty list of steps", steps_raw if "steps" in raw else ...)
        else:
            ids: set[str] = set()
            for i, s in enumerate(steps_raw):
                step = self.step(s, ("steps", i))
                if step is None:
                    continue
                if step.id in ids:
                    self.fail(("steps", i, "id"), "a step id unique in the playbook", step.id)
                ids.add(step.id)
                steps.append(step)
        return Playbook(pid, title, description, applies, tuple(steps), self.path)

    def applies_when(self, raw: Any) -> AppliesWhen:
        at = ("applies_when",)
        if not isinstance(raw, dict):
            self.fail(at, "a mapping with features, metrics, change_kinds, scope", raw)
            return AppliesWhen()
        self.only(raw, at, {"features", "metrics", "change_kinds", "scope"})
        return AppliesWhen(
            features=self.choices(raw, at, "features", ()),
            metrics=self.choices(raw, at, "metrics", METRICS),
            change_kinds=self.choices(raw, at, "change_kinds", APPLIES_CHANGE_KINDS),
            scope=self.choices(raw, at, "scope", SCOPE_KINDS),
        )

    def step(self, raw: Any, at: tuple) -> Step | None:
        if not isinstance(raw, dict):
            self.fail(at, "a step mapping with id, phase, title, instructions", raw)
            return None
        self.only(raw, at, {"id", "phase", "title", "instructions", "checks", "actions"})
        sid = self.text(raw, at, "id")
        if sid and not _ID.match(sid):
            self.fail((*at, "id"), "lowercase letters, digits and dashes", sid)
        phase = raw.get("phase")
        if phase not in PHASES:
            self.fail((*at, "phase"), f"one of {', '.join(PHASES)}", phase)
        title = self.text(raw, at, "title")
        instructions = self.text(raw, at, "instructions")
        self.placeholders(instructions, (*at, "instructions"))
        checks = [self.check(c, (*at, "checks", i)) for i, c in enumerate(self.items(raw, at, "checks"))]
        actions = [self.action(a, (*at, "actions", i)) for i, a in enumerate(self.items(raw, at, "actions"))]
        return Step(sid, str(phase), title, instructions,
                    tuple(c for c in checks if c), tuple(a for a in actions if a))

    def items(self, raw: dict, at: tuple, key: str) -> list:
        value = raw.get(key, [])
        if not isinstance(value, list):
            self.fail((*at, key), "a list", value)
            return []
        return value

    def check(self, raw: Any, at: tuple) -> Check | None:
        if not isinstance(raw, dict):
            self.fail(at, "a check mapping with kind and title", raw)
            return None
        self.only(raw, at, {"kind", "title", "metric", "split", "sql"})
        kind = raw.get("kind")
        if kind not in CHECK_KINDS:
            self.fail((*at, "kind"), f"one of {', '.join(CHECK_KINDS)}", kind)
        title = self.text(raw, at, "title")
        self.placeholders(title, (*at, "title"))
        metric, split, sql = raw.get("metric"), raw.get("split"), raw.get("sql")
        if kind in ("chart", "split") and metric not in METRICS:
            self.fail((*at, "metric"), f"one of {', '.join(METRICS)}", metric)
        if split is not None and split not in SPLIT_DIMENSIONS:
            self.fail((*at, "split"), f"one of {', '.join(SPLIT_DIMENSIONS)}", split)
        if kind == "split" and split is None:
            self.fail((*at, "split"), f"one of {', '.join(SPLIT_DIMENSIONS)}")
        if kind == "query":
            if not isinstance(sql, str) or not _READ_ONLY_SQL.match(sql) or _FORBIDDEN_SQL.search(sql):
                self.fail((*at, "sql"), "one read-only SELECT (parameters $feature, $since, $until)", sql)
        return Check(str(kind), title, metric, split, sql)

    def action(self, raw: Any, at: tuple) -> StepAction | None:
        if isinstance(raw, str):
            raw = {"action": raw}
        if not isinstance(raw, dict):
            self.fail(at, "an action name or a mapping with action and params", raw)
            return None
        self.only(raw, at, {"action", "params"})
        name = raw.get("action")
        if name not in ACTIONS:
            self.fail((*at, "action"), f"one of {', '.join(ACTIONS)}", name)
            return None
        params = raw.get("params", {}) or {}
        if not isinstance(params, dict):
            self.fail((*at, "params"), "a mapping", params)
            return None
        for key, value in params.items():
            kind = ACTIONS[name].get(key)
            if kind is None:
                allowed = ", ".join(ACTIONS[name]) or "no parameters"
                self.fail((*at, "params", key), f"{allowed} for {name}", key)
            elif kind is float and (isinstance(value, bool) or not isinstance(value, int | float)
                                    or not 0 <= value <= 100):
                self.fail((*at, "params", key), "a percentage from 0 to 100", value)
            elif kind is str and not isinstance(value, str):
                self.fail((*at, "params", key), "a string", value)
        return StepAction(str(name), dict(params))


# Using playbooks --------------------------------------------------------------------------


def fill(text: str, facts: dict[str, Any]) -> str:
    """Replace every `{placeholder}` with its fact; a fact not known yet shows as `(unknown)`."""

    def value(match: re.Match) -> str:
        fact = facts.get(match.group(1))
        return "(unknown)" if fact is None or fact == "" else str(fact)

    return _PLACEHOLDER.sub(value, text)


def suggest(playbooks: list[Playbook], feature: str | None = None, metric: str | None = None,
            change_kind: str | None = None, scope: str | None = None) -> list[Playbook]:
    """Playbooks ordered by how well they fit: each matching condition scores, a mismatch
    on a condition the playbook names sends it to the back."""

    def score(pb: Playbook) -> int:
        total = 0
        for wanted, allowed in ((feature, pb.applies_when.features), (metric, pb.applies_when.metrics),
                                (change_kind, pb.applies_when.change_kinds),
                                (scope, pb.applies_when.scope)):
            if wanted is None or not allowed:
                continue
            total += 2 if wanted in allowed else -3
        return total

    return sorted(playbooks, key=lambda pb: (-score(pb), pb.id))
