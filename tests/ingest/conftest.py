"""Fixtures of the ingest suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from logfiles import Desk


@pytest.fixture
def desk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Desk:
    return Desk(tmp_path / "data", capsys)
