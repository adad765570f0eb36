"""Playbooks: guided incident procedures, loaded from `playbooks/*.yaml` and validated on load.

A playbook says when it applies (features, metrics, change kinds, scope) and lists steps.
Each step belongs to a phase of the incident (detect, triage, rollback, communicate,
investigate, postmortem), has markdown instructions with placeholders filled from the
incident (`{feature}`, `{suspect_change}`, `{impact.requests}`, ...), optional checks to show
(a chart, a split, a query) and optional flag actions, which run through `app/actions.py`
like every other flag action. docs/playbooks.md is the reference for the format.

Every problem in a file is reported with the file, the line, the key and what was expected:
schemas/playbook.json checks the shape; this module checks the meaning (placeholders, unique
step ids, action parameters, and SQL that DuckDB parses as exactly one SELECT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.configuration import ConfigFileError, Document, KeyPath, Problem, load_yaml
from app.storage.readonly import QueryResult, run_readonly
from app.storage.schema import CHANGE_KINDS, SPLIT_DIMENSIONS
from app.storage.statements import select_problem
from app.storage.store import Store

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"

PHASES: tuple[str, ...] = ("detect", "triage", "rollback", "communicate", "investigate", "postmortem")
METRICS: tuple[str, ...] = (
    "error_rate",
    "quality_score",
    "latency_p95_ms",
    "cost_per_request_usd",
    "negative_feedback_rate",
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

# The names a playbook file may use where schemas/playbook.json asks for them.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "metric": METRICS,
    "change_kind": APPLIES_CHANGE_KINDS,
    "scope": SCOPE_KINDS,
    "phase": PHASES,
    "split": SPLIT_DIMENSIONS,
    "action": tuple(ACTIONS),
}

# Placeholders instructions and templates may use; docs/playbooks.md explains each.
PLACEHOLDERS: tuple[str, ...] = (
    "incident_id",
    "title",
    "severity",
    "status",
    "commander",
    "comms_lead",
    "feature",
    "features",
    "metric",
    "onset",
    "opened_at",
    "now",
    "next_update",
    "playbook",
    "suspect_change",
    "suspect_change.kind",
    "suspect_change.key",
    "suspect_change.from",
    "suspect_change.to",
    "suspect_change.time",
    "suspect_change.author",
    "scope",
    "scope.kind",
    "scope.slice",
    "impact.requests",
    "impact.users",
    "impact.extra_errors",
    "impact.error_rate",
    "impact.baseline_error_rate",
    "impact.quality_delta",
    "impact.extra_cost",
    "impact.duration",
    "actions_done",
    "rollout_flag",
)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


class PlaybookError(ConfigFileError):
    """One or more problems in a playbook file; `errors` lists each, file and line included."""


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
    return _playbook(load_yaml(path, "playbook", error=PlaybookError, vocabularies=VOCABULARIES))


def parse_playbook(text: str, path: Path) -> Playbook:
    return _playbook(load_yaml(path, "playbook", error=PlaybookError, vocabularies=VOCABULARIES, text=text))


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
            errors.append(
                f"{path}: line 1: id: expected a unique id, {pb.id!r} is also used by {seen[pb.id]}"
            )
            continue
        seen[pb.id] = path
        playbooks.append(pb)
    return sorted(playbooks, key=lambda p: p.id), errors


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _playbook(doc: Document) -> Playbook:
    """Build a playbook from a document that passed the schema, after the meaning checks the
    schema cannot make: placeholders that exist, unique step ids, action parameters, and SQL
    that DuckDB parses as one SELECT."""
    raw = doc.data
    problems: list[Problem] = []
    steps: list[Step] = []
    ids: set[str] = set()
    for i, s in enumerate(raw["steps"]):
        at: KeyPath = ("steps", i)
        if s["id"] in ids:
            problems.append(
                doc.problem((*at, "id"), f"expected a step id unique in the playbook, got {s['id']!r} again")
            )
        ids.add(s["id"])
        problems += _placeholders(doc, s["instructions"], (*at, "instructions"))
        checks = []
        for j, c in enumerate(s.get("checks") or []):
            problems += _placeholders(doc, c["title"], (*at, "checks", j, "title"))
            if c["kind"] == "query":
                wrong = select_problem(c["sql"])
                if wrong:
                    problems.append(
                        doc.problem(
                            (*at, "checks", j, "sql"),
                            f"expected one read-only SELECT (parameters $feature, $since, $until); {wrong}",
                        )
                    )
            checks.append(Check(c["kind"], c["title"], c.get("metric"), c.get("split"), c.get("sql")))
        actions = []
        for j, a in enumerate(s.get("actions") or []):
            action = (
                StepAction(a, {})
                if isinstance(a, str)
                else StepAction(a["action"], dict(a.get("params") or {}))
            )
            problems += _params(doc, action, (*at, "actions", j, "params"))
            actions.append(action)
        steps.append(Step(s["id"], s["phase"], s["title"], s["instructions"], tuple(checks), tuple(actions)))
    if problems:
        raise PlaybookError(problems)
    applies = raw.get("applies_when") or {}
    return Playbook(
        id=raw["id"],
        title=raw["title"],
        description=raw.get("description") or "",
        applies_when=AppliesWhen(
            features=_names(applies.get("features")),
            metrics=_names(applies.get("metrics")),
            change_kinds=_names(applies.get("change_kinds")),
            scope=_names(applies.get("scope")),
        ),
        steps=tuple(steps),
        path=doc.path,
    )


def _placeholders(doc: Document, text: str, at: KeyPath) -> list[Problem]:
    return [
        doc.problem(at, f"expected placeholders among {{{'}, {'.join(PLACEHOLDERS)}}}, got {{{name}}}")
        for name in _PLACEHOLDER.findall(text)
        if name not in PLACEHOLDERS
    ]


def _params(doc: Document, action: StepAction, at: KeyPath) -> list[Problem]:
    problems = []
    for key, value in action.params.items():
        kind = ACTIONS[action.action].get(key)
        if kind is None:
            allowed = ", ".join(ACTIONS[action.action]) or "no parameters"
            problems.append(doc.problem((*at, key), f"unknown parameter; {action.action} takes {allowed}"))
        elif kind is float and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100
        ):
            problems.append(doc.problem((*at, key), f"expected a percentage from 0 to 100, got {value!r}"))
        elif kind is str and not isinstance(value, str):
            problems.append(doc.problem((*at, key), f"expected text, got {value!r}"))
    return problems


# Using playbooks --------------------------------------------------------------------------


def fill(text: str, facts: dict[str, Any]) -> str:
    """Replace every `{placeholder}` with its fact; a fact not known yet shows as `(unknown)`."""

    def value(match: re.Match) -> str:
        fact = facts.get(match.group(1))
        return "(unknown)" if fact is None or fact == "" else str(fact)

    return _PLACEHOLDER.sub(value, text)


def suggest(
    playbooks: list[Playbook],
    feature: str | None = None,
    metric: str | None = None,
    change_kind: str | None = None,
    scope: str | None = None,
) -> list[Playbook]:
    """Playbooks ordered by how well they fit: each matching condition scores, a mismatch
    on a condition the playbook names sends it to the back."""

    def score(pb: Playbook) -> int:
        total = 0
        for wanted, allowed in (
            (feature, pb.applies_when.features),
            (metric, pb.applies_when.metrics),
            (change_kind, pb.applies_when.change_kinds),
            (scope, pb.applies_when.scope),
        ):
            if wanted is None or not allowed:
                continue
            total += 2 if wanted in allowed else -3
        return total

    return sorted(playbooks, key=lambda pb: (-score(pb), pb.id))


def run_query_check(
    store: Store, check: Check, feature: str, since: datetime, until: datetime, limit: int = 1000
) -> QueryResult:
    """A playbook's query check, on the sandboxed read-only connection (one SELECT, no file
    access, a row and a time limit): a playbook file cannot read or write anything but the
    request tables. Raises ReadOnlyQueryError with a one-line reason."""
    return run_readonly(
        store.path, check.sql or "", {"feature": feature, "since": since, "until": until}, limit=limit
    )
