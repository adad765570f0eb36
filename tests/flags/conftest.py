"""Fixtures of the flag tests: a fresh demo flag setup per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.demo.flags import write_demo_flags


@pytest.fixture
def flag_dir(tmp_path: Path) -> Path:
    """A data directory holding the demo flag configuration and flags.json."""
    data_dir = tmp_path / "data"
    write_demo_flags(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def unleash(tmp_path_factory: pytest.TempPathFactory):
    """A real unleash-server 7.5.1 on a throwaway PostgreSQL 15 cluster, for the session."""
    import sys

    from flag_components import ROOT, need

    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    import unleash_fixture

    missing = unleash_fixture.missing_components()
    need(not missing, ", ".join(missing))
    pg, server = unleash_fixture.start_stack(tmp_path_factory.mktemp("unleash"))
    try:
        yield server
    finally:
        server.stop()
        pg.stop()
