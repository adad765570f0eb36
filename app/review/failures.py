"""Change failure rate by change kind, and failed-change recovery time (DORA's measures).

A change of the period (declared, inferred, flag history, the console's own actions) is
*failed* when, within the horizon (24 h by default) after it:
- the console rolled it back: a verified kill, pause, rollout to 0%, pin-model or
  revert-prompt on the same feature (pin-model only undoes model changes, revert-prompt
  prompt changes, rollout to 0% flag changes; kill and pause switch off the whole feature);
- a later change (any source: a flag's history, a declared change) set the same key back to
  the value it had before;
- the logs reverted: the new model or prompt version stopped answering while the feature
  kept its traffic (and, when the old value is known, the old value took over again);
- it was the top suspect of a finding, or of an incident.

The console's rollbacks are the remedy, not changes: they are not counted themselves.
Recovery time runs from the change to the first rollback or revert found.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.changes.events import ChangeEvent
from app.detection.findings import Finding
from app.incidents.log import Incident
from app.review.budget import iso_z
from app.storage.schema import CHANGE_KINDS
from app.storage.store import Store
from app.timestamps import display

ROLLBACK_UNDOES: dict[str, set[str] | None] = {
    "kill": None,
    "pause": None,  # None: every kind
    "pin-model": {"model"},
    "revert-prompt": {"prompt"},
    "rollout": {"flag"},
}
LOG_DIMENSIONS = ("model", "response_model", "prompt_version")
MIN_REQUESTS_AFTER_REVERT = 20
MIN_QUIET = timedelta(minutes=30)


@dataclass(frozen=True)
class Evidence:
    kind: str  # console-rollback | reverted | log-revert | finding-suspect | incident-suspect
    text: str
    at: datetime | None = None  # when the change was undone (None: blamed, not undone)


@dataclass(frozen=True)
class ChangeOutcome:
    change: ChangeEvent
    evidence: tuple[Evidence, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.evidence)

    @property
    def recovered_at(self) -> datetime | None:
        times = [e.at for e in self.evidence if e.at is not None]
        return min(times) if times else None

    @property
    def recovery_min(self) -> float | None:
        at = self.recovered_at
        return None if at is None else (at - self.change.timestamp).total_seconds() / 60

    @property
    def why(self) -> str:
        return "; ".join(e.text for e in self.evidence)

    def as_dict(self) -> dict[str, Any]:
        c = self.change
        return {
            "change_id": c.change_id,
            "feature": c.feature,
            "kind": c.kind,
            "key": c.key,
            "from": c.from_value,
            "to": c.to_value,
            "timestamp": iso_z(c.timestamp),
            "source": c.source,
            "why": self.why,
            "recovery_min": None if self.recovery_min is None else round(self.recovery_min, 1),
        }


@dataclass(frozen=True)
class KindStats:
    count: int
    failed: int
    failure_rate: float | None
    median_recovery_min: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "failed": self.failed,
            "failure_rate": None if self.failure_rate is None else round(self.failure_rate, 4),
            "median_recovery_min": None
            if self.median_recovery_min is None
            else round(self.median_recovery_min, 1),
        }


def stats(outcomes: Iterable[ChangeOutcome]) -> KindStats:
    outcomes = list(outcomes)
    failed = [o for o in outcomes if o.failed]
    recoveries = [o.recovery_min for o in failed if o.recovery_min is not None]
    return KindStats(
        len(outcomes),
        len(failed),
        len(failed) / len(outcomes) if outcomes else None,
        statistics.median(recoveries) if recoveries else None,
    )


def by_kind(outcomes: list[ChangeOutcome]) -> dict[str, KindStats]:
    kinds = list(CHANGE_KINDS) + sorted({o.change.kind for o in outcomes} - set(CHANGE_KINDS))
    return {k: stats(o for o in outcomes if o.change.kind == k) for k in kinds}


def by_feature(outcomes: list[ChangeOutcome]) -> dict[str, KindStats]:
    features = sorted({o.change.feature for o in outcomes})
    return {f: stats(o for o in outcomes if o.change.feature == f) for f in features}


def rollback_action(e: ChangeEvent) -> str | None:
    """The action name when `e` is one of the console's rollbacks, else None."""
    if e.source != "rollback-desk" or not e.description:
        return None
    action = e.description.split(" ", 1)[0]
    if action not in ROLLBACK_UNDOES:
        return None
    if action == "rollout" and (e.to_value or "").strip() not in ("0%", "0"):
        return None  # a rollout moving forward is a change, not a rollback
    return action


# A change written down by the team and recorded by the flag system it was made on is one
# change told twice: same feature, kind and values, this close in time.
SAME_CHANGE_WITHIN = timedelta(minutes=5)


def one_per_change(changes: list[ChangeEvent]) -> tuple[list[ChangeEvent], dict[str, str]]:
    """The changes with each counted once: a flag-history entry that repeats a declared
    change (same feature, kind, from and to values, within SAME_CHANGE_WITHIN) is dropped and
    the declared one kept (it has the author and the description). Also returns the dropped
    entries' ids mapped to the kept ones, so blame on either counts for the change."""
    declared = [c for c in changes if c.source == "declared"]
    kept, same_as = [], {}
    for c in changes:
        twin = None
        if c.source == "flag-audit":
            twin = next(
                (
                    d
                    for d in declared
                    if (d.feature, d.kind, d.from_value, d.to_value)
                    == (c.feature, c.kind, c.from_value, c.to_value)
                    and abs(d.timestamp - c.timestamp) <= SAME_CHANGE_WITHIN
                ),
                None,
            )
        if twin is None:
            kept.append(c)
        else:
            same_as[c.change_id] = twin.change_id
    return kept, same_as


