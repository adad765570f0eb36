"""Every action against the flagd-file backend: verified, idempotent, audited."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flag_components import ROOT, assert_official_schema

from app.flags.flagd_file import FlagdFileBackend
from app.rollback import actions
from app.storage import trail


@pytest.mark.parametrize(
    ("feature", "action", "value", "flag", "field", "expected"),
    [
        ("support-reply", "kill", None, "support-reply-enabled", "enabled", False),
        ("doc-summarizer", "rollout", None, "doc-summarizer-canary", "rollout_percentage", 0),
        ("doc-summarizer", "rollout", "25", "doc-summarizer-canary", "rollout_percentage", 25),
        ("search-answers", "pin-model", None, "search-answers-model", "variant", "gpt-4o-2024-08-06"),
        ("support-reply", "pin-model", None, "support-reply-model", "variant", "gpt-3.5-turbo-0125"),
        ("support-reply", "revert-prompt", None, "support-reply-prompt", "variant", "v7"),
        ("code-assistant", "revert-prompt", "v3", "code-assistant-prompt", "variant", "v3"),
        ("ticket-triage-agent", "pause", None, "ticket-triage-agent-dry-run", "enabled", True),
        ("ticket-triage-agent", "rollout", 0, "ticket-triage-agent-rollout", "rollout_percentage", 0),
    ],
)
def test_each_action_is_verified_and_audited(
    flag_dir: Path, feature, action, value, flag, field, expected
) -> None:
    result = actions.execute(
        flag_dir, feature, action, value, operator="ana", reason="error rate up", incident_id="INC-7"
    )
    assert result.verified, result.message
    assert result.flag == flag and result.after[field] == expected and result.changed
    assert_official_schema(flag_dir / "flags.json")
    [entry] = trail.entries(flag_dir)
    assert (entry.outcome, entry.operator, entry.reason, entry.incident_id) == (
        "verified",
        "ana",
        "error rate up",
        "INC-7",
    )
    assert entry.backend == "flagd-file" and entry.flag == flag
    assert entry.environment == "production" and entry.latency_ms is not None
    assert entry.before[field] != expected and entry.after[field] == expected


def test_resume_undoes_kill_and_pause(flag_dir: Path) -> None:
    assert actions.execute(flag_dir, "ticket-triage-agent", "kill").verified
    assert actions.execute(flag_dir, "ticket-triage-agent", "pause").verified
    assert actions.execute(flag_dir, "ticket-triage-agent", "resume").after["enabled"] is True
    resumed = actions.execute(flag_dir, "ticket-triage-agent", "resume-agent")
    assert resumed.verified and resumed.after["enabled"] is False


@pytest.mark.parametrize(
    ("action", "value", "message"),
    [
        ("rollout", 150, "rollout 150 is not a percentage"),
        ("rollout", "-5", "rollout -5 is not a percentage"),
        ("rollout", "half", "rollout half is not a percentage"),
        ("pin-model", "gpt-5", "has no variant gpt-5"),
    ],
)
def test_invalid_values_fail_before_any_change(flag_dir: Path, action, value, message) -> None:
    original = (flag_dir / "flags.json").read_bytes()
    result = actions.execute(flag_dir, "doc-summarizer", action, value, operator="ana")
    assert result.outcome == "failed" and message in result.message
    assert (flag_dir / "flags.json").read_bytes() == original
    [entry] = trail.entries(flag_dir)
    assert entry.outcome == "failed"


def test_an_unknown_feature_or_role_is_explained(flag_dir: Path) -> None:
    assert "feature ai-summaries is not in" in actions.execute(flag_dir, "ai-summaries", "kill").message
    assert "has no rollout flag" in actions.execute(flag_dir, "support-reply", "rollout").message


def test_a_double_click_makes_one_change_and_records_both(flag_dir: Path) -> None:
    backend = FlagdFileBackend(flag_dir / "flags.json")
    lines_before = len(backend.history())
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda who: actions.execute(flag_dir, "support-reply", "kill", operator=who), ["ana", "bo"]
            )
        )
    assert all(r.verified for r in results)
    assert sorted(r.changed for r in results) == [False, True]
    assert len(backend.history()) == lines_before + 1
    assert {e.operator for e in trail.entries(flag_dir)} == {"ana", "bo"}


PRESS = """
import sys
from pathlib import Path
from app.rollback import actions
r = actions.execute(Path(sys.argv[1]), "doc-summarizer", "rollout", 0, operator=sys.argv[2])
print(r.outcome, r.changed)
"""


def test_two_operators_in_two_processes_make_one_change(flag_dir: Path) -> None:
    backend = FlagdFileBackend(flag_dir / "flags.json")
    lines_before = len(backend.history())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PRESS, str(flag_dir), who], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for who in ("ana", "bo")
    ]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outputs == ["verified False", "verified True"]
    assert len(backend.history()) == lines_before + 1
    assert len(trail.entries(flag_dir)) == 2


def test_a_read_back_that_does_not_match_is_unverified(flag_dir: Path) -> None:
    """A config-sync job restores the kill switch right after each write (as GitOps tools do):
    the write succeeds, the read-back disagrees, and the console says so."""
    path = flag_dir / "flags.json"
    backend = FlagdFileBackend(path)
    stop = threading.Event()

    def config_sync() -> None:
        while not stop.is_set():
            doc = json.loads(path.read_text())
            if doc["flags"]["support-reply-enabled"]["state"] == "DISABLED":
                backend.set_enabled("support-reply-enabled", "production", True)
            time.sleep(0.01)

    sync = threading.Thread(target=config_sync)
    sync.start()
    try:
        result = actions.execute(flag_dir, "support-reply", "kill", operator="ana")
    finally:
        stop.set()
        sync.join()
    assert result.outcome == "unverified" and result.error_code == "readback_mismatch"
    assert "reads back on instead of off" in result.message
    assert trail.entries(flag_dir)[0].outcome == "unverified"


def test_status_lists_every_flag_with_nulls_where_not_applicable(flag_dir: Path) -> None:
    doc = actions.status(flag_dir, "doc-summarizer")
    [feature] = doc["features"]
    assert feature["backend"] == "flagd-file"
    roles = {f["role"]: f for f in feature["flags"]}
    assert roles["rollout"]["rollout_percentage"] == 10 and roles["rollout"]["variant"] is None
    assert roles["kill_switch"]["rollout_percentage"] is None
    assert set(roles["model"]) == {"role", "key", "environment", "enabled", "rollout_percentage", "variant"}
