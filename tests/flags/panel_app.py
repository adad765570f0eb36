"""A page hosting the flag action panel, for AppTest (data dir and feature from env)."""

import os
from pathlib import Path

from app.ui.components.flag_actions import render_flag_actions

render_flag_actions(
    Path(os.environ["PANEL_DATA_DIR"]),
    os.environ["PANEL_FEATURE"],
    incident_id=os.environ.get("PANEL_INCIDENT") or None,
)