def classify(
    store: Store | None,
    changes: list[ChangeEvent],
    later: list[ChangeEvent],
    findings: Iterable[Finding],
    incidents: Iterable[Incident],
    horizon: timedelta,
    same_as: dict[str, str] | None = None,
) -> list[ChangeOutcome]:
    """Each change of the period (not the console's rollbacks) with the evidence that it
    failed. `later` holds every change event up to the end of the last horizon; `same_as`
    maps the ids of changes counted under another one (`one_per_change`) to it."""
    same_as = same_as or {}
    top_of_finding: dict[str, list[Finding]] = {}
    for f in findings:
        if f.suspects:
            top = f.suspects[0].change.change_id
            top_of_finding.setdefault(same_as.get(top, top), []).append(f)
    top_of_incident: dict[str, list[Incident]] = {}
    for inc in incidents:
        if inc.suspect_change_ids:
            top = inc.suspect_change_ids[0]
            top_of_incident.setdefault(same_as.get(top, top), []).append(inc)
    rollbacks = [(e, a) for e in later if (a := rollback_action(e)) is not None]
    out = []
    for c in changes:
        if rollback_action(c) is not None:
            continue
        end = c.timestamp + horizon
        evidence: list[Evidence] = []
        for r, action in rollbacks:
            kinds = ROLLBACK_UNDOES[action]
            if (
                r.feature == c.feature
                and c.timestamp < r.timestamp <= end
                and (kinds is None or c.kind in kinds)
            ):
                evidence.append(
                    Evidence(
                        "console-rollback",
                        f"rolled back by the console "
                        f"({action} {r.key or ''} at {display(r.timestamp)})".replace(" )", ")").replace(
                            "  ", " "
                        ),
                        r.timestamp,
                    )
                )
                break
        revert = _reverted_by(c, later, end)
        if revert is not None:
            where = {
                "flag-audit": "in the flag history",
                "declared": "by a declared change",
                "rollback-desk": "by the console",
            }.get(revert.source, f"({revert.source})")
            evidence.append(
                Evidence(
                    "reverted",
                    f"set back to {c.from_value} {where} at {display(revert.timestamp)}",
                    revert.timestamp,
                )
            )
        if store is not None:
            at = log_revert_time(store, c, end)
            if at is not None:
                evidence.append(
                    Evidence("log-revert", f"{c.to_value} stopped answering in the logs at {display(at)}", at)
                )
        for f in top_of_finding.get(c.change_id, []):
            if c.timestamp - horizon <= f.onset <= end:
                evidence.append(
                    Evidence(
                        "finding-suspect",
                        f"top suspect of the {f.metric} degradation from {display(f.onset)}",
                    )
                )
                break
        for inc in top_of_incident.get(c.change_id, []):
            evidence.append(Evidence("incident-suspect", f"top suspect of {inc.id} ({inc.title})"))
        out.append(ChangeOutcome(c, tuple(evidence)))
    return out


def _reverted_by(c: ChangeEvent, later: list[ChangeEvent], end: datetime) -> ChangeEvent | None:
    if c.from_value is None or c.key is None:
        return None
    for e in later:
        if (
            e.feature == c.feature
            and e.key == c.key
            and c.timestamp < e.timestamp <= end
            and e.change_id != c.change_id
            and e.to_value == c.from_value
            and e.from_value in (None, c.to_value)
        ):
            return e
    return None


def log_dimension(store: Store, c: ChangeEvent) -> str | None:
    """The request column that carries a model or prompt change's new value, if any."""
    if c.kind not in ("model", "prompt") or not c.to_value:
        return None
    if c.key in LOG_DIMENSIONS:
        return c.key
    dims = (
        ("prompt_version",)
        if c.kind == "prompt"
        else (("response_model", "model") if c.silent_update else ("model", "response_model"))
    )
    for dim in dims:
        if store.scalar(
            f"SELECT count(*) FROM rollup_5m WHERE feature = ? AND {dim} = ?", [c.feature, c.to_value]
        ):
            return dim
    return None


def log_revert_time(store: Store, c: ChangeEvent, end: datetime) -> datetime | None:
    """When the change's new value last answered, if it then stopped for the rest of the
    horizon while the feature kept at least MIN_REQUESTS_AFTER_REVERT requests (most of them
    on the old value, when it is known)."""
    dim = log_dimension(store, c)
    if dim is None:
        return None
    row = store.rows(
        f"""WITH r AS (SELECT * FROM rollup_5m WHERE feature = ? AND bucket >= ? AND bucket < ?),
                 last AS (SELECT max(last_ts) AS t FROM r WHERE {dim} = ?)
            SELECT last.t, sum(r.requests) FILTER (WHERE r.first_ts > last.t),
                   sum(r.requests) FILTER (WHERE r.first_ts > last.t AND r.{dim} = ?),
                   max(r.last_ts)
            FROM last, r GROUP BY last.t""",
        [c.feature, c.timestamp - timedelta(minutes=5), end, c.to_value, c.from_value],
    )
    if not row or row[0][0] is None:
        return None
    last, after, old, newest = row[0]
    # Quiet for a while with traffic: a canary's chance gap at low volume is not a revert.
    if not after or after < MIN_REQUESTS_AFTER_REVERT or newest - last < MIN_QUIET:
        return None
    if c.from_value is not None and (old or 0) * 2 <= after:
        return None
    return last
