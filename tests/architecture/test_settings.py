"""Settings are declared once (app/config.py) and each one is read by the code it governs."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import SETTINGS

APP = Path(__file__).resolve().parents[2] / "app"


def test_every_setting_is_read_somewhere():
    code = "\n".join(p.read_text() for p in APP.rglob("*.py") if p.name != "config.py")
    config = (APP / "config.py").read_text()
    unread = [
        s.name for s in SETTINGS if not re.search(rf"setting\(\s*[\"']{s.name}[\"']\s*\)", code + config)
    ]
    assert not unread, f"settings read by nothing: {unread}"
