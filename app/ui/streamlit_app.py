"""The router and frame: page navigation, the data directory in the sidebar."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/ui/streamlit_app.py` puts app/ui on sys.path, not the project root.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui import auth, common  # noqa: E402

st.set_page_config(page_title="Rollback Desk", page_icon="🧯", layout="wide")
who = auth.gate()  # sign-in (or local mode) before any page

SECTIONS: dict[str, list[tuple[str, str, str]]] = {
    "Monitor": [
        ("views/overview.py", "Overview", "📊"),
        ("views/feature.py", "Feature timeline", "📈"),
        ("views/detect.py", "Detect", "🚨"),
    ],
    "Respond": [
        ("views/incidents.py", "Incidents", "🧯"),
        ("views/audit.py", "Audit trail", "📜"),
    ],
    "Investigate": [
        ("views/explore.py", "Explore", "🔎"),
        ("views/compare.py", "Compare", "⚖️"),
        ("views/sql.py", "SQL", "🧮"),
    ],
    "Review": [
        ("views/registry.py", "Registry", "🗂️"),
        ("views/rollout.py", "Rollouts", "🚦"),
        ("views/data.py", "Data", "💾"),
        ("views/review.py", "Weekly review", "🗓️"),
    ],
}

# The page files live in views/, not pages/: Streamlit treats a pages/ folder beside the
# entry script as old-style pages and would serve them without this router.
nav = st.navigation(
    {
        section: [
            st.Page(path, title=title, icon=icon, default=(path == "views/overview.py"))
            for path, title, icon in entries
        ]
        for section, entries in SECTIONS.items()
    }
)
with st.sidebar:
    auth.sidebar(who)
    st.caption(f"Data directory: `{common.data_dir()}`")
nav.run()
