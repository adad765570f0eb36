"""Incident fixtures: the demo data directory with its flags, and an incident on it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from app.incidents.log import Incident, IncidentLog

CANARY_ONSET = datetime(2026, 11, 21, 9)


@pytest.fixture
def flag_demo_dir(demo_dir: Path) -> Path:
    """The demo data directory with its flagd-file flags (written if the demo lacks them)."""
    if not (demo_dir / "flags.yaml").exists():
        from app.demo.flags import write_demo_flags

        write_demo_flags(demo_dir)
    return demo_dir


@pytest.fixture
def canary_incident(flag_demo_dir: Path) -> Incident:
    """doc-summarizer's canary failure, opened with the canary playbook."""
    return IncidentLog(flag_demo_dir).open(
        "Summaries failing on the canary",
        ["doc-summarizer"],
        "SEV2",
        playbook="canary-failure",
        metric="error_rate",
        onset=CANARY_ONSET,
        commander="ana",
        comms_lead="raj",
        actor="ana",
        at=datetime(2026, 11, 23, 8, 30),
    )
