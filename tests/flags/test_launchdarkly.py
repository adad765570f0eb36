"""Every action against LaunchDarkly's REST API v2, served by a loopback server that follows
the documented requests and responses (the SaaS cannot be reached from here), with the
failure modes; and the audit trail of a process killed between intent and outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_launchdarkly import FakeLaunchDarkly, flag
from fault_proxy import Fault, FaultProxy
from flag_components import ROOT

from app.changes import recorded
from app.rollback import actions, history
from app.storage import trail

TOKEN = "api-0123-secret-launchdarkly-token"
MODELS = ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20"]


@pytest.fixture
def ld():
    server = FakeLaunchDarkly(TOKEN)
    server.add(flag("ai-summaries", [True, False]))
    server.add(
        flag(
            "ai-summaries-canary",
            ["claude-sonnet-4-5", "gpt-4.1"],
            names=["canary", "control"],
            rollout={0: 10_000, 1: 90_000},
        )
    )
    server.add(flag("ai-summaries-model", MODELS, names=MODELS, served=0))
    server.add(flag("ai-summaries-prompt", ["v6", "v7", "v8"], names=["v6", "v7", "v8"], served=2))
    server.add(flag("ai-summaries-dry-run", [True, False], on=False))
    yield server
    server.close()


def write_config(data_dir: Path, url: str, timeout_s: float = 5.0, **override) -> Path:
    flags = {
        "kill_switch": "ai-summaries",
        "rollout": {"key": "ai-summaries-canary", "canary_variant": "canary"},
        "model": {"key": "ai-summaries-model", "versions": MODELS[1:]},
        "prompt": "ai-summaries-prompt",
        "agent_pause": "ai-summaries-dry-run",
        **override,
    }
    (data_dir / "flags.yaml").write_text(
        yaml.safe_dump(
            {
                "backends": {
                    "ld": {
                        "type": "launchdarkly",
                        "url": url,
                        "project": "default",
                        "token_env": "TEST_LD_TOKEN",
                        "timeout_s": timeout_s,
                    }
                },
                "features": {"ai-summaries": {"backend": "ld", "environment": "production", "flags": flags}},
            }
        )
    )
    return data_dir


@pytest.fixture
def ld_dir(ld, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("TEST_LD_TOKEN", TOKEN)
    return write_config(tmp_path, ld.url)


@pytest.mark.parametrize(
    ("action", "value", "field", "expected"),
    [
        ("kill", None, "enabled", False),
        ("rollout", 0, "rollout_percentage", 0),
        ("rollout", 2.5, "rollout_percentage", 2.5),
        ("pin-model", None, "variant", "gpt-4o-2024-08-06"),
        ("revert-prompt", None, "variant", "v7"),
        ("pause", None, "enabled", True),
    ],
)
def test_each_action_is_verified(ld_dir: Path, ld, action, value, field, expected) -> None:
    result = actions.execute(
        ld_dir, "ai-summaries", action, value, operator="ana", reason="drill", incident_id="INC-5"
    )
    assert result.verified, result.message
    assert result.backend == "launchdarkly" and result.after[field] == expected
    entry = trail.entries(ld_dir)[0]
    assert (entry.outcome, entry.incident_id) == ("verified", "INC-5")


def test_a_rollout_to_zero_keeps_the_canary_listed_at_0(ld_dir: Path, ld) -> None:
    actions.execute(ld_dir, "ai-summaries", "rollout", 0)
    weights = ld.flags["ai-summaries-canary"]["environments"]["production"]["fallthrough"]
    assert sorted(w["weight"] for w in weights["rollout"]["variations"]) == [0, 100_000]


def test_the_patch_carries_the_action_id_and_reason_as_comment(ld_dir: Path, ld) -> None:
    result = actions.execute(ld_dir, "ai-summaries", "kill", reason="error spike")
    assert ld.audit[-1]["comment"] == f"rollback-desk action {result.action_id}: error spike"


def test_server_down(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEST_LD_TOKEN", TOKEN)
    result = actions.execute(write_config(tmp_path, "http://127.0.0.1:9"), "ai-summaries", "kill")
    assert result.outcome == "failed"
    assert result.message == "LaunchDarkly at http://127.0.0.1:9 unreachable"


def test_token_rejected(ld_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEST_LD_TOKEN", "api-wrong")
    result = actions.execute(ld_dir, "ai-summaries", "kill")
    assert result.outcome == "failed" and result.message.startswith("token rejected (401)")


def test_flag_not_found(ld_dir: Path, ld) -> None:
    write_config(ld_dir, ld.url, kill_switch="ai-summaries-old")
    result = actions.execute(ld_dir, "ai-summaries", "kill")
    assert result.message == "flag ai-summaries-old not found in project default"


def test_invalid_percentage(ld_dir: Path) -> None:
    result = actions.execute(ld_dir, "ai-summaries", "rollout", 150)
    assert result.outcome == "failed" and result.message == "rollout 150 is not a percentage"


def test_a_read_back_that_does_not_match(ld_dir: Path, ld) -> None:
    ld.ignore_writes = True  # accepted, never applied (as with a pending approval)
    result = actions.execute(ld_dir, "ai-summaries", "kill")
    assert result.outcome == "unverified" and "reads back on instead of off" in result.message


@pytest.fixture
def proxy(ld, ld_dir: Path):
    p = FaultProxy(ld.url)
    write_config(ld_dir, p.url, timeout_s=1.0)
    yield p
    p.close()


def test_server_error(ld_dir: Path, proxy) -> None:
    proxy.fault = Fault(status=500)
    result = actions.execute(ld_dir, "ai-summaries", "pin-model")
    assert result.outcome == "failed" and "LaunchDarkly at" in result.message
    assert "failed (500)" in result.message


def test_a_brief_503_is_retried_because_the_patch_is_idempotent(ld_dir: Path, proxy) -> None:
    proxy.fault = Fault(status=503)
    result = actions.execute(ld_dir, "ai-summaries", "kill")
    assert result.outcome == "failed" and "(503)" in result.message  # after 3 attempts
    proxy.fault = None
    assert actions.execute(ld_dir, "ai-summaries", "kill").verified


def test_slower_than_the_timeout(ld_dir: Path, proxy) -> None:
    proxy.fault = Fault(delay_s=1.5)
    result = actions.execute(ld_dir, "ai-summaries", "kill")
    assert result.outcome == "unverified" and "did not answer within 1 s" in result.message


KILLED_PRESS = """
import sys
from pathlib import Path
from app.rollback import actions
actions.execute(Path(sys.argv[1]), "ai-summaries", "kill", operator="ana", reason="crash test")
"""


def test_a_process_killed_between_intent_and_outcome_leaves_the_intent(ld_dir: Path, ld, monkeypatch) -> None:
    p = FaultProxy(ld.url)
    p.fault = Fault(delay_s=30)
    write_config(ld_dir, p.url, timeout_s=20)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_PRESS, str(ld_dir)],
        cwd=ROOT,
        env={**os.environ, "TEST_LD_TOKEN": TOKEN},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            (ld_dir / "ledger.sqlite").exists() and trail.entries(ld_dir)
        ):
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        p.close()
    [entry] = trail.entries(ld_dir)
    assert entry.outcome is None and entry.as_dict()["outcome"] == "no outcome recorded"
    assert (entry.operator, entry.reason, entry.flag) == ("ana", "crash test", "ai-summaries")
    assert [e.action_id for e in trail.entries(ld_dir, outcome="none")] == [entry.action_id]
    write_config(ld_dir, ld.url)
    assert actions.execute(ld_dir, "ai-summaries", "kill").verified  # the next press works


def test_history_from_the_audit_log(ld_dir: Path) -> None:
    actions.execute(ld_dir, "ai-summaries", "revert-prompt", operator="ana")
    assert history.sync_history(ld_dir)["ld"] == "synced 1 entries"
    events = recorded.change_events(ld_dir, feature="ai-summaries")
    assert [(e.source, e.kind, e.from_value, e.to_value) for e in events] == [
        ("rollback-desk", "prompt", "v8", "v7")
    ]


def test_the_token_never_appears(ld_dir: Path, capsys, monkeypatch) -> None:
    from app.cli import main

    main(["flags", "status", "--json", "--data-dir", str(ld_dir)])
    main(["flags", "kill", "ai-summaries", "--yes", "--json", "--data-dir", str(ld_dir)])
    monkeypatch.setenv("TEST_LD_TOKEN", TOKEN + "-bad")
    main(["flags", "resume", "ai-summaries", "--yes", "--json", "--data-dir", str(ld_dir)])
    main(["flags", "audit", "--data-dir", str(ld_dir)])
    out = capsys.readouterr()
    assert "secret-launchdarkly-token" not in out.out + out.err
    for path in ld_dir.rglob("*"):
        if path.is_file():
            assert b"secret-launchdarkly-token" not in path.read_bytes(), path
