"""An incident opened without a finding gets one: the analysis of its features, attached.

Opened from the CLI (`incidents open --feature F --title T`) or by hand on the page, an
incident knows its features and little else. `attach_finding` runs `analyze` for each of its
features over the week of data before the incident was opened (or around its onset, when one
was given), picks the finding that fits and records it on the incident's timeline as a
`finding` event; it fills the onset, metric and suspects the incident does not have yet, and
proposes the playbook that matches (metric, scope and the first suspect's kind) when none was
chosen. When nothing is found it records why, so the timeline says the analysis ran.

Which finding fits: the incident's metric when it names one, then the onset nearest the
incident's onset when it has one, then the most severe. A finding whose onset lies after the
incident was opened is not its cause and is not attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.detection.analysis import analyze
from app.detection.findings import Finding, format_value
from app.detection.thresholds import Thresholds
from app.incidents.log import Incident, IncidentLog
from app.incidents.playbooks import Playbook, suggest
from app.storage.store import Store
from app.timestamps import display

LOOKBACK = timedelta(days=7)
AROUND_ONSET = timedelta(days=2)


@dataclass(frozen=True)
class Attachment:
    """What the analysis found for an incident (finding None: nothing fits, `reason` says why)."""

    incident_id: str
    finding: Finding | None
    reason: str
    playbook: str | None = None  # proposed and set, when the incident had none

    def summary(self) -> str:
        if self.finding is None:
            return f"{self.incident_id}: no finding attached: {self.reason}"
        f = self.finding
        head = (
            f"{self.incident_id}: {f.feature} {f.metric} {format_value(f.metric, f.baseline)} -> "
            f"{format_value(f.metric, f.current)} from {display(f.onset)}, "
            f"scope {f.scope.kind}"
        )
        if f.suspects:
            c = f.suspects[0].change
            head += f"; first suspect {c.kind} {c.key or ''} -> {c.to_value or '?'}".replace("  ", " ")
        if self.playbook:
            head += f"; playbook {self.playbook} proposed"
        return head


def analysis_window(store: Store, incident: Incident, feature: str) -> tuple[datetime, datetime] | None:
    """Around the incident's onset when it has one; else the week of the feature's data before
    the incident was opened (the whole of it when the logs end earlier)."""
    first, last = store.time_bounds(feature)
    if first is None or last is None:
        return None
    opened = incident.opened_at.replace(tzinfo=None)
    end = (
        min(last + timedelta(microseconds=1), opened) if opened > first else last + timedelta(microseconds=1)
    )
    if incident.onset is not None:
        onset = incident.onset.replace(tzinfo=None)
        end = min(last + timedelta(microseconds=1), max(end, onset + AROUND_ONSET))
        return max(first, onset - AROUND_ONSET), end
    return max(first, end - LOOKBACK), end


def best_finding(findings: list[Finding], incident: Incident) -> Finding | None:
    if not findings:
        return None
    pool = [f for f in findings if f.metric == incident.metric] or findings
    if incident.onset is not None:
        onset = incident.onset.replace(tzinfo=None)
        return min(pool, key=lambda f: (abs(f.onset - onset), -f.severity))
    return max(pool, key=lambda f: f.severity)


def attach_finding(
    store: Store,
    log: IncidentLog,
    incident_id: str,
    playbooks: list[Playbook],
    thresholds: Thresholds | None = None,
    actor: str | None = None,
) -> Attachment:
    """Analyse the incident's features, record the finding that fits (or why none does) and
    fill what the incident is missing."""
    incident = log.get(incident_id)
    findings: list[Finding] = []
    notes: list[str] = []
    for feature in incident.features:
        window = analysis_window(store, incident, feature)
        if window is None:
            notes.append(f"no logged requests for {feature}")
            continue
        since, until = window
        result = analyze(store, feature=feature, since=since, until=until, thresholds=thresholds)
        findings += [f for f in result.findings if f.onset <= incident.opened_at.replace(tzinfo=None)]
        thin = [f"{i.metric}: {i.reason}" for i in result.inconclusive]
        notes.append(
            f"{feature}: no degradation found {display(since)} to {display(until)}"
            + (f" (too thin to judge: {'; '.join(thin)})" if thin else "")
        )
    chosen = best_finding(findings, incident)
    if chosen is None:
        reason = "; ".join(notes) or "the incident names no feature"
        log.append(incident_id, "finding", {"finding": None, "reason": reason}, actor)
        return Attachment(incident_id, None, reason)
    data: dict[str, Any] = {
        "finding": chosen.as_dict(),
        "reason": "found by the analysis",
        "shape": chosen.shape,
    }
    log.append(incident_id, "finding", data, actor)
    if incident.metric is None:
        log.set_field(incident_id, "metric", chosen.metric, actor)
    if incident.onset is None:
        log.set_field(incident_id, "onset", chosen.onset, actor)
    if not incident.suspect_change_ids and chosen.suspects:
        log.set_field(incident_id, "suspect_change_ids", [s.change.change_id for s in chosen.suspects], actor)
    proposed = None
    if incident.playbook is None and playbooks:
        kind = None
        if chosen.suspects:
            first = chosen.suspects[0].change
            kind = "silent_update" if first.silent_update else first.kind
        proposed = suggest(playbooks, chosen.feature, chosen.metric, kind, chosen.scope.kind)[0].id
        log.set_field(incident_id, "playbook", proposed, actor)
    return Attachment(incident_id, chosen, "found by the analysis", proposed)
