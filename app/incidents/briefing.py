"""What is known about an incident right now: impact from the logs, the suspect change with its
evidence, the timeline, the actions taken, and the facts that fill playbook placeholders and
message templates. The incidents page, the messages and the post-mortem all start here.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.changes import timeline as changes
from app.changes.events import ChangeEvent
from app.incidents import impact
from app.incidents.log import Incident, IncidentLog, now_utc
from app.incidents.playbooks import Playbook
from app.incidents.timeline import Entry, assemble, first_verified_rollback, format_duration
from app.storage import trail
from app.storage.datadir import DataDir, as_datadir
from app.storage.store import Store
from app.timestamps import display, machine

SUSPECT_LOOKBACK = timedelta(hours=48)
NEXT_UPDATE = {
    "SEV1": timedelta(minutes=30),
    "SEV2": timedelta(minutes=30),
    "SEV3": timedelta(hours=1),
    "SEV4": timedelta(hours=4),
}


@dataclass(frozen=True)
class SuspectChange:
    change: ChangeEvent
    evidence: str

    def describe(self) -> str:
        c = self.change
        return (
            f"{c.kind} {c.key or ''} {c.from_value or '?'} -> {c.to_value or '?'} at {display(c.timestamp)}"
        ).replace("  ", " ")


@dataclass(frozen=True)
class Totals:
    """An incident's impact summed over those of its features that degraded (all of them
    when none did), users counted once across them."""

    features: int  # how many are summed
    of: int  # the incident's features
    requests: int
    users: int
    errors: int
    extra_errors: int
    cost_usd: float
    extra_cost_usd: float


@dataclass(frozen=True)
class Briefing:
    incident: Incident
    now: datetime
    impact: impact.Impact | None  # the first feature's
    suspect: SuspectChange | None
    timeline: list[Entry]
    others: tuple[impact.Impact, ...] = ()  # the incident's other features, in its order
    totals: Totals | None = None  # over all its features, when it has more than one

    @property
    def impacts(self) -> list[impact.Impact]:
        return ([self.impact] if self.impact else []) + list(self.others)

    @property
    def totals_label(self) -> str:
        """Which features the totals cover: "all 3 features", "2 of 3 features"."""
        t = self.totals
        if t is None:
            return ""
        return f"all {t.of} features" if t.features == t.of else f"{t.features} of {t.of} features"

    @property
    def mitigated_at(self) -> datetime | None:
        return first_verified_rollback(self.timeline)

    @property
    def resolved_at(self) -> datetime | None:
        return self.incident.first_time_in("resolved")

    @property
    def actions(self) -> list[Entry]:
        return [e for e in self.timeline if e.source == "audit"]

    @property
    def messages(self) -> list[Entry]:
        return [e for e in self.timeline if e.source == "notify"]

    def actions_done(self) -> str:
        done = [e.text.split(":")[0] + f" ({e.outcome})" for e in self.actions if e.outcome == "verified"]
        return "; ".join(done) if done else "no flag action yet"


def brief(data_dir: DataDir | Path, incident: Incident, now: datetime | None = None) -> Briefing:
    """Assemble the briefing from what is stored: the logs' numbers (when the DuckDB file
    exists), the ledger (incidents, audit trail, cached flag histories). It only reads: it
    calls no flag backend and writes nothing to the ledger; fetching the backends' histories
    is an explicit refresh (`rollback.history.sync_history`)."""
    dd = as_datadir(data_dir)
    now = now or now_utc()
    store = dd.store if dd.has_database else None
    # One DuckDB connection for every query of the briefing.
    with store.session() if store is not None else contextlib.nullcontext():
        return _brief(dd, store, incident, now)


def _brief(dd: DataDir, store: Store | None, incident: Incident, now: datetime) -> Briefing:
    timeline = assemble(dd, store, incident, now)
    measured: list[impact.Impact] = []
    totals = None
    if store is not None and incident.features and incident.onset is not None:
        end = first_verified_rollback(timeline) or incident.first_time_in("resolved") or now
        measured = [
            impact.measure(store, f, incident.onset, max(end, incident.onset), incident.metric)
            for f in incident.features
        ]
        if len(measured) > 1:
            # A feature named on the incident whose metric did not get worse adds nothing:
            # its requests were not affected.
            hit = [m for m in measured if m.scope.kind != "none"] or measured
            totals = Totals(
                features=len(hit),
                of=len(measured),
                requests=sum(m.requests for m in hit),
                users=impact.users_across(store, hit),
                errors=sum(m.errors for m in hit),
                extra_errors=sum(m.extra_errors for m in hit),
                cost_usd=sum(m.cost_usd for m in hit),
                extra_cost_usd=sum(m.extra_cost_usd for m in hit),
            )
    first = measured[0] if measured else None
    suspect = find_suspect(store, incident, first) if store is not None else None
    return Briefing(incident, now, first, suspect, timeline, tuple(measured[1:]), totals)


def link_actions_to_steps(data_dir: DataDir | Path, incident: Incident, playbook: Playbook) -> Incident:
    """Attribute the incident's flag actions (from the audit trail: the app's buttons and
    `flags ... --incident` alike) to the playbook steps offering them, each to the first such
    step without a verified action yet. A verified action marks its step done."""
    recorded = {a.get("action_id") for p in incident.steps.values() for a in p.actions}
    dd = as_datadir(data_dir)
    log = IncidentLog(dd)
    for entry in trail.actions_for_incident(dd, incident.id):
        if entry.action_id in recorded or entry.outcome is None:
            continue
        offering = [s for s in playbook.steps if entry.action in {a.action for a in s.actions}]
        if not offering:
            continue
        step = next((s for s in offering if not incident.step(s.id).verified), offering[0])
        incident = log.record_step_action(
            incident.id,
            step.id,
            {
                "action_id": entry.action_id,
                "action": entry.action,
                "flag": entry.flag,
                "outcome": entry.outcome,
                "message": entry.message,
                "before": entry.before,
                "after": entry.after,
            },
            actor=entry.operator_label,
        )
    return incident


@dataclass(frozen=True)
class OpeningHints:
    """What the logs say about a degradation before an incident exists, to suggest a playbook."""

    onset: datetime | None
    metric: str | None
    change_kind: str | None  # model | prompt | flag | config | silent_update | none
    scope: str | None


def opening_hints(
    store: Store, feature: str, onset: datetime | None = None, metric: str | None = None
) -> OpeningHints:
    """Onset (given, else the feature's latest change), the degraded metric, the kind of the
    change nearest the onset, and the scope since the onset."""
    events = changes.list_changes(store, feature)
    if onset is None and events:
        onset = events[-1].timestamp.replace(second=0, microsecond=0)
    if onset is None:
        return OpeningHints(None, metric, None, None)
    near = [e for e in events if onset - SUSPECT_LOOKBACK <= e.timestamp <= onset + timedelta(hours=1)]
    kind = "none"
    if near:
        nearest = min(near, key=lambda e: abs((onset - e.timestamp).total_seconds()))
        kind = "silent_update" if nearest.silent_update else nearest.kind
    last = store.time_bounds(feature)[1]
    if last is None or last <= onset:
        return OpeningHints(onset, metric, kind, None)
    scope = impact.triage(store, feature, onset, last + timedelta(seconds=1), metric)
    return OpeningHints(onset, metric or scope.metric, kind, scope.kind)


def find_suspect(store: Store, incident: Incident, measured: impact.Impact | None) -> SuspectChange | None:
    """The change named on the incident (from detection), else the feature's last change in
    the 48 hours before the onset."""
    feature, onset = incident.feature, incident.onset
    if feature is None or onset is None:
        return None
    candidates = changes.list_changes(store, feature, onset - SUSPECT_LOOKBACK, onset + timedelta(hours=1))
    named = [c for c in candidates if c.change_id in incident.suspect_change_ids]
    finding_evidence = _finding_evidence(incident)
    if named:
        change = named[0]
    elif candidates:
        change = min(candidates, key=lambda c: (abs((onset - c.timestamp).total_seconds()), c.change_id))
    else:
        return None
    evidence = finding_evidence.get(change.change_id) or _own_evidence(change, onset, measured)
    return SuspectChange(change, evidence)


def _finding_evidence(incident: Incident) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in (incident.finding or {}).get("suspects") or []:
        if isinstance(s, dict) and s.get("change_id") and s.get("evidence"):
            ev = s["evidence"]
            out[s["change_id"]] = ev if isinstance(ev, str) else "; ".join(str(x) for x in ev)
    return out


def _own_evidence(change: ChangeEvent, onset: datetime, measured: impact.Impact | None) -> str:
    gap = onset - change.timestamp
    when = (
        "at the onset"
        if abs(gap) < timedelta(minutes=1)
        else f"{format_duration(abs(gap))} {'before' if gap > timedelta(0) else 'after'} the onset"
    )
    parts = [f"the change came {when}"]
    if measured is not None and measured.scope.kind in ("partial", "single_user", "total"):
        parts.append(f"the degradation ({measured.metric}) is {measured.scope.describe()}")
        carried = [s.split(" = ")[-1] for s in (measured.scope.carried_by + measured.scope.same_requests_as)]
        if change.to_value and (change.to_value in carried or change.to_value == measured.scope.value):
            parts.append(f"the degraded requests are the ones served {change.to_value}")
    return "; ".join(parts)


def money(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def facts(b: Briefing, rollout_flag: str | None = None) -> dict[str, Any]:
    """Values for every placeholder of app.playbooks.PLACEHOLDERS."""
    inc, im = b.incident, b.impact
    next_update = b.now + NEXT_UPDATE.get(inc.severity, timedelta(hours=1))
    out: dict[str, Any] = {
        "incident_id": inc.id,
        "title": inc.title,
        "severity": inc.severity,
        "status": inc.status,
        "commander": inc.commander or "(unassigned)",
        "comms_lead": inc.comms_lead or "(unassigned)",
        "feature": inc.feature,
        "features": ", ".join(inc.features),
        "metric": inc.metric or (im and im.metric),
        "onset": display(inc.onset, missing=None),
        "opened_at": display(inc.opened_at),
        "now": display(b.now),
        "next_update": display(next_update),
        "playbook": inc.playbook,
        "actions_done": b.actions_done(),
        "rollout_flag": rollout_flag,
    }
    if b.suspect is not None:
        c = b.suspect.change
        out |= {
            "suspect_change": b.suspect.describe(),
            "suspect_change.kind": c.kind,
            "suspect_change.key": c.key,
            "suspect_change.from": c.from_value,
            "suspect_change.to": c.to_value,
            "suspect_change.author": c.author,
            "suspect_change.time": display(c.timestamp),
        }
    if im is not None:
        # Counts are the incident's, over all its features; rates, scope and quality are
        # the first feature's.
        total = b.totals or im
        out |= {
            "scope": im.scope.describe(),
            "scope.kind": im.scope.kind,
            "scope.slice": (
                f"{im.scope.dimension} = {im.scope.value}" if im.scope.dimension else "all requests"
            ),
            "impact.requests": f"{total.requests:,}",
            "impact.users": f"{total.users:,}",
            "impact.extra_errors": f"{total.extra_errors:,}",
            "impact.error_rate": _pct(im.error_rate),
            "impact.baseline_error_rate": _pct(im.baseline_error_rate),
            "impact.quality_delta": "n/a" if im.quality_delta is None else f"{im.quality_delta:+.3f}",
            "impact.extra_cost": money(total.extra_cost_usd),
            "impact.duration": format_duration(im.duration),
        }
    return out


def as_dict(b: Briefing) -> dict[str, Any]:
    return {
        "incident": b.incident.as_dict(),
        "impact": b.impact.as_dict() if b.impact else None,
        "impacts": [m.as_dict() for m in b.impacts],
        "totals": asdict(b.totals) if b.totals else None,
        "suspect": {"change": b.suspect.change.as_dict(), "evidence": b.suspect.evidence}
        if b.suspect
        else None,
        "mitigated_at": machine(b.mitigated_at),
        "resolved_at": machine(b.resolved_at),
    }
