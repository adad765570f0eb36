"""Fixtures of the flag tests: a fresh demo flag setup per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.flags.demo import write_demo_flags


@pytest.fixture
def flag_dir(tmp_path: Path) -> Path:
    """A data directory holding the demo flag configuration and flags.json."""
    data_dir = tmp_path / "data"
    write_demo_flags(data_dir)
    return data_dir
