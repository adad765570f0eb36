"""Fixtures every suite shares: the demo data directory and the rule for real components."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the helper modules beside this file

from components import in_ci, require  # noqa: E402,F401  (re-exported for the suites)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo week loaded once per test session; copy it before changing it."""
    from app.demo.setup import load_demo

    folder = tmp_path_factory.mktemp("demo-template")
    result = load_demo(folder)
    assert result.ok and result.loaded > 100_000
    return folder


@pytest.fixture
def demo_dir(demo_template: Path, tmp_path: Path) -> Path:
    """A private copy of the demo data directory."""
    target = tmp_path / "data"
    shutil.copytree(demo_template, target)
    return target


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    target = tmp_path / "empty"
    target.mkdir()
    return target
