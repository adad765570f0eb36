"""Save the current view or query to an incident, with a note."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.incidents.log import IncidentError, IncidentLog
from app.investigate.evidence import save_evidence
from app.ui import common
from app.ui.components.investigate_ui import current_actor


def render_save_to_incident(
    feature: str, title: str, link: str, rows: list[dict[str, Any]], key: str, query: str | None = None
) -> None:
    open_ = [i for i in IncidentLog(common.data_dir()).list() if i.status != "resolved"]
    with st.expander("📎 Save to an incident"):
        if not open_:
            st.caption("No open incident.")
            return
        mine = [i for i in open_ if feature in i.features] or open_
        ids = [i.id for i in mine]
        labels = {i.id: f"{i.id} · {i.title}" for i in mine}
        incident_id = st.selectbox("Incident", ids, format_func=labels.get, key=f"{key}_incident")
        note = st.text_area("Note", key=f"{key}_note", placeholder="What this shows")
        if st.button("Save", key=f"{key}_go"):
            actor = current_actor()
            try:
                save_evidence(
                    common.data_dir(),
                    incident_id,
                    title=title,
                    link=link,
                    note=note,
                    query=query,
                    rows=rows,
                    actor=actor.name if actor else None,
                )
            except (IncidentError, ValueError) as exc:
                st.error(str(exc), icon="⚠️")
            else:
                st.success(
                    f"Saved to {incident_id}: it shows on the incident's timeline and in its post-mortem.",
                    icon="✅",
                )
