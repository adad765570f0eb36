"""Fixtures of the access tests: the demo flag setup and an access.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.demo.flags import write_demo_flags

ACCESS_YAML = """default_role: viewer
local_role: admin
groups_claim: groups
users:
  Ana@Example.com: responder
  root@example.com: admin
groups:
  incident-responders: responder
"""


@pytest.fixture
def flag_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    write_demo_flags(data_dir)
    (data_dir / "access.yaml").write_text(ACCESS_YAML)
    return data_dir
