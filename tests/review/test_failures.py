"""Change failure classification, one test per path a change can fail by, and the
per-kind rates and recovery times."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.changes import recorded
from app.changes import timeline as changes
from app.changes.events import ChangeEvent
from app.demo.flags import write_demo_flags
from app.detection.findings import Finding, Suspect
from app.incidents.log import IncidentLog
from app.review import failures
from app.rollback import actions

from .stores import T0, load, per_bucket

H24 = timedelta(hours=24)


def change(
    at: datetime,
    kind: str = "prompt",
    key: str = "prompt_version",
    old: str = "v1",
    new: str = "v2",
    source: str = "declared",
    feature: str = "support-reply",
) -> ChangeEvent:
    return ChangeEvent(
        timestamp=at,
        feature=feature,
        kind=kind,
        key=key,
        from_value=old,
        to_value=new,
        author="maria",
        description="",
        source=source,
    )


def test_a_console_rollback_fails_the_change_it_undoes(tmp_path: Path):
    # A prompt change an hour ago, then a real revert-prompt through the flag actions path
    # (confirmed, read back, audited): the audit trail is where the review finds it.
    data_dir = tmp_path / "data"
    write_demo_flags(data_dir)
    now = datetime.utcnow()
    prompt = change(now - timedelta(hours=1))
    model = change(now - timedelta(hours=2), kind="model", key="model", old="a", new="b")
    result = actions.execute(
        data_dir, "support-reply", "revert-prompt", operator="ana", reason="v8 hurts quality"
    )
    assert result.outcome == "verified"
    later = recorded.change_events(data_dir)
    [rollback] = [e for e in later if e.source == "rollback-desk"]
    assert failures.rollback_action(rollback) == "revert-prompt"

    outcomes = failures.classify(None, [model, prompt, rollback], later, [], [], H24)
    by_id = {o.change.change_id: o for o in outcomes}
    assert rollback.change_id not in by_id  # the remedy is not a change of its own
    assert [e.kind for e in by_id[prompt.change_id].evidence] == ["console-rollback"]
    assert by_id[prompt.change_id].recovery_min == pytest.approx(
        (rollback.timestamp - prompt.timestamp).total_seconds() / 60
    )
    assert not by_id[model.change_id].failed  # revert-prompt does not undo a model change


def test_a_value_set_back_in_the_flag_history_fails_the_change():
    up = change(
        T0,
        kind="flag",
        key="doc-summarizer-canary",
        old="0%",
        new="10%",
        source="flag-audit",
        feature="doc-summarizer",
    )
    back = change(
        T0 + timedelta(hours=3),
        kind="flag",
        key="doc-summarizer-canary",
        old="10%",
        new="0%",
        source="flag-audit",
        feature="doc-summarizer",
    )
    late = change(
        T0 + timedelta(hours=30),
        kind="flag",
        key="other",
        old="on",
        new="off",
        source="flag-audit",
        feature="doc-summarizer",
    )
    outcomes = {
        o.change.change_id: o
        for o in failures.classify(None, [up, back, late], [up, back, late], [], [], H24)
    }
    assert outcomes[up.change_id].failed
    assert outcomes[up.change_id].why == "set back to 0% in the flag history at 2026-01-01 03:00 UTC"
    assert outcomes[up.change_id].recovery_min == 180
    assert not outcomes[back.change_id].failed and not outcomes[late.change_id].failed


def test_a_set_back_after_the_horizon_does_not_count():
    up = change(T0)
    back = change(T0 + timedelta(hours=25), old="v2", new="v1")
    [o, _] = failures.classify(None, [up, back], [up, back], [], [], H24)
    assert not o.failed


def _prompt_rows(v2_until_bucket: int, buckets: int = 60, canary: bool = False) -> list[dict]:
    """Prompt v1, then v2 from bucket 18 (an hour and a half in) until `v2_until_bucket`, then v1."""
    rows = per_bucket(T0, buckets, 10, feature="support-reply", prompt_version="v1")
    for r in rows:
        b = int((r["timestamp"] - T0).total_seconds() // 300)
        k = int(r["request_id"].rsplit("-", 1)[1])
        if 18 <= b < v2_until_bucket and (not canary or k == 0):
            r["prompt_version"] = "v2"
    return rows


def test_a_value_that_stops_answering_in_the_logs_fails_its_change(data_dir: Path):
    store = load(data_dir, _prompt_rows(v2_until_bucket=24))  # v2 for an hour, then v1
    [inferred] = [e for e in changes.timeline_changes(store) if e.to_value == "v2"]
    assert (inferred.source, inferred.from_value) == ("inferred", "v1")
    [o] = failures.classify(store, [inferred], [inferred], [], [], H24)
    [evidence] = o.evidence
    assert evidence.kind == "log-revert"
    # The last v2 request: bucket 23, its 10th request (27 s apart) -> 01:59:03.
    assert evidence.at == T0 + timedelta(minutes=5 * 23, seconds=9 * 30)
    assert o.recovery_min == pytest.approx((evidence.at - inferred.timestamp).total_seconds() / 60)


def test_a_canary_that_keeps_running_is_not_a_revert(data_dir: Path):
    store = load(data_dir, _prompt_rows(v2_until_bucket=60, canary=True))  # 1 in 10 on v2
    [inferred] = [e for e in changes.timeline_changes(store) if e.to_value == "v2"]
    [o] = failures.classify(store, [inferred], [inferred], [], [], H24)
    assert not o.failed


def _finding(suspect: ChangeEvent, onset: datetime) -> Finding:
    return Finding(
        feature=suspect.feature,
        metric="quality_score",
        onset=onset,
        end=onset + timedelta(hours=5),
        baseline=0.9,
        current=0.78,
        p_value=1e-9,
        n_baseline=5000,
        n_current=800,
        shape="step",
        severity=6.0,
        suspects=(Suspect(suspect, 0.9, "timing"),),
    )


def test_the_top_suspect_of_a_finding_failed_and_the_second_did_not():
    top, second = change(T0), change(T0 - timedelta(hours=1), kind="config", key="temperature")
    finding = _finding(top, T0 + timedelta(minutes=10))
    finding = Finding(
        **{**finding.__dict__, "suspects": (Suspect(top, 0.9, "timing"), Suspect(second, 0.2, "weak"))}
    )
    outcomes = failures.classify(None, [second, top], [second, top], [finding], [], H24)
    assert [o.failed for o in outcomes] == [False, True]
    assert outcomes[1].why == "top suspect of the quality_score degradation from 2026-01-01 00:10 UTC"
    assert outcomes[1].recovery_min is None  # blamed, never undone


def test_the_top_suspect_of_an_incident_failed(tmp_path: Path):
    c = change(T0)
    other = change(T0 + timedelta(hours=2), kind="model", key="model", old="a", new="b")
    log = IncidentLog(tmp_path)
    incident = log.open(
        "Replies got worse",
        ["support-reply"],
        "SEV2",
        suspect_change_ids=[c.change_id, other.change_id],
        at=T0,
    )
    outcomes = failures.classify(None, [c, other], [c, other], [], log.list(), H24)
    assert outcomes[0].why == f"top suspect of {incident.id} (Replies got worse)"
    assert not outcomes[1].failed


def test_rates_and_median_recovery_per_kind():
    def outcome(kind: str, recovery_h: float | None, failed: bool = True):
        c = change(T0, kind=kind, key=f"{kind}-{recovery_h}-{failed}")
        if not failed:
            return failures.ChangeOutcome(c)
        at = None if recovery_h is None else T0 + timedelta(hours=recovery_h)
        return failures.ChangeOutcome(c, (failures.Evidence("reverted", "x", at),))

    outcomes = [
        outcome("model", 1),
        outcome("model", 3),
        outcome("model", None),
        outcome("model", 0, failed=False),
        outcome("prompt", 0.5),
        outcome("prompt", 0, failed=False),
    ]
    got = {k: v.as_dict() for k, v in failures.by_kind(outcomes).items()}
    assert got["model"] == {"count": 4, "failed": 3, "failure_rate": 0.75, "median_recovery_min": 120.0}
    assert got["prompt"] == {"count": 2, "failed": 1, "failure_rate": 0.5, "median_recovery_min": 30.0}
    assert got["flag"] == {"count": 0, "failed": 0, "failure_rate": None, "median_recovery_min": None}


def test_a_value_replaced_by_a_newer_one_is_not_a_revert(data_dir: Path):
    # v1 -> v2 at 01:30, then v2 -> v3 at 02:30 (moving forward): v2 stops answering, but
    # the old value v1 does not take over, so v2's change did not fail.
    rows = _prompt_rows(v2_until_bucket=60)
    for r in rows:
        if r["timestamp"] >= T0 + timedelta(minutes=150):
            r["prompt_version"] = "v3"
    store = load(data_dir, rows)
    [v2] = [e for e in changes.timeline_changes(store) if e.to_value == "v2"]
    [o] = failures.classify(store, [v2], [v2], [], [], H24)
    assert not o.failed


def test_a_declared_change_and_its_flag_history_entry_count_as_one_change():
    declared = change(T0)
    recorded_too = change(T0 + timedelta(seconds=40), key="support-reply-prompt", source="flag-audit")
    elsewhere = change(T0, feature="doc-summarizer", key="doc-summarizer-prompt", source="flag-audit")
    much_later = change(T0 + timedelta(hours=2), key="support-reply-prompt", source="flag-audit")
    kept, same_as = failures.one_per_change([declared, recorded_too, elsewhere, much_later])
    assert kept == [declared, elsewhere, much_later]
    assert same_as == {recorded_too.change_id: declared.change_id}
    # a finding that names the flag system's record blames the change it was counted under
    outcomes = failures.classify(None, kept, kept, [_finding(recorded_too, T0)], [], H24, same_as)
    by_id = {o.change.change_id: o for o in outcomes}
    assert by_id[declared.change_id].failed
    assert by_id[declared.change_id].why.startswith("top suspect of the quality_score degradation")
    assert not by_id[elsewhere.change_id].failed and not by_id[much_later.change_id].failed
    assert failures.by_kind(outcomes)["prompt"].count == 3


def test_the_demo_prompt_change_counts_once_after_the_flag_history_is_fetched(demo_dir: Path):
    from app.review.report import week_bounds, weekly_review
    from app.rollback.history import sync_history
    from app.storage.store import Store

    assert "synced" in sync_history(demo_dir, force=True)["local"]
    review = weekly_review(Store(demo_dir), week_bounds("2026-W45"))
    [failed] = review.failed_changes
    assert (failed.change.source, failed.change.to_value) == ("declared", "v7.1")
    assert review.by_kind["prompt"].count == 1
