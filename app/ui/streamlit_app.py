"""The router and frame: page navigation, the data directory in the sidebar."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/ui/streamlit_app.py` puts app/ui on sys.path, not the project root.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui import common  # noqa: E402

HERE = Path(__file__).parent

st.set_page_config(page_title="Rollback Desk", page_icon="🧯", layout="wide")

SECTIONS: dict[str, list[tuple[str, str, str]]] = {
    "Monitor": [
        ("pages/overview.py", "Overview", "📊"),
        ("pages/feature.py", "Feature timeline", "📈"),
        ("pages/detect.py", "Detect", "🚨"),
    ],
    "Respond": [
        ("pages/incidents.py", "Incidents", "🧯"),
        ("pages/audit.py", "Audit trail", "📜"),
    ],
    "Review": [
        ("pages/registry.py", "Registry", "🗂️"),
        ("pages/rollout.py", "Rollouts", "🚦"),
        ("pages/data.py", "Data", "💾"),
    ],
}

pages = {
    section: [st.Page(path, title=title, icon=icon, default=(path == "pages/overview.py"))
              for path, title, icon in entries if (HERE / path).exists()]
    for section, entries in SECTIONS.items()
}
nav = st.navigation({k: v for k, v in pages.items() if v})
with st.sidebar:
    st.caption(f"Data directory: `{common.data_dir()}`")
nav.run()
