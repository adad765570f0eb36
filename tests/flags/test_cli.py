"""`rollback-desk flags ...` prints the documented JSON and exits 0 only when verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from flag_components import ROOT

from app.cli import main


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_status_json_has_the_documented_shape(flag_dir: Path, capsys) -> None:
    code, doc = run(capsys, "flags", "status", "--data-dir", str(flag_dir), "--json")
    assert code == 0
    assert [f["feature"] for f in doc["features"]] == [
        "code-assistant",
        "doc-summarizer",
        "search-answers",
        "support-reply",
        "ticket-triage-agent",
    ]
    for feature in doc["features"]:
        assert feature["backend"] == "flagd-file"
        for flag in feature["flags"]:
            assert set(flag) == {"role", "key", "environment", "enabled", "rollout_percentage", "variant"}
            assert flag["role"] in {"kill_switch", "rollout", "model", "prompt", "agent_pause"}


def test_status_of_one_feature(flag_dir: Path, capsys) -> None:
    _, doc = run(
        capsys, "flags", "status", "--feature", "search-answers", "--data-dir", str(flag_dir), "--json"
    )
    assert [f["feature"] for f in doc["features"]] == ["search-answers"]


@pytest.mark.parametrize(
    ("argv", "flag", "after"),
    [
        (["kill", "support-reply"], "support-reply-enabled", {"enabled": False}),
        (["rollout", "doc-summarizer"], "doc-summarizer-canary", {"rollout_percentage": 0}),
        (["pin-model", "search-answers"], "search-answers-model", {"variant": "gpt-4o-2024-08-06"}),
        (["revert-prompt", "support-reply", "v6"], "support-reply-prompt", {"variant": "v6"}),
        (["pause", "ticket-triage-agent"], "ticket-triage-agent-dry-run", {"enabled": True}),
    ],
)
def test_actions_print_outcome_flag_before_after_message(flag_dir, capsys, argv, flag, after):
    code, doc = run(
        capsys,
        "flags",
        *argv,
        "--yes",
        "--json",
        "--data-dir",
        str(flag_dir),
        "--operator",
        "ana",
        "--reason",
        "drill",
        "--incident",
        "INC-1",
    )
    assert code == 0
    assert set(doc) == {"outcome", "flag", "before", "after", "message"}
    assert doc["outcome"] == "verified" and doc["flag"] == flag
    assert {k: doc["after"][k] for k in after} == after


def test_resume_after_kill(flag_dir: Path, capsys) -> None:
    run(capsys, "flags", "kill", "support-reply", "--yes", "--json", "--data-dir", str(flag_dir))
    code, doc = run(
        capsys, "flags", "resume", "support-reply", "--yes", "--json", "--data-dir", str(flag_dir)
    )
    assert code == 0 and doc["after"]["enabled"] is True


def test_failures_exit_non_zero(flag_dir: Path, capsys) -> None:
    code, doc = run(
        capsys, "flags", "rollout", "doc-summarizer", "150", "--yes", "--json", "--data-dir", str(flag_dir)
    )
    assert code == 1
    assert doc["outcome"] == "failed" and doc["message"] == "rollout 150 is not a percentage"


def test_without_yes_nothing_changes(flag_dir: Path, capsys) -> None:
    original = (flag_dir / "flags.json").read_bytes()
    code, doc = run(capsys, "flags", "kill", "support-reply", "--json", "--data-dir", str(flag_dir))
    assert code == 1 and doc["outcome"] == "planned" and "--yes" in doc["message"]
    assert (flag_dir / "flags.json").read_bytes() == original


def test_audit_lists_presses_for_an_incident(flag_dir: Path, capsys) -> None:
    run(
        capsys,
        "flags",
        "kill",
        "support-reply",
        "--yes",
        "--json",
        "--data-dir",
        str(flag_dir),
        "--incident",
        "INC-9",
        "--operator",
        "ana",
    )
    code, doc = run(capsys, "flags", "audit", "--incident", "INC-9", "--data-dir", str(flag_dir))
    assert code == 0
    [entry] = doc["entries"]
    assert entry["operator"] == "ana" and entry["outcome"] == "verified"


def test_the_installed_entry_point_runs(flag_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "flags",
            "kill",
            "code-assistant",
            "--yes",
            "--json",
            "--data-dir",
            str(flag_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcome"] == "verified"
