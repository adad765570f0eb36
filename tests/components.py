"""The rule for tests that need a real component (a server, a browser, a flag provider)."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, what: str) -> None:
    """Skip when a real component is missing, except under CI=true, where that is a failure."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is missing, and CI=true requires it")
    pytest.skip(f"{what} is missing")
