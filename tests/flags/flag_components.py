"""Helpers of the flag tests: the rule for real components, and the official flagd schema."""

from __future__ import annotations

import json
from pathlib import Path

from components import require as need  # noqa: F401  (the flag suites' name for it)

from app.configuration import FLAGD
from app.configuration.validation import validator

ROOT = Path(__file__).resolve().parents[2]
# The upstream examples of valid and invalid flag files (tests/fixtures/flagd/README.md).
FLAGD_EXAMPLES = ROOT / "tests" / "fixtures" / "flagd" / "examples"


def flagd_validator():
    """The official flagd schema as the package ships it, nothing else added."""
    return validator(FLAGD)


def assert_official_schema(path: Path) -> None:
    errors = list(flagd_validator().iter_errors(json.loads(Path(path).read_text())))
    assert not errors, f"{path} breaks the official flagd schema: {errors[0].message}"
