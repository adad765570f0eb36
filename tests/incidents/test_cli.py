"""`rollback-desk incidents ...`, `flags ... --incident` and `postmortem` as scripts use them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_open_list_note_status_and_postmortem_from_the_command_line(flag_demo_dir: Path, capsys, tmp_path):
    d = ["--data-dir", str(flag_demo_dir)]
    code, out, _ = run(
        capsys,
        "incidents",
        "open",
        "--feature",
        "doc-summarizer",
        "--title",
        "Canary errors",
        "--severity",
        "SEV2",
        "--playbook",
        "canary-failure",
        "--metric",
        "error_rate",
        "--onset",
        "2026-11-21T09:00:00Z",
        "--json",
        *d,
    )
    assert code == 0
    incident_id = json.loads(out)["id"]
    assert incident_id == "INC-0002"  # the demo ships INC-0001 (app/demo/incident.py)

    code, out, _ = run(
        capsys,
        "flags",
        "rollout",
        "doc-summarizer",
        "0",
        "--yes",
        "--json",
        "--incident",
        incident_id,
        "--operator",
        "ana",
        "--reason",
        "canary errors",
        *d,
    )
    assert code == 0 and json.loads(out)["outcome"] == "verified"
    assert run(capsys, "incidents", "note", incident_id, "Canary at 0%", "--author", "ana", *d)[0] == 0
    assert (
        run(capsys, "incidents", "status", incident_id, "mitigated", *d)[1].strip()
        == f"{incident_id} is now mitigated"
    )

    code, out, _ = run(capsys, "incidents", "list", "--json", *d)
    [listed, shipped] = json.loads(out)["incidents"]  # newest first; the demo ships INC-0001
    assert shipped["id"] == "INC-0001"
    assert (listed["id"], listed["status"], listed["severity"], listed["playbook"]) == (
        incident_id,
        "mitigated",
        "SEV2",
        "canary-failure",
    )

    target = tmp_path / "pm.md"
    assert run(capsys, "postmortem", incident_id, "--output", str(target), *d)[0] == 0
    text = target.read_text()
    timeline = text.split("## Timeline")[1].split("## Actions taken")[0]
    assert "rollout doc-summarizer-canary (production): 10% -> 0%: verified" in timeline
    assert "| incident | Canary at 0% |" in timeline
    assert "Status investigating -> mitigated" in timeline
    assert "| Requests affected | 1,041 |" in text and "| Scope | partial: variant = canary |" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["incidents", "open", "--feature", "f", "--title", "t", "--playbook", "nope"],
            "playbook nope not found",
        ),
        (["incidents", "open", "--feature", "f", "--title", "t", "--onset", "yesterday"], "is not a time"),
        (["incidents", "note", "INC-0042", "hello"], "no incident INC-0042"),
        (["incidents", "status", "INC-0042", "resolved"], "no incident INC-0042"),
        (["postmortem", "INC-0042"], "no incident INC-0042"),
    ],
)
def test_mistakes_exit_non_zero_with_a_message(empty_dir: Path, capsys, argv, message):
    code, _, err = run(capsys, *argv, "--data-dir", str(empty_dir))
    assert code == 1 and message in err


def test_status_rejects_unknown_values(empty_dir: Path, capsys):
    with pytest.raises(SystemExit):
        main(["incidents", "status", "INC-0001", "fixed", "--data-dir", str(empty_dir)])
