"""Helpers of the flag tests: the rule for real components, and the official flagd schema."""

from __future__ import annotations

import json
from pathlib import Path

from components import require as need  # noqa: F401  (the flag suites' name for it)
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parents[2]
FLAGD_SCHEMA_DIR = ROOT.parent / "shared" / "schemas" / "flagd"




def flagd_validator() -> Draft7Validator:
    """The official flagd schema, with targeting.json registered under its relative name."""
    need(FLAGD_SCHEMA_DIR.exists(), f"the official flagd schema ({FLAGD_SCHEMA_DIR})")
    schema = json.loads((FLAGD_SCHEMA_DIR / "flags.json").read_text())
    targeting = json.loads((FLAGD_SCHEMA_DIR / "targeting.json").read_text())
    resource = Resource.from_contents(targeting, default_specification=DRAFT7)
    registry = Registry().with_resources(
        [("./targeting.json", resource), ("targeting.json", resource),
         ("https://flagd.dev/schema/v0/targeting.json", resource)]
    )
    return Draft7Validator(schema, registry=registry)


def assert_official_schema(path: Path) -> None:
    errors = list(flagd_validator().iter_errors(json.loads(Path(path).read_text())))
    assert not errors, f"{path} breaks the official flagd schema: {errors[0].message}"
