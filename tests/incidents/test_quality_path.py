"""An incident opened from a quality finding keeps its metric, `quality_score`, end to end:
finding -> incident -> triage -> playbook (its checks chart the same column)."""

from __future__ import annotations

from pathlib import Path

from app.detection.analysis import analyze
from app.incidents import briefing, impact
from app.incidents.log import IncidentLog
from app.incidents.playbooks import METRICS, load_playbooks, suggest
from app.metrics import timeline as metrics
from app.storage.store import Store


def test_a_quality_finding_keeps_quality_score_through_incident_triage_and_playbook(flag_demo_dir: Path):
    store = Store(flag_demo_dir)
    # The demo's prompt v8 lowers quality and raises thumbs-down at once: triage must not
    # swap the finding's metric for the other one.
    result = analyze(store, feature="support-reply")
    [finding] = [f for f in result.findings if f.metric == "quality_score"]

    # Opened the way the Detect page does it: the finding's metric, onset and suspects.
    incident = IncidentLog(flag_demo_dir).open(
        f"support-reply: {finding.metric} dropped",
        [finding.feature],
        "SEV2",
        metric=finding.metric,
        onset=finding.onset,
        suspect_change_ids=[s.change.change_id for s in finding.suspects],
        finding=finding.as_dict(),
        source="detection",
        actor="ana",
    )
    assert incident.metric == "quality_score"

    hints = briefing.opening_hints(store, finding.feature, incident.onset, incident.metric)
    assert (hints.metric, hints.change_kind) == ("quality_score", "prompt")

    scope = impact.triage(
        store, finding.feature, incident.onset, store.time_bounds(finding.feature)[1], incident.metric
    )
    assert scope.metric == "quality_score"

    b = briefing.brief(flag_demo_dir, incident)
    assert b.impact is not None and b.impact.metric == "quality_score"
    assert b.impact.quality_delta < -0.05  # the drop the demo planted (-0.13 on v8)
    assert briefing.facts(b)["metric"] == "quality_score"

    assert "quality_score" in METRICS
    playbooks, errors = load_playbooks()
    assert not errors
    best = suggest(playbooks, finding.feature, incident.metric, hints.change_kind, scope.kind)[0]
    assert best.id == "prompt-regression"
    charted = {c.metric for s in best.steps for c in s.checks if c.metric}
    assert charted == {"quality_score"}
    frame = metrics.timeline(store, finding.feature, incident.onset, b.now)
    assert frame["quality_score"].drop_nulls().len() > 0  # the column the checks chart
